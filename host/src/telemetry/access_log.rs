//! The access log: one line per request, with the fields `[server.access_log]` names, as JSON
//! or `key=value` text, to standard output or a file.
//!
//! A request formats its line on its own thread and hands it to a bounded queue; a writer
//! thread batches what is queued into one `write` and never makes a request wait. When the
//! queue is full (the disk or the pipe reading stdout is slower than the traffic), lines are
//! dropped and counted in `wicket_access_log_dropped_total`, and the writer says how many it
//! missed. A file is opened for appending, and reopened by path on `SIGUSR1` ([`reopen`]):
//! what logrotate expects after renaming it.

use crate::config::{AccessLogConfig, AccessLogField, AccessLogFormat};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

/// Bumped by `SIGUSR1`: each writer reopens its file when it sees a new value.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Make every access log writer reopen its file (after logrotate renamed it). `wake` the live
/// writer so that the new file exists right away rather than at the next request.
pub fn reopen() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

enum Msg {
    Line(String),
    Wake,
    /// Answered once everything queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// A config's access log: its fields and the queue to its writer thread.
pub struct AccessLog {
    pub config: AccessLogConfig,
    tx: SyncSender<Msg>,
    dropped: metrics::Counter,
}

/// What a request's line is made of, gathered by the pipeline.
pub struct Record<'a> {
    pub arrived: SystemTime,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub route: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub status: u16,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub latency: Duration,
    pub integration: Option<Duration>,
    pub plugin_times: &'a [(&'a str, super::Phase, Duration)],
    pub user_agent: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub protocol: &'a str,
    pub host: Option<&'a str>,
    pub trace_id: Option<u128>,
    /// The values of the `context.*` fields, in their order.
    pub context: &'a [Option<String>],
}

/// What a line says about the request itself, taken before the request moves on through
/// the route (only what the config's fields name).
pub struct Seen {
    pub arrived: SystemTime,
    pub query: Option<String>,
    pub user_agent: Option<http::HeaderValue>,
    pub host: Option<http::HeaderValue>,
    pub protocol: &'static str,
    pub bytes_in: Option<u64>,
    /// Set once the client is known (`X-Real-IP`), the peer's address until then.
    pub client_ip: Option<http::HeaderValue>,
}

impl Seen {
    pub fn new<B>(config: &AccessLogConfig, req: &http::Request<B>) -> Seen {
        let headers = req.headers();
        let want = |f: AccessLogField| config.wants(&f);
        Seen {
            arrived: SystemTime::now(),
            query: want(AccessLogField::Query)
                .then(|| req.uri().query().map(str::to_string))
                .flatten(),
            user_agent: want(AccessLogField::UserAgent)
                .then(|| headers.get(http::header::USER_AGENT).cloned())
                .flatten(),
            host: want(AccessLogField::Host)
                .then(|| headers.get(http::header::HOST).cloned())
                .flatten(),
            protocol: match req.version() {
                http::Version::HTTP_09 => "HTTP/0.9",
                http::Version::HTTP_10 => "HTTP/1.0",
                http::Version::HTTP_2 => "HTTP/2",
                http::Version::HTTP_3 => "HTTP/3",
                _ => "HTTP/1.1",
            },
            bytes_in: headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            client_ip: None,
        }
    }
}

impl AccessLog {
    /// Start the writer thread for `config`.
    pub fn start(config: &AccessLogConfig) -> std::io::Result<AccessLog> {
        let (tx, rx) = sync_channel(config.buffer_lines);
        let path = config.path.clone();
        let out = Output::open(path.as_ref())?;
        std::thread::Builder::new()
            .name("wicket-access-log".into())
            .spawn(move || write_lines(rx, out, path))?;
        Ok(AccessLog {
            config: config.clone(),
            tx,
            dropped: metrics::counter!("wicket_access_log_dropped_total"),
        })
    }

    /// Let the writer act on a [`reopen`] now.
    pub fn wake(&self) {
        let _ = self.tx.try_send(Msg::Wake);
    }

    /// Wait up to `timeout` until the lines queued so far are written.
    pub fn flush(&self, timeout: Duration) {
        let (ack, done) = std::sync::mpsc::channel();
        if super::send_within(&self.tx, Msg::Flush(ack), timeout) {
            let _ = done.recv_timeout(timeout);
        }
    }

    /// Queue the line for `rec`; dropped (and counted) when the writer is that far behind.
    pub fn write(&self, rec: &Record) {
        let line = self.format(rec);
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.increment(1)
            }
        }
    }

    /// The line for `rec`, newline included.
    pub fn format(&self, rec: &Record) -> String {
        let mut line = Line::new(self.config.format);
        let mut context = rec.context.iter();
        for field in &self.config.fields {
            let key = field.key();
            match field {
                AccessLogField::Time => line.str(key, Some(&rfc3339(rec.arrived))),
                AccessLogField::RequestId => line.str(key, Some(rec.request_id)),
                AccessLogField::Method => line.str(key, Some(rec.method)),
                AccessLogField::Path => line.str(key, Some(rec.path)),
                AccessLogField::Query => line.str(key, rec.query),
                AccessLogField::Route => line.str(key, rec.route),
                AccessLogField::Stage => line.str(key, rec.stage),
                AccessLogField::Status => line.num(key, Some(u64::from(rec.status))),
                AccessLogField::BytesIn => line.num(key, rec.bytes_in),
                AccessLogField::BytesOut => line.num(key, rec.bytes_out),
                AccessLogField::LatencyMs => line.millis(key, Some(rec.latency)),
                AccessLogField::IntegrationLatencyMs => line.millis(key, rec.integration),
                AccessLogField::PluginTimes => line.times(key, rec.plugin_times),
                AccessLogField::UserAgent => line.str(key, rec.user_agent),
                AccessLogField::ClientIp => line.str(key, rec.client_ip),
                AccessLogField::Protocol => line.str(key, Some(rec.protocol)),
                AccessLogField::Host => line.str(key, rec.host),
                AccessLogField::TraceId => {
                    let id = rec.trace_id.map(|t| format!("{t:032x}"));
                    line.str(key, id.as_deref())
                }
                AccessLogField::Context(_) => {
                    let value = context.next().and_then(|v| v.as_deref());
                    line.str(key, value)
                }
            }
        }
        line.finish()
    }
}

/// One line being written, in either format.
struct Line {
    format: AccessLogFormat,
    out: String,
    first: bool,
}

impl Line {
    fn new(format: AccessLogFormat) -> Line {
        let mut out = String::with_capacity(256);
        if format == AccessLogFormat::Json {
            out.push('{');
        }
        Line {
            format,
            out,
            first: true,
        }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(if self.format == AccessLogFormat::Json {
                ','
            } else {
                ' '
            });
        }
        self.first = false;
        match self.format {
            AccessLogFormat::Json => {
                json_string(&mut self.out, key);
                self.out.push(':');
            }
            AccessLogFormat::Text => {
                self.out.push_str(key);
                self.out.push('=');
            }
        }
    }

    /// A missing value is `null` in JSON and `-` in text.
    fn missing(&mut self) {
        self.out.push_str(match self.format {
            AccessLogFormat::Json => "null",
            AccessLogFormat::Text => "-",
        });
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            None => self.missing(),
            Some(v) => match self.format {
                AccessLogFormat::Json => json_string(&mut self.out, v),
                AccessLogFormat::Text if plain(v) => self.out.push_str(v),
                AccessLogFormat::Text => json_string(&mut self.out, v),
            },
        }
    }

    fn num(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(n) => {
                let _ = write!(self.out, "{n}");
            }
            None => self.missing(),
        }
    }

    fn millis(&mut self, key: &str, value: Option<Duration>) {
        self.key(key);
        match value {
            Some(d) => push_millis(&mut self.out, d),
            None => self.missing(),
        }
    }

    /// `{"auth.on_request":0.012,...}` in JSON, `auth.on_request:0.012,...` in text.
    fn times(&mut self, key: &str, times: &[(&str, super::Phase, Duration)]) {
        self.key(key);
        let json = self.format == AccessLogFormat::Json;
        if json {
            self.out.push('{');
        } else if times.is_empty() {
            self.out.push('-');
        }
        for (i, (plugin, phase, d)) in times.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let name = format!("{plugin}.{}", phase.name());
            if json {
                json_string(&mut self.out, &name);
            } else if plain(&name) {
                self.out.push_str(&name);
            } else {
                json_string(&mut self.out, &name);
            }
            self.out.push(':');
            push_millis(&mut self.out, *d);
        }
        if json {
            self.out.push('}');
        }
    }

    fn finish(mut self) -> String {
        if self.format == AccessLogFormat::Json {
            self.out.push('}');
        }
        self.out.push('\n');
        self.out
    }
}

/// Milliseconds with microsecond precision: `12.345`.
fn push_millis(out: &mut String, d: Duration) {
    let us = d.as_micros();
    let _ = write!(out, "{}.{:03}", us / 1000, us % 1000);
}

/// A text value that needs no quotes: no space, quote, `=` or control character.
fn plain(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'=' && b != b'\\' && b != 0x7f)
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2026-12-01T03:04:05.678Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Howard Hinnant's days-to-civil: the calendar date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where lines go.
enum Output {
    Stdout,
    File(std::fs::File),
}

impl Output {
    fn open(path: Option<&PathBuf>) -> std::io::Result<Output> {
        match path {
            None => Ok(Output::Stdout),
            Some(p) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map(Output::File),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            // Under stdout's lock, so no other line lands inside a batch.
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Output::File(f) => f.write_all(bytes),
        }
    }
}

/// The writer thread: everything queued goes out in one write; ends when the config that
/// started it is gone and its queue is empty.
fn write_lines(rx: Receiver<Msg>, mut out: Output, path: Option<PathBuf>) {
    let mut generation = GENERATION.load(Ordering::SeqCst);
    let mut batch = Vec::with_capacity(64 << 10);
    let mut failing = false;
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Line(l) => batch.extend_from_slice(l.as_bytes()),
                Msg::Flush(ack) => acks.push(ack),
                Msg::Wake => {}
            }
            next = if batch.len() < (1 << 20) {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let now = GENERATION.load(Ordering::SeqCst);
        if now != generation {
            generation = now;
            if let Some(p) = &path {
                match Output::open(Some(p)) {
                    Ok(o) => out = o,
                    Err(e) => tracing::error!("cannot reopen the access log {}: {e}", p.display()),
                }
            }
        }
        if !batch.is_empty() {
            match out.write(&batch) {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    // Said once per run of failures, not once per batch.
                    failing = true;
                    tracing::error!("cannot write the access log: {e}");
                }
                Err(_) => {}
            }
            batch.clear();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Phase;

    fn log(format: AccessLogFormat, fields: &[AccessLogField]) -> AccessLog {
        let (tx, _rx) = sync_channel(1);
        AccessLog {
            config: AccessLogConfig {
                format,
                fields: fields.to_vec(),
                path: None,
                buffer_lines: 1,
            },
            tx,
            dropped: metrics::Counter::noop(),
        }
    }

    fn record<'a>(
        times: &'a [(&'a str, Phase, Duration)],
        context: &'a [Option<String>],
    ) -> Record<'a> {
        Record {
            arrived: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_558_245_678),
            request_id: "r-1",
            method: "GET",
            path: "/a b",
            query: None,
            route: Some("pets"),
            stage: None,
            status: 200,
            bytes_in: Some(3),
            bytes_out: None,
            latency: Duration::from_micros(12_345),
            integration: Some(Duration::from_micros(7)),
            plugin_times: times,
            user_agent: Some("curl/8 \"x\""),
            client_ip: Some("127.0.0.1"),
            protocol: "HTTP/1.1",
            host: None,
            trace_id: Some(0xab),
            context,
        }
    }

    #[test]
    fn json_lines_carry_the_chosen_fields_and_context_keys() {
        use AccessLogField::*;
        let fields = [
            Time,
            Method,
            Path,
            Status,
            BytesIn,
            BytesOut,
            LatencyMs,
            IntegrationLatencyMs,
            PluginTimes,
            UserAgent,
            TraceId,
            Context("principal".into()),
            Context("auth.method".into()),
        ];
        let times = [("keys", Phase::OnRequest, Duration::from_micros(1500))];
        let ctx = [Some("alice".to_string()), None];
        let line = log(AccessLogFormat::Json, &fields).format(&record(&times, &ctx));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2025-12-01T03:04:05.678Z");
        assert_eq!(v["path"], "/a b");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes_in"], 3);
        assert!(v["bytes_out"].is_null());
        assert_eq!(v["latency_ms"], 12.345);
        assert_eq!(v["integration_latency_ms"], 0.007);
        assert_eq!(v["plugin_times"]["keys.on_request"], 1.5);
        assert_eq!(v["user_agent"], "curl/8 \"x\"");
        assert_eq!(v["trace_id"], format!("{:032x}", 0xab));
        assert_eq!(v["principal"], "alice");
        assert!(v["auth.method"].is_null());
        assert!(line.ends_with("}\n"));
    }

    #[test]
    fn text_lines_quote_only_what_needs_it() {
        use AccessLogField::*;
        let fields = [Method, Path, Route, Stage, Status, PluginTimes];
        let line = log(AccessLogFormat::Text, &fields).format(&record(&[], &[]));
        assert_eq!(
            line,
            "method=GET path=\"/a b\" route=pets stage=- status=200 plugin_times=-\n"
        );
    }

    #[test]
    fn dates_are_the_calendar_ones() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59.000Z");
    }
}
