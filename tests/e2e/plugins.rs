//! External plugins in the real binary: a Python plugin in a chain with built-ins, a JavaScript
//! one built with componentize-js's default features (which import `wasi:http`), and the
//! difference between fresh and pooled instances, seen through a plugin that keeps state
//! both in its instance and in the granted `kv` store; built-ins start from the code compiled
//! at build time.

use reqwest::StatusCode;
use serde_json::Value;
use wicket_e2e::{client, js_filter, python_plugin, sha256_hex, test_plugin, Gateway};

#[tokio::test]
async fn a_python_plugin_runs_in_a_chain_with_builtins() {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.py]
wasm = {wasm:?}
isolation = "pooled"
memory_mb = 256
cpu_ms = 1000
config = {{ greeting = "hi from python" }}

[plugins.stamp]
builtin = "headers"
config = {{ response = {{ set = {{ "x-stamp" = "{{route}}" }} }} }}

[plugins.answer]
builtin = "mock"
config = {{ headers = {{ "content-type" = "application/json" }}, body = {{ seen = "{{python.seen}}", id = "{{param.id}}" }} }}

[[routes]]
name = "py"
path = "/py/{{id}}"
plugins = ["stamp", "py"]
integration = "answer"
"#,
        wasm = python_plugin().display().to_string()
    );
    let gw = Gateway::start(&config);
    for _ in 0..3 {
        let resp = client().get(gw.url("/py/12")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-python"], "hi from python");
        assert_eq!(resp.headers()["x-stamp"], "py");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"seen": "yes", "id": "12"}),
            "the context set in Python reaches the integration"
        );
    }
    // The Python filter answers early: the integration is skipped, but the response side of
    // the filters that ran (stamp, and py itself) still runs.
    let resp = client()
        .get(gw.url("/py/12"))
        .header("x-python-block", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["x-stamp"], "py");
    assert_eq!(resp.headers()["x-python"], "hi from python");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"message": "blocked by python"}));
}

fn counter_config(isolation: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.counter]
wasm = {wasm:?}
grants = ["kv"]
isolation = "{isolation}"
pool_size = 1

[plugins.ok]
builtin = "mock"

[[routes]]
path = "/count"
plugins = ["counter"]
integration = "ok"
"#,
        wasm = test_plugin("kv_counter").display().to_string()
    )
}

async fn count(gw: &Gateway) -> (u64, u64) {
    let resp = client().get(gw.url("/count")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let header = |name: &str| {
        resp.headers()[name]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    (header("x-hits"), header("x-instance-calls"))
}

/// A plugin that imports `kv` without a grant loads, and its call to `kv` fails: a JSON 500
/// with the request id for the client, a log line naming the plugin and the capability, and
/// the gateway goes on serving.
#[tokio::test]
async fn an_ungranted_capability_fails_when_called() {
    let gw = Gateway::start(&counter_config("pooled").replace("grants = [\"kv\"]\n", ""));
    for _ in 0..2 {
        let resp = client().get(gw.url("/count")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["requestId"], id.as_str(), "{body}");
        assert!(
            gw.wait_for_log(std::time::Duration::from_secs(5), |l| l.contains(&id)
                && l.contains(
                    "plugin \\\"counter\\\" called capability \\\"kv\\\" without a grant"
                )),
            "{:?}",
            gw.logs()
        );
    }
}

#[tokio::test]
async fn fresh_instances_keep_nothing_but_granted_state() {
    let gw = Gateway::start(&counter_config("request"));
    for expected in 1..=5 {
        // The kv store is shared; the instance is new for every request, and the same one
        // serves both hooks of its request.
        assert_eq!(count(&gw).await, (expected, 1));
    }
}

#[tokio::test]
async fn pooled_instances_are_reused() {
    let gw = Gateway::start(&counter_config("pooled"));
    let mut last_calls = 0;
    for expected in 1..=5 {
        let (hits, calls) = count(&gw).await;
        assert_eq!(hits, expected);
        assert!(
            calls > last_calls,
            "one idle instance serves every sequential request"
        );
        last_calls = calls;
    }
}

#[tokio::test]
async fn a_replaced_body_is_forwarded_with_its_own_length_and_refusals_pass_the_filters_before() {
    let upstream = wicket_e2e::Upstream::start();
    let key = wicket_e2e::sha256_hex(b"secret-key");
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.cors]
builtin = "cors"
config = {{ allow_origins = ["https://app.example.com"] }}

[plugins.auth]
builtin = "api-key"
config = {{ keys = [{{ key_sha256 = "{key}", principal = "ada" }}] }}

[plugins.misbehave]
wasm = {wasm:?}

[plugins.backend]
builtin = "http"
config = {{ url = "http://{up}/x" }}

[[routes]]
path = "/x"
methods = ["GET", "POST", "OPTIONS"]
plugins = ["cors", "auth", "misbehave"]
integration = "backend"
"#,
        wasm = test_plugin("misbehave").display().to_string(),
        up = upstream.addr,
    );
    let gw = Gateway::start(&config);
    let resp = client()
        .post(gw.url("/x"))
        .header("x-api-key", "secret-key")
        .header("x-misbehave", "rewrite-body")
        .body("a much longer original body than the rewritten one")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["body_len"], 9);
    assert_eq!(seen["body_sha256"], wicket_e2e::sha256_hex(b"rewritten"));
    assert_eq!(seen["headers"]["content-length"][0], "9");

    // api-key refuses; cors, before it in the chain, still decorates the refusal.
    let resp = client()
        .get(gw.url("/x"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Forbidden");
}

#[tokio::test]
async fn a_schema_from_a_file_validates_requests() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("pet.schema.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}"#,
    )
    .unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.check]
builtin = "validate"
config_files = {{ schema = {schema:?} }}

[plugins.ok]
builtin = "mock"

[[routes]]
path = "/pets"
methods = ["POST"]
plugins = ["check"]
integration = "ok"
"#,
        schema = schema.display().to_string()
    );
    let gw = Gateway::start(&config);
    let post = |body: &'static str| {
        client()
            .post(gw.url("/pets"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        post(r#"{"name": "rex"}"#).await.unwrap().status(),
        StatusCode::OK
    );
    let resp = post(r#"{"name": 7}"#).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Invalid request body");
}

/// Built-ins were compiled when the binary was built: a start with an empty compile cache
/// compiles none of them (nothing of theirs lands in the cache), while an external plugin on
/// the same start is compiled and cached as before.
#[tokio::test]
async fn builtins_start_without_compiling() {
    let cache = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[runtime]
cache_dir = {cache:?}

[plugins.noop]
wasm = {noop:?}

[plugins.key]
builtin = "api-key"
config = {{ keys = [{{ key_sha256 = "{k1}", principal = "alice" }}] }}

[plugins.check]
builtin = "validate"
config = {{ required_headers = ["x-key"] }}

[plugins.answer]
builtin = "mock"
config = {{ body = {{ who = "{{principal}}" }} }}

[[routes]]
path = "/x"
plugins = ["noop", "key", "check"]
integration = "answer"
"#,
        cache = cache.path().display().to_string(),
        noop = test_plugin("noop").display().to_string(),
        k1 = sha256_hex(b"k1"),
    );
    let gw = Gateway::start(&config);
    let resp = client()
        .get(gw.url("/x"))
        .header("x-api-key", "k1")
        .header("x-key", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        serde_json::json!({"who": "alice"})
    );
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cwasm"))
        .collect();
    assert_eq!(
        cached.len(),
        1,
        "only the external plugin is compiled at start: {cached:?}"
    );
    assert!(
        !gw.logs()
            .iter()
            .any(|l| l.contains("does not fit this engine")),
        "every built-in's precompiled code was used: {:?}",
        gw.logs()
    );
}

/// A JavaScript filter built with componentize-js's default features imports `wasi:http/types`
/// and `wasi:http/outgoing-handler`; the gateway links them, so it loads and runs in a chain.
#[tokio::test]
async fn a_javascript_plugin_built_with_default_features_loads() {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.js]
wasm = {wasm:?}
isolation = "pooled"
memory_mb = 256
cpu_ms = 1000
config = {{ greeting = "hi from js" }}

[plugins.answer]
builtin = "mock"
config = {{ body = {{ seen = "{{js.seen}}" }} }}

[[routes]]
path = "/js"
plugins = ["js"]
integration = "answer"
"#,
        wasm = js_filter().display().to_string()
    );
    let gw = Gateway::start(&config);
    for _ in 0..3 {
        let resp = client().get(gw.url("/js")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-js"], "hi from js");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"seen": "yes"}));
    }
    let resp = client()
        .get(gw.url("/js"))
        .header("x-js-block", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers()["x-js"], "hi from js");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"message": "blocked by js"}));
}

/// `wicket compile` puts a component's machine code in the compile cache ahead of deploy: a
/// gateway started on that cache compiles nothing more.
#[tokio::test]
async fn wicket_compile_fills_the_cache_a_gateway_then_uses() {
    let cache = tempfile::tempdir().unwrap();
    let noop = test_plugin("noop");
    let out = std::process::Command::new(wicket_e2e::wicket_bin())
        .arg("compile")
        .arg(&noop)
        .env("WICKET_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("compiled into"), "{text}");
    let cached = || {
        std::fs::read_dir(cache.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
            .count()
    };
    assert_eq!(cached(), 1);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[runtime]\ncache_dir = {cache:?}\n\n\
         [plugins.noop]\nwasm = {noop:?}\n\n[plugins.ok]\nbuiltin = \"mock\"\n\n\
         [[routes]]\npath = \"/x\"\nplugins = [\"noop\"]\nintegration = \"ok\"\n",
        cache = cache.path().display().to_string(),
        noop = noop.display().to_string(),
    );
    let gw = Gateway::start(&config);
    let resp = client().get(gw.url("/x")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(cached(), 1, "the gateway found the component compiled");

    let out = std::process::Command::new(wicket_e2e::wicket_bin())
        .args(["compile", "/nonexistent.wasm"])
        .env("WICKET_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.wasm"));
}
