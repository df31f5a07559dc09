//! The gateway as a proxy: the `http` and `mock` integrations and the `headers` filter in
//! the real binary, against a real upstream, over HTTP/1.1, h2c and h2 over TLS.

use reqwest::{Method, StatusCode, Version};
use serde_json::Value;
use std::time::{Duration, Instant};
use wicket_e2e::{client, run_python, sha256_hex, Gateway, Upstream};

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
admin = "127.0.0.1:0"
max_body_bytes = 2097152
# Bodies stream to the integration: this bounds streamed uploads (max_body_bytes bounds only
# bodies a plugin reads whole).
max_request_bytes = 2097152

[plugins.stamp]
builtin = "headers"
config = { request = { set = { "x-api-version" = "1", "x-req-id" = "{request_id}", "x-pet" = "{param.id}" }, remove = ["x-remove-me"] }, response = { set = { "x-served-by" = "wicket" }, remove = ["x-upstream"] } }

[plugins.pets]
builtin = "http"
config = { url = "http://UPSTREAM/pets/{id}", timeout_ms = 5000 }

[plugins.echo]
builtin = "http"
config = { url = "http://UPSTREAM/echo/{path+}" }

[plugins.slow]
builtin = "http"
config = { url = "http://UPSTREAM/slow", timeout_ms = 300 }

[plugins.nowhere]
builtin = "http"
config = { url = "http://CLOSED/x" }

[plugins.hello]
builtin = "mock"
config = { status = 201, headers = { "content-type" = "text/plain", "x-mock" = "{param.name}" }, body = "hello {param.name}" }

[[routes]]
name = "pets"
methods = ["GET", "POST"]
path = "/v1/pets/{id}"
plugins = ["stamp"]
integration = "pets"

[[routes]]
name = "echo"
methods = ["POST", "PUT"]
path = "/echo/{path+}"
integration = "echo"

[[routes]]
path = "/slow"
integration = "slow"

[[routes]]
path = "/nowhere"
integration = "nowhere"

[[routes]]
name = "hello"
methods = ["GET"]
path = "/hello/{name}"
plugins = ["stamp"]
integration = "hello"
"#;

/// A port on which nothing listens.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> (Upstream, Gateway) {
    let upstream = Upstream::start();
    let config = CONFIG
        .replace("UPSTREAM", &upstream.addr.to_string())
        .replace("CLOSED", &format!("127.0.0.1:{}", closed_port()));
    let gw = Gateway::start(&config);
    (upstream, gw)
}

/// Deterministic bytes that are not all alike, so a reordering or truncation shows.
fn body_of(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn json_error(resp: reqwest::Response, status: StatusCode, message: &str) {
    assert_eq!(resp.status(), status);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"message": message, "requestId": request_id})
    );
}

#[tokio::test]
async fn get_with_path_params_query_and_headers_on_both_sides() {
    let (_up, gw) = start();
    let resp = client()
        .get(gw.url("/v1/pets/42?a=1&b=two%20words&a=3"))
        .header("x-remove-me", "secret")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-served-by"], "wicket");
    assert!(
        resp.headers().get("x-upstream").is_none(),
        "response.remove must drop it"
    );
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/pets/42");
    assert_eq!(seen["query"], "a=1&b=two%20words&a=3");
    let h = &seen["headers"];
    assert_eq!(h["x-api-version"][0], "1");
    assert_eq!(h["x-pet"][0], "42");
    assert_eq!(h["x-req-id"][0], request_id.as_str());
    assert_eq!(h["x-custom"][0], "kept");
    assert!(h.get("x-remove-me").is_none());
    assert_eq!(h["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"][0], "http");
    assert_eq!(h["x-forwarded-host"][0], gw.addr.to_string().as_str());
    assert_eq!(h["host"][0], _up.addr.to_string().as_str());
}

#[tokio::test]
async fn post_of_one_mebibyte_arrives_byte_identical() {
    let (_up, gw) = start();
    let body = body_of(1 << 20);
    let resp = client()
        .post(gw.url("/v1/pets/7"))
        .header("content-type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body_len"], 1 << 20);
    assert_eq!(seen["body_sha256"], sha256_hex(&body));

    // And back: the upstream echoes the body, the gateway returns it unchanged.
    let resp = client()
        .put(gw.url("/echo/a/b/c"))
        .header("content-type", "application/x-test")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-test");
    assert_eq!(
        resp.headers()["content-length"],
        (1 << 20).to_string().as_str()
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[..]);
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let (_up, gw) = start();
    let resp = client()
        .get(gw.url("/v1/pets/1"))
        .header("connection", "x-hop-secret")
        .header("x-hop-secret", "do not forward")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("upgrade", "h2c")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    let seen: Value = resp.json().await.unwrap();
    let h = &seen["headers"];
    for name in [
        "x-hop-secret",
        "keep-alive",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(h.get(name).is_none(), "{name} was forwarded: {h}");
    }
    assert_eq!(
        h["x-forwarded-for"],
        serde_json::json!(["127.0.0.1"]),
        "a client's XFF is not trusted"
    );
}

#[tokio::test]
async fn mock_integration_answers_with_its_config() {
    let (_up, gw) = start();
    let resp = client().get(gw.url("/hello/ada")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["x-mock"], "ada");
    assert_eq!(resp.headers()["x-served-by"], "wicket");
    assert_eq!(resp.text().await.unwrap(), "hello ada");
}

#[tokio::test]
async fn not_found_and_method_not_allowed_are_json() {
    let (_up, gw) = start();
    let resp = client().get(gw.url("/nope")).send().await.unwrap();
    json_error(resp, StatusCode::NOT_FOUND, "Not Found").await;
    let resp = client().delete(gw.url("/v1/pets/1")).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, POST");
    json_error(resp, StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let (_up, gw) = start();
    // Declared too large.
    let resp = client()
        .post(gw.url("/v1/pets/1"))
        .body(vec![b'x'; 2 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    json_error(
        resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request Entity Too Large",
    )
    .await;
    // Chunked, no length declared: found out while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..33).map(|_| Ok(vec![b'y'; 64 * 1024])).collect();
    let stream = futures_stream(chunks);
    let resp = client()
        .post(gw.url("/v1/pets/1"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    json_error(
        resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request Entity Too Large",
    )
    .await;
    // Exactly at the limit is fine.
    let resp = client()
        .post(gw.url("/v1/pets/1"))
        .body(vec![b'z'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

fn futures_stream(
    items: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    struct Iter(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_slow_upstream_is_504() {
    let (_up, gw) = start();
    let resp = client().get(gw.url("/nowhere")).send().await.unwrap();
    json_error(resp, StatusCode::BAD_GATEWAY, "Bad Gateway").await;

    let started = Instant::now();
    let resp = client().get(gw.url("/slow?ms=3000")).send().await.unwrap();
    let took = started.elapsed();
    json_error(
        resp,
        StatusCode::GATEWAY_TIMEOUT,
        "Endpoint request timed out",
    )
    .await;
    assert!(
        took < Duration::from_millis(2000),
        "504 took {took:?} for a 300 ms timeout"
    );
    assert!(
        took >= Duration::from_millis(290),
        "504 came before the timeout: {took:?}"
    );

    // The same route answers when the upstream is quick enough.
    let resp = client().get(gw.url("/slow?ms=10")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn h2c_with_prior_knowledge() {
    let (_up, gw) = start();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2.get(gw.url("/v1/pets/5?x=y")).send().await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["path"], "/pets/5");
    assert_eq!(seen["query"], "x=y");
    // `:authority` reaches plugins and the upstream as X-Forwarded-Host.
    assert_eq!(
        seen["headers"]["x-forwarded-host"][0],
        gw.addr.to_string().as_str()
    );
}

#[tokio::test]
async fn tls_with_h2_by_alpn_and_http1() {
    let upstream = Upstream::start();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = CONFIG
        .replace("UPSTREAM", &upstream.addr.to_string())
        .replace("CLOSED", "127.0.0.1:9")
        .replace(
            "max_request_bytes = 2097152",
            &format!(
                "max_request_bytes = 2097152\n[server.tls]\ncert = {:?}\nkey = {:?}",
                cert_path.display().to_string(),
                key_path.display().to_string()
            ),
        );
    let gw = Gateway::start(&config);
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let url = format!("https://localhost:{}/v1/pets/9", gw.addr.port());
    for http1 in [false, true] {
        let mut builder = reqwest::Client::builder()
            .add_root_certificate(root.clone())
            .resolve("localhost", gw.addr);
        if http1 {
            builder = builder.http1_only();
        }
        let resp = builder
            .build()
            .unwrap()
            .request(Method::GET, &url)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.version(),
            if http1 {
                Version::HTTP_11
            } else {
                Version::HTTP_2
            }
        );
        let seen: Value = resp.json().await.unwrap();
        assert_eq!(seen["headers"]["x-forwarded-proto"][0], "https");
    }
}

#[tokio::test]
async fn admin_listener_serves_health_and_metrics() {
    let (_up, gw) = start();
    for _ in 0..3 {
        client().get(gw.url("/v1/pets/1")).send().await.unwrap();
    }
    client().get(gw.url("/nowhere")).send().await.unwrap();
    let health = client().get(gw.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let text = client()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"wicket_requests_total{route="pets",class="2xx"} 3"#,
        r#"wicket_requests_total{route="/nowhere",class="5xx"} 1"#,
        r#"wicket_request_seconds_count{route="pets"} 3"#,
        r#"wicket_integration_seconds_count{route="pets"} 3"#,
    ] {
        assert!(text.contains(expected), "metrics lack {expected}:\n{text}");
    }
    // `stamp` (headers) plans fixed edits: the host applies them, the plugin is never called.
    for phase in ["on_request", "on_response"] {
        let calls = format!(r#"wicket_plugin_seconds_count{{plugin="stamp",phase="{phase}"}} "#);
        assert!(
            text.lines()
                .all(|l| !l.starts_with(&calls) || l.ends_with(" 0")),
            "{text}"
        );
    }
    // Client traffic does not reach the admin paths.
    let resp = client().get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// `/metrics` after some traffic, read by the Prometheus Python client's own text parser: it
/// parses, and every family (the host's and the one the `cache` plugin names at run time) has
/// one `# HELP` and one `# TYPE` line, and no sample is outside a typed family.
#[tokio::test]
async fn metrics_follow_the_exposition_format() {
    let upstream = Upstream::start();
    let config = format!(
        "{}\n[state]\nbackend = \"memory\"\n\n\
         [plugins.cache]\nbuiltin = \"cache\"\nconfig = {{ ttl_s = 60 }}\n\n\
         [[routes]]\nname = \"cached\"\nmethods = [\"GET\"]\npath = \"/c/{{id}}\"\n\
         plugins = [\"cache\"]\nintegration = \"pets\"\n",
        CONFIG
            .replace("UPSTREAM", &upstream.addr.to_string())
            .replace("CLOSED", &format!("127.0.0.1:{}", closed_port()))
    );
    let gw = Gateway::start(&config);
    let c = client();
    for path in [
        "/v1/pets/1",
        "/v1/pets/2",
        "/nowhere",
        "/c/1",
        "/c/1",
        "/hello/x",
    ] {
        c.get(gw.url(path)).send().await.unwrap();
    }
    let resp = c.get(gw.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();

    // The line-level rules the parser is lenient about: each family's HELP comes right before
    // its TYPE, once; every sample line follows the TYPE of its family.
    let mut helped = std::collections::HashSet::new();
    let mut typed = std::collections::HashMap::new();
    let mut last_help: Option<&str> = None;
    let mut family: Option<(&str, &str)> = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.trim().is_empty(), "empty help: {line}");
            assert!(helped.insert(name), "two HELP lines for {name}:\n{text}");
            last_help = Some(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(
                last_help,
                Some(name),
                "TYPE without HELP before it:\n{text}"
            );
            assert!(
                typed.insert(name, kind).is_none(),
                "two TYPE lines for {name}:\n{text}"
            );
            family = Some((name, kind));
        } else {
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let (name, kind) = family.unwrap_or_else(|| panic!("sample before any TYPE: {line}"));
            let sample = line.split(['{', ' ']).next().unwrap();
            let suffixes: &[&str] = match kind {
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                _ => &[""],
            };
            assert!(
                suffixes.iter().any(|s| sample == format!("{name}{s}")),
                "{sample} is not in family {name} ({kind})"
            );
        }
    }
    for (name, kind) in [
        ("wicket_requests_total", "counter"),
        ("wicket_request_seconds", "histogram"),
        ("wicket_integration_seconds", "histogram"),
        ("wicket_plugin_seconds", "histogram"),
        ("wicket_plugin_cache_misses_total", "counter"),
        ("wicket_plugin_cache_hits_total", "counter"),
    ] {
        assert_eq!(typed.get(name), Some(&kind), "{name}:\n{text}");
    }

    // The reference parser: it rejects malformed lines, and reports a family without TYPE as
    // "unknown" and one without HELP with empty documentation.
    const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = [
    {"name": f.name, "type": f.type, "help": f.documentation, "samples": len(f.samples)}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families))
"#;
    let parsed: Vec<Value> =
        serde_json::from_slice(&run_python("prometheus_client", PARSE, text.as_bytes())).unwrap();
    assert_eq!(parsed.len(), typed.len(), "{parsed:?}\n{text}");
    for f in &parsed {
        assert_ne!(f["type"], "unknown", "{f}");
        assert!(!f["help"].as_str().unwrap().is_empty(), "{f}");
        assert!(f["samples"].as_u64().unwrap() > 0, "{f}");
    }
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let (_up, gw) = start();
    let resp = client()
        .get(gw.url("/v1/pets/1"))
        .header("x-big", "a".repeat(100 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // A normal request on a new connection still works.
    let resp = client().get(gw.url("/v1/pets/1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn slow_headers_are_cut_off() {
    use std::io::{Read, Write};
    let upstream = Upstream::start();
    let config = CONFIG
        .replace("UPSTREAM", &upstream.addr.to_string())
        .replace("CLOSED", "127.0.0.1:9")
        .replace(
            "max_body_bytes = 2097152",
            "max_body_bytes = 2097152\nheader_read_timeout_ms = 500",
        );
    let gw = Gateway::start(&config);
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    // Start a request and never finish its headers (slowloris).
    s.write_all(b"GET /v1/pets/1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "closed too early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "slow headers held the connection for {took:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer: {text}"
    );
}
