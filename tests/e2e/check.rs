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

/// A component may import a capability it never calls (componentize-js keeps every import of
/// its world): it loads, `wicket check` says what it imports and is granted, and the grant is
/// still the boundary (see `an_ungranted_capability_fails_when_called` in plugins.rs).
#[test]
fn an_ungranted_import_loads_and_check_lists_it() {
    let wasm = test_plugin("kv_counter").display().to_string();
    let config = format!("{GOOD}plugins = [\"counter\"]\n\n[plugins.counter]\nwasm = {wasm:?}\n");
    let (ok, out, _) = check("grants.toml", &config);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "counter: imports log, config, kv; granted log, config (not granted: kv; calls to it fail)"
        ),
        "{out}"
    );

    let (ok, out, _) = check("granted.toml", &format!("{config}grants = [\"kv\"]\n"));
    assert!(ok, "{out}");
    assert!(
        out.contains("counter: imports log, config, kv; granted log, config, kv\n"),
        "{out}"
    );
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
allowed_hosts = ["https://ok.example", "https://*.example.com", "api.example.com"]

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
    reports(&out, &path, 15, &["routes[0].path", "must start with '/'"]);
    reports(&out, &path, 16, &["routes[0].methods", "FETCH ME"]);
    reports(&out, &path, 21, &["routes[1].path", "greedy"]);
    reports(
        &out,
        &path,
        22,
        &["routes[1].integration", "\"missing\" is not defined"],
    );
    reports(
        &out,
        &path,
        12,
        &["plugins.hdr.allowed_hosts", "*.example.com", "wildcard"],
    );
    reports(
        &out,
        &path,
        12,
        &[
            "plugins.hdr.allowed_hosts",
            "api.example.com",
            "not an origin",
        ],
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
    reports(
        &out,
        &path,
        6,
        &[
            "plugins.backend.config",
            "http://",
            "plugin \"backend\" refused this config",
        ],
    );
}

/// `wicket plugins` with `args`, as (success, stdout, stderr).
fn plugins_cmd(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(wicket_e2e::wicket_bin())
        .arg("plugins")
        .args(args)
        .env(
            "WICKET_CACHE_DIR",
            std::env::temp_dir().join("wicket-plugins-cmd-cache"),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The built-ins describe themselves now; what `wicket plugins` shows must be what the
/// host's own table said before (`tests/data/builtins-before.json`, taken from that table):
/// same kinds, summaries, grants, keys, requiredness and docs.
#[test]
fn builtins_describe_the_same_keys_the_host_table_listed() {
    let (ok, out, err) = plugins_cmd(&["--json"]);
    assert!(ok, "{err}");
    let now: serde_json::Value = serde_json::from_str(&out).unwrap();
    let before: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wicket_e2e::root().join("tests/data/builtins-before.json"))
            .unwrap(),
    )
    .unwrap();
    let now = now.as_array().unwrap();
    let before = before.as_array().unwrap();
    assert_eq!(now.len(), before.len());
    for b in before {
        let name = b["name"].as_str().unwrap();
        let n = now
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed"));
        assert_eq!(n["kinds"], serde_json::json!([b["kind"]]), "{name}");
        assert_eq!(n["summary"], b["summary"], "{name}");
        assert_eq!(n["capabilities"], b["grants"], "{name}");
        let mut keys_before: Vec<(String, bool, String)> = b["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let name = k["name"].as_str().unwrap().to_string();
                let doc = k["doc"].as_str().unwrap().to_string();
                (name, k["required"].as_bool().unwrap(), doc)
            })
            .collect();
        let mut keys_now: Vec<(String, bool, String)> = n["config_keys"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} declares no keys"))
            .iter()
            .map(|k| {
                let name = k["name"].as_str().unwrap().to_string();
                let doc = k["doc"].as_str().unwrap().to_string();
                (name, k["required"].as_bool().unwrap(), doc)
            })
            .collect();
        keys_before.sort();
        keys_now.sort();
        assert_eq!(keys_now, keys_before, "{name}");
    }
    // Roles are declared by the plugins, not known to the host by name.
    let roles = |name: &str| {
        let n = now.iter().find(|n| n["name"] == name).unwrap();
        (
            n["roles"]["auth"].as_bool().unwrap(),
            n["roles"]["answers_from_store"].as_bool().unwrap(),
        )
    };
    for auth in ["api-key", "jwt", "sigv4", "introspect"] {
        assert_eq!(roles(auth), (true, false), "{auth}");
    }
    assert_eq!(roles("cache"), (false, true));
    assert_eq!(roles("headers"), (false, false));
}

#[test]
fn plugins_lists_an_external_component_with_its_keys() {
    let wasm = test_plugin("described");
    let (ok, out, err) = plugins_cmd(&[wasm.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("(filter): greets each request in a header"),
        "{out}"
    );
    assert!(
        out.contains("  greeting (required): the greeting put in x-greeting"),
        "{out}"
    );
    assert!(
        out.contains("  times: how many times it is repeated, default 1"),
        "{out}"
    );
    // A component without a description is listed as such, not refused.
    let (ok, out, err) = plugins_cmd(&[test_plugin("noop").to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("noop.wasm (filter)"), "{out}");
}

/// An outside author's plugin gets the same key checks as a built-in: each unknown key at its
/// own line and column, a missing required key at the plugin's config.
#[test]
fn external_plugins_get_unknown_and_missing_key_errors_with_line_and_column() {
    let wasm = test_plugin("described").display().to_string();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"

[plugins.greet]
wasm = {wasm:?}
config = {{ greting = "hi", times = 2 }}

[plugins.hello]
builtin = "mock"

[[routes]]
path = "/x"
plugins = ["greet"]
integration = "hello"
"#
    );
    let (ok, out, path) = check("external-keys.toml", &config);
    assert!(!ok);
    let prefix = format!(
        "{}:6:12: plugins.greet.config.greting: unknown key",
        path.display()
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&prefix) && l.contains("it takes greeting, times")),
        "{out}"
    );
    reports(
        &out,
        &path,
        6,
        &["plugins.greet.config", "needs the key \"greeting\""],
    );

    let fixed = config.replace("greting", "greeting");
    let (ok, out, _) = check("external-keys-ok.toml", &fixed);
    assert!(ok, "{out}");
}

/// A cache before an auth filter would hand a keyed caller's stored 200 to anyone: refused,
/// naming both places. The rule reads the plugins' declared roles.
#[test]
fn a_cache_before_an_auth_filter_is_refused_naming_both() {
    let config = r#"[server]
listen = "127.0.0.1:0"

[plugins.cache]
builtin = "cache"

[plugins.key]
builtin = "api-key"
config = { keys = [{ key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", principal = "t" }] }

[plugins.hello]
builtin = "mock"

[[routes]]
path = "/x"
plugins = ["cache", "key"]
integration = "hello"
"#;
    let (ok, out, path) = check("order.toml", config);
    assert!(!ok);
    reports(
        &out,
        &path,
        16,
        &["routes[0].plugins[0]", "\"cache\"", "\"key\"", ":16:21"],
    );
    let (ok, out, _) = check(
        "order-ok.toml",
        &config.replace(r#"["cache", "key"]"#, r#"["key", "cache"]"#),
    );
    assert!(ok, "{out}");
}
