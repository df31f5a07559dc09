//! What the gateway settles about a request before routing it, and the requests it refuses
//! outright. One call from the pipeline, so that the router, every plugin and the upstream
//! see the same path, the same host and the same client:
//!
//! 1. `CONNECT` is refused with 405: the gateway tunnels nothing. The one exception is HTTP/2's
//!    extended CONNECT for a WebSocket (RFC 8441, `:protocol = websocket`), which stands for
//!    the `GET` with `Upgrade: websocket` of HTTP/1.1: it is routed as that `GET` and marked
//!    [`H2WebSocket`] (only routes with `websocket = true` accept it).
//! 2. Request line and headers over `max_header_bytes`, or over [`MAX_HEADERS`] headers, get a
//!    JSON 431 (hyper's own limits are set above ours so that it rarely answers first).
//! 3. The host: one `Host` header at most, of valid syntax, agreeing with the request
//!    target's authority (HTTP/2 `:authority`, HTTP/1.1 absolute form) when both are there;
//!    HTTP/1.1 and HTTP/2 requests must have one. Plugins see it as `Host` either way.
//! 4. The canonical path (`canonical::path`).
//! 5. Forwarding headers and the client's address (`forwarded`).

use crate::canonical::{canonical_path, Authority, HostError};
use crate::config::ServerConfig;
use crate::error::GatewayError;
use crate::forwarded;
use crate::pipeline::Peer;
use http::{header, HeaderValue, Method, Request, Version};

/// At most this many header lines; past it, a JSON 431 (hyper answers a bare 431 itself only
/// past [`HYPER_MAX_HEADERS`]).
pub const MAX_HEADERS: usize = 100;
/// hyper's own header count limit for HTTP/1.1, set above [`MAX_HEADERS`].
pub const HYPER_MAX_HEADERS: usize = 2 * MAX_HEADERS;

/// hyper's own header byte limit for `max_header_bytes`: high enough that a head a little
/// over our limit reaches the pipeline and gets a JSON answer, low enough to bound memory.
pub fn hyper_header_bytes(max_header_bytes: usize) -> usize {
    (max_header_bytes.saturating_mul(2)).max(16 * 1024)
}

/// What the pipeline works with from here on.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The canonical path: what the router matches, what plugins see as the request's path,
    /// and where path parameters (forwarded by the `http` integration) are taken from.
    pub path: String,
    /// The request's one host; `None` only for HTTP/1.0 requests without `Host`.
    pub authority: Option<Authority>,
    /// The client as far as the trusted proxies let us know it.
    pub client: forwarded::Client,
}

impl Inbound {
    /// The host routes are matched against.
    pub fn host(&self) -> Option<&str> {
        self.authority.as_ref().map(Authority::host)
    }
}

/// A WebSocket asked for with HTTP/2's extended CONNECT (RFC 8441), now routed as a `GET`.
/// Its answer is a `200` with no body (not a `101`), after which the stream carries the
/// WebSocket.
#[derive(Debug, Clone, Copy)]
pub struct H2WebSocket;

/// Check `req` and settle its path, host and client, rewriting its forwarding headers and
/// adding `Host` when it came only as `:authority`.
pub fn prepare<B>(
    req: &mut Request<B>,
    server: &ServerConfig,
    peer: Peer,
) -> Result<Inbound, GatewayError> {
    if req.method() == Method::CONNECT {
        let websocket = req.version() == http::Version::HTTP_2
            && req
                .extensions()
                .get::<hyper::ext::Protocol>()
                .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
        if !websocket {
            return Err(GatewayError::MethodNotAllowed { allow: Vec::new() });
        }
        *req.method_mut() = Method::GET;
        req.extensions_mut().insert(H2WebSocket);
    }
    check_head_size(req, server.max_header_bytes)?;
    let authority = authority(req, peer.scheme)?;
    let path = canonical_path(req.uri().path(), server.path_rules)?;
    let client = forwarded::apply(
        req.headers_mut(),
        peer.addr.ip(),
        peer.scheme,
        authority.as_ref(),
        &server.trusted_proxies,
    );
    // HTTP/2 carries the host in `:authority`, not in a header; plugins (a SigV4 verifier
    // signing `host`, a cache keying on it) see it as the `Host` header either way.
    if !req.headers().contains_key(header::HOST) {
        if let Some(v) = authority
            .as_ref()
            .and_then(|a| HeaderValue::from_str(&a.to_string()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    Ok(Inbound {
        path,
        authority,
        client,
    })
}

/// Request line and header bytes as HTTP/1.1 would carry them.
fn check_head_size<B>(req: &Request<B>, limit: usize) -> Result<(), GatewayError> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(1);
    let mut size = req.method().as_str().len() + target + " HTTP/1.1\r\n ".len();
    for (name, value) in req.headers() {
        size += name.as_str().len() + value.len() + ": \r\n".len();
    }
    if size > limit || req.headers().len() > MAX_HEADERS {
        return Err(GatewayError::HeadersTooLarge {
            limit,
            max_count: MAX_HEADERS,
        });
    }
    Ok(())
}

/// The request's one host, from `Host` and the request target's authority.
fn authority<B>(req: &Request<B>, scheme: &str) -> Result<Option<Authority>, HostError> {
    let mut values = req.headers().get_all(header::HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(HostError::Repeated);
    }
    let header = header
        .map(|v| {
            let text = v
                .to_str()
                .map_err(|_| HostError::Syntax(String::from_utf8_lossy(v.as_bytes()).into()))?;
            Authority::parse(text)
        })
        .transpose()?;
    let target = req
        .uri()
        .authority()
        .map(|a| Authority::parse(a.as_str()))
        .transpose()?;
    match (target, header) {
        (Some(t), Some(h)) if !t.same_as(&h, scheme) => Err(HostError::Disagree {
            target: t.to_string(),
            header: h.to_string(),
        }),
        (Some(t), _) => Ok(Some(t)),
        (None, Some(h)) => Ok(Some(h)),
        (None, None) if req.version() <= Version::HTTP_10 => Ok(None),
        (None, None) => Err(HostError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::PathRules;
    use crate::forwarded::TrustedProxies;
    use std::time::Duration;

    fn server() -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: None,
            max_body_bytes: 1024,
            max_header_bytes: 1024,
            header_read_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            max_connections: 1,
            access_log: None,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(1),
            stream_idle_timeout: Duration::from_secs(1),
            max_request_bytes: None,
            runtime: crate::config::RuntimeShape::PerCore { workers: 1 },
            idle_timeout: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(1),
            path_rules: PathRules::default(),
            trusted_proxies: TrustedProxies::default(),
        }
    }

    fn peer() -> Peer {
        Peer {
            addr: "203.0.113.5:4000".parse().unwrap(),
            scheme: "http",
        }
    }

    fn request(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().uri(uri).version(version);
        for h in hosts {
            b = b.header("host", *h);
        }
        b.body(()).unwrap()
    }

    fn prep(mut req: Request<()>) -> Result<(Inbound, Request<()>), GatewayError> {
        prepare(&mut req, &server(), peer()).map(|i| (i, req))
    }

    #[test]
    fn host_rules() {
        let ok = |v, uri, hosts: &[&str]| prep(request(v, uri, hosts)).unwrap().0;
        let refused = |v, uri, hosts: &[&str]| prep(request(v, uri, hosts)).unwrap_err();
        let i = ok(Version::HTTP_11, "/a", &["API.example.com.:80"]);
        assert_eq!(i.host(), Some("api.example.com"));
        let i = ok(Version::HTTP_2, "http://api.example.com/a", &[]);
        assert_eq!(i.host(), Some("api.example.com"));
        assert!(ok(Version::HTTP_10, "/a", &[]).authority.is_none());
        ok(Version::HTTP_2, "http://a.example/x", &["a.example:80"]);

        for (v, uri, hosts) in [
            (Version::HTTP_11, "/a", &[][..]),
            (Version::HTTP_2, "/a", &[]),
            (Version::HTTP_11, "/a", &["a.example", "b.example"]),
            (Version::HTTP_11, "/a", &["a.example", "a.example"]),
            (Version::HTTP_2, "http://a.example/x", &["b.example"]),
            (Version::HTTP_11, "http://a/v1/admin", &["b"]),
            (Version::HTTP_11, "/a", &["a:1:2"]),
            (Version::HTTP_11, "/a", &["a,b"]),
            (Version::HTTP_11, "/a", &["evil.example/x?y"]),
            (Version::HTTP_11, "/a", &["[::1"]),
            (Version::HTTP_11, "http://u@a/x", &["a"]),
        ] {
            let err = refused(v, uri, hosts);
            assert!(
                matches!(err, GatewayError::BadHost(_)),
                "{v:?} {uri} {hosts:?}: {err}"
            );
        }
    }

    #[test]
    fn h2_authority_becomes_the_host_header() {
        let (_, req) = prep(request(Version::HTTP_2, "https://a.example:8443/x", &[])).unwrap();
        assert_eq!(req.headers()["host"], "a.example:8443");
    }

    #[test]
    fn the_path_is_canonical_and_connect_is_refused() {
        let (i, _) = prep(request(Version::HTTP_11, "/v1/pets/%2e%2E/adm%69n", &["a"])).unwrap();
        assert_eq!(i.path, "/v1/admin");
        let err = prep(request(Version::HTTP_11, "/v1/..%2fadmin", &["a"])).unwrap_err();
        assert!(matches!(err, GatewayError::BadPath(_)), "{err}");
        let mut connect = request(Version::HTTP_11, "a.example:443", &["a.example:443"]);
        *connect.method_mut() = Method::CONNECT;
        let err = prep(connect).unwrap_err();
        assert!(
            matches!(err, GatewayError::MethodNotAllowed { .. }),
            "{err}"
        );
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut req = request(Version::HTTP_11, "/a", &["a"]);
        req.headers_mut()
            .insert("x-big", HeaderValue::from_str(&"a".repeat(1000)).unwrap());
        assert!(matches!(
            prep(req).unwrap_err(),
            GatewayError::HeadersTooLarge { .. }
        ));
        let mut req = request(Version::HTTP_11, "/a", &["a"]);
        for _ in 0..=MAX_HEADERS {
            req.headers_mut()
                .append("x-n", HeaderValue::from_static("1"));
        }
        let mut big = server();
        big.max_header_bytes = 1 << 20;
        assert!(matches!(
            prepare(&mut req, &big, peer()).unwrap_err(),
            GatewayError::HeadersTooLarge { .. }
        ));
    }

    #[test]
    fn the_client_is_the_peer_unless_trusted() {
        let mut req = request(Version::HTTP_11, "/a", &["a"]);
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let (i, req) = prep(req).unwrap();
        assert_eq!(i.client.ip.to_string(), "203.0.113.5");
        assert_eq!(req.headers()["x-forwarded-for"], "203.0.113.5");
    }
}
