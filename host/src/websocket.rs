//! WebSocket through the gateway on routes with `websocket = true`: HTTP/1.1 `Upgrade` (RFC
//! 6455) and HTTP/2's extended CONNECT (RFC 8441). The upgrade request goes through the route's
//! request filters like any request (auth, quota refuse it before anything is opened), then to
//! the upstream of the route's planned forward as an HTTP/1.1 upgrade; when the upstream
//! switches protocols, the client gets the 101 (HTTP/1.1) or the 200 (HTTP/2), and the two
//! sides are spliced byte for byte until either closes.

use crate::capabilities::http::{planned_request, Client};
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use crate::runtime::bindings::http::Error as HttpError;
use crate::runtime::describe::Forward;
use base64::Engine as _;
use http::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Whether a request asks to become a WebSocket: `GET` with `Connection: upgrade` and
/// `Upgrade: websocket` (token lists, any case).
pub fn is_upgrade(parts: &http::request::Parts) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    parts.method == http::Method::GET
        && parts.version == http::Version::HTTP_11
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
}

/// Metric handles, made once.
struct Metrics {
    upgraded: metrics::Counter,
    bytes_in: metrics::Counter,
    bytes_out: metrics::Counter,
}

fn metrics() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        upgraded: metrics::counter!("wicket_websocket_upgrades_total"),
        bytes_in: metrics::counter!("wicket_websocket_bytes_total", "direction" => "client_to_upstream"),
        bytes_out: metrics::counter!("wicket_websocket_bytes_total", "direction" => "upstream_to_client"),
    })
}

/// Send the admitted upgrade request to the forward's upstream. A 101 answer starts the
/// splice (in its own task, once the client's side of the upgrade completes) and is returned
/// with its upgrade headers; any other answer is returned as an ordinary response.
pub async fn forward(
    client: &Client,
    req: &mut RequestData,
    ctx: &ContextData,
    plan: &Forward,
    client_side: OnUpgrade,
    h2_client: bool,
    request_id: &str,
) -> Result<ResponseData, HttpError> {
    let mut out = planned_request(req, ctx, plan, true)?;
    out.headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    out.headers
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if h2_client {
        // An HTTP/2 client sends no key (RFC 8441 §5): the upstream's HTTP/1.1 handshake
        // needs one. Any 16 random bytes will do; the answer's accept value is for us alone.
        let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
        out.headers.insert(
            "sec-websocket-key",
            HeaderValue::from_str(&key).expect("base64 is a header value"),
        );
    }
    let (mut resp, upstream_side) = client.send_upgrade(out, plan.timeout).await?;
    if resp.status != http::StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp);
    }
    if h2_client {
        resp.status = http::StatusCode::OK;
        resp.headers.remove("sec-websocket-accept");
    }
    let Some(upstream_side) = upstream_side else {
        return Err(HttpError::Protocol(
            "the upstream switched protocols on a connection that cannot upgrade".into(),
        ));
    };
    let request_id = request_id.to_string();
    tokio::spawn(async move {
        let (client_io, upstream_io) = match tokio::try_join!(client_side, upstream_side) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(request_id, "websocket upgrade did not complete: {e}");
                return;
            }
        };
        let m = metrics();
        m.upgraded.increment(1);
        let mut client_io = TokioIo::new(client_io);
        let mut upstream_io = TokioIo::new(upstream_io);
        match tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await {
            Ok((up, down)) => {
                m.bytes_in.increment(up);
                m.bytes_out.increment(down);
                tracing::debug!(request_id, up, down, "websocket closed");
            }
            Err(e) => tracing::debug!(request_id, "websocket ended: {e}"),
        }
    });
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri("/ws");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn recognizes_upgrade_requests() {
        let up = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ];
        assert!(is_upgrade(&parts("GET", &up)));
        assert!(!is_upgrade(&parts("POST", &up)));
        assert!(!is_upgrade(&parts("GET", &[("upgrade", "websocket")])));
        assert!(!is_upgrade(&parts(
            "GET",
            &[("connection", "upgrade"), ("upgrade", "h2c")]
        )));
    }
}
