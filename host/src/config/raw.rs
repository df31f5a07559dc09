//! The TOML file as written, before validation. Every struct denies unknown keys so a typo is
//! an error with a line number rather than a silently ignored setting; values that later checks
//! may reject keep their span (`Spanned`) so those errors can point at them too.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: Spanned<RawServer>,
    #[serde(default)]
    pub state: Option<Spanned<RawState>>,
    /// `[usage]`: requests per API key and plan (`GET /admin/usage`).
    pub usage: Option<Spanned<RawUsage>>,
    #[serde(default)]
    pub runtime: Option<Spanned<RawRuntime>>,
    #[serde(default)]
    pub plugins: BTreeMap<String, Spanned<RawPlugin>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    pub openapi: Option<Spanned<RawOpenApi>>,
    pub portal: Option<Spanned<RawPortal>>,
    #[serde(default)]
    pub stages: BTreeMap<String, Spanned<RawStage>>,
    pub telemetry: Option<Spanned<RawTelemetry>>,
}

/// `[telemetry]`: OpenTelemetry traces exported over OTLP/HTTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub otlp_endpoint: Spanned<String>,
    pub service_name: Option<Spanned<String>>,
    pub sample_ratio: Option<Spanned<f64>>,
    pub trust_client_traceparent: Option<Spanned<String>>,
    pub queue_spans: Option<Spanned<i64>>,
    pub batch_spans: Option<Spanned<i64>>,
    pub export_interval_ms: Option<Spanned<i64>>,
    pub export_timeout_ms: Option<Spanned<i64>>,
    pub headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// `access_log = true | false`, or a `[server.access_log]` table.
#[derive(Debug)]
pub enum RawAccessLogSetting {
    Enabled(bool),
    Table(RawAccessLog),
}

/// `[server.access_log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    pub enabled: Option<bool>,
    pub format: Option<Spanned<String>>,
    pub fields: Option<Vec<Spanned<String>>>,
    pub path: Option<Spanned<String>>,
    pub buffer_lines: Option<Spanned<i64>>,
}

impl<'de> Deserialize<'de> for RawAccessLogSetting {
    /// By hand rather than `#[serde(untagged)]`: an untagged enum replaces the table's own
    /// errors (an unknown key, with its place) by "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawAccessLogSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, or a table")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawAccessLogSetting::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let table =
                    RawAccessLog::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawAccessLogSetting::Table(table))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[openapi]`: what the exported document says about the API as a whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenApi {
    pub title: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub servers: Option<Vec<Spanned<String>>>,
}

/// `[portal]`: the developer portal and `GET /openapi.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortal {
    pub path: Spanned<String>,
}

/// `[plugins.NAME.openapi]`: what a plugin adds to the operations of its routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginOpenApi {
    pub operation: Option<toml::Table>,
    pub security_scheme: Option<toml::Table>,
    pub schemas: Option<toml::Table>,
}

/// `[stages.NAME]`: where a stage is served and the values its plugins' configs may use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub base_path: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    #[serde(default)]
    pub variables: BTreeMap<String, Spanned<String>>,
    /// Filters every route of the stage runs first (its throttling, say).
    #[serde(default)]
    pub plugins: Vec<Spanned<String>>,
    pub canary: Option<Spanned<RawCanary>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    pub percent: Spanned<f64>,
    pub stage: Spanned<String>,
    /// `header:NAME`: a caller keeps its side, by a hash of that header.
    pub sticky: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Spanned<String>,
    pub admin: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub max_header_bytes: Option<Spanned<i64>>,
    pub header_read_timeout_ms: Option<Spanned<i64>>,
    pub request_timeout_ms: Option<Spanned<i64>>,
    pub stream_idle_timeout_ms: Option<Spanned<i64>>,
    pub runtime: Option<Spanned<String>>,
    pub workers: Option<Spanned<i64>>,
    pub max_request_bytes: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub access_log: Option<Spanned<RawAccessLogSetting>>,
    pub tls: Option<Spanned<RawTls>>,
    pub tls_handshake_timeout_ms: Option<Spanned<i64>>,
    pub idle_timeout_ms: Option<Spanned<i64>>,
    pub drain_timeout_ms: Option<Spanned<i64>>,
    pub merge_slashes: Option<bool>,
    pub path_semicolons: Option<Spanned<String>>,
    /// CIDRs (`10.0.0.0/8`) or single addresses whose forwarding headers are believed.
    pub trusted_proxies: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub backend: Option<Spanned<String>>,
    pub redis_url: Option<Spanned<String>>,
    pub redis_timeout_ms: Option<Spanned<i64>>,
    pub memory_kv_bytes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsage {
    pub enabled: Option<bool>,
    pub retention_days: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// Where compiled plugins are cached; `false`-like empty string disables the cache.
    pub cache_dir: Option<Spanned<String>>,
    pub epoch_tick_ms: Option<Spanned<i64>>,
    pub max_instances: Option<Spanned<i64>>,
    /// Deployed configs kept for rollback.
    pub history: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    pub builtin: Option<Spanned<String>>,
    pub wasm: Option<Spanned<String>>,
    #[serde(default)]
    pub grants: Option<Spanned<Vec<Spanned<String>>>>,
    pub isolation: Option<Spanned<String>>,
    pub pool_size: Option<Spanned<i64>>,
    pub max_uses: Option<Spanned<i64>>,
    pub cpu_ms: Option<Spanned<i64>>,
    pub memory_mb: Option<Spanned<i64>>,
    pub config: Option<Spanned<SpannedTable>>,
    /// Config keys whose values come from files: `.json` files as JSON, others as text.
    pub config_files: Option<BTreeMap<String, Spanned<String>>>,
    pub allowed_hosts: Option<Vec<Spanned<String>>>,
    pub openapi: Option<Spanned<RawPluginOpenApi>>,
}

/// A plugin's `config` table, each top-level key with its place in the file so a key the
/// plugin does not take can be pointed at.
pub type SpannedTable = BTreeMap<Spanned<String>, toml::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<Spanned<String>>,
    pub methods: Option<Vec<Spanned<String>>>,
    pub host: Option<Spanned<String>>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub plugins: Vec<Spanned<String>>,
    pub integration: Spanned<String>,
    /// Upgrade requests become WebSocket connections to the integration's upstream.
    #[serde(default)]
    pub websocket: bool,
    /// The stages the route is deployed to; all of them when absent.
    pub stages: Option<Vec<Spanned<String>>>,
}
