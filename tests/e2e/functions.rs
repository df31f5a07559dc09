//! Functions: `integration` components as Wicket's Lambda, run in-process. The Rust example
//! (`plugins/examples/rust-function`, a notes API on `kv`, enriched over `http`) and the Python
//! one (`plugins/examples/python-function`, a visit counter on `kv` with a quote over `http`)
//! behind routes with an auth filter and a quota, reading the principal and path parameters
//! from the context; both fresh (`isolation = "request"`) and pooled.

use reqwest::StatusCode;
use serde_json::Value;
use wicket_e2e::{client, python_function, rust_function, sha256_hex, Gateway, Upstream};

const ALICE: &str = "alice-fn-key-1";
const BOB: &str = "bob-fn-key-2";

fn gateway(upstream: &Upstream, isolation: &str) -> Gateway {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.keys]
builtin = "api-key"
config.keys = [
  {{ key_sha256 = "{alice}", principal = "alice" }},
  {{ key_sha256 = "{bob}", principal = "bob" }},
]

[plugins.quota]
builtin = "quota"
config = {{ by = "principal", rate = 0.01, burst = 8 }}

[plugins.notes]
wasm = {notes:?}
grants = ["kv", "http"]
isolation = "{isolation}"
config = {{ directory_url = "{directory}", stage = "test" }}

[plugins.visits]
wasm = {visits:?}
grants = ["kv", "http"]
isolation = "{isolation}"
memory_mb = 256
cpu_ms = 1000
config = {{ stage = "beta", quote_url = "{quote}" }}

[[routes]]
path = "/notes/{{id}}"
plugins = ["keys", "quota"]
integration = "notes"

[[routes]]
path = "/visits/{{name}}"
plugins = ["keys"]
integration = "visits"
"#,
        alice = sha256_hex(ALICE.as_bytes()),
        bob = sha256_hex(BOB.as_bytes()),
        notes = rust_function().display().to_string(),
        visits = python_function().display().to_string(),
        directory = upstream.url("/directory"),
        quote = upstream.url("/echo/quote"),
    );
    Gateway::start(&config)
}

#[tokio::test]
async fn the_rust_function_keeps_each_callers_notes() {
    let upstream = Upstream::start();
    for isolation in ["request", "pooled"] {
        let gw = gateway(&upstream, isolation);
        let c = client();
        let put = |key: &'static str, body: &'static str| {
            c.put(gw.url("/notes/7"))
                .header("x-api-key", key)
                .body(body)
                .send()
        };
        let resp = put(ALICE, "alice's note").await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{isolation}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": "7", "owner": "alice", "bytes": 12})
        );
        put(BOB, "bob's note").await.unwrap();

        let get = |key: &'static str| c.get(gw.url("/notes/7")).header("x-api-key", key).send();
        let resp = get(ALICE).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["note"], "alice's note",
            "each caller sees only their own note"
        );
        assert_eq!(body["owner"], "alice");
        assert_eq!(body["stage"], "test");
        assert_eq!(body["requestId"], request_id.as_str());
        // The directory lookup went out over the `http` capability with the path parameter.
        assert_eq!(body["directory"]["path"], "/directory/7");
        let body: Value = get(BOB).await.unwrap().json().await.unwrap();
        assert_eq!(body["note"], "bob's note");

        // No key: the auth filter refuses (403, as API Gateway) before the function runs.
        let resp = c.get(gw.url("/notes/7")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        // Unknown note.
        let resp = c
            .get(gw.url("/notes/8"))
            .header("x-api-key", ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        // The quota (burst 8 per principal) holds in front of the function: alice has made 3
        // requests; 5 more pass, the next is throttled, and bob is unaffected.
        for _ in 0..5 {
            assert_eq!(get(ALICE).await.unwrap().status(), StatusCode::OK);
        }
        assert_eq!(
            get(ALICE).await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(get(BOB).await.unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn the_python_function_counts_visits_per_caller() {
    let upstream = Upstream::start();
    for isolation in ["request", "pooled"] {
        let gw = gateway(&upstream, isolation);
        let c = client();
        let visit = |key: &'static str, name: &'static str| {
            c.get(gw.url(&format!("/visits/{name}")))
                .header("x-api-key", key)
                .send()
        };
        for n in 1..=3 {
            let resp = visit(ALICE, "paris").await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{isolation}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["hello"], "paris");
            assert_eq!(body["principal"], "alice");
            assert_eq!(body["stage"], "beta");
            // Counted in kv, so the count survives fresh instances.
            assert_eq!(body["visits"], n, "{isolation}");
            // The quote service is the upstream's echo of a GET: an empty body.
            assert_eq!(body["quote"], "");
        }
        let body: Value = visit(BOB, "paris").await.unwrap().json().await.unwrap();
        assert_eq!(body["visits"], 1, "bob's count is his own");
        let resp = c.get(gw.url("/visits/paris")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
}

/// Cold (a fresh instance per request) and warm (pooled) latency of each integration kind, next
/// to the `http` integration forwarding to a local upstream and the `mock` built-in. Sequential
/// requests on one keep-alive connection, each route behind the same `api-key` filter; the
/// median and p90 of the client's round trip.
/// Ignored by default (a measurement, not a check):
///
///     cargo test --release -p wicket-e2e --test functions -- --ignored --nocapture
#[tokio::test]
#[ignore]
async fn integration_latency() {
    let upstream = Upstream::start();
    let echo = wicket_e2e::test_plugin("wasi_http_echo");
    let mut config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
access_log = false

[plugins.keys]
builtin = "api-key"
config.keys = [{{ key_sha256 = "{alice}", principal = "alice" }}]

[plugins.http]
builtin = "http"
config = {{ url = "{upstream}" }}

[plugins.mock]
builtin = "mock"
config = {{ body = "hi" }}

[[routes]]
path = "/http"
plugins = ["keys"]
integration = "http"

[[routes]]
path = "/mock"
plugins = ["keys"]
integration = "mock"
"#,
        alice = sha256_hex(ALICE.as_bytes()),
        upstream = upstream.url("/x"),
    );
    let mut cases = vec![
        ("/http", "http -> local upstream"),
        ("/mock", "mock (built-in)"),
    ];
    for (isolation, size) in [("request", "cold"), ("pooled", "warm")] {
        for (name, wasm, extra, route, label) in [
            (
                "notes",
                rust_function(),
                r#"grants = ["kv", "http"]"#,
                "/notes-{i}/{id}",
                "Rust function",
            ),
            (
                "visits",
                python_function(),
                "grants = [\"kv\", \"http\"]\nmemory_mb = 256\ncpu_ms = 1000",
                "/visits-{i}/{name}",
                "Python function",
            ),
            (
                "wasi",
                echo.clone(),
                "",
                "/wasi-{i}/{id}",
                "wasi:http component",
            ),
        ] {
            let route = route.replace("{i}", isolation);
            config.push_str(&format!(
                r#"
[plugins.{name}-{isolation}]
wasm = {wasm:?}
isolation = "{isolation}"
{extra}

[[routes]]
path = "{route}"
plugins = ["keys"]
integration = "{name}-{isolation}"
"#,
                wasm = wasm.display().to_string(),
            ));
            let path = route.replace("{id}", "7").replace("{name}", "paris");
            let label: &'static str = Box::leak(format!("{label} ({size})").into_boxed_str());
            let path: &'static str = Box::leak(path.into_boxed_str());
            cases.push((path, label));
        }
    }
    let gw = Gateway::start(&config);
    let c = client();
    // The notes function answers 404 until a note exists.
    for isolation in ["request", "pooled"] {
        c.put(gw.url(&format!("/notes-{isolation}/7")))
            .header("x-api-key", ALICE)
            .body("n")
            .send()
            .await
            .unwrap();
    }
    println!("{:<34} {:>10} {:>10}", "integration", "median µs", "p90 µs");
    for (path, label) in cases {
        let mut times = Vec::new();
        for i in 0..320 {
            let started = std::time::Instant::now();
            let resp = c
                .get(gw.url(path))
                .header("x-api-key", ALICE)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            resp.bytes().await.unwrap();
            if i >= 20 {
                times.push(started.elapsed().as_micros());
            }
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64) * q) as usize];
        println!("{label:<34} {:>10} {:>10}", at(0.5), at(0.9));
    }
}
