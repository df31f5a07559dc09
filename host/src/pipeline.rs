//! One request's way through the gateway, top to bottom:
//!
//! ```text
//! request id -> canonical path, host, client (inbound.rs) -> limits -> route match
//!   -> body (bounded)
//!   -> filter 1 on-request -> ... -> filter n on-request     (any may answer early)
//!   -> integration handle
//!   -> filter n on-response -> ... -> filter 1 on-response   (only filters that ran)
//!   -> access log line, metrics
//! ```

use crate::capabilities::http::strip_hop_by_hop;
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use crate::error::{rescue, GatewayError};
use crate::gateway::{Gateway, Route, RouteMetrics};
use crate::inbound::{self, Inbound};
use crate::router::Match;
use crate::runtime::Verdict;
use bytes::Bytes;
use bytes::BytesMut;
use http::{header, HeaderValue, Request};
use http_body_util::BodyExt;
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
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let mut req = req;
    // The canonical path, the one host and the client, or a refusal (400, 405, 431).
    let inbound = inbound::prepare(&mut req, &gw.config.server, peer);
    let path = match &inbound {
        Ok(i) => i.path.clone(),
        Err(_) => req.uri().path().to_string(),
    };

    let found = inbound.map(|i| (gw.router.find(&method, i.host(), &i.path), i));
    let (route, outcome) = match found {
        Err(e) => (None, Err(e)),
        Ok((Match::Found { route, params }, inbound)) => {
            let timeout = gw.config.server.request_timeout;
            let run = run_route(gw, route, params, req, peer, inbound, &request_id);
            match tokio::time::timeout(timeout, run).await {
                Ok(outcome) => (Some(route), outcome),
                Err(_) => (Some(route), Err(GatewayError::Timeout(timeout))),
            }
        }
        Ok((Match::MethodNotAllowed { allow }, _)) => {
            (None, Err(GatewayError::MethodNotAllowed { allow }))
        }
        Ok((Match::NotFound, _)) => (None, Err(GatewayError::NotFound)),
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
    inbound: Inbound,
    request_id: &str,
) -> Result<ResponseData, GatewayError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (mut parts, body) = req.into_parts();
    let limit = gw.config.server.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = read_body(body, limit, declared).await?;

    strip_hop_by_hop(&mut parts.headers);
    let mut ctx = ContextData::default();
    ctx.set("request_id", request_id);
    ctx.set("route", route.name.as_ref());
    ctx.set("client_ip", inbound.client_ip.to_string());
    for (k, v) in params {
        ctx.set(format!("param.{k}"), v);
    }
    let mut req = RequestData {
        method: parts.method,
        query: parts.uri.query().map(str::to_string),
        path: inbound.path,
        headers: parts.headers,
        body,
        client_addr: peer.addr,
        scheme: peer.scheme,
        host: inbound.authority.map(|a| a.to_string()),
    };

    // The way in: each filter may change the request and context, or answer. A filter's
    // own refusal (401, 429) is an answer like any other: the filters before it still see
    // it on the way out (CORS headers on a 401), the refusing filter does not.
    let mut leases = Vec::with_capacity(route.chain.len());
    let mut early = None;
    for plugin in &route.chain {
        let out = plugin.on_request(request_id, req, ctx).await?;
        (req, ctx) = (out.req, out.ctx);
        match out.verdict {
            Verdict::Continue => leases.push(out.lease),
            Verdict::Respond(resp) => {
                leases.push(out.lease);
                early = Some(resp);
                break;
            }
            Verdict::Refuse(e) => {
                early = Some(refusal(e, request_id, route));
                break;
            }
        }
    }

    let mut resp = match early {
        Some(resp) => resp,
        None => {
            let started = Instant::now();
            let (r, c, answer) = route.integration.handle(request_id, req, ctx).await?;
            route
                .metrics
                .integration_seconds
                .record(started.elapsed().as_secs_f64());
            (req, ctx) = (r, c);
            answer.unwrap_or_else(|e| refusal(e, request_id, route))
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

/// How much of an oversized body is read and thrown away before answering 413, and for how
/// long: a client still sending when we answer sees a broken pipe instead of our 413 unless
/// we keep reading a little (nginx's lingering close does the same).
const DRAIN_BYTES: u64 = 8 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// The whole body, or 413 once it is known to pass `limit` (declared or counted).
async fn read_body<B>(
    mut body: B,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, GatewayError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let too_large = GatewayError::PayloadTooLarge { limit };
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body).await;
        return Err(too_large);
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| GatewayError::BadRequest(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(body).await;
                return Err(too_large);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

async fn drain<B>(mut body: B)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map(|d| d.len() as u64).unwrap_or(0);
            if seen > DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}

/// The response for a plugin's deliberate error, logged like any refused request.
fn refusal(e: crate::runtime::PluginError, request_id: &str, route: &Route) -> ResponseData {
    let err = GatewayError::Plugin(e);
    tracing::debug!(request_id, route = &*route.name, "{err}");
    rescue(&err, request_id)
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
