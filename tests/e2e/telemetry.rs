//! What the gateway tells about each request: the access log (`[server.access_log]`: JSON or
//! text, chosen fields and context keys written by a real auth plugin, stdout or a file
//! reopened on `SIGUSR1`) and OpenTelemetry traces (`[telemetry]`), exported to a real OTLP
//! receiver started here that decodes the protobuf the gateway POSTs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wicket_e2e::{check, client, rust_function, serve_on_thread, sha256_hex, Gateway, Upstream};

const KEY: &str = "telemetry-key-1";

/// An api-key filter (which sets `principal`, `usage_plan` and `auth.method`) in front of an
/// `http` forward to `upstream`, with `extra` added to `[server]`.
fn config(upstream: &Upstream, server: &str, rest: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server}

[plugins.keys]
builtin = "api-key"
config.keys = [{{ key_sha256 = "{key}", principal = "alice", plan = "gold" }}]

[plugins.backend]
builtin = "http"
config = {{ url = "{url}" }}

[[routes]]
name = "pets"
path = "/pets/{{id}}"
plugins = ["keys"]
integration = "backend"
{rest}
"#,
        key = sha256_hex(KEY.as_bytes()),
        url = upstream.url("/pets/{id}"),
    )
}

/// The access log lines of `gw` (standard output) that are JSON objects with a `request_id`.
fn json_lines(gw: &Gateway) -> Vec<Value> {
    gw.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("request_id").is_some() && v.get("message").is_none())
        .collect()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn json_access_log_has_the_chosen_fields_and_the_auth_plugins_context() {
    let upstream = Upstream::start();
    let server = r#"
[server.access_log]
format = "json"
fields = ["request_id", "method", "path", "query", "route", "status", "bytes_in", "bytes_out",
          "latency_ms", "integration_latency_ms", "plugin_times", "user_agent", "client_ip",
          "protocol", "context.principal", "context.usage_plan", "context.auth.method"]
"#;
    let gw = Gateway::start(&config(&upstream, server, ""));
    let c = client();
    let ok = c
        .post(gw.url("/pets/7?x=1"))
        .header("x-api-key", KEY)
        .header("user-agent", "telemetry-test/1.0")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok_id = ok.headers()["x-request-id"].to_str().unwrap().to_string();
    let out_len = ok.bytes().await.unwrap().len() as u64;
    let refused = c.get(gw.url("/pets/8")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let refused_id = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let line = |id: &str| {
        let id = id.to_string();
        wait_for("the access log line", || {
            json_lines(&gw)
                .into_iter()
                .find(|v| v["request_id"] == id.as_str())
        })
    };
    let v = line(&ok_id);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 17, "exactly the fields asked for: {v}");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/pets/7");
    assert_eq!(v["query"], "x=1");
    assert_eq!(v["route"], "pets");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes_in"], 5);
    assert_eq!(v["bytes_out"], out_len);
    assert_eq!(v["user_agent"], "telemetry-test/1.0");
    assert_eq!(v["client_ip"], "127.0.0.1");
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert_eq!(v["principal"], "alice");
    assert_eq!(v["usage_plan"], "gold");
    assert_eq!(v["auth.method"], "api-key");
    let latency = v["latency_ms"].as_f64().unwrap();
    let integration = v["integration_latency_ms"].as_f64().unwrap();
    assert!(integration > 0.0 && integration <= latency, "{v}");
    let keys_time = v["plugin_times"]["keys.on_request"].as_f64().unwrap();
    assert!(keys_time > 0.0 && keys_time <= latency, "{v}");

    // Refused by the filter: no principal, no integration.
    let v = line(&refused_id);
    assert_eq!(v["status"], 403);
    assert!(v["principal"].is_null(), "{v}");
    assert!(v["integration_latency_ms"].is_null(), "{v}");
    assert!(v["plugin_times"]["keys.on_request"].is_number(), "{v}");
}

#[tokio::test]
async fn text_access_log_goes_to_its_file_and_is_reopened_on_sigusr1() {
    let upstream = Upstream::start();
    let server = r#"
[server.access_log]
format = "text"
fields = ["method", "path", "status", "context.principal", "user_agent"]
path = "access.log"
"#;
    let gw = Gateway::start(&config(&upstream, server, ""));
    let log = gw.config_path().parent().unwrap().join("access.log");
    let rotated = gw.config_path().parent().unwrap().join("access.log.1");
    let c = client();
    let get = |path: &str| {
        c.get(gw.url(path))
            .header("x-api-key", KEY)
            .header("user-agent", "a b")
            .send()
    };
    assert_eq!(get("/pets/1").await.unwrap().status(), 200);
    let first = "method=GET path=/pets/1 status=200 principal=alice user_agent=\"a b\"";
    wait_for("the first line", || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines().any(|l| l == first).then_some(())
    });

    // logrotate: rename, then SIGUSR1; the gateway starts a new file at the same path.
    std::fs::rename(&log, &rotated).unwrap();
    gw.signal("USR1");
    wait_for("the reopened file", || log.is_file().then_some(()));
    assert_eq!(get("/pets/2").await.unwrap().status(), 200);
    let second = "method=GET path=/pets/2 status=200 principal=alice user_agent=\"a b\"";
    wait_for("the line in the new file", || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines().any(|l| l == second).then_some(())
    });
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains(first) && !old.contains(second), "{old}");
    assert!(
        gw.logs().iter().all(|l| !l.contains("path=/pets/")),
        "nothing on stdout"
    );
}

#[test]
fn access_log_and_telemetry_settings_are_checked_with_their_place() {
    let bad = r#"
[server]
listen = "127.0.0.1:0"

[server.access_log]
fields = ["method",
  "latency",
  "context.principal"]

[plugins.m]
builtin = "mock"

[[routes]]
path = "/x"
integration = "m"
"#;
    let (ok, out, path) = check("bad.toml", bad);
    assert!(!ok, "{out}");
    let file = path.display().to_string();
    assert!(
        out.contains(&format!(
            "{file}:7:3: server.access_log.fields[1]: unknown field \"latency\""
        )),
        "{out}"
    );
    // A key `[server.access_log]` does not take, where it is written.
    let typo = bad.replace("  \"latency\",\n", "  \"path\"]\nformt = \"json\"\n#");
    let (ok, out, _) = check("typo.toml", &typo);
    assert!(
        !ok && out.contains(":8:1:") && out.contains("formt"),
        "{out}"
    );

    let telemetry = r#"
[server]
listen = "127.0.0.1:0"

[telemetry]
otlp_endpoint = "collector:4318"
sample_ratio = 1.5
trust_client_traceparent = "sometimes"

[plugins.m]
builtin = "mock"

[[routes]]
path = "/x"
integration = "m"
"#;
    let (ok, out, path) = check("telemetry.toml", telemetry);
    let file = path.display().to_string();
    assert!(!ok, "{out}");
    for expected in [
        format!("{file}:6:17: telemetry.otlp_endpoint"),
        format!("{file}:7:16: telemetry.sample_ratio"),
        format!("{file}:8:28: telemetry.trust_client_traceparent"),
    ] {
        assert!(out.contains(&expected), "{expected} in:\n{out}");
    }
}

/// A real OTLP/HTTP receiver: decodes each export, checks it is protobuf on `/v1/traces`, and
/// keeps the spans (with their service name).
struct Receiver {
    server: Upstream,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
        let sink = spans.clone();
        let server = serve_on_thread(service_fn(move |req: hyper::Request<_>| {
            let sink = sink.clone();
            async move {
                assert_eq!(req.uri().path(), "/v1/traces");
                assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                let body = BodyExt::collect(req.into_body()).await.unwrap().to_bytes();
                let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in export.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            Any::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                        sink.lock().unwrap().push((service.clone(), span));
                    }
                }
                let answer = ExportTraceServiceResponse::default().encode_to_vec();
                let mut resp = hyper::Response::new(Full::new(Bytes::from(answer)));
                resp.headers_mut()
                    .insert("content-type", "application/x-protobuf".parse().unwrap());
                Ok::<_, Infallible>(resp)
            }
        }));
        Receiver { server, spans }
    }

    /// Every span of trace `trace_id` once `n` have arrived.
    fn trace(&self, trace_id: u128, n: usize) -> Vec<Span> {
        let id = trace_id.to_be_bytes().to_vec();
        wait_for(&format!("{n} spans of trace {trace_id:032x}"), || {
            let spans: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(service, s)| service == "edge-gw" && s.trace_id == id)
                .map(|(_, s)| s.clone())
                .collect();
            (spans.len() >= n).then_some(spans)
        })
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn attr_str<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key)? {
        Any::StringValue(s) => Some(s),
        _ => None,
    }
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {:?}", names(spans)))
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

fn span_id(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

/// The traceparent an upstream received (from the echoing upstream's description).
fn received_traceparent(description: &Value) -> (u128, u64, String) {
    let tp = description["headers"]["traceparent"][0].as_str().unwrap();
    let parts: Vec<&str> = tp.split('-').collect();
    (
        u128::from_str_radix(parts[1], 16).unwrap(),
        u64::from_str_radix(parts[2], 16).unwrap(),
        parts[3].to_string(),
    )
}

#[tokio::test]
async fn traces_continue_a_trusted_clients_traceparent_and_reach_the_upstream() {
    let upstream = Upstream::start();
    let receiver = Receiver::start();
    let notes = format!(
        r#"
[plugins.notes]
wasm = {notes:?}
grants = ["kv", "http"]
isolation = "pooled"
config = {{ directory_url = "{directory}" }}

[[routes]]
name = "notes"
path = "/notes/{{id}}"
plugins = ["keys"]
integration = "notes"

[telemetry]
otlp_endpoint = "{endpoint}"
service_name = "edge-gw"
export_interval_ms = 50
"#,
        notes = rust_function().display().to_string(),
        directory = upstream.url("/directory"),
        endpoint = receiver.server.url("/v1/traces"),
    );
    // The default trust: a client behind a trusted proxy (here, loopback) continues its trace.
    let gw = Gateway::start(&config(
        &upstream,
        r#"trusted_proxies = ["127.0.0.1"]"#,
        &notes,
    ));
    let c = client();
    let trace: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;
    let client_span: u64 = 0x00f067aa0ba902b7;
    let resp = c
        .get(gw.url("/pets/3"))
        .header("x-api-key", KEY)
        .header(
            "traceparent",
            format!("00-{trace:032x}-{client_span:016x}-01"),
        )
        .header("tracestate", "vendor=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let description: Value = resp.json().await.unwrap();
    let (up_trace, up_parent, flags) = received_traceparent(&description);
    assert_eq!(up_trace, trace, "the upstream continues the client's trace");
    assert_eq!(flags, "01");
    assert_eq!(description["headers"]["tracestate"][0], "vendor=1");

    let spans = receiver.trace(trace, 3);
    let server = named(&spans, "GET pets");
    assert_eq!(server.kind, 2, "SERVER");
    assert_eq!(span_id(&server.parent_span_id), client_span);
    assert_eq!(attr_str(server, "wicket.route"), Some("pets"));
    assert_eq!(attr_str(server, "url.path"), Some("/pets/3"));
    assert!(matches!(
        attr(server, "http.response.status_code"),
        Some(Any::IntValue(200))
    ));
    let keys = named(&spans, "keys on_request");
    assert_eq!(keys.kind, 1, "INTERNAL");
    assert_eq!(
        keys.parent_span_id, server.span_id,
        "a plugin call is the request's child"
    );
    assert_eq!(attr_str(keys, "wicket.phase"), Some("on_request"));
    assert_eq!(attr_str(keys, "wicket.verdict"), Some("continue"));
    assert!(matches!(attr(keys, "wicket.cpu_us"), Some(Any::IntValue(us)) if *us >= 0));
    let forward = named(&spans, "GET");
    assert_eq!(forward.kind, 3, "CLIENT");
    assert_eq!(forward.parent_span_id, server.span_id);
    assert_eq!(
        span_id(&forward.span_id),
        up_parent,
        "the upstream's parent is the forward"
    );
    assert!(server.start_time_unix_nano <= keys.start_time_unix_nano);
    assert!(keys.end_time_unix_nano <= server.end_time_unix_nano);

    // A function's outbound `http` call is a child of its `handle` span, and carries it.
    let trace2: u128 = 0x11112222333344445555666677778888;
    let tp2 = format!("00-{trace2:032x}-{client_span:016x}-01");
    let put = c
        .put(gw.url("/notes/9"))
        .header("x-api-key", KEY)
        .body("n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let got = c
        .get(gw.url("/notes/9"))
        .header("x-api-key", KEY)
        .header("traceparent", &tp2)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let body: Value = got.json().await.unwrap();
    let (dir_trace, dir_parent, _) = received_traceparent(&body["directory"]);
    assert_eq!(dir_trace, trace2);
    let spans = receiver.trace(trace2, 4);
    let server = named(&spans, "GET notes");
    let handle = named(&spans, "notes handle");
    assert_eq!(handle.parent_span_id, server.span_id);
    assert_eq!(attr_str(handle, "wicket.verdict"), Some("respond"));
    let call = named(&spans, "GET");
    assert_eq!(
        call.parent_span_id, handle.span_id,
        "the http call is the function's child"
    );
    assert_eq!(span_id(&call.span_id), dir_parent);
    assert_eq!(
        attr_str(call, "url.full"),
        Some(upstream.url("/directory/9").as_str())
    );
}

#[tokio::test]
async fn an_untrusted_clients_traceparent_starts_a_new_trace() {
    let upstream = Upstream::start();
    let receiver = Receiver::start();
    let telemetry = format!(
        r#"
[telemetry]
otlp_endpoint = "{}"
service_name = "edge-gw"
export_interval_ms = 50
"#,
        receiver.server.url("/v1/traces")
    );
    // No trusted proxies: nobody is trusted to say which trace a request belongs to.
    let gw = Gateway::start(&config(&upstream, "", &telemetry));
    let forged: u128 = 0xdeadbeefdeadbeefdeadbeefdeadbeef;
    let resp = client()
        .get(gw.url("/pets/4"))
        .header("x-api-key", KEY)
        .header(
            "traceparent",
            format!("00-{forged:032x}-00f067aa0ba902b7-01"),
        )
        .header("tracestate", "forged=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .replace('-', "");
    let description: Value = resp.json().await.unwrap();
    let (up_trace, _, _) = received_traceparent(&description);
    assert_ne!(up_trace, forged);
    assert!(
        description["headers"]["tracestate"].is_null(),
        "{description}"
    );
    // The trace started here has the request id's digits.
    assert_eq!(format!("{up_trace:032x}"), request_id);
    let spans = receiver.trace(up_trace, 3);
    let server = named(&spans, "GET pets");
    assert!(server.parent_span_id.is_empty(), "a root span");
}

#[tokio::test]
async fn a_collector_that_never_answers_costs_requests_nothing_and_spans_are_counted_dropped() {
    let upstream = Upstream::start();
    // Accepts connections and never answers: every export hangs until its timeout.
    let stuck = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let telemetry = format!(
        r#"
[telemetry]
otlp_endpoint = "http://{}/v1/traces"
queue_spans = 4
batch_spans = 2
export_interval_ms = 10
export_timeout_ms = 30000
"#,
        stuck.local_addr().unwrap()
    );
    let gw = Gateway::start(&config(&upstream, r#"admin = "127.0.0.1:0""#, &telemetry));
    let c = client();
    for i in 0..40 {
        let started = Instant::now();
        let resp = c
            .get(gw.url(&format!("/pets/{i}")))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "request {i} waited for the collector: {:?}",
            started.elapsed()
        );
    }
    // 3 spans a request, at most a queue and a batch in flight: the rest dropped, counted.
    let metrics = gw.metrics().await;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wicket_trace_spans_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dropped counter in:\n{metrics}"));
    assert!(dropped >= 100, "{dropped} dropped of 120");
    drop(stuck);
}

#[tokio::test]
async fn spans_still_queued_at_sigterm_are_exported_before_exit() {
    let upstream = Upstream::start();
    let receiver = Receiver::start();
    // Nothing would go out for a minute but for the flush at exit.
    let telemetry = format!(
        r#"
[telemetry]
otlp_endpoint = "{}"
service_name = "edge-gw"
export_interval_ms = 60000
"#,
        receiver.server.url("/v1/traces")
    );
    let mut gw = Gateway::start(&config(&upstream, "", &telemetry));
    let resp = client()
        .get(gw.url("/pets/5"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let description: Value = resp.json().await.unwrap();
    let (trace, _, _) = received_traceparent(&description);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        receiver.spans.lock().unwrap().is_empty(),
        "nothing exported yet"
    );
    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status:?}");
    let spans = receiver.trace(trace, 3);
    assert_eq!(names(&spans).len(), 3, "{:?}", names(&spans));
}
