//! The host side of `wasi:http/outgoing-handler` for any component that imports it (a
//! `wasi:http` integration, a componentize-js plugin): a request goes out through the
//! gateway's one outbound client, and only to an origin in the plugin's `allowed_hosts`.
//! Everything else is refused with `HTTP-request-denied`, before any connection is made.

use super::http::{Client, OutgoingRequest};
use crate::body::Body;
use crate::config::Origin;
use crate::runtime::bindings::http::Error as HttpError;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// How long an outgoing request may wait for its response head when the component sets no
/// `first-byte-timeout` of its own.
const DEFAULT_FIRST_BYTE: Duration = Duration::from_secs(30);

/// The per-store hooks: which origins this plugin may call, and the client that calls them.
pub struct Outbound {
    allowed: Arc<[Origin]>,
    client: Client,
    plugin: Arc<str>,
}

impl Outbound {
    pub fn new(plugin: Arc<str>, allowed: Arc<[Origin]>, client: Client) -> Outbound {
        Outbound {
            allowed,
            client,
            plugin,
        }
    }
}

type Pending = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Pending,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Pending), Error>> + Send> {
        drop(fut);
        let uri = request.uri().clone();
        if !self.allowed.iter().any(|o| o.admits(&uri)) {
            tracing::warn!(
                plugin = &*self.plugin,
                "outgoing request to {uri} denied: not in allowed_hosts"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let client = self.client.clone();
        let timeout = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(DEFAULT_FIRST_BYTE);
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let mut headers = parts.headers;
            // The client library sets Host from the URI and frames the body itself.
            headers.remove(http::header::HOST);
            let out = OutgoingRequest {
                method: parts.method,
                uri: parts.uri,
                headers,
                body: Body::stream(body),
                sign: None,
            };
            let resp = client.send(out, timeout).await.map_err(|e| match e {
                HttpError::Timeout => Error::ConnectionReadTimeout,
                HttpError::Connect(_) => Error::ConnectionRefused,
                HttpError::Invalid(_) => Error::HttpRequestUriInvalid,
                HttpError::Protocol(detail) => Error::InternalError(Some(detail)),
            })?;
            let body = resp
                .body
                .into_stream()
                .map_err(|e| Error::InternalError(Some(e.to_string())))
                .boxed_unsync();
            let mut response = http::Response::new(body);
            *response.status_mut() = resp.status;
            *response.headers_mut() = resp.headers;
            let done: Pending = Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}
