//! A plugin author's tools, end to end: projects made by `wicket plugin new` in each language,
//! built with that language's toolchain and run (by `wicket plugin test` and by a gateway
//! serving the project's own `wicket.toml`); the C example; and failures told in an author's
//! terms (a trap with the guest backtrace, an import the host lacks, a refused config).

use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use wicket_e2e::{c_filter, check, client, plugin_test, scaffold, test_plugin, Gateway};

/// A header's value in a report's `[[name, value], ...]` list.
fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers.as_array()?.iter().find_map(|pair| {
        (pair[0].as_str()? == name)
            .then(|| pair[1].as_str())
            .flatten()
    })
}

/// The value a report says the plugin wrote to `key`.
fn written<'a>(report: &'a Value, key: &str) -> Option<&'a str> {
    report["context_writes"]
        .as_array()?
        .iter()
        .find(|w| w["key"] == key)
        .and_then(|w| w["new"].as_str())
}

/// The project's own `wicket.toml`, on a free port, pointing at the built component.
fn project_config(dir: &Path, name: &str, wasm: &Path) -> String {
    std::fs::read_to_string(dir.join("wicket.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace(
            &format!("wasm = \"{name}.wasm\""),
            &format!("wasm = {:?}", wasm.display().to_string()),
        )
}

/// `wicket plugin test` limits for a language: an interpreter needs more than the defaults.
fn limits(lang: &str) -> Vec<&'static str> {
    match lang {
        "python" | "js" => vec!["--memory-mb", "256", "--cpu-ms", "1000"],
        _ => Vec::new(),
    }
}

/// A filter project: one request through `wicket plugin test` (continue, context write,
/// response header from the config), one it blocks (its own 403 and its log line), and the
/// gateway serving its `wicket.toml`.
async fn filter_project(lang: &str) {
    let name = format!("demo-{lang}");
    let (dir, wasm) = scaffold(&name, lang, "filter");

    let mut args = vec!["--config", "greeting=hi there", "--path", "/x?a=1"];
    args.extend(limits(lang));
    let (ok, report, err) = plugin_test(&wasm, &args);
    assert!(ok, "{lang}: plugin test failed: {report:#}\n{err}");
    assert_eq!(report["kind"], "filter", "{report:#}");
    assert_eq!(report["verdict"], "continue", "{report:#}");
    assert_eq!(
        written(&report, &format!("{name}.seen")),
        Some("yes"),
        "{report:#}"
    );
    assert_eq!(report["request"]["path"], "/x");
    assert_eq!(report["request"]["query"], "a=1");
    assert_eq!(report["response"]["status"], 200);
    assert_eq!(
        header(&report["response"]["headers"], &format!("x-{name}")),
        Some("hi there"),
        "{report:#}"
    );

    let block = format!("x-{name}-block: 1");
    let mut args = vec!["-H", block.as_str(), "--path", "/secret"];
    args.extend(limits(lang));
    let (ok, report, err) = plugin_test(&wasm, &args);
    assert!(ok, "{lang}: {report:#}\n{err}");
    assert_eq!(report["verdict"], "refuse", "{report:#}");
    assert_eq!(report["response"]["status"], 403);
    let body: Value = serde_json::from_str(report["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["message"], format!("blocked by {name}"));
    let logs = report["logs"].to_string();
    assert!(logs.contains("blocked /secret"), "{lang}: {logs}");

    let gw = Gateway::start(&project_config(&dir, &name, &wasm));
    let resp = client().get(gw.url("/hello")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[format!("x-{name}").as_str()],
        format!("hello from {name}").as_str()
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["seen"], "yes");
}

/// An integration project: its answer through `wicket plugin test` and through a gateway.
async fn integration_project(lang: &str) {
    let name = format!("answer-{lang}");
    let (dir, wasm) = scaffold(&name, lang, "integration");

    let mut args = vec!["-X", "POST", "--path", "/a/b"];
    args.extend(limits(lang));
    let (ok, report, err) = plugin_test(&wasm, &args);
    assert!(ok, "{lang}: plugin test failed: {report:#}\n{err}");
    assert_eq!(report["kind"], "integration", "{report:#}");
    assert_eq!(report["verdict"], "answer", "{report:#}");
    assert_eq!(report["response"]["status"], 200);
    let body: Value = serde_json::from_str(report["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["greeting"], "hello");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/a/b");
    assert_eq!(body["request_id"], "plugin-test");

    let gw = Gateway::start(&project_config(&dir, &name, &wasm));
    let resp = client().get(gw.url("/hello")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["greeting"], format!("hello from {name}"));
    assert_eq!(body["path"], "/hello");
    assert_eq!(body["request_id"], id);
}

#[tokio::test]
async fn a_rust_filter_project_builds_and_runs() {
    filter_project("rust").await;
}

#[tokio::test]
async fn a_rust_integration_project_builds_and_runs() {
    integration_project("rust").await;
}

#[tokio::test]
async fn a_python_filter_project_builds_and_runs() {
    filter_project("python").await;
}

#[tokio::test]
async fn a_python_integration_project_builds_and_runs() {
    integration_project("python").await;
}

#[tokio::test]
async fn a_js_filter_project_builds_and_runs() {
    filter_project("js").await;
}

#[tokio::test]
async fn a_js_integration_project_builds_and_runs() {
    integration_project("js").await;
}

#[tokio::test]
async fn a_c_filter_project_builds_and_runs() {
    filter_project("c").await;
}

#[tokio::test]
async fn a_c_integration_project_builds_and_runs() {
    integration_project("c").await;
}

#[test]
fn plugin_new_refuses_bad_names_and_used_folders() {
    let (ok, _, err) = wicket_e2e::wicket(&["plugin", "new", "Bad/Name", "--lang", "c"]);
    assert!(!ok);
    assert!(err.contains("plugin name \"Bad/Name\""), "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    let (ok, _, err) = wicket_e2e::wicket(&[
        "plugin",
        "new",
        "x",
        "--lang",
        "rust",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "mine"
    );
}

/// HMAC-SHA256 (RFC 2104), to sign requests as a client of the C example would.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_c_example_checks_request_signatures() {
    let secret = "a secret longer than sixty-four bytes, to take HMAC's hashed-key path, x";
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.signed]
wasm = {wasm:?}
isolation = "pooled"
config = {{ secret = "{secret}" }}

[plugins.answer]
builtin = "mock"
config = {{ body = {{ signed = "{{signature.ok}}" }} }}

[[routes]]
path = "/orders/{{id}}"
plugins = ["signed"]
integration = "answer"
"#,
        wasm = c_filter().display().to_string()
    );
    let gw = Gateway::start(&config);
    let sign = |method: &str, path: &str| {
        hmac_sha256(secret.as_bytes(), format!("{method}\n{path}").as_bytes())
    };

    let ok = client()
        .get(gw.url("/orders/7?x=1"))
        .header("x-signature", sign("GET", "/orders/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["signed"], "yes");

    // Upper-case hex is the same signature.
    let upper = client()
        .delete(gw.url("/orders/7"))
        .header("x-signature", sign("DELETE", "/orders/7").to_uppercase())
        .send()
        .await
        .unwrap();
    assert_eq!(upper.status(), StatusCode::OK);

    let refused = [
        None,
        Some(sign("POST", "/orders/7")), // another method
        Some(sign("GET", "/orders/8")),  // another path
        Some(sign("GET", "/orders/7")[..63].to_string()), // truncated
        Some("zz".repeat(32)),           // not hex
    ];
    for signature in refused {
        let mut req = client().get(gw.url("/orders/7"));
        if let Some(s) = &signature {
            req = req.header("x-signature", s);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{signature:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], "invalid signature", "{signature:?}");
    }
}

#[test]
fn the_c_example_refuses_a_config_without_a_secret_at_its_line() {
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"

[plugins.signed]
wasm = {wasm:?}
config = {{ secret = "", header = "x-sig" }}

[plugins.answer]
builtin = "mock"

[[routes]]
path = "/x"
plugins = ["signed"]
integration = "answer"
"#,
        wasm = c_filter().display().to_string()
    );
    let (ok, out, path) = check("c.toml", &config);
    assert!(!ok, "{out}");
    let at = format!("{}:6:", path.display());
    let line = out
        .lines()
        .find(|l| l.starts_with(&at))
        .unwrap_or_else(|| panic!("nothing reported at {at}:\n{out}"));
    for needle in [
        "plugins.signed.config",
        "plugin \"signed\" refused this config",
        "`secret` is required",
    ] {
        assert!(line.contains(needle), "{needle:?} missing from {line}");
    }
}

#[test]
fn a_trap_shows_the_guest_backtrace_by_function_name() {
    let wasm = test_plugin("misbehave");
    let (ok, report, err) = plugin_test(&wasm, &["-H", "x-misbehave: trap"]);
    assert!(!ok, "a trap must fail the command: {report:#}\n{err}");
    assert_eq!(report["verdict"], "failed", "{report:#}");
    assert_eq!(report["response"]["status"], 500);
    let error = report["error"].as_str().unwrap();
    for needle in [
        "plugin \"misbehave\" trapped",
        "guest backtrace",
        // Function names from the name section, demangled, down to the export called.
        "core::panicking::panic_fmt",
        "wicket:plugin/hooks@0.1.0#on-request",
        "what to do: an `unreachable` instruction: a panic",
        "wicket plugin test",
    ] {
        assert!(error.contains(needle), "{needle:?} missing from:\n{error}");
    }
    // The panic message the plugin printed is among its log lines.
    let logs = report["logs"].to_string();
    assert!(logs.contains("misbehave: trap requested"), "{logs}");
}

#[tokio::test]
async fn a_trap_in_a_gateway_logs_the_backtrace() {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.bad]
wasm = {wasm:?}

[plugins.answer]
builtin = "mock"

[[routes]]
path = "/x"
plugins = ["bad"]
integration = "answer"
"#,
        wasm = test_plugin("misbehave").display().to_string()
    );
    let gw = Gateway::start(&config);
    let resp = client()
        .get(gw.url("/x"))
        .header("x-misbehave", "trap")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let logged = gw.wait_for_log(std::time::Duration::from_secs(5), |l| {
        l.contains(&id)
            && l.contains("plugin \\\"bad\\\" trapped")
            && l.contains("guest backtrace")
            && l.contains("wicket:plugin/hooks@0.1.0#on-request")
    });
    assert!(logged, "no trap line with a backtrace:\n{:#?}", gw.logs());
}

#[test]
fn an_import_the_host_lacks_is_named_at_the_plugins_line() {
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"

[plugins.answer]
builtin = "mock"

[plugins.odd]
wasm = {wasm:?}

[[routes]]
path = "/x"
plugins = ["odd"]
integration = "answer"
"#,
        wasm = test_plugin("unlinkable").display().to_string()
    );
    let (ok, out, path) = check("link.toml", &config);
    assert!(!ok, "{out}");
    let at = format!("{}:7:", path.display());
    let line = out
        .lines()
        .find(|l| l.starts_with(&at))
        .unwrap_or_else(|| panic!("nothing reported at {at}:\n{out}"));
    for needle in [
        "plugins.odd",
        "cannot link: it imports `wasi:missing/thing@0.2.0`",
        "The gateway provides wicket:plugin@0.1.0",
        "wicket plugin new",
    ] {
        assert!(line.contains(needle), "{needle:?} missing from {line}");
    }
    // `wicket plugin test` says the same.
    let (ok, _, err) = plugin_test(&test_plugin("unlinkable"), &[]);
    assert!(!ok);
    assert!(err.contains("`wasi:missing/thing@0.2.0`"), "{err}");
}
