//! `[server.access_log]` and `[telemetry]`: what each request's access log line says and where
//! it goes, and where its trace spans are exported. Validated here once; the writers and the
//! exporter (`crate::telemetry`) take these types as they are.

use super::raw::{RawAccessLog, RawAccessLogSetting, RawTelemetry};
use super::Validator;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// `[server.access_log]`, or `access_log = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogConfig {
    pub format: AccessLogFormat,
    /// In the order they are written.
    pub fields: Vec<AccessLogField>,
    /// `None`: standard output. A file is opened for appending and reopened on `SIGUSR1`.
    pub path: Option<PathBuf>,
    /// Lines waiting for the writer at most; past it lines are dropped and counted.
    pub buffer_lines: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs (logfmt), values quoted when they need it.
    Text,
}

/// What a field of the access log line says; API Gateway's `$context` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogField {
    /// When the request arrived, RFC 3339 UTC with milliseconds.
    Time,
    RequestId,
    Method,
    /// The canonical path (the raw one for requests refused before it was settled).
    Path,
    /// The query string as received, without `?`.
    Query,
    Route,
    Stage,
    Status,
    /// The request body's length as declared (`Content-Length`) or as read whole.
    BytesIn,
    /// The response body's length when known at the response head (a body in memory, or a
    /// stream whose length the upstream declared).
    BytesOut,
    /// Arrival to the response head, in milliseconds (microsecond precision).
    LatencyMs,
    /// The integration alone (its forward, or its `handle`), in milliseconds.
    IntegrationLatencyMs,
    /// Each plugin hook that ran: `plugin.phase` to milliseconds.
    PluginTimes,
    UserAgent,
    /// The client as far as the trusted proxies tell (`X-Real-IP`).
    ClientIp,
    /// HTTP/1.1, HTTP/2.
    Protocol,
    /// The request's host.
    Host,
    /// The W3C trace id of the request's trace, when `[telemetry]` is on.
    TraceId,
    /// A key of the request context, as the plugins left it (`principal`, `usage_plan`,
    /// `auth.method`, ...), written under its own name.
    Context(String),
}

/// Every field name but `context.*`, for the config error that lists them.
pub const FIELD_NAMES: &[&str] = &[
    "time",
    "request_id",
    "method",
    "path",
    "query",
    "route",
    "stage",
    "status",
    "bytes_in",
    "bytes_out",
    "latency_ms",
    "integration_latency_ms",
    "plugin_times",
    "user_agent",
    "client_ip",
    "protocol",
    "host",
    "trace_id",
];

/// What a line says when `fields` is not given.
const DEFAULT_FIELDS: &[&str] = &[
    "time",
    "request_id",
    "client_ip",
    "method",
    "path",
    "route",
    "stage",
    "status",
    "latency_ms",
];

impl AccessLogField {
    fn parse(name: &str) -> Option<AccessLogField> {
        use AccessLogField::*;
        Some(match name {
            "time" => Time,
            "request_id" => RequestId,
            "method" => Method,
            "path" => Path,
            "query" => Query,
            "route" => Route,
            "stage" => Stage,
            "status" => Status,
            "bytes_in" => BytesIn,
            "bytes_out" => BytesOut,
            "latency_ms" => LatencyMs,
            "integration_latency_ms" => IntegrationLatencyMs,
            "plugin_times" => PluginTimes,
            "user_agent" => UserAgent,
            "client_ip" => ClientIp,
            "protocol" => Protocol,
            "host" => Host,
            "trace_id" => TraceId,
            _ => {
                let key = name.strip_prefix("context.")?;
                return (!key.is_empty()).then(|| Context(key.to_string()));
            }
        })
    }

    /// The name the value is written under.
    pub fn key(&self) -> &str {
        use AccessLogField::*;
        match self {
            Time => "time",
            RequestId => "request_id",
            Method => "method",
            Path => "path",
            Query => "query",
            Route => "route",
            Stage => "stage",
            Status => "status",
            BytesIn => "bytes_in",
            BytesOut => "bytes_out",
            LatencyMs => "latency_ms",
            IntegrationLatencyMs => "integration_latency_ms",
            PluginTimes => "plugin_times",
            UserAgent => "user_agent",
            ClientIp => "client_ip",
            Protocol => "protocol",
            Host => "host",
            TraceId => "trace_id",
            Context(k) => k,
        }
    }
}

impl AccessLogConfig {
    fn defaults() -> AccessLogConfig {
        AccessLogConfig {
            format: AccessLogFormat::Json,
            fields: DEFAULT_FIELDS
                .iter()
                .map(|f| AccessLogField::parse(f).expect("a known field"))
                .collect(),
            path: None,
            buffer_lines: 8192,
        }
    }

    /// Whether a line needs this field (the pipeline collects only what is written).
    pub fn wants(&self, f: &AccessLogField) -> bool {
        self.fields.contains(f)
    }
}

/// `[telemetry]`: OpenTelemetry traces.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Where spans are POSTed as OTLP/HTTP protobuf, e.g. `http://collector:4318/v1/traces`.
    pub otlp_endpoint: http::Uri,
    pub service_name: String,
    /// Share of traces started here that are recorded (0.0 to 1.0); a trusted client's
    /// sampling decision is followed.
    pub sample_ratio: f64,
    pub trust_traceparent: TrustTraceparent,
    /// Spans waiting for export at most; past it spans are dropped and counted.
    pub queue_spans: usize,
    pub batch_spans: usize,
    pub export_interval: Duration,
    pub export_timeout: Duration,
    /// Sent with every export (an API key of a hosted collector).
    pub headers: BTreeMap<String, String>,
}

/// Whose `traceparent` continues: anyone can send one, choosing the trace id and forcing
/// sampling, so by default only the proxies the gateway already trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustTraceparent {
    /// Peers in `[server] trusted_proxies` (none when it is empty).
    TrustedProxies,
    Always,
    Never,
}

impl Validator<'_> {
    pub(super) fn access_log(
        &mut self,
        raw: Option<Spanned<RawAccessLogSetting>>,
    ) -> Option<AccessLogConfig> {
        let Some(raw) = raw else {
            return Some(AccessLogConfig::defaults());
        };
        let table = match raw.into_inner() {
            RawAccessLogSetting::Enabled(true) => return Some(AccessLogConfig::defaults()),
            RawAccessLogSetting::Enabled(false) => return None,
            RawAccessLogSetting::Table(t) => t,
        };
        let RawAccessLog {
            enabled,
            format,
            fields,
            path,
            buffer_lines,
        } = table;
        let mut config = AccessLogConfig::defaults();
        if let Some(f) = format {
            match f.get_ref().as_str() {
                "json" => config.format = AccessLogFormat::Json,
                "text" => config.format = AccessLogFormat::Text,
                other => {
                    let msg = format!("unknown format {other:?}; expected \"json\" or \"text\"");
                    self.issue(&f.span(), "server.access_log.format", msg);
                }
            }
        }
        if let Some(fields) = fields {
            config.fields.clear();
            for (i, f) in fields.iter().enumerate() {
                let key = format!("server.access_log.fields[{i}]");
                match AccessLogField::parse(f.get_ref()) {
                    Some(field) if config.fields.iter().any(|g| g.key() == field.key()) => {
                        let msg = format!("{:?} is written twice", field.key());
                        self.issue(&f.span(), key, msg);
                    }
                    Some(field) => config.fields.push(field),
                    None => {
                        let msg = format!(
                            "unknown field {:?}; fields are {} and \"context.KEY\" for a context key",
                            f.get_ref(),
                            FIELD_NAMES.join(", ")
                        );
                        self.issue(&f.span(), key, msg);
                    }
                }
            }
        }
        if let Some(p) = path {
            if p.get_ref().is_empty() {
                self.issue(&p.span(), "server.access_log.path", "must name a file");
            } else {
                config.path = Some(self.base.join(p.get_ref()));
            }
        }
        config.buffer_lines = self.positive(
            &buffer_lines,
            "server.access_log.buffer_lines",
            8192,
            1 << 20,
        ) as usize;
        (enabled != Some(false)).then_some(config)
    }

    pub(super) fn telemetry(
        &mut self,
        raw: Option<Spanned<RawTelemetry>>,
    ) -> Option<TelemetryConfig> {
        let raw = raw?.into_inner();
        let endpoint = &raw.otlp_endpoint;
        let uri = match endpoint.get_ref().parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                // A bare collector address gets OTLP/HTTP's path for traces.
                if matches!(u.path(), "" | "/") {
                    let with_path = format!(
                        "{}://{}/v1/traces",
                        u.scheme_str().unwrap_or("http"),
                        u.authority().map(|a| a.as_str()).unwrap_or_default()
                    );
                    with_path.parse().ok()
                } else {
                    Some(u)
                }
            }
            _ => None,
        };
        if uri.is_none() {
            let msg = format!(
                "{:?} is not an http:// or https:// URL, e.g. \"http://127.0.0.1:4318/v1/traces\"",
                endpoint.get_ref()
            );
            self.issue(&endpoint.span(), "telemetry.otlp_endpoint", msg);
        }
        let sample_ratio = match &raw.sample_ratio {
            None => 1.0,
            Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
            Some(r) => {
                let msg = format!("must be between 0.0 and 1.0, got {}", r.get_ref());
                self.issue(&r.span(), "telemetry.sample_ratio", msg);
                1.0
            }
        };
        let trust_traceparent = match raw.trust_client_traceparent.as_ref() {
            None => TrustTraceparent::TrustedProxies,
            Some(t) => match t.get_ref().as_str() {
                "trusted-proxies" => TrustTraceparent::TrustedProxies,
                "always" => TrustTraceparent::Always,
                "never" => TrustTraceparent::Never,
                other => {
                    let msg = format!(
                        "unknown value {other:?}; expected \"trusted-proxies\", \"always\" or \"never\""
                    );
                    self.issue(&t.span(), "telemetry.trust_client_traceparent", msg);
                    TrustTraceparent::Never
                }
            },
        };
        let mut headers = BTreeMap::new();
        for (name, value) in raw.headers.into_iter().flatten() {
            let ok = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && http::HeaderValue::from_str(value.get_ref()).is_ok();
            if ok {
                headers.insert(name, value.into_inner());
            } else {
                let msg = "not a valid header name and value";
                self.issue(&value.span(), format!("telemetry.headers.{name}"), msg);
            }
        }
        let ms = |v: i64| Duration::from_millis(v as u64);
        let queue_spans =
            self.positive(&raw.queue_spans, "telemetry.queue_spans", 8192, 1 << 22) as usize;
        let batch_spans =
            self.positive(&raw.batch_spans, "telemetry.batch_spans", 512, 1 << 16) as usize;
        let export_interval = ms(self.positive(
            &raw.export_interval_ms,
            "telemetry.export_interval_ms",
            1000,
            600_000,
        ));
        let export_timeout = ms(self.positive(
            &raw.export_timeout_ms,
            "telemetry.export_timeout_ms",
            10_000,
            600_000,
        ));
        Some(TelemetryConfig {
            otlp_endpoint: uri?,
            service_name: raw
                .service_name
                .map(Spanned::into_inner)
                .unwrap_or_else(|| "wicket".to_string()),
            sample_ratio,
            trust_traceparent,
            queue_spans,
            batch_spans,
            export_interval,
            export_timeout,
            headers,
        })
    }
}
