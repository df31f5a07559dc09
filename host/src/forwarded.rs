//! Forwarding headers (`X-Forwarded-*`, `Forwarded`, `X-Real-IP` ...) and the client's
//! address, decided once before plugins run.
//!
//! Anyone can send `X-Forwarded-For: 10.0.0.1`; only a proxy we were told to trust
//! (`[server] trusted_proxies`) says something true in it. So:
//! * from an untrusted peer, every forwarding header the client sent is dropped and replaced
//!   by what the gateway knows: `X-Forwarded-For` is the peer's address, `X-Forwarded-Proto`
//!   the scheme it connected with, `X-Forwarded-Host` the validated host;
//! * from a trusted peer, the headers it sent are kept, `X-Forwarded-For` is appended to
//!   (and `Forwarded` gets a `for=` element), and the client is the first address from the
//!   right of `X-Forwarded-For` that is not a trusted proxy (each trusted hop appended the
//!   address of the one before it; everything left of the first untrusted one may be made
//!   up by the client). A `X-Forwarded-Proto` or `X-Forwarded-Host` it sent that is not
//!   valid is replaced as if it came from an untrusted peer.
//!
//! Either way `X-Real-IP` is set to that client address, the one plugins get as the context
//! value `client_ip`.

use crate::canonical::Authority;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Headers through which a client can claim an address, scheme or host; removed when the
/// peer is not trusted. Any `x-forwarded-*` header is covered as well.
const CLAIMS: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-original-forwarded-for",
];

const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
const XFH: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The client as decided by [`apply`]: its address, and the same as the header value it was
/// written as (`X-Real-IP`), for whoever needs the text.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub text: HeaderValue,
}

/// Rewrite the forwarding headers of a request that arrived from `peer` over `scheme` for the
/// host `authority`, and say who the client is.
pub fn apply(
    headers: &mut HeaderMap,
    peer: IpAddr,
    scheme: &'static str,
    authority: Option<&Authority>,
    trusted: &TrustedProxies,
) -> Client {
    let peer = peer.to_canonical();
    let peer_text = ip_value(peer);
    if !trusted.contains(peer) {
        // The common case, kept cheap: nothing the client sent is believed, and a request
        // without such claims (most) costs one pass over the header names.
        let claims =
            |n: &HeaderName| n.as_str().starts_with("x-forwarded-") || CLAIMS.contains(&n.as_str());
        if headers.keys().any(claims) {
            let names: Vec<HeaderName> = headers.keys().filter(|n| claims(n)).cloned().collect();
            for name in names {
                headers.remove(name);
            }
        }
        headers.insert(XFF, peer_text.clone());
        headers.insert(XFP, HeaderValue::from_static(scheme));
        if let Some(v) = authority.and_then(|a| HeaderValue::from_str(&a.to_string()).ok()) {
            headers.insert(XFH, v);
        }
        headers.insert(X_REAL_IP, peer_text.clone());
        return Client {
            ip: peer,
            text: peer_text,
        };
    }

    let chain = joined(headers, &XFF);
    let client = client_from_chain(chain.as_deref().unwrap_or(""), peer, trusted);
    let xff = match chain {
        Some(c) if !c.trim().is_empty() => format!("{c}, {peer}"),
        _ => peer.to_string(),
    };
    set(headers, XFF, &xff);
    let proto_ok = single(headers, &XFP).is_some_and(|p| p == "http" || p == "https");
    if !proto_ok {
        headers.insert(XFP, HeaderValue::from_static(scheme));
    }
    let host_ok = single(headers, &XFH).is_some_and(|h| Authority::parse(&h).is_ok());
    if !host_ok {
        match authority {
            Some(a) => set(headers, XFH, &a.to_string()),
            None => {
                headers.remove(XFH);
            }
        }
    }
    if let Some(f) = joined(headers, &FORWARDED) {
        set(headers, FORWARDED, &format!("{f}, for={}", node(peer)));
    }
    let text = if client == peer {
        peer_text
    } else {
        ip_value(client)
    };
    headers.insert(X_REAL_IP, text.clone());
    Client { ip: client, text }
}

/// An address as a header value, formatted without a heap string (and, for IPv4, without
/// the formatting machinery, which cost more than the rest of this module).
fn ip_value(ip: IpAddr) -> HeaderValue {
    use std::io::Write;
    if let IpAddr::V4(v4) = ip {
        let mut buf = [0u8; 15];
        let mut len = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                buf[len] = b'.';
                len += 1;
            }
            if octet >= 100 {
                buf[len] = b'0' + octet / 100;
                len += 1;
            }
            if octet >= 10 {
                buf[len] = b'0' + octet / 10 % 10;
                len += 1;
            }
            buf[len] = b'0' + octet % 10;
            len += 1;
        }
        return HeaderValue::from_bytes(&buf[..len]).expect("digits and dots");
    }
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{ip}").expect("an address fits in 64 bytes");
    let len = cursor.position() as usize;
    HeaderValue::from_bytes(&buf[..len]).expect("an address is a valid header value")
}

/// The first address from the right of `chain` that is not a trusted proxy; all of them
/// trusted means the leftmost. An entry that is not an address ends the walk at the last
/// address known to be good, since a trusted proxy would not have written it.
fn client_from_chain(chain: &str, peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    for entry in chain.rsplit(',') {
        match parse_node(entry.trim()) {
            Some(ip) => {
                client = ip;
                if !trusted.contains(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// An address as written in `X-Forwarded-For`: `1.2.3.4`, `1.2.3.4:5678`, `::1` or
/// `[::1]:5678`.
fn parse_node(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// RFC 7239 node syntax: IPv6 addresses are bracketed and quoted.
fn node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// All values of `name` joined with ", " (the list form), if there is any.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The value of `name` when it is sent exactly once, trimmed.
fn single(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    first.to_str().ok().map(|s| s.trim().to_string())
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn values(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const SPOOFED: &[(&str, &str)] = &[
        ("x-forwarded-for", "1.1.1.1"),
        ("x-forwarded-for", "2.2.2.2"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/admin"),
        ("forwarded", "for=1.1.1.1;host=evil.example"),
        ("x-real-ip", "1.1.1.1"),
        ("x-client-ip", "1.1.1.1"),
        ("true-client-ip", "1.1.1.1"),
        ("accept", "*/*"),
    ];

    #[test]
    fn an_untrusted_peer_claims_nothing() {
        let mut h = headers(SPOOFED);
        let host = Authority::parse("api.example:8080").unwrap();
        let t = trusted(&["10.0.0.0/8"]);
        let client = apply(&mut h, ip("203.0.113.9"), "http", Some(&host), &t).ip;
        assert_eq!(client, ip("203.0.113.9"));
        assert_eq!(values(&h, "x-forwarded-for"), ["203.0.113.9"]);
        assert_eq!(values(&h, "x-forwarded-proto"), ["http"]);
        assert_eq!(values(&h, "x-forwarded-host"), ["api.example:8080"]);
        assert_eq!(values(&h, "x-real-ip"), ["203.0.113.9"]);
        for gone in [
            "x-forwarded-port",
            "x-forwarded-prefix",
            "forwarded",
            "x-client-ip",
            "true-client-ip",
        ] {
            assert!(!h.contains_key(gone), "{gone} was kept");
        }
        assert_eq!(values(&h, "accept"), ["*/*"]);
    }

    #[test]
    fn addresses_format_as_std_does() {
        for a in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.100.255",
            "199.9.90.109",
            "::1",
            "2001:db8::7",
        ] {
            assert_eq!(ip_value(ip(a)).to_str().unwrap(), ip(a).to_string());
        }
    }

    #[test]
    fn no_host_means_no_forwarded_host() {
        let mut h = headers(&[("x-forwarded-host", "evil.example")]);
        apply(
            &mut h,
            ip("127.0.0.1"),
            "http",
            None,
            &TrustedProxies::default(),
        );
        assert!(!h.contains_key("x-forwarded-host"));
    }

    #[test]
    fn a_trusted_peer_is_appended_to_and_the_client_is_the_first_untrusted_hop() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.1/32"]);
        let mut h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        let client = apply(&mut h, ip("127.0.0.1"), "http", None, &t).ip;
        assert_eq!(client, ip("198.51.100.7"));
        assert_eq!(
            values(&h, "x-forwarded-for"),
            ["6.6.6.6, 198.51.100.7, 10.1.2.3, 127.0.0.1"]
        );
        assert_eq!(values(&h, "x-forwarded-proto"), ["https"]);
        assert_eq!(values(&h, "x-forwarded-host"), ["api.example"]);
        assert_eq!(values(&h, "forwarded"), ["for=198.51.100.7, for=127.0.0.1"]);
        assert_eq!(values(&h, "x-real-ip"), ["198.51.100.7"]);
    }

    #[test]
    fn chains_of_trusted_hops_and_bad_entries() {
        let t = trusted(&["10.0.0.0/8", "::1/128"]);
        let chain = |c: &str| client_from_chain(c, ip("10.0.0.1"), &t);
        assert_eq!(chain(""), ip("10.0.0.1"));
        assert_eq!(chain("10.0.0.2, 10.0.0.3"), ip("10.0.0.2"));
        assert_eq!(chain("5.5.5.5, garbage, 10.0.0.3"), ip("10.0.0.3"));
        assert_eq!(chain("5.5.5.5:1234"), ip("5.5.5.5"));
        assert_eq!(chain("[2001:db8::1]:80, ::1"), ip("2001:db8::1"));
        assert_eq!(chain("unknown"), ip("10.0.0.1"));
        // An IPv4 peer seen through a dual-stack socket is matched as IPv4.
        assert!(t.contains(ip("::ffff:10.9.9.9")));
    }

    #[test]
    fn invalid_claims_from_a_trusted_peer_are_replaced() {
        let t = trusted(&["127.0.0.0/8"]);
        let host = Authority::parse("api.example").unwrap();
        let mut h = headers(&[
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "evil.example/x?y"),
        ]);
        apply(&mut h, ip("127.0.0.1"), "https", Some(&host), &t);
        assert_eq!(values(&h, "x-forwarded-proto"), ["https"]);
        assert_eq!(values(&h, "x-forwarded-host"), ["api.example"]);
        assert_eq!(values(&h, "x-forwarded-for"), ["127.0.0.1"]);
    }
}
