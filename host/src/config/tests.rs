use super::*;

fn parse(text: &str) -> Result<GatewayConfig, Vec<ConfigIssue>> {
    GatewayConfig::parse(Path::new("/etc/wicket/gw.toml"), text).map_err(|e| match e {
        ConfigError::Invalid(issues) => issues,
        other => panic!("unexpected {other}"),
    })
}

const BASE: &str = r#"[server]
listen = "127.0.0.1:8080"

[plugins.stamp]
builtin = "headers"
config = { request = { set = { "x-a" = "1" } } }

[plugins.backend]
builtin = "http"
config = { url = "http://127.0.0.1:9000/{id}" }

[[routes]]
name = "pets"
methods = ["get", "POST"]
path = "/pets/{id}"
plugins = ["stamp"]
integration = "backend"
"#;

#[test]
fn a_valid_file_becomes_typed_values_with_defaults() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.admin, None);
    assert_eq!(c.server.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert!(matches!(c.state, StateConfig::Memory { .. }));
    assert_eq!(c.plugins.len(), 2);
    let backend = &c.plugins[c.plugin_index("backend").unwrap()];
    // A built-in's own capabilities come from its description, when the runtime loads it.
    assert_eq!(
        backend.grants.iter().copied().collect::<Vec<_>>(),
        vec![Capability::Log, Capability::Config]
    );
    assert!(matches!(
        backend.isolation,
        Isolation::Pooled { size: 16, .. }
    ));
    assert_eq!(backend.cpu_limit, Duration::from_millis(100));
    assert_eq!(backend.memory_limit, 64 << 20);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&backend.config_json).unwrap(),
        serde_json::json!({"url": "http://127.0.0.1:9000/{id}"})
    );
    let route = &c.routes[0];
    assert_eq!(route.name, "pets");
    assert_eq!(route.methods, Some(vec![Method::GET, Method::POST]));
    assert_eq!(route.plugins.len(), 1);
    assert_eq!(route.integration.1.line, 17);
}

#[test]
fn external_plugins_default_to_fresh_instances_and_resolve_paths() {
    let text = BASE.replace("builtin = \"headers\"", "wasm = \"plugins/x.wasm\"");
    let issues = parse(&text).unwrap_err();
    // The file does not exist; the message names the resolved path.
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].key, "plugins.stamp.wasm");
    assert!(
        issues[0].message.contains("/etc/wicket/plugins/x.wasm"),
        "{}",
        issues[0].message
    );
    assert_eq!(issues[0].location.line, 5);
}

#[test]
fn issues_carry_line_column_and_key() {
    let text = BASE.replace("integration = \"backend\"", "integration = \"nope\"");
    let issues = parse(&text).unwrap_err();
    assert_eq!(issues.len(), 1);
    let i = &issues[0];
    assert_eq!((i.location.line, i.location.column), (17, 15));
    assert_eq!(i.key, "routes[0].integration");
    assert_eq!(
        i.to_string(),
        "/etc/wicket/gw.toml:17:15: routes[0].integration: plugin \"nope\" is not defined in [plugins]"
    );
}

#[test]
fn out_of_range_numbers_are_refused() {
    let text = BASE.replace(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:8080\"\nmax_body_bytes = 0",
    );
    let issues = parse(&text).unwrap_err();
    assert_eq!(issues[0].key, "server.max_body_bytes");
    assert_eq!(issues[0].location.line, 3);
}

#[test]
fn redis_needs_a_url() {
    let text = format!("{BASE}\n[state]\nbackend = \"redis\"\n");
    let issues = parse(&text).unwrap_err();
    assert_eq!(issues[0].key, "state.redis_url");
}

#[test]
fn duplicate_route_names_are_refused() {
    // Same name, another path (the same path would also be an overlap).
    let second = BASE
        .split("[[routes]]")
        .nth(1)
        .unwrap()
        .replace("/pets/{id}", "/other/{id}");
    let text = format!("{BASE}\n[[routes]]{second}");
    let issues = parse(&text).unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].key, "routes[1].name");
}

#[test]
fn config_files_are_read_into_the_config() {
    let dir = tempfile_dir();
    std::fs::write(dir.join("schema.json"), r#"{"type": "object"}"#).unwrap();
    std::fs::write(dir.join("note.txt"), "hello").unwrap();
    let text = BASE.replace(
        "config = { request = { set = { \"x-a\" = \"1\" } } }",
        "config = { request = { set = { \"x-a\" = \"1\" } } }\nconfig_files = { response = \"schema.json\" }",
    );
    let c = GatewayConfig::parse(&dir.join("gw.toml"), &text).unwrap();
    let stamp = &c.plugins[c.plugin_index("stamp").unwrap()];
    let config: serde_json::Value = serde_json::from_str(&stamp.config_json).unwrap();
    assert_eq!(config["response"], serde_json::json!({"type": "object"}));
    assert_eq!(config["request"]["set"]["x-a"], "1");

    let missing = text.replace("schema.json", "nope.json");
    let issues = match GatewayConfig::parse(&dir.join("gw.toml"), &missing) {
        Err(ConfigError::Invalid(issues)) => issues,
        other => panic!("expected issues, got {other:?}"),
    };
    assert_eq!(issues[0].key, "plugins.stamp.config_files.response");
    assert_eq!(issues[0].location.line, 7);
    assert!(issues[0].message.contains("nope.json"));
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wicket-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hardening_keys_have_defaults_and_are_validated() {
    let c = parse(BASE).unwrap();
    assert!(c.server.path_rules.merge_slashes);
    assert_eq!(c.server.path_rules.semicolons, Semicolons::Reject);
    assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.server.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(c.server.trusted_proxies, TrustedProxies::default());

    let text = BASE.replace(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:8080\"\nmerge_slashes = false\npath_semicolons = \"literal\"\n\
         idle_timeout_ms = 1500\ntls_handshake_timeout_ms = 700\n\
         trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"fd00::/8\"]",
    );
    let c = parse(&text).unwrap();
    assert!(!c.server.path_rules.merge_slashes);
    assert_eq!(c.server.path_rules.semicolons, Semicolons::Literal);
    assert_eq!(c.server.idle_timeout, Duration::from_millis(1500));
    assert_eq!(c.server.tls_handshake_timeout, Duration::from_millis(700));
    assert!(c
        .server
        .trusted_proxies
        .contains("10.2.3.4".parse().unwrap()));
    assert!(c
        .server
        .trusted_proxies
        .contains("127.0.0.1".parse().unwrap()));
    assert!(!c
        .server
        .trusted_proxies
        .contains("127.0.0.2".parse().unwrap()));
    assert!(c
        .server
        .trusted_proxies
        .contains("fd00::1".parse().unwrap()));
}

#[test]
fn bad_trusted_proxies_are_reported_with_their_line() {
    let text = BASE.replace(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:8080\"\ntrusted_proxies = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/33\",\n  \"10.1.2.3/8\",\n  \"proxy.internal\",\n]\npath_semicolons = \"strip\"",
    );
    let issues = parse(&text).unwrap_err();
    let lines: Vec<(usize, &str)> = issues
        .iter()
        .map(|i| (i.location.line, i.key.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (9, "server.path_semicolons"),
            (5, "server.trusted_proxies[1]"),
            (6, "server.trusted_proxies[2]"),
            (7, "server.trusted_proxies[3]"),
        ]
    );
    assert!(
        issues[2].message.contains("\"10.0.0.0/8\""),
        "{}",
        issues[2]
    );
}

#[test]
fn route_paths_and_hosts_must_be_canonical() {
    let with_route = |path: &str, host: &str| {
        format!("{BASE}\n[[routes]]\npath = \"{path}\"\n{host}integration = \"backend\"\n")
    };
    for (path, needle) in [
        ("/v1/adm%69n", "write it as \"admin\""),
        ("/v1/a%3bb", "write it as \"a%3Bb\""),
        ("/v1/../admin", "dot segments"),
        ("/v1/admin/", "does not end with '/'"),
        ("/v1//admin", "empty segment"),
        ("/v1/a;b", "';'"),
        ("/v1/a%2Fb", "encoded '/'"),
    ] {
        let issues = parse(&with_route(path, "")).unwrap_err();
        assert_eq!(issues.len(), 1, "{path}: {issues:?}");
        assert_eq!(issues[0].key, "routes[1].path");
        assert!(issues[0].message.contains(needle), "{path}: {}", issues[0]);
    }
    for host in ["a.example:8080", "a b", "*.", "u@a"] {
        let issues = parse(&with_route("/x", &format!("host = \"{host}\"\n"))).unwrap_err();
        assert_eq!(issues[0].key, "routes[1].host", "{host}");
    }
    let c = parse(&with_route("/x", "host = \"API.Example.com.\"\n")).unwrap();
    assert_eq!(c.routes[1].host.as_deref(), Some("api.example.com"));
}

#[test]
fn overlapping_routes_are_reported_naming_both() {
    let text = format!(
        "{BASE}\n[[routes]]\nname = \"pets-again\"\nmethods = [\"GET\"]\npath = \"/pets/{{petId}}\"\nintegration = \"backend\"\n\
         \n[[routes]]\nname = \"other-host\"\nhost = \"a.example\"\npath = \"/pets/{{id}}\"\nintegration = \"backend\"\n\
         \n[[routes]]\nname = \"put\"\nmethods = [\"PUT\"]\npath = \"/pets/{{id}}\"\nintegration = \"backend\"\n"
    );
    let issues = parse(&text).unwrap_err();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].key, "routes[1]");
    assert_eq!(issues[0].location.line, 19);
    assert!(
        issues[0]
            .message
            .contains("routes[0] at /etc/wicket/gw.toml:12:1"),
        "{}",
        issues[0]
    );
    assert!(
        issues[0].message.contains("GET /pets/{petId}"),
        "{}",
        issues[0]
    );
}

#[test]
fn the_portal_path_is_a_plain_absolute_path_apart_from_the_document() {
    let c = parse(&format!("{BASE}\n[portal]\npath = \"/dev-portal\"\n")).unwrap();
    assert_eq!(c.portal.unwrap().path, "/dev-portal");
    for bad in [
        "portal",
        "/portal/",
        "/a/../b",
        "/a b",
        "/<x>",
        "/openapi.json",
    ] {
        let issues = parse(&format!("{BASE}\n[portal]\npath = {bad:?}\n")).unwrap_err();
        assert!(
            issues
                .iter()
                .any(|i| i.key == "portal.path" && i.location.line == 20),
            "{bad}: {issues:?}"
        );
    }
}

#[test]
fn a_plugins_openapi_section_takes_only_its_three_keys() {
    let text = BASE.replace(
        "config = { request = { set = { \"x-a\" = \"1\" } } }",
        "config = { request = { set = { \"x-a\" = \"1\" } } }\nopenapi = { operation = { summary = \"s\" }, security_scheme = { type = \"http\", scheme = \"basic\" } }",
    );
    let c = parse(&text).unwrap();
    let stamp = &c.plugins[c.plugin_index("stamp").unwrap()];
    assert_eq!(stamp.openapi.operation.as_ref().unwrap()["summary"], "s");
    let bad = BASE.replace(
        "builtin = \"headers\"",
        "builtin = \"headers\"\nopenapi = { operations = {} }",
    );
    let issues = parse(&bad).unwrap_err();
    assert!(
        issues.iter().any(|i| i.message.contains("operations")),
        "{issues:?}"
    );
}

#[test]
fn the_access_log_is_on_by_default_off_with_false_and_chosen_with_a_table() {
    let on = parse(BASE).unwrap().server.access_log.unwrap();
    assert_eq!(on.format, AccessLogFormat::Json);
    assert!(on.wants(&AccessLogField::Status) && on.path.is_none());
    let off = BASE.replace(
        "listen = \"127.0.0.1:8080\"\n",
        "listen = \"127.0.0.1:8080\"\naccess_log = false\n",
    );
    assert!(parse(&off).unwrap().server.access_log.is_none());
    let table = format!(
        "{BASE}\n[server.access_log]\nformat = \"text\"\nfields = [\"status\", \"context.principal\"]\npath = \"logs/access.log\"\n"
    );
    let c = parse(&table).unwrap().server.access_log.unwrap();
    assert_eq!(c.format, AccessLogFormat::Text);
    assert_eq!(
        c.fields,
        vec![
            AccessLogField::Status,
            AccessLogField::Context("principal".into())
        ]
    );
    assert_eq!(c.path, Some(PathBuf::from("/etc/wicket/logs/access.log")));
    let twice = format!("{BASE}\n[server.access_log]\nfields = [\"status\", \"status\"]\n");
    let issues = parse(&twice).unwrap_err();
    assert_eq!(issues[0].key, "server.access_log.fields[1]");
}

#[test]
fn telemetry_gets_the_traces_path_and_safe_defaults() {
    let c = parse(&format!(
        "{BASE}\n[telemetry]\notlp_endpoint = \"http://collector:4318\"\n"
    ))
    .unwrap();
    let t = c.telemetry.unwrap();
    assert_eq!(
        t.otlp_endpoint.to_string(),
        "http://collector:4318/v1/traces"
    );
    assert_eq!(t.trust_traceparent, TrustTraceparent::TrustedProxies);
    assert_eq!(t.sample_ratio, 1.0);
    assert!(parse(BASE).unwrap().telemetry.is_none());
}
