//! A standard `wasi:http/incoming-handler` component as a route's integration: the request,
//! as the filters left it, is handed to the component's `handle`, and the response it sets
//! goes back through the filters. Both bodies stream: the component reads the client's upload
//! as it arrives, and the client receives the response body as the component writes it, which
//! is why the call runs in a task of its own that outlives the response head.
//!
//! The call runs under the plugin's limits (CPU budget by epoch, memory, fresh or pooled
//! instance) like any other; its task is aborted when the client stops reading (request timeout
//! before the head, the response body dropped before its end), and given `AFTER_BODY` to
//! return once its response body is complete.

use super::plugin::{Plugin, PluginError, Warm};
use crate::body::{Body, BoxError, Stream};
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::WasiHttpView;

/// How long a component may keep running after it finished its response body (work after
/// the response, as Spin allows); past it the call is stopped and the instance discarded.
const AFTER_BODY: Duration = Duration::from_secs(5);

/// Run the component's `handle` on `req`. The outer error is the plugin failing (a trap, a
/// timeout): a 5xx from the gateway; the inner one is the component's own error answer.
pub(super) async fn handle(
    plugin: &Arc<Plugin>,
    request_id: &str,
    mut req: RequestData,
    ctx: ContextData,
) -> Result<(RequestData, ContextData, Result<ResponseData, PluginError>), PluginError> {
    let incoming = incoming_request(&mut req).map_err(|detail| PluginError::Failed {
        plugin: plugin.name().to_string(),
        status: 400,
        message: format!("Bad request: {detail}"),
    })?;
    let scheme = if req.scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let (head_tx, head_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let (verdict_tx, verdict_rx) = oneshot::channel::<Result<(), String>>();
    let task = {
        let plugin = plugin.clone();
        let request_id = request_id.to_string();
        tokio::spawn(async move {
            let call = plugin.with_instance(
                &request_id,
                plugin.cpu_limit,
                None,
                false,
                async |warm: &mut Warm| {
                    let indices = plugin.proxy.as_ref().expect("a wasi:http integration");
                    let proxy = indices.load(&mut warm.store, &warm.instance)?;
                    let incoming = incoming.map(|b| {
                        b.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
                    });
                    let mut http = warm.store.data_mut().http();
                    let request = http.new_incoming_request(scheme, incoming)?;
                    let out = http.new_response_outparam(head_tx)?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut warm.store, request, out)
                        .await
                },
            );
            let ended = async {
                // Resolves once the response body is complete (never if it is dropped first:
                // then this task is aborted).
                if done_rx.await.is_ok() {
                    tokio::time::sleep(AFTER_BODY).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let result = tokio::select! {
                r = call => r.map(|_| ()),
                () = ended => Err(PluginError::Trap {
                    plugin: plugin.name().to_string(),
                    detail: format!("still running {AFTER_BODY:?} after its response ended"),
                }),
            };
            let _ = verdict_tx.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            result
        })
    };
    let mut abort = AbortOnDrop(Some(task.abort_handle()));
    let resp = match head_rx.await {
        Ok(Ok(resp)) => {
            let (parts, body) = resp.into_parts();
            let body = Guarded {
                inner: body.map_err(BoxError::from).boxed_unsync(),
                abort: abort.0.take(),
                done: Some(done_tx),
                verdict: Some(verdict_rx),
                request_id: request_id.to_string(),
            };
            Ok(ResponseData {
                status: parts.status,
                headers: parts.headers,
                body: Body::Stream(body.boxed_unsync()),
            })
        }
        Ok(Err(code)) => {
            tracing::warn!(
                request_id,
                plugin = plugin.name(),
                "answered with error {code:?}"
            );
            Err(PluginError::Failed {
                plugin: plugin.name().to_string(),
                status: 502,
                message: "Bad Gateway".into(),
            })
        }
        // The call ended without setting a response: it failed, or forgot to answer.
        Err(_) => match task.await {
            Ok(Err(e)) => return Err(e),
            Ok(Ok(())) => {
                return Err(PluginError::Trap {
                    plugin: plugin.name().to_string(),
                    detail: "returned without setting a response".into(),
                })
            }
            Err(e) => {
                return Err(PluginError::Trap {
                    plugin: plugin.name().to_string(),
                    detail: e.to_string(),
                })
            }
        },
    };
    Ok((req, ctx, resp))
}

/// The request a `wasi:http` handler sees: the client's method, the authority it asked for,
/// path and query as the filters left them, headers, and the body (moved, still streaming).
fn incoming_request(req: &mut RequestData) -> Result<http::Request<Stream>, String> {
    let path_and_query = match &req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.clone(),
    };
    let uri = http::Uri::builder()
        .scheme(req.scheme)
        .authority(req.host.as_deref().unwrap_or("localhost"))
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = http::Request::new(std::mem::take(&mut req.body).into_stream());
    *out.method_mut() = req.method.clone();
    *out.uri_mut() = uri;
    *out.headers_mut() = req.headers.clone();
    Ok(out)
}

/// Aborts the call's task when dropped, unless disarmed (taken).
struct AbortOnDrop(Option<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// The component's response body on its way to the client: dropped before its end (the client
/// went away, the stream went idle), it stops the call; at its end, it starts the call's
/// `AFTER_BODY` grace and waits for the call's verdict. wasmtime ends the body cleanly also
/// when the component trapped or dropped it unfinished; the verdict turns that into an error,
/// so the client sees a cut stream rather than a short body that looks complete.
struct Guarded {
    inner: Stream,
    abort: Option<AbortHandle>,
    done: Option<oneshot::Sender<()>>,
    verdict: Option<oneshot::Receiver<Result<(), String>>>,
    request_id: String,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if !matches!(polled, Poll::Ready(None)) {
            return polled;
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        let Some(verdict) = self.verdict.as_mut() else {
            return Poll::Ready(None);
        };
        let verdict = match Pin::new(verdict).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(v)) => v,
            Poll::Ready(Err(_)) => Err("the call was stopped".to_string()),
        };
        self.verdict = None;
        self.abort = None;
        match verdict {
            Ok(()) => Poll::Ready(None),
            Err(e) => {
                tracing::warn!(request_id = self.request_id, "after its response head: {e}");
                Poll::Ready(Some(Err(e.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.verdict.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(h) = self.abort.take() {
            h.abort();
        }
    }
}
