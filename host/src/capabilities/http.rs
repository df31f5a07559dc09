//! Outbound HTTP for plugins (`wicket:plugin/http`) and planned forwards: one pooled keep-alive
//! client for the whole gateway, HTTP/1.1 and HTTP/2, plain or TLS. Bodies stream both ways:
//! the client's upload goes to the upstream as it arrives, the upstream's response comes back
//! as a stream, and the timeout covers the response head only.

use super::types::{RequestData, ResponseData};
use crate::body::{Body, Stream};
use crate::runtime::bindings::http::{Error as HttpError, Host, HostOutgoingRequest};
use crate::runtime::{Capability, HostState};
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, Method, Uri};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, Weak};
use std::time::Duration;
use wasmtime::component::Resource;

/// A request a plugin is building, consumed by `send`.
pub struct OutgoingRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Body,
    /// Signed with the gateway's AWS credentials when sent (the `aws` capability).
    pub sign: Option<crate::aws::SignSpec>,
}

pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

type Pool = hyper_util::client::legacy::Client<Connector, Stream>;

/// The gateway's outbound client. Each thread that sends gets a connection pool of its own:
/// with one runtime per core, a connection then lives on the runtime that uses it, and a
/// request never wakes another thread to reach its upstream.
#[derive(Clone)]
pub struct Client {
    /// Identifies this client's pools; they live while some clone of it does.
    id: Arc<()>,
    max_body_bytes: usize,
}

thread_local! {
    /// This thread's pools, one per live client. A config reload may replace the client: the
    /// pools of clients no longer alive are dropped (with their idle connections) the next
    /// time this thread makes a pool, so reloads never accumulate them.
    static POOLS: std::cell::RefCell<Vec<(Weak<()>, Pool)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How the gateway connects out: plain or TLS (webpki roots), HTTP/1.1 or HTTP/2 by ALPN.
pub(crate) fn connector() -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

fn new_pool() -> Pool {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(connector())
}

impl Client {
    pub fn new(max_body_bytes: usize) -> Client {
        Client {
            id: Arc::new(()),
            max_body_bytes,
        }
    }

    /// This thread's pool for this client.
    fn pool(&self) -> Pool {
        POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            let me = Arc::as_ptr(&self.id);
            if let Some((_, pool)) = pools.iter().find(|(id, _)| id.as_ptr() == me) {
                return pool.clone();
            }
            pools.retain(|(id, _)| id.strong_count() > 0);
            let pool = new_pool();
            pools.push((Arc::downgrade(&self.id), pool.clone()));
            pool
        })
    }

    /// The most a plugin may read of a body whole.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Send `req`; the response head must arrive within `timeout`. Its body streams.
    pub async fn send(
        &self,
        req: OutgoingRequest,
        timeout: Duration,
    ) -> Result<ResponseData, HttpError> {
        Ok(self.exchange(req, timeout).await?.0)
    }

    /// Like `send`, for an upgrade request: also the upstream's side of the upgrade, when its
    /// connection can switch protocols.
    pub async fn send_upgrade(
        &self,
        req: OutgoingRequest,
        timeout: Duration,
    ) -> Result<(ResponseData, Option<hyper::upgrade::OnUpgrade>), HttpError> {
        self.exchange(req, timeout).await
    }

    /// Run a plugin's planned forward: the request as `outgoing-request.forward` would build
    /// it (its body moves along, streaming), sent to the plan's URL. With `keep_headers`
    /// false, nothing reads the request afterwards: its headers move too instead of being
    /// copied. A plan with a sign spec has the client's `Authorization` and `X-Amz-*` headers
    /// dropped and is signed with `aws`'s credentials.
    pub async fn forward(
        &self,
        req: &mut RequestData,
        ctx: &super::types::ContextData,
        plan: &crate::runtime::describe::Forward,
        keep_headers: bool,
        aws: &crate::aws::Keychain,
    ) -> Result<ResponseData, HttpError> {
        let mut out = planned_request(req, ctx, plan, keep_headers)?;
        if let Some(spec) = &plan.sign {
            crate::aws::strip_client_auth(&mut out.headers, &spec.pass_headers);
            self.sign(&mut out, spec, aws).await?;
        }
        self.send(out, plan.timeout).await
    }

    /// Sign `out` for `spec`; a failure is the request's `invalid` error (the detail logged
    /// by the caller, never shown to the client).
    pub async fn sign(
        &self,
        out: &mut OutgoingRequest,
        spec: &crate::aws::SignSpec,
        aws: &crate::aws::Keychain,
    ) -> Result<(), HttpError> {
        crate::aws::sign(out, spec, aws, self.max_body_bytes)
            .await
            .map_err(|e| HttpError::Invalid(format!("signing for AWS: {e}")))
    }

    async fn exchange(
        &self,
        req: OutgoingRequest,
        timeout: Duration,
    ) -> Result<(ResponseData, Option<hyper::upgrade::OnUpgrade>), HttpError> {
        let mut builder = http::Request::builder().method(req.method).uri(req.uri);
        if let Some(h) = builder.headers_mut() {
            *h = req.headers;
        }
        let request = builder
            .body(req.body.into_stream())
            .map_err(|e| HttpError::Invalid(e.to_string()))?;
        let exchange = async {
            let mut response = self.pool().request(request).await.map_err(|e| {
                let detail = error_chain(&e);
                if e.is_connect() {
                    HttpError::Connect(detail)
                } else {
                    HttpError::Protocol(detail)
                }
            })?;
            let upgrade = (response.status() == http::StatusCode::SWITCHING_PROTOCOLS)
                .then(|| hyper::upgrade::on(&mut response));
            let (parts, body) = response.into_parts();
            let mut headers = parts.headers;
            strip_hop_by_hop(&mut headers);
            let resp = ResponseData {
                status: parts.status,
                headers,
                body: Body::stream(body),
            };
            Ok((resp, upgrade))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Remove the headers that describe one connection rather than the message (RFC 9110 7.6.1):
/// `Connection` and every header it names, and the fixed hop-by-hop set. Done on the way in,
/// before plugins see the request, and on every upstream response.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of these: one pass over the names present is far cheaper than
    // a dozen hashed removals (the profile showed header lookups at ~7% of a request).
    if !headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(&name.as_str()))
    {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "http2-settings",
];

/// The proxied copy of a client request: same method, headers and body, `Host` left to the
/// client library (the upstream's authority). The `X-Forwarded-*` headers were set before
/// any plugin ran (`forwarded.rs`, from the trusted proxies) and go as they are. The body
/// moves into the outgoing request: it is sent once, as it arrives.
pub fn forward_request(req: &mut RequestData, uri: Uri, keep_headers: bool) -> OutgoingRequest {
    let mut headers = if keep_headers {
        req.headers.clone()
    } else {
        std::mem::take(&mut req.headers)
    };
    headers.remove(header::HOST);
    // Filters may have replaced the body; the client sets the length of the body it sends.
    headers.remove(header::CONTENT_LENGTH);
    OutgoingRequest {
        method: req.method.clone(),
        uri,
        headers,
        body: std::mem::take(&mut req.body),
        sign: None,
    }
}

/// The outgoing request of a planned forward: the plan's URL with the path parameters and the
/// client's query filled in, checked like any URL a plugin sends to.
pub fn planned_request(
    req: &mut RequestData,
    ctx: &super::types::ContextData,
    plan: &crate::runtime::describe::Forward,
    keep_headers: bool,
) -> Result<OutgoingRequest, HttpError> {
    let url = crate::template::render_url(&plan.url, ctx, req.query.as_deref());
    Ok(forward_request(req, parse_uri(&url)?, keep_headers))
}

fn parse_uri(url: &str) -> Result<Uri, HttpError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| HttpError::Invalid(format!("invalid URL {url:?}: {e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.authority().is_some() => Ok(uri),
        _ => Err(HttpError::Invalid(format!(
            "URL {url:?} must be absolute http:// or https://"
        ))),
    }
}

impl HostOutgoingRequest for HostState {
    fn new(&mut self, method: String, url: String) -> wasmtime::Result<Resource<OutgoingRequest>> {
        self.require(Capability::Http)?;
        // An invalid method or URL is reported by `send`, which has an error to return.
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let uri = url.parse().unwrap_or_default();
        Ok(self.table.push(OutgoingRequest {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Body::empty(),
            sign: None,
        })?)
    }

    fn forward(
        &mut self,
        req: Resource<RequestData>,
        url: String,
    ) -> wasmtime::Result<Result<Resource<OutgoingRequest>, HttpError>> {
        self.require(Capability::Http)?;
        let uri = match parse_uri(&url) {
            Ok(uri) => uri,
            Err(e) => return Ok(Err(e)),
        };
        // The plugin still holds the request and may read it after sending.
        let out = forward_request(self.table.get_mut(&req)?, uri, true);
        Ok(Ok(self.table.push(out)?))
    }

    fn set_header(
        &mut self,
        r: Resource<OutgoingRequest>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(super::types::set_header(
            &mut self.table.get_mut(&r)?.headers,
            &name,
            &value,
        ))
    }

    fn remove_header(
        &mut self,
        r: Resource<OutgoingRequest>,
        name: String,
    ) -> wasmtime::Result<()> {
        super::types::remove_header(&mut self.table.get_mut(&r)?.headers, &name);
        Ok(())
    }

    fn set_body(&mut self, r: Resource<OutgoingRequest>, body: Vec<u8>) -> wasmtime::Result<()> {
        let out = self.table.get_mut(&r)?;
        out.body = Body::Full(Bytes::from(body));
        out.headers.remove(header::CONTENT_LENGTH);
        Ok(())
    }

    fn drop(&mut self, r: Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

impl Host for HostState {
    async fn send(
        &mut self,
        req: Resource<OutgoingRequest>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Resource<ResponseData>, HttpError>> {
        self.require(Capability::Http)?;
        let mut req = self.table.delete(req)?;
        if req.uri.scheme().is_none() {
            return Ok(Err(HttpError::Invalid(format!(
                "URL {} must be absolute http:// or https://",
                req.uri
            ))));
        }
        // Under a traced plugin call: a span of its own, and its traceparent to the upstream.
        let span = crate::telemetry::trace::Outbound::here(&mut req.headers);
        let described = span
            .as_ref()
            .map(|_| outbound_attributes(&req.method, &req.uri));
        let client = self.services.http.clone();
        if let Some(spec) = req.sign.take() {
            let aws = self.services.aws.clone();
            let signed = self.clock.paused(client.sign(&mut req, &spec, &aws)).await;
            if let Err(e) = signed {
                return Ok(Err(e));
            }
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
        let result = self.clock.paused(client.send(req, timeout)).await;
        if let (Some(span), Some((name, attrs))) = (span, described) {
            let status = result.as_ref().ok().map(|r| r.status.as_u16());
            span.finish_here(name, attrs, status);
        }
        match result {
            Ok(resp) => Ok(Ok(self.table.push(resp)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

/// An outbound request's span name and attributes (the URL without its query, which may
/// carry secrets).
pub(crate) fn outbound_attributes(
    method: &Method,
    uri: &Uri,
) -> (String, Vec<opentelemetry::KeyValue>) {
    use opentelemetry::KeyValue;
    let mut attrs = vec![KeyValue::new("http.request.method", method.to_string())];
    if let Some(host) = uri.host() {
        attrs.push(KeyValue::new("server.address", host.to_string()));
    }
    if let Some(port) = uri.port_u16() {
        attrs.push(KeyValue::new("server.port", i64::from(port)));
    }
    attrs.push(KeyValue::new(
        "url.full",
        format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map(|a| a.as_str()).unwrap_or_default(),
            uri.path()
        ),
    ));
    (method.to_string(), attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools_here() -> usize {
        POOLS.with(|p| p.borrow().len())
    }

    #[test]
    fn a_replaced_clients_pools_are_dropped_not_kept_per_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let first = Client::new(1024);
        first.pool();
        first.clone().pool();
        assert_eq!(
            pools_here(),
            1,
            "one pool per client, however often it is used"
        );
        // Each reload that makes a new client: the old one's pool goes with it.
        for _ in 0..50 {
            let next = Client::new(1024);
            next.pool();
        }
        assert_eq!(pools_here(), 2, "the live client's and the last one made");
        drop(first);
        Client::new(1024).pool();
        assert_eq!(pools_here(), 1);
    }
}
