//! `wicket plugin test`: one request through one plugin, outside any gateway config, with
//! what the plugin did laid out for its author: the verdict, the request as the next step
//! would see it, the response, what it wrote to the context, and its log lines. It runs the
//! plugin through the gateway's own runtime and load checks (`Runtime::load`: grants, config
//! keys, `check-config`, `plan`), so a plugin that passes here loads the same way in a
//! gateway; only the route around it is missing. A filter's request goes on to a stand-in
//! integration answering `--status` with an empty body, so `on-response` runs too.

use crate::body::Body;
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use crate::config::GatewayConfig;
use crate::error::{rescue, GatewayError};
use crate::runtime::{Plugin, PluginError, Runtime, Verdict};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The plugin and how it is configured.
pub struct Setup {
    pub wasm: PathBuf,
    /// Its `config` table.
    pub config: toml::Table,
    pub grants: Vec<String>,
    /// `request` (default for a component file) or `pooled`.
    pub isolation: Option<String>,
    pub cpu_ms: Option<i64>,
    pub memory_mb: Option<i64>,
    /// Origins it may call with `wasi:http` (`allowed_hosts`).
    pub allowed_hosts: Vec<String>,
}

/// The request to send through it.
pub struct TestRequest {
    pub method: String,
    /// Path, with an optional `?query`.
    pub path: String,
    pub headers: Vec<String>,
    pub body: Vec<u8>,
    /// What the stand-in integration answers a filter's request with.
    pub status: u16,
}

/// The name the plugin gets: the file's stem, reduced to what a config key and a log field
/// take.
fn plugin_name(wasm: &Path) -> String {
    let stem = wasm
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "plugin".into()
    } else {
        name
    }
}

/// `key=value` from the command line: the value as TOML (`5`, `true`, `["a"]`, `{ a = 1 }`)
/// when it parses as one, else the text as a string; `a.b=1` sets `b` in table `a`.
pub fn set_config(table: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let Some((key, value)) = assignment.split_once('=') else {
        return Err(format!("--config {assignment:?}: write KEY=VALUE"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("--config {assignment:?}: the key is empty"));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(value.to_string())),
        Err(_) => toml::Value::String(value.to_string()),
    };
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut at = table;
    for part in parts {
        let entry = at
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("--config {assignment:?}: {part} is not a table")),
        };
    }
    at.insert(last.to_string(), value);
    Ok(())
}

/// The one-plugin config `Runtime::load` checks the plugin against, written as TOML so that
/// every setting goes through the same validation as in a gateway config.
fn config_text(name: &str, setup: &Setup) -> Result<String, String> {
    let wasm = std::path::absolute(&setup.wasm).map_err(|e| e.to_string())?;
    let mut plugin = toml::Table::new();
    plugin.insert("wasm".into(), wasm.display().to_string().into());
    plugin.insert("config".into(), setup.config.clone().into());
    if !setup.grants.is_empty() {
        plugin.insert("grants".into(), setup.grants.clone().into());
    }
    if let Some(i) = &setup.isolation {
        plugin.insert("isolation".into(), i.clone().into());
    }
    if let Some(ms) = setup.cpu_ms {
        plugin.insert("cpu_ms".into(), ms.into());
    }
    if let Some(mb) = setup.memory_mb {
        plugin.insert("memory_mb".into(), mb.into());
    }
    if !setup.allowed_hosts.is_empty() {
        plugin.insert("allowed_hosts".into(), setup.allowed_hosts.clone().into());
    }
    let mut plugins = toml::Table::new();
    plugins.insert(name.to_string(), plugin.into());
    let mut server = toml::Table::new();
    server.insert("listen".into(), "127.0.0.1:0".into());
    let mut root = toml::Table::new();
    root.insert("server".into(), server.into());
    root.insert("plugins".into(), plugins.into());
    toml::to_string(&root).map_err(|e| e.to_string())
}

/// Load the plugin as a gateway would, or say why it does not load.
pub async fn load(setup: &Setup) -> Result<(Runtime, Arc<Plugin>), Vec<String>> {
    let name = plugin_name(&setup.wasm);
    let text = config_text(&name, setup).map_err(|e| vec![e])?;
    let origin = Path::new("(wicket plugin test)");
    let config = GatewayConfig::parse(origin, &text).map_err(|e| match e {
        crate::config::ConfigError::Invalid(issues) => issues
            .into_iter()
            .map(|i| format!("{}: {}", i.key, i.message))
            .collect(),
        other => vec![other.to_string()],
    })?;
    let services = crate::deploy::services(&config, None).map_err(|e| vec![e.to_string()])?;
    let runtime = Runtime::new(&config, services).map_err(|e| vec![format!("{e:#}")])?;
    let spec = &config.plugins[0];
    let loaded = match runtime.compile(spec) {
        Ok(component) => runtime.load(spec, component).await,
        Err(e) => Err(e),
    };
    match loaded {
        Ok(plugin) => Ok((runtime, Arc::new(plugin))),
        Err(errors) => Err(errors
            .into_iter()
            .map(|e| format!("{}: {}", e.key, e.message))
            .collect()),
    }
}

/// What happened to the request.
pub struct Outcome {
    pub kind: &'static str,
    /// `continue`, `respond` (the filter answered), `refuse` (the filter's own error answer),
    /// `answer` (an integration's response), or `failed` (a trap, the CPU time or memory
    /// limit: the gateway answers 500).
    pub verdict: &'static str,
    /// The request as the next step sees it (after `on-request`).
    pub request: Option<(String, String, Option<String>, HeaderMap)>,
    /// The response the client gets.
    pub response: Option<(StatusCode, HeaderMap, Bytes)>,
    pub context_before: Vec<(String, String)>,
    pub context_after: Vec<(String, String)>,
    /// Why the plugin failed, or the error it answered with.
    pub error: Option<String>,
}

const REQUEST_ID: &str = "plugin-test";

/// Send `req` through `plugin`.
pub async fn run(plugin: &Arc<Plugin>, req: &TestRequest) -> Result<Outcome, String> {
    let request = request_data(req)?;
    let answer = StatusCode::from_u16(req.status)
        .map_err(|_| format!("--status {}: not an HTTP status", req.status))?;
    let mut ctx = ContextData::default();
    ctx.set("request_id", REQUEST_ID);
    ctx.set("route", "plugin-test");
    ctx.set("client_ip", "127.0.0.1");
    let mut outcome = Outcome {
        kind: if plugin.is_filter() {
            "filter"
        } else {
            "integration"
        },
        verdict: "failed",
        request: None,
        response: None,
        context_before: pairs(&ctx),
        context_after: Vec::new(),
        error: None,
    };
    let (req, resp, ctx) = if plugin.is_filter() {
        let out = match plugin.on_request(REQUEST_ID, request, ctx).await {
            Ok(out) => out,
            Err(e) => return Ok(failed(outcome, e)),
        };
        let (req, ctx) = (out.req, out.ctx);
        outcome.request = Some(shown(&req));
        let resp = match out.verdict {
            Verdict::Continue => {
                outcome.verdict = "continue";
                ResponseData::new(answer)
            }
            Verdict::Respond(resp) => {
                outcome.verdict = "respond";
                resp
            }
            Verdict::Refuse(e) => {
                outcome.verdict = "refuse";
                outcome.error = Some(e.to_string());
                outcome.context_after = pairs(&ctx);
                outcome.response = Some(whole(rescue(&GatewayError::Plugin(e), REQUEST_ID)).await);
                return Ok(outcome);
            }
        };
        match plugin
            .on_response(REQUEST_ID, out.lease, req, resp, ctx)
            .await
        {
            Ok(parts) => parts,
            Err(e) => return Ok(failed(outcome, e)),
        }
    } else {
        match plugin.handle(REQUEST_ID, request, ctx).await {
            Ok((req, ctx, Ok(resp))) => {
                outcome.verdict = "answer";
                outcome.request = Some(shown(&req));
                (req, resp, ctx)
            }
            Ok((req, ctx, Err(e))) => {
                outcome.verdict = "refuse";
                outcome.request = Some(shown(&req));
                outcome.error = Some(e.to_string());
                let resp = rescue(&GatewayError::Plugin(e), REQUEST_ID);
                (req, resp, ctx)
            }
            Err(e) => return Ok(failed(outcome, e)),
        }
    };
    let _ = req;
    outcome.context_after = pairs(&ctx);
    outcome.response = Some(whole(resp).await);
    Ok(outcome)
}

/// The outcome of a call that failed: the gateway's own answer, and why.
fn failed(mut outcome: Outcome, e: PluginError) -> Outcome {
    outcome.verdict = "failed";
    outcome.error = Some(e.to_string());
    let resp = rescue(&GatewayError::Plugin(e), REQUEST_ID);
    let body = resp.body.as_full().cloned().unwrap_or_default();
    outcome.response = Some((resp.status, resp.headers, body));
    outcome
}

fn request_data(req: &TestRequest) -> Result<RequestData, String> {
    let method = Method::from_bytes(req.method.as_bytes())
        .map_err(|_| format!("--method {:?}: not an HTTP method", req.method))?;
    let (path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (req.path.clone(), None),
    };
    if !path.starts_with('/') {
        return Err(format!("--path {path:?}: a path starts with '/'"));
    }
    let mut headers = HeaderMap::new();
    for h in &req.headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!("-H {h:?}: write 'NAME: VALUE'"));
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("-H {h:?}: not a header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("-H {h:?}: not a header value"))?;
        headers.append(name, value);
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    Ok(RequestData {
        method,
        path,
        query,
        headers,
        body: Body::Full(Bytes::from(req.body.clone())),
        client_addr: ([127, 0, 0, 1], 0).into(),
        scheme: "http",
        host,
    })
}

fn shown(req: &RequestData) -> (String, String, Option<String>, HeaderMap) {
    (
        req.method.to_string(),
        req.path.clone(),
        req.query.clone(),
        req.headers.clone(),
    )
}

fn pairs(ctx: &ContextData) -> Vec<(String, String)> {
    ctx.keys()
        .map(|k| (k.to_string(), ctx.get(k).unwrap_or_default().to_string()))
        .collect()
}

/// The response with its body read (a plugin's own bodies are whole already; a
/// `wasi:http` handler's may stream), bounded by the default `max_body_bytes`.
async fn whole(mut resp: ResponseData) -> (StatusCode, HeaderMap, Bytes) {
    let body = match resp
        .body
        .buffer(crate::config::DEFAULT_MAX_BODY_BYTES)
        .await
    {
        Ok(b) => b.clone(),
        Err(e) => Bytes::from(format!("(body not readable: {e})")),
    };
    (resp.status, resp.headers, body)
}

/// The context keys the plugin set, changed or removed, as (key, old, new).
pub fn context_writes(outcome: &Outcome) -> Vec<(String, Option<String>, Option<String>)> {
    let before = &outcome.context_before;
    let after = &outcome.context_after;
    let find = |list: &[(String, String)], k: &str| {
        list.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut writes = Vec::new();
    for (k, v) in after {
        let old = find(before, k);
        if old.as_deref() != Some(v.as_str()) {
            writes.push((k.clone(), old, Some(v.clone())));
        }
    }
    if outcome.verdict != "failed" {
        for (k, v) in before {
            if find(after, k).is_none() {
                writes.push((k.clone(), Some(v.clone()), None));
            }
        }
    }
    writes
}

/// One log line the plugin caused (its `log` calls, its stdout and stderr, and the host's
/// lines about it: a trap, an ungranted call).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
    /// `stdout` or `stderr` for the plugin's output, absent for `log` and the host's lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

/// A tracing layer that keeps every event for the report (the command's stderr gets only
/// warnings, unless RUST_LOG says otherwise).
#[derive(Clone, Default)]
pub struct LogCapture {
    pub lines: Arc<Mutex<Vec<LogLine>>>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogCapture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        #[derive(Default)]
        struct Fields {
            message: String,
            stream: Option<String>,
            extra: Vec<String>,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "message" => self.message = value.to_string(),
                    "stream" => self.stream = Some(value.to_string()),
                    "plugin" | "request_id" => {}
                    other => self.extra.push(format!("{other}={value}")),
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.record_str(field, &format!("{value:?}"));
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        if !fields.extra.is_empty() {
            message = format!("{message} ({})", fields.extra.join(", "));
        }
        self.lines.lock().unwrap().push(LogLine {
            level: event.metadata().level().as_str().to_ascii_lowercase(),
            message,
            stream: fields.stream,
        });
    }
}

/// The report as one JSON document (`--json`).
pub fn to_json(outcome: &Outcome, logs: &[LogLine]) -> Value {
    let headers = |h: &HeaderMap| -> Vec<Value> {
        h.iter()
            .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
            .collect()
    };
    let writes: Vec<Value> = context_writes(outcome)
        .into_iter()
        .map(|(k, old, new)| json!({ "key": k, "old": old, "new": new }))
        .collect();
    json!({
        "kind": outcome.kind,
        "verdict": outcome.verdict,
        "error": outcome.error,
        "request": outcome.request.as_ref().map(|(m, p, q, h)| json!({
            "method": m, "path": p, "query": q, "headers": headers(h),
        })),
        "response": outcome.response.as_ref().map(|(s, h, b)| json!({
            "status": s.as_u16(), "headers": headers(h), "body": String::from_utf8_lossy(b),
        })),
        "context": outcome.context_after.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "context_writes": writes,
        "logs": logs,
    })
}

/// The report for a person.
pub fn render(outcome: &Outcome, logs: &[LogLine]) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("{}: {}", outcome.kind, outcome.verdict));
    if let Some(e) = &outcome.error {
        line(format!("  error: {e}"));
    }
    if let Some((method, path, query, headers)) = &outcome.request {
        let q = query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        line(format!(
            "request (as the next step sees it): {method} {path}{q}"
        ));
        for (k, v) in headers {
            line(format!("  {k}: {}", String::from_utf8_lossy(v.as_bytes())));
        }
    }
    if let Some((status, headers, body)) = &outcome.response {
        line(format!("response: {}", status.as_u16()));
        for (k, v) in headers {
            line(format!("  {k}: {}", String::from_utf8_lossy(v.as_bytes())));
        }
        if !body.is_empty() {
            let text = String::from_utf8_lossy(body);
            let shown: String = text.chars().take(2000).collect();
            line(format!("  body: {shown}"));
        }
    }
    let writes = context_writes(outcome);
    if writes.is_empty() {
        line("context: no writes".to_string());
    } else {
        line("context writes:".to_string());
        for (k, old, new) in writes {
            match (old, new) {
                (None, Some(v)) => line(format!("  + {k} = {v:?}")),
                (Some(o), Some(v)) => line(format!("  ~ {k} = {v:?} (was {o:?})")),
                (Some(o), None) => line(format!("  - {k} (was {o:?})")),
                (None, None) => {}
            }
        }
    }
    if logs.is_empty() {
        line("logs: none".to_string());
    } else {
        line("logs:".to_string());
        for l in logs {
            let stream = l
                .stream
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            line(format!("  {}{stream}: {}", l.level, l.message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_toml_or_text() {
        let mut t = toml::Table::new();
        for a in [
            "n=5",
            "b=true",
            "s=hello world",
            "list=[\"a\", \"b\"]",
            "deep.key=x",
            "q=\"5\"",
        ] {
            set_config(&mut t, a).unwrap();
        }
        assert_eq!(t["n"].as_integer(), Some(5));
        assert_eq!(t["b"].as_bool(), Some(true));
        assert_eq!(t["s"].as_str(), Some("hello world"));
        assert_eq!(t["list"].as_array().map(Vec::len), Some(2));
        assert_eq!(t["deep"]["key"].as_str(), Some("x"));
        assert_eq!(t["q"].as_str(), Some("5"));
        assert!(set_config(&mut t, "novalue").is_err());
        assert!(set_config(&mut t, "=x").is_err());
        assert!(set_config(&mut t, "n.x=1").is_err());
    }

    #[test]
    fn names_come_from_the_file() {
        assert_eq!(plugin_name(Path::new("/a/my plugin.wasm")), "my-plugin");
        assert_eq!(plugin_name(Path::new("x_y.wasm")), "x_y");
    }
}
