//! The admin listener, kept apart from client traffic: `/healthz`, Prometheus `/metrics`, the
//! deploy actions `POST /admin/reload`, `POST /admin/rollback`, `GET /admin/config`, and what
//! a person looks at: the dashboard (`GET /`, polling `GET /admin/stats`) and the usage per
//! API key (`GET /admin/usage`).
//! Whoever reaches this listener may change the running config: bind it to loopback or a
//! management network only.

use crate::deploy::{Deployer, Outcome, Refused};
use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::convert::Infallible;
use std::sync::Weak;
use std::time::Duration;
use tokio::net::TcpListener;

/// Latency buckets in seconds, from 50 µs (a cache hit) to 30 s (the request timeout).
pub const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// A metric family's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every family the host records itself, with its help text. Names carry their unit
/// (`_seconds`, `_bytes`) and counters end in `_total`. Plugins name their own families
/// (`wicket_plugin_<name>`, through the `metrics` capability) at run time: `render` gives them
/// a help line.
const HOST_FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "wicket_requests_total",
        Kind::Counter,
        "Requests answered, by route (\"(none)\" when no route matched) and status class (2xx, 3xx, 4xx, 5xx).",
    ),
    (
        "wicket_requests_throttled_total",
        Kind::Counter,
        "Requests answered 429 Too Many Requests (a rate limit or quota refused them), by route; also counted in wicket_requests_total's 4xx.",
    ),
    (
        "wicket_request_seconds",
        Kind::Histogram,
        "Time to answer a request, from routing to the response head, by route.",
    ),
    (
        "wicket_integration_seconds",
        Kind::Histogram,
        "Time in the route's integration (the upstream call or the answering plugin), by route.",
    ),
    (
        "wicket_config_reloads_total",
        Kind::Counter,
        "Config reloads and rollbacks, by result (ok: deployed; error: refused, the running config kept).",
    ),
    (
        "wicket_config_hash",
        Kind::Gauge,
        "The first 48 bits of the running config's SHA-256 (config file and the files it reads), as a number.",
    ),
    (
        "wicket_config_loaded_timestamp_seconds",
        Kind::Gauge,
        "When the running config was deployed, in seconds since the Unix epoch.",
    ),
    (
        "wicket_plugin_seconds",
        Kind::Histogram,
        "Time in one plugin call, by plugin and phase (on_request, on_response, handle).",
    ),
    (
        "wicket_access_log_dropped_total",
        Kind::Counter,
        "Access log lines dropped because the writer was buffer_lines behind (disk or stdout reader too slow).",
    ),
    (
        "wicket_trace_spans_exported_total",
        Kind::Counter,
        "Trace spans the OTLP collector accepted.",
    ),
    (
        "wicket_trace_spans_dropped_total",
        Kind::Counter,
        "Trace spans dropped because the export queue ([telemetry] queue_spans) was full.",
    ),
    (
        "wicket_trace_export_errors_total",
        Kind::Counter,
        "OTLP export requests that failed after their retries (their spans are lost).",
    ),
];

/// Whether the host records family `name` itself (a plugin may not record into it).
pub fn is_host_family(name: &str) -> bool {
    HOST_FAMILIES.iter().any(|(n, _, _)| *n == name)
}

/// Help for a family no one described: one a plugin records through the `metrics` capability.
const PLUGIN_FAMILY_HELP: &str =
    "Recorded by a plugin through the metrics capability (the plugin label names it).";

/// Describe every host family to the recorder, so `/metrics` has a `# HELP` line for each.
fn describe_metrics() {
    for &(name, kind, help) in HOST_FAMILIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// Install the process-wide Prometheus recorder. Call before any metric handle is made.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()?;
    describe_metrics();
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

pub async fn serve(listener: TcpListener, metrics: PrometheusHandle, deployer: Weak<Deployer>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let deployer = deployer.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let metrics = metrics.clone();
            let deployer = deployer.upgrade();
            async move {
                let resp = match (req.method(), req.uri().path()) {
                    (&Method::GET, path @ ("/" | "/dashboard.js" | "/dashboard.css")) => {
                        crate::dashboard::asset(path)
                    }
                    (&Method::GET, "/admin/stats") => match deployer {
                        Some(d) => json(StatusCode::OK, &d.stats().json()),
                        None => gone(),
                    },
                    (&Method::GET, "/admin/usage") => match deployer {
                        Some(d) => usage(&d, req.uri().query()).await,
                        None => gone(),
                    },
                    (_, "/healthz") => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
                    (_, "/metrics") => text(
                        StatusCode::OK,
                        "text/plain; version=0.0.4; charset=utf-8",
                        render(&metrics),
                    ),
                    (&Method::POST, "/admin/reload") => match deployer {
                        Some(d) => deployed(d.reload().await),
                        None => gone(),
                    },
                    (&Method::POST, "/admin/rollback") => match deployer {
                        Some(d) => deployed(d.rollback().await),
                        None => gone(),
                    },
                    (&Method::GET, "/admin/config") => match deployer {
                        Some(d) => {
                            let history = d.history().await;
                            json(
                                StatusCode::OK,
                                &serde_json::json!({
                                    "hash": history.last(),
                                    "history": history,
                                }),
                            )
                        }
                        None => gone(),
                    },
                    (
                        _,
                        "/admin/reload" | "/admin/rollback" | "/admin/config" | "/admin/stats"
                        | "/admin/usage",
                    ) => json(
                        StatusCode::METHOD_NOT_ALLOWED,
                        &serde_json::json!({"message": "Method Not Allowed"}),
                    ),
                    _ => json(
                        StatusCode::NOT_FOUND,
                        &serde_json::json!({"message": "Not Found"}),
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

/// The exposition text (Prometheus text format 0.0.4): the recorder's, with a `# HELP` line
/// added before the `# TYPE` line of every family that has none (the plugins' own families).
pub fn render(metrics: &PrometheusHandle) -> String {
    with_help_lines(&metrics.render())
}

fn with_help_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 512);
    let mut described: Option<&str> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described = rest.split(' ').next();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if described != Some(name) {
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                out.push_str(PLUGIN_FAMILY_HELP);
                out.push('\n');
            }
            described = None;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The answer to a reload or rollback: 200 with what was deployed, or 400 with every problem.
fn deployed(result: Result<Outcome, Refused>) -> Response<Full<Bytes>> {
    match result {
        Ok(outcome) => json(
            StatusCode::OK,
            &serde_json::json!({"status": "deployed", "deployed": outcome}),
        ),
        Err(refused) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "message": "config refused; the running config keeps serving",
                "problems": refused.problems,
            }),
        ),
    }
}

/// `GET /admin/usage?from=YYYY-MM-DD&to=YYYY-MM-DD[&plan=..][&key=..]`: this gateway's
/// counts are written first, so its own requests are in the answer.
async fn usage(deployer: &Deployer, query: Option<&str>) -> Response<Full<Bytes>> {
    let (state, config) = deployer.usage();
    let query = match crate::usage::Query::parse(query, config.retention_days) {
        Ok(q) => q,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"message": e.to_string()}),
            )
        }
    };
    if !config.enabled {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"message": "usage is not counted ([usage] enabled = false)"}),
        );
    }
    let answer = async {
        crate::usage::flush(&state, &config).await?;
        crate::usage::answer(&state, &query).await
    };
    match answer.await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => {
            tracing::warn!("GET /admin/usage: {e}");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"message": format!("usage counts unavailable: {e}")}),
            )
        }
    }
}

/// The process is shutting down.
fn gone() -> Response<Full<Bytes>> {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({"message": "shutting down"}),
    )
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    text(status, "application/json", body.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_family_names_carry_their_unit() {
        for &(name, kind, help) in HOST_FAMILIES {
            assert!(name.starts_with("wicket_"), "{name}");
            match kind {
                Kind::Counter => assert!(name.ends_with("_total"), "{name}"),
                Kind::Gauge => assert!(!name.ends_with("_total"), "{name}"),
                Kind::Histogram => assert!(
                    name.ends_with("_seconds") || name.ends_with("_bytes"),
                    "{name}"
                ),
            }
            assert!(!help.is_empty() && !help.contains('\n'), "{name}");
        }
    }

    #[test]
    fn every_family_gets_a_help_line_once() {
        let text = "# HELP a_total Described.\n# TYPE a_total counter\na_total 1\n\n\
                    # TYPE wicket_plugin_x_total counter\nwicket_plugin_x_total{plugin=\"p\"} 2\n\n\
                    # TYPE wicket_plugin_y summary\nwicket_plugin_y_sum 1\nwicket_plugin_y_count 1\n";
        let out = with_help_lines(text);
        assert_eq!(
            out,
            format!(
                "# HELP a_total Described.\n# TYPE a_total counter\na_total 1\n\n\
                 # HELP wicket_plugin_x_total {PLUGIN_FAMILY_HELP}\n\
                 # TYPE wicket_plugin_x_total counter\nwicket_plugin_x_total{{plugin=\"p\"}} 2\n\n\
                 # HELP wicket_plugin_y {PLUGIN_FAMILY_HELP}\n\
                 # TYPE wicket_plugin_y summary\nwicket_plugin_y_sum 1\nwicket_plugin_y_count 1\n"
            )
        );
    }
}
