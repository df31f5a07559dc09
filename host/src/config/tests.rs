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
    let second = BASE.split("[[routes]]").nth(1).unwrap();
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
