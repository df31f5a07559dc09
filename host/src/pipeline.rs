//! One request's way through the gateway, top to bottom:
//!
//! ```text
//! request id -> canonical path, host, client (inbound.rs) -> limits -> route match
//!   -> filter 1 on-request -> ... -> filter n on-request     (any may answer early)
//!   -> integration handle (or the forward it planned, run here)
//!   -> filter n on-response -> ... -> filter 1 on-response   (only filters that ran)
//!   -> access log line, metrics
//! ```
//!
//! Bodies stream: the request body is read only by the integration (or a filter that needs
//! it whole, after the filters before it admitted the request), and the response body goes
//! to the client as the upstream sends it, unless a filter needs it whole.

use crate::body::{Body, BodyError, BoxError, CountingLimit, IdleTimeout, Stream};
use crate::capabilities::http::strip_hop_by_hop;
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use crate::error::{rescue, GatewayError};
use crate::gateway::{Gateway, Route, RouteMetrics};
use crate::inbound::{self, Inbound};
use crate::router::Match;
use crate::runtime::bindings::http::Error as HttpError;
use crate::runtime::BodyUse;
use crate::runtime::{HeaderEdits, Lease, PluginError, Verdict};
use crate::telemetry::access_log::{Record, Seen};
use crate::telemetry::{Observation, Phase};
use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub scheme: &'static str,
}

/// Serve one request. Never fails: every error becomes a JSON response via `rescue`.
pub async fn handle<B>(gw: &Gateway, req: Request<B>, peer: Peer) -> http::Response<Stream>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let uuid = uuid::Uuid::new_v4();
    let request_id = uuid.to_string();
    let mut req = req;
    // The canonical path, the one host and the client, or a refusal (400, 405, 431).
    let inbound = inbound::prepare(&mut req, &gw.config.server, peer);
    // After `prepare`: an HTTP/2 WebSocket's CONNECT is routed as the GET it stands for.
    let method = req.method().clone();
    let h2_websocket = req.extensions().get::<inbound::H2WebSocket>().is_some();
    let log = gw.access_log.as_ref();
    let mut obs = Observation::new(log, gw.tracer.as_ref());
    if let Some(tracer) = &gw.tracer {
        let trusted = &gw.config.server.trusted_proxies;
        let trace = tracer.begin(req.headers_mut(), peer.addr.ip(), trusted, uuid.as_u128());
        obs.trace = Some(trace);
    }
    // For the access log line and the request's span only.
    let path = (log.is_some() || obs.sampled().is_some()).then(|| match &inbound {
        Ok(i) => i.path.clone(),
        Err(_) => req.uri().path().to_string(),
    });
    let mut seen = log.map(|l| Seen::new(&l.config, &req));
    if let (Some(seen), Ok(i)) = (&mut seen, &inbound) {
        seen.client_ip = Some(i.client.text.clone());
    }

    // The developer portal's pages and `/openapi.json` (`[portal]`), before any route.
    let portal = match (&gw.portal, &inbound) {
        (Some(portal), Ok(i)) => portal.answer(&method, &i.path),
        _ => None,
    };
    let found = inbound.map(|i| (gw.router.find(&method, i.host(), &i.path), i));
    let (route, outcome) = match (portal, found) {
        (Some(page), _) => (None, Ok(page)),
        (None, Err(e)) => (None, Err(e)),
        (None, Ok((Match::Found { route, params }, inbound))) => {
            let route = route.choose(req.headers());
            let timeout = gw.config.server.request_timeout;
            // Boxed, here and for each plugin call: these futures hold a wasmtime call and a
            // request each, kilobytes that every enclosing future would otherwise carry and
            // copy whenever it is moved (the request future was 6.7 KB).
            let run = Box::pin(run_route(
                gw,
                route,
                params,
                req,
                peer,
                inbound,
                &request_id,
                &mut obs,
            ));
            match tokio::time::timeout(timeout, run).await {
                Ok(outcome) => (Some(route), outcome),
                Err(_) => (Some(route), Err(GatewayError::Timeout(timeout))),
            }
        }
        (None, Ok((Match::MethodNotAllowed { allow }, _))) => {
            (None, Err(GatewayError::MethodNotAllowed { allow }))
        }
        (None, Ok((Match::NotFound, _))) => (None, Err(GatewayError::NotFound)),
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
    if let (Some(log), Some(seen)) = (log, &seen) {
        let peer_ip;
        let client_ip = match &seen.client_ip {
            Some(ip) => ip.to_str().ok(),
            None => {
                peer_ip = peer.addr.ip().to_string();
                Some(peer_ip.as_str())
            }
        };
        log.write(&Record {
            arrived: seen.arrived,
            request_id: &request_id,
            method: method.as_str(),
            path: path.as_deref().unwrap_or_default(),
            query: seen.query.as_deref(),
            route: route_name,
            stage: route.and_then(|r| r.stage.as_deref()),
            status: response.status.as_u16(),
            bytes_in: seen.bytes_in,
            bytes_out: match &response.body {
                Body::Full(b) => Some(b.len() as u64),
                Body::Stream(s) => http_body::Body::size_hint(s).exact(),
            },
            latency: elapsed,
            integration: obs.integration,
            plugin_times: &obs.plugin_times,
            user_agent: seen.user_agent.as_ref().and_then(|v| v.to_str().ok()),
            client_ip,
            protocol: seen.protocol,
            host: seen.host.as_ref().and_then(|v| v.to_str().ok()),
            trace_id: obs.trace.as_ref().map(|t| t.ctx.trace_id),
            context: &obs.context,
        });
    }
    if obs.sampled().is_some() {
        finish_span(
            &mut obs,
            &method,
            path.as_deref(),
            route,
            &request_id,
            response.status,
        );
    }
    into_http(
        response,
        &method,
        h2_websocket,
        &request_id,
        gw.config.server.stream_idle_timeout,
    )
}

/// The request's way through its route, once matched.
#[allow(clippy::too_many_arguments)] // each is one part of the request; a struct would only rename them
async fn run_route<'g, B>(
    gw: &'g Gateway,
    route: &'g Route,
    params: Vec<(String, String)>,
    req: Request<B>,
    peer: Peer,
    inbound: Inbound,
    request_id: &str,
    obs: &mut Observation<'g>,
) -> Result<ResponseData, GatewayError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let server = &gw.config.server;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // What is known to be too large is refused before anything runs, without reading it.
    let bound = match (route.buffers_request, server.max_request_bytes) {
        (true, Some(max)) => Some(max.min(server.max_body_bytes as u64)),
        (true, None) => Some(server.max_body_bytes as u64),
        (false, max) => max,
    };
    let upload_over = Arc::new(AtomicBool::new(false));
    let body = match bound {
        Some(limit) if declared.is_some_and(|n| n > limit) => {
            linger(Body::stream(body)).await;
            return Err(GatewayError::PayloadTooLarge {
                limit: limit as usize,
            });
        }
        Some(limit) => {
            let stream = Body::stream(body).into_stream();
            Body::Stream(CountingLimit::new(stream, limit, upload_over.clone()).boxed_unsync())
        }
        None => Body::stream(body),
    };

    // An admitted WebSocket upgrade needs the client's side of the connection later.
    let h2_websocket = parts.extensions.get::<inbound::H2WebSocket>().is_some();
    let upgrade = if route.websocket && (h2_websocket || crate::websocket::is_upgrade(&parts)) {
        parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
    } else {
        None
    };
    if h2_websocket && upgrade.is_none() {
        // HTTP/1.1 falls back to a plain GET here; an HTTP/2 CONNECT has no such fallback.
        return Err(GatewayError::BadRequest(
            "this route does not accept WebSocket connections".into(),
        ));
    }
    strip_hop_by_hop(&mut parts.headers);
    let mut ctx = ContextData::default();
    ctx.set("request_id", request_id);
    ctx.set("route", route.name.as_ref());
    ctx.set(
        "client_ip",
        inbound.client.text.to_str().unwrap_or_default(),
    );
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
        if plugin.plan.request_body == BodyUse::Whole {
            // The filters before this one have admitted the request: read it now.
            buffer_request(&mut req.body, server.max_body_bytes, &upload_over).await?;
        }
        if let Some(edits) = &plugin.plan.request_headers {
            if let Err(e) = apply_edits(&mut req.headers, edits, &ctx, plugin.name()) {
                early = Some(refusal(e, request_id, route));
                break;
            }
        }
        if !plugin.plan.on_request {
            leases.push(Lease::default());
            continue;
        }
        let (out, call) = obs
            .observe(Box::pin(plugin.on_request(request_id, req, ctx)))
            .await;
        let verdict = on_request_verdict(out.as_ref().map(|o| &o.verdict));
        obs.record(call, plugin.name(), Phase::OnRequest, verdict);
        let out = out?;
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

    // Usage per API key and plan (`GET /admin/usage`): the auth filter has run by now.
    crate::usage::record(&gw.config.usage, &ctx);

    let mut resp = match early {
        Some(resp) => resp,
        None => {
            let started = Instant::now();
            let integration = &route.integration;
            let answer = match &integration.plan.forward {
                // The integration's whole behaviour is this forward: run it here.
                Some(forward) if upgrade.is_some() => {
                    let client_side = upgrade.expect("checked above");
                    let http = &gw.services.http;
                    crate::websocket::forward(
                        http,
                        &mut req,
                        &ctx,
                        forward,
                        client_side,
                        h2_websocket,
                        request_id,
                    )
                    .await
                    .map_err(|e| forward_error(e, integration.name(), request_id))
                }
                Some(forward) => {
                    if forward.needs_body() {
                        // Signed with the body's hash: read it (bounded, 413 past it) first.
                        buffer_request(&mut req.body, server.max_body_bytes, &upload_over).await?;
                    }
                    let http = &gw.services.http;
                    let keep = route.reads_request_after;
                    let aws = &gw.services.aws;
                    let span = obs.outbound(&mut req.headers);
                    let traced_method = span.as_ref().map(|_| req.method.clone());
                    let sent = http.forward(&mut req, &ctx, forward, keep, aws).await;
                    if let (Some(span), Some(m)) = (span, traced_method) {
                        let status = sent.as_ref().ok().map(|r| r.status.as_u16());
                        obs.forwarded(span, integration.name(), &forward.url, &m, status);
                    }
                    if upload_over.load(Ordering::Relaxed) {
                        return Err(GatewayError::PayloadTooLarge {
                            limit: bound.unwrap_or_default() as usize,
                        });
                    }
                    sent.map_err(|e| forward_error(e, integration.name(), request_id))
                }
                None => {
                    let (out, call) = obs
                        .observe(Box::pin(integration.handle(request_id, req, ctx)))
                        .await;
                    let verdict = match &out {
                        Ok((_, _, Ok(_))) => "respond",
                        Ok((_, _, Err(_))) => "refuse",
                        Err(_) => "error",
                    };
                    obs.record(call, integration.name(), Phase::Handle, verdict);
                    let (r, c, answer) = out?;
                    (req, ctx) = (r, c);
                    answer
                }
            };
            let took = started.elapsed();
            route.metrics.integration_seconds.record(took.as_secs_f64());
            obs.integration = Some(took);
            answer.unwrap_or_else(|e| refusal(e, request_id, route))
        }
    };

    // The way out, through the filters that ran, in reverse.
    for (plugin, lease) in route.chain.iter().zip(leases).rev() {
        if plugin.plan.response_body == BodyUse::Whole {
            resp.body
                .buffer(server.max_body_bytes)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge { limit } => GatewayError::ResponseTooLarge { limit },
                    BodyError::Read(e) => GatewayError::BadResponse(e.to_string()),
                })?;
        }
        if plugin.plan.on_response {
            let (out, call) = obs
                .observe(Box::pin(
                    plugin.on_response(request_id, lease, req, resp, ctx),
                ))
                .await;
            let verdict = if out.is_ok() { "continue" } else { "error" };
            obs.record(call, plugin.name(), Phase::OnResponse, verdict);
            (req, resp, ctx) = out?;
        }
        if let Some(edits) = &plugin.plan.response_headers {
            apply_edits(&mut resp.headers, edits, &ctx, plugin.name())?;
        }
    }
    obs.capture_context(&ctx);
    Ok(resp)
}

/// What a filter's `on-request` decided, as its span says.
fn on_request_verdict(out: Result<&Verdict, &PluginError>) -> &'static str {
    match out {
        Ok(v) => match v {
            Verdict::Continue => "continue",
            Verdict::Respond(_) => "respond",
            Verdict::Refuse(_) => "refuse",
        },
        Err(_) => "error",
    }
}

/// End the request's span, with what OpenTelemetry's HTTP conventions name.
fn finish_span(
    obs: &mut Observation<'_>,
    method: &http::Method,
    path: Option<&str>,
    route: Option<&Route>,
    request_id: &str,
    status: http::StatusCode,
) {
    use opentelemetry::KeyValue;
    let mut attrs = vec![
        KeyValue::new("http.request.method", method.to_string()),
        KeyValue::new("url.path", path.unwrap_or_default().to_string()),
        KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
        KeyValue::new("wicket.request_id", request_id.to_string()),
    ];
    let name = match route {
        Some(r) => {
            attrs.push(KeyValue::new("wicket.route", r.name.to_string()));
            if let Some(stage) = &r.stage {
                attrs.push(KeyValue::new("wicket.stage", stage.to_string()));
            }
            format!("{method} {}", r.name)
        }
        None => method.to_string(),
    };
    obs.finish(name, attrs, status.as_u16());
}

/// How much of a refused upload is read and thrown away before answering 413, and for how
/// long: a client still sending when we answer sees a broken pipe instead of our 413 unless
/// we keep reading a little (nginx's lingering close does the same).
const LINGER_BYTES: u64 = 8 << 20;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

async fn linger(body: Body) {
    let mut stream = body.into_stream();
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = stream.frame().await {
            seen += frame.data_ref().map(|d| d.len() as u64).unwrap_or(0);
            if seen > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Read the request body whole for a plugin that needs it, within `limit` (and the stream's
/// own bound, whose trip `over` records).
async fn buffer_request(
    body: &mut Body,
    limit: usize,
    over: &AtomicBool,
) -> Result<(), GatewayError> {
    match body.buffer(limit).await {
        Ok(_) => Ok(()),
        Err(BodyError::TooLarge { limit }) => Err(GatewayError::PayloadTooLarge { limit }),
        Err(BodyError::Read(_)) if over.load(Ordering::Relaxed) => {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(BodyError::Read(e)) => Err(GatewayError::BadRequest(format!("reading the body: {e}"))),
    }
}

/// A plugin's planned header edits, applied by the host: removals, then sets. A value that
/// renders to something no header may hold fails the request as the plugin itself would.
fn apply_edits(
    headers: &mut http::HeaderMap,
    edits: &HeaderEdits,
    ctx: &ContextData,
    plugin: &str,
) -> Result<(), PluginError> {
    for name in &edits.remove {
        headers.remove(name);
    }
    for (name, template) in &edits.set {
        let value = crate::template::render(template, ctx);
        match HeaderValue::from_str(&value) {
            Ok(v) => {
                headers.insert(name.clone(), v);
            }
            Err(_) => {
                tracing::warn!(
                    plugin,
                    "cannot set `{name}` to `{value}`: not a header value"
                );
                return Err(PluginError::Failed {
                    plugin: plugin.to_string(),
                    status: 500,
                    message: "Internal server error".into(),
                });
            }
        }
    }
    Ok(())
}

/// How a failed planned forward reads to the client: as the `http` capability's errors read
/// when a plugin sends (504 for a timeout, 502 otherwise), the detail in the log.
fn forward_error(e: HttpError, plugin: &str, request_id: &str) -> PluginError {
    tracing::warn!(request_id, plugin, "outbound request failed: {e:?}");
    let (status, message) = match e {
        HttpError::Timeout => (504, "Endpoint request timed out"),
        _ => (502, "Bad Gateway"),
    };
    PluginError::Failed {
        plugin: plugin.to_string(),
        status,
        message: message.into(),
    }
}

/// The response for a plugin's deliberate error, logged like any refused request.
fn refusal(e: PluginError, request_id: &str, route: &Route) -> ResponseData {
    let err = GatewayError::Plugin(e);
    tracing::debug!(request_id, route = &*route.name, "{err}");
    rescue(&err, request_id)
}

/// Hand the response to hyper: hop-by-hop headers dropped, `Content-Length` made to match a
/// body in memory (plugins may have changed it) or left to hyper for a stream, the request id
/// attached, and a stream cut when it goes quiet for `idle`.
fn into_http(
    resp: ResponseData,
    method: &http::Method,
    h2_websocket: bool,
    request_id: &str,
    idle: std::time::Duration,
) -> http::Response<Stream> {
    let ResponseData {
        status,
        mut headers,
        body,
    } = resp;
    strip_hop_by_hop(&mut headers);
    let opened = if h2_websocket {
        // RFC 8441: a 2xx opens the stream, and has no body, not even a length.
        status.is_success()
    } else if status == http::StatusCode::SWITCHING_PROTOCOLS {
        // The WebSocket handshake's answer: hyper hands the connection over after it.
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        true
    } else {
        false
    };
    if opened {
        let mut out = http::Response::new(Body::empty().into_stream());
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        return out;
    }
    let body = match body {
        // A HEAD response keeps the length the integration declared for the body it did
        // not send.
        Body::Full(b) if method == http::Method::HEAD && b.is_empty() => Body::Full(b),
        Body::Full(b) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
            Body::Full(b)
        }
        Body::Stream(s) if method == http::Method::HEAD => Body::Stream(s),
        Body::Stream(s) => {
            // hyper frames it: the exact length when the upstream declared one, else chunked.
            headers.remove(header::CONTENT_LENGTH);
            Body::Stream(IdleTimeout::new(s, idle).boxed_unsync())
        }
    };
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    let mut out = http::Response::new(body.into_stream());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}
