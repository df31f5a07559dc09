//! `wicket check`: every problem is reported with the file, line and key, and exit 1.

use wicket_e2e::{check, test_plugin};

/// Assert that `output` reports a problem at `line` of `path` mentioning every needle.
fn reports(output: &str, path: &std::path::Path, line: usize, needles: &[&str]) {
    let prefix = format!("{}:{line}:", path.display());
    let found = output
        .lines()
        .any(|l| l.starts_with(&prefix) && needles.iter().all(|n| l.contains(n)));
    assert!(
        found,
        "expected a problem at {prefix} mentioning {needles:?}, got:\n{output}"
    );
}

const GOOD: &str = r#"[server]
listen = "127.0.0.1:0"

[plugins.hello]
builtin = "mock"
config = { body = "hi" }

[[routes]]
path = "/hello"
integration = "hello"
"#;

#[test]
fn a_good_config_passes() {
    let (ok, out, _) = check("good.toml", GOOD);
    assert!(ok, "{out}");
    assert!(out.contains("ok (1 routes, 1 plugins)"), "{out}");
}

#[test]
fn unknown_key_names_line_and_key() {
    let config = GOOD.replace("listen = ", "lisen = ");
    let (ok, out, path) = check("typo.toml", &config);
    assert!(!ok);
    reports(&out, &path, 2, &["lisen", "unknown field"]);
}

#[test]
fn undefined_plugin_names_line_and_key() {
    let config = format!("{GOOD}plugins = [\"stampp\"]\n");
    let (ok, out, path) = check("undefined.toml", &config);
    assert!(!ok);
    reports(
        &out,
        &path,
        11,
        &["routes[0].plugins[0]", "\"stampp\" is not defined"],
    );
}

#[test]
fn capability_not_granted_is_refused_with_line() {
    let wasm = test_plugin("kv_counter").display().to_string();
    let config = format!("{GOOD}plugins = [\"counter\"]\n\n[plugins.counter]\nwasm = {wasm:?}\n");
    let (ok, out, path) = check("grants.toml", &config);
    assert!(!ok);
    reports(
        &out,
        &path,
        13,
        &["plugins.counter", "\"kv\"", "not granted"],
    );

    // Granting it fixes it.
    let (ok, out, _) = check("granted.toml", &format!("{config}grants = [\"kv\"]\n"));
    assert!(ok, "{out}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let config = r#"[server]
listen = "127.0.0.1:99999"

[plugins.backend]
builtin = "http"
config = { urll = "http://127.0.0.1:1/" }

[plugins.hdr]
builtin = "headers"
grants = ["telepathy"]
isolation = "sometimes"

[[routes]]
path = "pets/{id}"
methods = ["FETCH ME"]
plugins = ["hdr"]
integration = "backend"

[[routes]]
path = "/a/{p+}/b"
integration = "missing"
"#;
    let (ok, out, path) = check("many.toml", config);
    assert!(!ok);
    reports(&out, &path, 2, &["server.listen", "127.0.0.1:99999"]);
    reports(
        &out,
        &path,
        6,
        &["plugins.backend.config", "unknown key \"urll\""],
    );
    reports(
        &out,
        &path,
        6,
        &["plugins.backend.config", "needs the key \"url\""],
    );
    reports(&out, &path, 10, &["plugins.hdr.grants", "telepathy"]);
    reports(&out, &path, 11, &["plugins.hdr.isolation", "sometimes"]);
    reports(&out, &path, 14, &["routes[0].path", "must start with '/'"]);
    reports(&out, &path, 15, &["routes[0].methods", "FETCH ME"]);
    reports(&out, &path, 20, &["routes[1].path", "greedy"]);
    reports(
        &out,
        &path,
        21,
        &["routes[1].integration", "\"missing\" is not defined"],
    );
}

#[test]
fn a_filter_cannot_be_an_integration() {
    let config = r#"[server]
listen = "127.0.0.1:0"

[plugins.hdr]
builtin = "headers"

[[routes]]
path = "/x"
integration = "hdr"
"#;
    let (ok, out, path) = check("kind.toml", config);
    assert!(!ok);
    reports(
        &out,
        &path,
        9,
        &["routes[0].integration", "\"hdr\" is a filter"],
    );
}

#[test]
fn syntax_errors_have_a_line() {
    let config = GOOD.replace("[[routes]]", "[[routes]\n");
    let (ok, out, path) = check("syntax.toml", &config);
    assert!(!ok);
    reports(&out, &path, 8, &[]);
}

#[test]
fn a_missing_file_is_named() {
    let (ok, out, path) = check(
        "wasm.toml",
        &GOOD.replace("builtin = \"mock\"", "wasm = \"nope.wasm\""),
    );
    assert!(!ok);
    reports(
        &out,
        &path,
        5,
        &["plugins.hello.wasm", "nope.wasm", "does not exist"],
    );
}

#[test]
fn a_plugin_refusing_its_config_is_reported_at_the_config_line() {
    // The key list is fine; the http plugin itself refuses the URL when asked at load.
    let config = r#"[server]
listen = "127.0.0.1:0"

[plugins.backend]
builtin = "http"
config = { url = "ftp://127.0.0.1/" }

[[routes]]
path = "/x"
integration = "backend"
"#;
    let (ok, out, path) = check("refused.toml", config);
    assert!(!ok);
    reports(&out, &path, 6, &["plugins.backend.config", "http://"]);
}
