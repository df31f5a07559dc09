//! One request's way through the gateway, top to bottom:
//!
//! ```text
//! request id -> limits -> route match -> body (bounded)
//!   -> filter 1 on-request -> ... -> filter n on-request     (any may answer early)
//!   -> integration handle
//!   -> filter n on-response -> ... -> filter 1 on-response   (only filters that ran)
//!   -> access log line, metrics
//! ```

use crate::capabilities::http::strip_hop_by_hop;
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use crate::error::{rescue, GatewayError};
use crate::gateway::{Gateway, Route, RouteMetrics};
use crate::router::Match;
use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::{BodyExt, Limited};
use std::net::SocketAddr;
use std::time::Instant;

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub scheme: &'static str,
}

/// Serve one request. Never fails: every error becomes a JSON response via `rescue`.
pub async fn handle<B>(gw: &Gateway, req: Request<B>, peer: Peer) -> http::Response<Bytes>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    let host_name = host.as_deref().map(|h| strip_port(h).to_ascii_lowercase());

    let (route, outcome) = match gw.router.find(&method, host_name.as_deref(), &path) {
        Match::Found { route, params } => {
            let timeout = gw.config.server.request_timeout;
            let run = run_route(gw, route, params, req, peer, host, &request_id);
            match tokio::time::timeout(timeout, run).await {
                Ok(outcome) => (Some(route), outcome),
                Err(_) => (Some(route), Err(GatewayError::Timeout(timeout))),
            }
        }
        Match::MethodNotAllowed { allow } => (None, Err(GatewayError::MethodNotAllowed { allow })),
        Match::NotFound => (None, Err(GatewayError::NotFound)),
    };
    let route_name = route.map(|r| &*r.name);
    let response = match outcome {
        Ok(resp) => resp,
        Err(err) => {
            if err.is_internal() {
                tracing::error!(request_id, route = route_name, "{err}");
            } else {
                tracing::debug!(request_id, route = route_name, "{err}");
            }
            rescue(&err, &request_id)
        }
    };
    let elapsed = started.elapsed();
    let metrics: &RouteMetrics = route.map(|r| &r.metrics).unwrap_or(&gw.unmatched);
    metrics.count(response.status);
    metrics.seconds.record(elapsed.as_secs_f64());
    if gw.config.server.access_log {
        tracing::info!(
            target: "wicket::access",
            request_id,
            client = %peer.addr.ip(),
            method = %method,
            path,
            route = route_name.unwrap_or("-"),
            status = response.status.as_u16(),
            micros = elapsed.as_micros() as u64,
        );
    }
    into_http(response, &method, &request_id)
}

/// The request's way through its route, once matched.
async fn run_route<B>(
    gw: &Gateway,
    route: &Route,
    params: Vec<(String, String)>,
    req: Request<B>,
    peer: Peer,
    host: Option<String>,
    request_id: &str,
) -> Result<ResponseData, GatewayError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (mut parts, body) = req.into_parts();
    let limit = gw.config.server.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let body = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(e) => return Err(GatewayError::BadRequest(format!("reading the body: {e}"))),
    };

    strip_hop_by_hop(&mut parts.headers);
    let mut ctx = ContextData::default();
    ctx.set("request_id", request_id);
    ctx.set("route", route.name.as_ref());
    ctx.set("client_ip", peer.addr.ip().to_string());
    for (k, v) in params {
        ctx.set(format!("param.{k}"), v);
    }
    let mut req = RequestData {
        method: parts.method,
        query: parts.uri.query().map(str::to_string),
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
        client_addr: peer.addr,
        scheme: peer.scheme,
        host,
    };

    // The way in: each filter may change the request and context, or answer.
    let mut leases = Vec::with_capacity(route.chain.len());
    let mut early = None;
    for plugin in &route.chain {
        let out = match plugin.on_request(request_id, req, ctx).await {
            Ok(out) => out,
            Err(e) => return Err(e.into()),
        };
        (req, ctx) = (out.req, out.ctx);
        leases.push(out.lease);
        if out.response.is_some() {
            early = out.response;
            break;
        }
    }

    let mut resp = match early {
        Some(resp) => resp,
        None => {
            let started = Instant::now();
            let out = route.integration.handle(request_id, req, ctx).await;
            route
                .metrics
                .integration_seconds
                .record(started.elapsed().as_secs_f64());
            match out {
                Ok((r, c, resp)) => {
                    (req, ctx) = (r, c);
                    resp
                }
                Err(e) => return Err(e.into()),
            }
        }
    };

    // The way out, through the filters that ran, in reverse.
    for (plugin, lease) in route.chain.iter().zip(leases).rev() {
        match plugin.on_response(request_id, lease, req, resp, ctx).await {
            Ok((r, s, c)) => (req, resp, ctx) = (r, s, c),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(resp)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [::1]:8080
        return host.split(']').next().map(|h| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// Hand the response to hyper: hop-by-hop headers dropped, `Content-Length` made to match
/// the body (plugins may have changed it), and the request id attached.
fn into_http(resp: ResponseData, method: &http::Method, request_id: &str) -> http::Response<Bytes> {
    let ResponseData {
        status,
        mut headers,
        body,
    } = resp;
    strip_hop_by_hop(&mut headers);
    // A HEAD response keeps the length the integration declared for the body it did not send.
    if !(method == http::Method::HEAD && body.is_empty()) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    let mut out = http::Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("127.0.0.1:1"), "127.0.0.1");
    }
}
