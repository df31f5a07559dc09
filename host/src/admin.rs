//! The admin listener, kept apart from client traffic: `/healthz` and Prometheus `/metrics`.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

/// Latency buckets in seconds, from 50 µs (a cache hit) to 30 s (the request timeout).
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// Install the process-wide Prometheus recorder. Call before any metric handle is made.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    // Histograms are drained into their buckets by upkeep; without it memory grows.
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

pub async fn serve(listener: TcpListener, metrics: PrometheusHandle) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let metrics = metrics.clone();
            async move {
                let resp = match req.uri().path() {
                    "/healthz" => text(
                        StatusCode::OK,
                        "application/json",
                        "{\"status\":\"ok\"}".into(),
                    ),
                    "/metrics" => text(
                        StatusCode::OK,
                        "text/plain; version=0.0.4",
                        metrics.render(),
                    ),
                    _ => text(
                        StatusCode::NOT_FOUND,
                        "application/json",
                        "{\"message\":\"Not Found\"}".into(),
                    ),
                };
                Ok::<_, Infallible>(resp)
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}
