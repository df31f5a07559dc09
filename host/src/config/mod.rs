//! Gateway configuration: the TOML file is parsed once into the validated types below, and
//! nothing downstream looks at raw TOML again. Every problem names the file, line, column and
//! key, and validation reports all problems it finds, not only the first.

mod api;
mod capability;
mod origin;
mod raw;
mod stages;
mod telemetry;

pub use api::{ApiInfo, PluginOpenApi, PortalConfig, OPENAPI_JSON_PATH};
pub use capability::Capability;
pub use telemetry::{
    AccessLogConfig, AccessLogField, AccessLogFormat, TelemetryConfig, TrustTraceparent,
};

use crate::canonical::{authority, PathRules, Semicolons};
use crate::forwarded::TrustedProxies;
use crate::router::PathTemplate;
use http::Method;
pub use origin::Origin;
use raw::{RawConfig, RawPlugin, RawRoute, RawServer};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// A whole, validated gateway configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The file it came from; relative paths in it were resolved against its directory.
    pub source: PathBuf,
    pub server: ServerConfig,
    pub state: StateConfig,
    /// `[usage]`: requests per API key and plan, per day.
    pub usage: UsageConfig,
    pub runtime: RuntimeConfig,
    /// Plugin instances, in name order; routes refer to them by index.
    pub plugins: Vec<PluginSpec>,
    pub routes: Vec<RouteSpec>,
    /// `[openapi]`: the exported document's title, version and servers.
    pub openapi: ApiInfo,
    /// `[portal]`: `None` serves neither the portal nor `/openapi.json`.
    pub portal: Option<PortalConfig>,
    /// `[stages.*]`, in name order; empty when the config has none.
    pub stages: Vec<StageSpec>,
    /// `[telemetry]`: `None` records no trace.
    pub telemetry: Option<TelemetryConfig>,
    /// Every file the config reads besides itself (plugin components, `config_files`, TLS
    /// certificate and key): what `wicket run --watch` watches, and what the config's hash
    /// covers.
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub max_body_bytes: usize,
    /// Request line and headers together; past it the pipeline answers a JSON 431.
    pub max_header_bytes: usize,
    /// From accept to the end of the first request's head (TLS handshake and protocol
    /// detection included); for HTTP/1.1 also each later request's head.
    pub header_read_timeout: Duration,
    /// Until the response head: a streamed body may take longer (see `stream_idle_timeout`).
    pub request_timeout: Duration,
    /// A streamed body (upload, download, SSE) that sends nothing for this long is cut.
    pub stream_idle_timeout: Duration,
    /// How requests are scheduled on the cores.
    pub runtime: RuntimeShape,
    /// A streamed upload past this many bytes is cut with 413; `None`: no bound on streams
    /// (buffered bodies are bounded by `max_body_bytes` whatever this says).
    pub max_request_bytes: Option<u64>,
    pub max_connections: usize,
    /// `None`: no access log (`access_log = false`).
    pub access_log: Option<AccessLogConfig>,
    pub tls: Option<TlsConfig>,
    pub tls_handshake_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// On `SIGTERM`, how long requests in flight may take to finish before the process exits.
    pub drain_timeout: Duration,
    /// How request paths are made canonical (`merge_slashes`, `path_semicolons`).
    pub path_rules: PathRules,
    pub trusted_proxies: TrustedProxies,
}

/// How the server uses the machine's cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeShape {
    /// One single-threaded runtime per worker, each accepting on its own `SO_REUSEPORT`
    /// listener: a request lives on one thread from accept to answer (nginx's and Envoy's
    /// shape); no cross-thread wake-ups.
    PerCore { workers: usize },
    /// One work-stealing runtime over all cores: busy connections spread, at the cost of
    /// wake-ups across threads.
    MultiThread { workers: usize },
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Where `[server.tls]` is written, for problems found reading the files.
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    Memory {
        kv_bytes: usize,
    },
    /// `timeout` bounds every Redis operation, connecting included.
    Redis {
        url: String,
        timeout: Duration,
    },
}

/// `[usage]`: whether requests are counted per principal and usage plan (`usage.rs`), and
/// how many days the counts are kept (also the longest range one query may ask for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageConfig {
    pub enabled: bool,
    pub retention_days: u32,
}

impl Default for UsageConfig {
    fn default() -> UsageConfig {
        UsageConfig {
            enabled: true,
            retention_days: 90,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub cache_dir: Option<PathBuf>,
    pub epoch_tick: Duration,
    pub max_instances: u32,
    /// How many deployed configs are kept for `POST /admin/rollback` (the running one
    /// included).
    pub history: usize,
}

impl Default for RuntimeConfig {
    /// What a config without `[runtime]` gets.
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: default_cache_dir(),
            epoch_tick: Duration::from_millis(2),
            max_instances: 1000,
            history: 10,
        }
    }
}

/// Where a plugin's component comes from. Whether a built-in of that name exists is the
/// runtime's to say, when it loads the plugin (config knows nothing of the plugins).
#[derive(Debug, Clone)]
pub enum PluginSource {
    Builtin(String),
    Wasm(PathBuf),
}

/// How a plugin's instances live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A fresh instance for every request: nothing a plugin does survives the request.
    Request,
    /// Warm instances reused across requests, at most `size` idle, each retired after
    /// `max_uses` calls or after any failure.
    Pooled { size: usize, max_uses: u64 },
}

#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub name: String,
    pub source: PluginSource,
    pub grants: BTreeSet<Capability>,
    pub isolation: Isolation,
    /// Wall time a call may spend running guest code (host I/O not counted).
    pub cpu_limit: Duration,
    pub memory_limit: usize,
    /// The plugin's `config` table as JSON, handed to it by the `config` capability.
    pub config_json: String,
    /// Where the plugin is defined, so later load errors (grants, exports) can point at it.
    pub location: Location,
    /// Where its `config` table is (its definition when it has none).
    pub config_location: Location,
    /// Where `builtin` or `wasm` is written.
    pub source_location: Location,
    /// The keys of its `config` table (and `config_files`), each with where it is written, for
    /// checking them against the keys the plugin declares.
    pub config_keys: Vec<(String, Location)>,
    /// Origins the plugin may call with `wasi:http/outgoing-handler` (none by default).
    pub allowed_hosts: Vec<Origin>,
    /// What it adds to the exported OpenAPI document (`[plugins.NAME.openapi]`).
    pub openapi: PluginOpenApi,
    /// Its config uses `${stage.*}`: only its copies per stage (`NAME@STAGE`) are loaded.
    pub per_stage: bool,
}

/// A stage: a deployment of the routes under a base path or host, with its own variables.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub base_path: Option<String>,
    pub host: Option<String>,
    /// `${stage.NAME}` in a plugin's config becomes the value here.
    pub variables: std::collections::BTreeMap<String, String>,
    /// Filters (indices into `GatewayConfig::plugins`) every route of the stage runs before
    /// its own: the stage's defaults, such as its throttling.
    pub plugins: Vec<(usize, Location)>,
    pub location: Location,
}

/// Part of a stage's traffic served by another stage's route for the same requests.
#[derive(Debug, Clone)]
pub struct RouteCanary {
    /// Share of requests in hundredths of a percent (0..=10000).
    pub basis_points: u32,
    /// A caller (by this header's value) always lands on the same side.
    pub sticky: Option<http::HeaderName>,
    /// Index in `GatewayConfig::routes` of the route that serves the canary side.
    pub route: usize,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub name: String,
    /// The stage this copy of the route serves (`None` in a config without stages).
    pub stage: Option<String>,
    /// Stages named by the route's `stages` (all when empty), as written.
    pub stage_names: Vec<(String, Location)>,
    pub canary: Option<RouteCanary>,
    /// The path's shape as written, before a stage's base path: what a canary matches on.
    pub relative_shape: String,
    /// `None` accepts any method.
    pub methods: Option<Vec<Method>>,
    pub host: Option<String>,
    pub path: PathTemplate,
    /// Indices into `GatewayConfig::plugins`, with where each is named.
    pub plugins: Vec<(usize, Location)>,
    pub integration: (usize, Location),
    /// Upgrade requests (`Upgrade: websocket`) are admitted by the filters, then spliced to
    /// the integration's planned forward.
    pub websocket: bool,
    /// The route's index in the file, for keys like `routes[2].integration`.
    pub index: usize,
    pub location: Location,
}

/// A place in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{location}: {key}: {message}")]
pub struct ConfigIssue {
    pub location: Location,
    /// The dotted key the problem is about, e.g. `routes[0].plugins[1]`.
    pub key: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render_issues(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn render_issues(issues: &[ConfigIssue]) -> String {
    let lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// API Gateway allows 10,240 bytes of request line and headers; we default to more because
/// real clients (cookies, JWTs) pass that, and make it configurable.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
pub const DEFAULT_CPU_MS: i64 = 100;
pub const DEFAULT_MEMORY_MB: i64 = 64;

impl GatewayConfig {
    /// Read and validate the config file at `path`.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validate `text`, which came from `path` (used for messages and relative paths).
    pub fn parse(path: &Path, text: &str) -> Result<GatewayConfig, ConfigError> {
        match Self::parse_lenient(path, text)? {
            (config, issues) if issues.is_empty() => Ok(config),
            (_, issues) => Err(ConfigError::Invalid(issues)),
        }
    }

    /// Read `path` and validate it as far as it goes: the config built from what is valid,
    /// with the problems found. `wicket check` loads the plugins of an invalid config too, so
    /// that one run reports every problem, the plugins' own (config keys) included.
    pub fn load_lenient(path: &Path) -> Result<(GatewayConfig, Vec<ConfigIssue>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_lenient(path, &text)
    }

    /// See `load_lenient`. Only a TOML syntax error is an `Err`.
    pub fn parse_lenient(
        path: &Path,
        text: &str,
    ) -> Result<(GatewayConfig, Vec<ConfigIssue>), ConfigError> {
        let file = Locator {
            file: path.to_path_buf(),
            text,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ConfigError::Invalid(vec![ConfigIssue {
                location: file.locate(&span),
                key: key_at(text, &span),
                message: e.message().trim().to_string(),
            }])
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut v = Validator {
            file,
            base,
            issues: Vec::new(),
            inputs: Vec::new(),
        };
        let config = v.config(raw);
        Ok((config, v.issues))
    }

    pub fn plugin_index(&self, name: &str) -> Option<usize> {
        self.plugins.iter().position(|p| p.name == name)
    }
}

/// Turns byte spans into line and column numbers.
struct Locator<'a> {
    file: PathBuf,
    text: &'a str,
}

impl Locator<'_> {
    fn locate(&self, span: &Range<usize>) -> Location {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = start - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }
}

/// The key a parse error points at, for errors that come from the TOML parser itself.
fn key_at(text: &str, span: &Range<usize>) -> String {
    let start = span.start.min(text.len());
    let end = span.end.min(text.len()).max(start);
    let snippet = text[start..end].trim();
    let snippet: String = snippet.chars().take(60).collect();
    if snippet.is_empty() {
        "(file)".to_string()
    } else {
        snippet
    }
}

struct Validator<'a> {
    file: Locator<'a>,
    base: PathBuf,
    issues: Vec<ConfigIssue>,
    /// The files read besides the config (`GatewayConfig::inputs`).
    inputs: Vec<PathBuf>,
}

impl Validator<'_> {
    fn issue(&mut self, span: &Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            location: self.file.locate(span),
            key: key.into(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> GatewayConfig {
        let server = self.server(raw.server);
        let state = self.state(raw.state);
        let usage = self.usage(raw.usage);
        let runtime = self.runtime(raw.runtime);
        let plugins: Vec<PluginSpec> = raw
            .plugins
            .into_iter()
            .filter_map(|(name, p)| self.plugin(name, p))
            .collect();
        let names: HashMap<&str, usize> = plugins
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        let mut route_names = HashMap::new();
        let mut routes = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            if let Some(route) = self.route(i, r, &names, server.path_rules) {
                if let Some(prev) = route_names.insert(route.name.clone(), i) {
                    let msg = format!("route name {:?} is also used by routes[{prev}]", route.name);
                    self.issues.push(ConfigIssue {
                        location: route.location.clone(),
                        key: format!("routes[{i}].name"),
                        message: msg,
                    });
                }
                routes.push(route);
            }
        }
        let mut plugins = plugins;
        let (stages, routes) = self.stages(raw.stages, &mut plugins, routes, server.path_rules);
        self.overlapping_routes(&routes);
        GatewayConfig {
            source: self.file.file.clone(),
            server,
            state,
            usage,
            runtime,
            plugins,
            routes,
            openapi: self.api_info(raw.openapi),
            portal: self.portal(raw.portal),
            telemetry: self.telemetry(raw.telemetry),
            stages,
            inputs: std::mem::take(&mut self.inputs),
        }
    }

    fn positive(&mut self, v: &Option<Spanned<i64>>, key: &str, default: i64, max: i64) -> i64 {
        match v {
            None => default,
            Some(s) if *s.get_ref() >= 1 && *s.get_ref() <= max => *s.get_ref(),
            Some(s) => {
                let msg = format!("must be between 1 and {max}, got {}", s.get_ref());
                self.issue(&s.span(), key, msg);
                default
            }
        }
    }

    fn addr(&mut self, s: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        match s.get_ref().parse() {
            Ok(a) => Some(a),
            Err(_) => {
                let msg = format!(
                    "{:?} is not an IP address and port, e.g. \"127.0.0.1:8080\"",
                    s.get_ref()
                );
                self.issue(&s.span(), key, msg);
                None
            }
        }
    }

    fn server(&mut self, raw: Spanned<RawServer>) -> ServerConfig {
        let raw = raw.into_inner();
        let listen = self
            .addr(&raw.listen, "server.listen")
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let admin = raw
            .admin
            .as_ref()
            .and_then(|a| self.addr(a, "server.admin"));
        let tls = raw.tls.map(|t| {
            let location = self.file.locate(&t.span());
            let t = t.into_inner();
            TlsConfig {
                location,
                cert: self.existing_file(&t.cert, "server.tls.cert"),
                key: self.existing_file(&t.key, "server.tls.key"),
            }
        });
        let max_body = DEFAULT_MAX_BODY_BYTES as i64;
        let max_header = DEFAULT_MAX_HEADER_BYTES as i64;
        ServerConfig {
            listen,
            admin,
            max_body_bytes: self.positive(
                &raw.max_body_bytes,
                "server.max_body_bytes",
                max_body,
                1 << 32,
            ) as usize,
            max_header_bytes: self.positive(
                &raw.max_header_bytes,
                "server.max_header_bytes",
                max_header,
                16 << 20,
            ) as usize,
            header_read_timeout: Duration::from_millis(self.positive(
                &raw.header_read_timeout_ms,
                "server.header_read_timeout_ms",
                10_000,
                3_600_000,
            ) as u64),
            request_timeout: Duration::from_millis(self.positive(
                &raw.request_timeout_ms,
                "server.request_timeout_ms",
                30_000,
                3_600_000,
            ) as u64),
            stream_idle_timeout: Duration::from_millis(self.positive(
                &raw.stream_idle_timeout_ms,
                "server.stream_idle_timeout_ms",
                300_000,
                86_400_000,
            ) as u64),
            runtime: {
                let cores = std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1);
                let workers =
                    self.positive(&raw.workers, "server.workers", cores as i64, 1024) as usize;
                match raw
                    .runtime
                    .as_ref()
                    .map(|r| (r.get_ref().as_str(), r.span()))
                {
                    None | Some(("per-core", _)) => RuntimeShape::PerCore { workers },
                    Some(("multi-thread", _)) => RuntimeShape::MultiThread { workers },
                    Some((other, span)) => {
                        let msg = format!(
                            "unknown runtime {other:?}; expected \"per-core\" or \"multi-thread\""
                        );
                        self.issue(&span, "server.runtime", msg);
                        RuntimeShape::PerCore { workers }
                    }
                }
            },
            max_request_bytes: raw.max_request_bytes.as_ref().map(|_| {
                self.positive(
                    &raw.max_request_bytes,
                    "server.max_request_bytes",
                    1,
                    i64::MAX,
                ) as u64
            }),
            max_connections: self.positive(
                &raw.max_connections,
                "server.max_connections",
                10_000,
                1_000_000,
            ) as usize,
            access_log: self.access_log(raw.access_log),
            tls,
            tls_handshake_timeout: Duration::from_millis(self.positive(
                &raw.tls_handshake_timeout_ms,
                "server.tls_handshake_timeout_ms",
                10_000,
                600_000,
            ) as u64),
            idle_timeout: Duration::from_millis(self.positive(
                &raw.idle_timeout_ms,
                "server.idle_timeout_ms",
                60_000,
                86_400_000,
            ) as u64),
            drain_timeout: Duration::from_millis(self.positive(
                &raw.drain_timeout_ms,
                "server.drain_timeout_ms",
                10_000,
                3_600_000,
            ) as u64),
            path_rules: PathRules {
                merge_slashes: raw.merge_slashes.unwrap_or(true),
                semicolons: self.semicolons(raw.path_semicolons.as_ref()),
            },
            trusted_proxies: self.trusted_proxies(raw.trusted_proxies.as_deref()),
        }
    }

    fn semicolons(&mut self, raw: Option<&Spanned<String>>) -> Semicolons {
        match raw.map(|s| (s.get_ref().as_str(), s.span())) {
            None | Some(("reject", _)) => Semicolons::Reject,
            Some(("literal", _)) => Semicolons::Literal,
            Some((other, span)) => {
                let msg = format!("unknown value {other:?}; expected \"reject\" or \"literal\"");
                self.issue(&span, "server.path_semicolons", msg);
                Semicolons::Reject
            }
        }
    }

    /// Each entry is a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (`127.0.0.1`).
    fn trusted_proxies(&mut self, raw: Option<&[Spanned<String>]>) -> TrustedProxies {
        let mut nets = Vec::new();
        for (i, entry) in raw.unwrap_or_default().iter().enumerate() {
            let text = entry.get_ref().trim();
            let parsed = text.parse::<ipnet::IpNet>().or_else(|_| {
                text.parse::<std::net::IpAddr>()
                    .map(ipnet::IpNet::from)
                    .map_err(|_| ())
            });
            match parsed {
                Ok(net) if net.trunc() == net => nets.push(net),
                Ok(net) => {
                    let msg = format!(
                        "{text:?} has host bits set; did you mean {:?}?",
                        net.trunc().to_string()
                    );
                    self.issue(&entry.span(), format!("server.trusted_proxies[{i}]"), msg);
                }
                Err(()) => {
                    let msg = format!(
                        "{text:?} is not an address or CIDR block, e.g. \"10.0.0.0/8\" or \"127.0.0.1\""
                    );
                    self.issue(&entry.span(), format!("server.trusted_proxies[{i}]"), msg);
                }
            }
        }
        TrustedProxies::new(nets)
    }

    fn existing_file(&mut self, s: &Spanned<String>, key: &str) -> PathBuf {
        let path = self.base.join(s.get_ref());
        self.inputs.push(path.clone());
        if !path.is_file() {
            let msg = format!("file {} does not exist", path.display());
            self.issue(&s.span(), key, msg);
        }
        path
    }

    fn state(&mut self, raw: Option<Spanned<raw::RawState>>) -> StateConfig {
        let Some(raw) = raw.map(Spanned::into_inner) else {
            return StateConfig::Memory { kv_bytes: 64 << 20 };
        };
        let kv_bytes = self.positive(
            &raw.memory_kv_bytes,
            "state.memory_kv_bytes",
            64 << 20,
            1 << 40,
        ) as usize;
        let timeout = Duration::from_millis(self.positive(
            &raw.redis_timeout_ms,
            "state.redis_timeout_ms",
            100,
            60_000,
        ) as u64);
        match raw
            .backend
            .as_ref()
            .map(|b| (b.get_ref().as_str(), b.span()))
        {
            None | Some(("memory", _)) => StateConfig::Memory { kv_bytes },
            Some(("redis", span)) => match raw.redis_url {
                Some(url) if url.get_ref().starts_with("redis://") => StateConfig::Redis {
                    url: url.into_inner(),
                    timeout,
                },
                Some(url) => {
                    let msg = format!("{:?} is not a redis:// URL", url.get_ref());
                    self.issue(&url.span(), "state.redis_url", msg);
                    StateConfig::Memory { kv_bytes }
                }
                None => {
                    self.issue(
                        &span,
                        "state.redis_url",
                        "backend \"redis\" needs redis_url",
                    );
                    StateConfig::Memory { kv_bytes }
                }
            },
            Some((other, span)) => {
                let msg = format!("unknown backend {other:?}; expected \"memory\" or \"redis\"");
                self.issue(&span, "state.backend", msg);
                StateConfig::Memory { kv_bytes }
            }
        }
    }

    fn usage(&mut self, raw: Option<Spanned<raw::RawUsage>>) -> UsageConfig {
        let Some(raw) = raw.map(Spanned::into_inner) else {
            return UsageConfig::default();
        };
        UsageConfig {
            enabled: raw.enabled.unwrap_or(true),
            retention_days: self.positive(&raw.retention_days, "usage.retention_days", 90, 400)
                as u32,
        }
    }

    fn runtime(&mut self, raw: Option<Spanned<raw::RawRuntime>>) -> RuntimeConfig {
        let raw = raw.map(Spanned::into_inner);
        let cache_dir = match raw.as_ref().and_then(|r| r.cache_dir.as_ref()) {
            Some(dir) if dir.get_ref().is_empty() => None,
            Some(dir) => Some(self.base.join(dir.get_ref())),
            None => default_cache_dir(),
        };
        let (tick, max, history) = match &raw {
            Some(r) => (
                self.positive(&r.epoch_tick_ms, "runtime.epoch_tick_ms", 2, 1000),
                self.positive(&r.max_instances, "runtime.max_instances", 1000, 100_000),
                self.positive(&r.history, "runtime.history", 10, 1000),
            ),
            None => (2, 1000, 10),
        };
        RuntimeConfig {
            cache_dir,
            epoch_tick: Duration::from_millis(tick as u64),
            max_instances: max as u32,
            history: history as usize,
        }
    }

    fn plugin(&mut self, name: String, raw: Spanned<RawPlugin>) -> Option<PluginSpec> {
        let span = raw.span();
        let location = self.file.locate(&span);
        let raw = raw.into_inner();
        let key = format!("plugins.{name}");
        let (source, source_location) = match (&raw.builtin, &raw.wasm) {
            (Some(b), None) => (
                PluginSource::Builtin(b.get_ref().clone()),
                self.file.locate(&b.span()),
            ),
            (None, Some(w)) => {
                let path = self.base.join(w.get_ref());
                self.inputs.push(path.clone());
                if !path.is_file() {
                    let msg = format!("file {} does not exist", path.display());
                    self.issue(&w.span(), format!("{key}.wasm"), msg);
                }
                (PluginSource::Wasm(path), self.file.locate(&w.span()))
            }
            _ => {
                let msg = "set exactly one of `builtin` and `wasm`";
                self.issue(&span, key, msg);
                return None;
            }
        };
        // A built-in is also granted the capabilities it declares, when it is loaded.
        let mut grants = BTreeSet::from([Capability::Log, Capability::Config]);
        for g in raw.grants.iter().flat_map(|g| g.get_ref()) {
            match Capability::from_name(g.get_ref()) {
                Some(c) => {
                    grants.insert(c);
                }
                None => {
                    let msg = format!(
                        "unknown capability {:?}; capabilities are {}",
                        g.get_ref(),
                        Capability::ALL.map(|c| c.name()).join(", ")
                    );
                    self.issue(&g.span(), format!("{key}.grants"), msg);
                }
            }
        }
        let pool_size = self.positive(&raw.pool_size, &format!("{key}.pool_size"), 16, 10_000);
        let max_uses = self.positive(&raw.max_uses, &format!("{key}.max_uses"), 10_000, i64::MAX);
        let isolation = match raw
            .isolation
            .as_ref()
            .map(|i| (i.get_ref().as_str(), i.span()))
        {
            Some(("request", _)) => Isolation::Request,
            Some(("pooled", _)) => Isolation::Pooled {
                size: pool_size as usize,
                max_uses: max_uses as u64,
            },
            // External plugins get the strongest isolation unless asked otherwise; our own
            // built-ins are trusted to keep no state between requests and run pooled.
            None => match source {
                PluginSource::Builtin(_) => Isolation::Pooled {
                    size: pool_size as usize,
                    max_uses: max_uses as u64,
                },
                PluginSource::Wasm(_) => Isolation::Request,
            },
            Some((other, span)) => {
                let msg =
                    format!("unknown isolation {other:?}; expected \"pooled\" or \"request\"");
                self.issue(&span, format!("{key}.isolation"), msg);
                Isolation::Request
            }
        };
        let cpu_ms = self.positive(
            &raw.cpu_ms,
            &format!("{key}.cpu_ms"),
            DEFAULT_CPU_MS,
            60_000,
        );
        let memory_mb = self.positive(
            &raw.memory_mb,
            &format!("{key}.memory_mb"),
            DEFAULT_MEMORY_MB,
            4096,
        );
        let (table, table_span) = match raw.config {
            Some(c) => {
                let span = c.span();
                (c.into_inner(), span)
            }
            None => (raw::SpannedTable::new(), span.clone()),
        };
        let mut config_keys: Vec<(String, Location)> = table
            .keys()
            .map(|k| (k.get_ref().clone(), self.file.locate(&k.span())))
            .collect();
        let table: toml::Table = table
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v))
            .collect();
        let mut config = serde_json::to_value(&table).expect("a TOML table is valid JSON");
        // Plugins have no filesystem: config values kept in files (a JSON Schema, a key set)
        // are read here, once, and handed over as part of the config.
        for (name, path) in raw.config_files.into_iter().flatten() {
            let file_key = format!("{key}.config_files.{name}");
            if table.contains_key(&name) {
                let msg = format!("{name:?} is set both in `config` and here");
                self.issue(&path.span(), file_key, msg);
                continue;
            }
            let resolved = self.base.join(path.get_ref());
            self.inputs.push(resolved.clone());
            let value = std::fs::read_to_string(&resolved)
                .map_err(|e| format!("cannot read {}: {e}", resolved.display()))
                .and_then(|text| match resolved.extension().and_then(|e| e.to_str()) {
                    Some("json") => serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not valid JSON: {e}", resolved.display())),
                    _ => Ok(serde_json::Value::String(text)),
                });
            config_keys.push((name.clone(), self.file.locate(&path.span())));
            match value {
                Ok(v) => {
                    config[name.as_str()] = v;
                }
                Err(msg) => self.issue(&path.span(), file_key, msg),
            }
        }
        let config_json = config.to_string();
        let config_location = self.file.locate(&table_span);
        let mut allowed_hosts = Vec::new();
        for host in raw.allowed_hosts.iter().flatten() {
            match Origin::parse(host.get_ref()) {
                Ok(o) => allowed_hosts.push(o),
                Err(msg) => self.issue(&host.span(), format!("{key}.allowed_hosts"), msg),
            }
        }
        let openapi = self.plugin_openapi(raw.openapi);
        Some(PluginSpec {
            name,
            source,
            grants,
            isolation,
            cpu_limit: Duration::from_millis(cpu_ms as u64),
            memory_limit: (memory_mb as usize) << 20,
            config_json,
            location,
            config_location,
            source_location,
            config_keys,
            allowed_hosts,
            openapi,
            per_stage: false,
        })
    }

    fn route(
        &mut self,
        i: usize,
        raw: Spanned<RawRoute>,
        plugins: &HashMap<&str, usize>,
        rules: PathRules,
    ) -> Option<RouteSpec> {
        let location = self.file.locate(&raw.span());
        let raw = raw.into_inner();
        let key = format!("routes[{i}]");
        // A template is written in canonical form: requests are matched in that form, so
        // any other spelling could never match.
        let path = match PathTemplate::parse(raw.path.get_ref())
            .and_then(|p| p.check_canonical(rules).map(|()| p))
        {
            Ok(p) => Some(p),
            Err(e) => {
                self.issue(&raw.path.span(), format!("{key}.path"), e.to_string());
                None
            }
        };
        let methods = raw.methods.as_ref().and_then(|ms| {
            let mut out = Vec::new();
            for m in ms {
                let upper = m.get_ref().to_ascii_uppercase();
                if upper == "ANY" || upper == "*" {
                    return None;
                }
                match Method::from_bytes(upper.as_bytes()) {
                    Ok(method) => out.push(method),
                    Err(_) => {
                        let msg = format!("{:?} is not an HTTP method", m.get_ref());
                        self.issue(&m.span(), format!("{key}.methods"), msg);
                    }
                }
            }
            Some(out)
        });
        let lookup =
            |name: &Spanned<String>, k: String, this: &mut Self| -> Option<(usize, Location)> {
                let found = plugins.get(name.get_ref().as_str()).copied();
                if found.is_none() {
                    let msg = format!("plugin {:?} is not defined in [plugins]", name.get_ref());
                    this.issue(&name.span(), k, msg);
                }
                found.map(|i| (i, this.file.locate(&name.span())))
            };
        let mut chain = Vec::new();
        for (j, p) in raw.plugins.iter().enumerate() {
            if let Some(idx) = lookup(p, format!("{key}.plugins[{j}]"), self) {
                chain.push(idx);
            }
        }
        let integration = lookup(&raw.integration, format!("{key}.integration"), self);
        let host = raw.host.and_then(|h| {
            let text = h.get_ref();
            let (wildcard, name) = match text.strip_prefix("*.") {
                Some(rest) => ("*.", rest),
                None => ("", text.as_str()),
            };
            match authority::host_name(name) {
                Some(name) => Some(format!("{wildcard}{name}")),
                None => {
                    let msg = format!(
                        "{text:?} is not a host name such as \"api.example.com\" or \"*.example.com\" (no port)"
                    );
                    self.issue(&h.span(), format!("{key}.host"), msg);
                    None
                }
            }
        });
        let name = raw
            .name
            .map(Spanned::into_inner)
            .unwrap_or_else(|| raw.path.get_ref().clone());
        let relative_shape = path.as_ref().map(PathTemplate::shape).unwrap_or_default();
        Some(RouteSpec {
            name,
            methods,
            host,
            path: path?,
            plugins: chain,
            integration: integration?,
            websocket: raw.websocket,
            stage: None,
            stage_names: raw
                .stages
                .iter()
                .flatten()
                .map(|s| (s.get_ref().clone(), self.file.locate(&s.span())))
                .collect(),
            canary: None,
            relative_shape,
            index: i,
            location,
        })
    }
}

impl Validator<'_> {
    /// Two routes that match the same requests (a common method, the same host, the same
    /// path up to parameter names) leave the later one unreachable for them: a mistake in
    /// the file, reported at both routes' lines.
    fn overlapping_routes(&mut self, routes: &[RouteSpec]) {
        let mut seen: HashMap<(Option<&str>, String), Vec<&RouteSpec>> = HashMap::new();
        for route in routes {
            let key = (route.host.as_deref(), route.path.shape());
            let earlier = seen.entry(key).or_default();
            for other in earlier.iter() {
                let Some(method) = common_method(&other.methods, &route.methods) else {
                    continue;
                };
                let stage = |r: &RouteSpec| {
                    r.stage
                        .as_deref()
                        .map(|s| format!(" (stage {s:?})"))
                        .unwrap_or_default()
                };
                let msg = format!(
                    "matches the same requests ({method} {}{}) as routes[{}]{} at {}; one of them can never be chosen",
                    route.host.as_deref().map(|h| format!("{h} ")).unwrap_or_default(),
                    route.path.as_str(),
                    other.index,
                    stage(other),
                    other.location,
                );
                self.issues.push(ConfigIssue {
                    location: route.location.clone(),
                    key: format!("routes[{}]{}", route.index, stage(route)),
                    message: msg,
                });
            }
            earlier.push(route);
        }
    }
}

/// A method both routes accept (`None` accepting every method), for the message.
fn common_method(a: &Option<Vec<Method>>, b: &Option<Vec<Method>>) -> Option<String> {
    match (a, b) {
        (None, None) => Some("any method".to_string()),
        (None, Some(ms)) | (Some(ms), None) => ms.first().map(ToString::to_string),
        (Some(x), Some(y)) => x.iter().find(|m| y.contains(m)).map(ToString::to_string),
    }
}

/// `$WICKET_CACHE_DIR`, `$XDG_CACHE_HOME/wicket` or `~/.cache/wicket`: compiled plugins are
/// kept there so that start-up does not pay for compiling them again.
fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("WICKET_CACHE_DIR") {
        return Some(PathBuf::from(x));
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("wicket"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("wicket"))
}

#[cfg(test)]
mod tests;
