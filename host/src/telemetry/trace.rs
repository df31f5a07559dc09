//! Trace context: W3C `traceparent` in (from a client the config trusts) and out (to every
//! upstream), the sampling decision, span ids, and the spans a request records.
//!
//! A span is recorded as a [`SpanRecord`] on the request's thread and handed to the exporter
//! (`otlp.rs`) when it ends; spans of one trace are linked by their ids only, so each goes on
//! its own. An unsampled request records nothing, but still tells the upstream its trace
//! (flags `00`), so the services behind agree not to sample it either.

use super::otlp::Exporter;
use crate::config::{TelemetryConfig, TrustTraceparent};
use crate::forwarded::TrustedProxies;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::KeyValue;
use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::time::SystemTime;

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Where a span sits in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanCtx {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl SpanCtx {
    /// A new span in the same trace.
    pub fn child(&self) -> SpanCtx {
        SpanCtx {
            span_id: span_id(),
            ..*self
        }
    }

    /// This span as the parent a request to an upstream carries.
    pub fn traceparent(&self) -> HeaderValue {
        let text = format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        );
        HeaderValue::from_str(&text).expect("hex digits and dashes")
    }
}

/// A client's `traceparent`, if it is a valid version-00 one (or a later version, read as
/// 00 requires: the first four fields).
pub fn parse_traceparent(v: &HeaderValue) -> Option<(u128, u64, bool)> {
    let s = v.to_str().ok()?;
    let mut parts = s.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace = u128::from_str_radix(trace, 16).ok()?;
    let parent = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace != 0 && parent != 0).then_some((trace, parent, flags & 1 == 1))
}

/// A config's tracing: how traces start, and where their spans go.
pub struct Tracer {
    exporter: Exporter,
    /// `sample_ratio` as a bound on the trace id's low 64 bits.
    threshold: u64,
    ratio: f64,
    trust: TrustTraceparent,
}

/// The trace of one request: its own span, its parent, and when it began.
pub struct RequestTrace {
    pub ctx: SpanCtx,
    /// The client's span, when the trace came in with the request.
    pub parent: Option<u64>,
    pub tracestate: Option<HeaderValue>,
    pub start: SystemTime,
}

impl Tracer {
    pub fn start(config: &TelemetryConfig) -> anyhow::Result<Tracer> {
        Ok(Tracer {
            exporter: Exporter::start(config)?,
            threshold: threshold(config.sample_ratio),
            ratio: config.sample_ratio,
            trust: config.trust_traceparent,
        })
    }

    /// The request's trace: the client's continued when it is trusted to say, a new one
    /// (with `request_id`'s random bits as its id) otherwise. An untrusted client's
    /// `traceparent` and `tracestate` are removed so that nothing downstream takes them for
    /// the gateway's.
    pub fn begin(
        &self,
        headers: &mut HeaderMap,
        peer: IpAddr,
        trusted: &TrustedProxies,
        request_id: u128,
    ) -> RequestTrace {
        let trust = match self.trust {
            TrustTraceparent::Always => true,
            TrustTraceparent::Never => false,
            TrustTraceparent::TrustedProxies => trusted.contains(peer),
        };
        let parent = if trust {
            headers.get(TRACEPARENT).and_then(parse_traceparent)
        } else {
            None
        };
        let tracestate = match parent {
            Some(_) => headers.get(TRACESTATE).cloned(),
            None => {
                if headers.contains_key(TRACEPARENT) || headers.contains_key(TRACESTATE) {
                    headers.remove(TRACEPARENT);
                    headers.remove(TRACESTATE);
                }
                None
            }
        };
        let (trace_id, sampled) = match parent {
            Some((trace, _, sampled)) => (trace, sampled),
            None => (request_id, self.samples(request_id)),
        };
        RequestTrace {
            ctx: SpanCtx {
                trace_id,
                span_id: span_id(),
                sampled,
            },
            parent: parent.map(|(_, span, _)| span),
            tracestate,
            start: SystemTime::now(),
        }
    }

    fn samples(&self, trace_id: u128) -> bool {
        samples(self.ratio, self.threshold, trace_id)
    }

    pub fn submit(&self, span: SpanRecord) {
        self.exporter.submit(span);
    }

    /// Wait up to `timeout` until the spans queued so far are exported.
    pub fn flush(&self, timeout: std::time::Duration) {
        self.exporter.flush(timeout);
    }
}

/// A new trace is sampled by its id (as OpenTelemetry's `TraceIdRatioBased`), so every
/// gateway decides the same for the same id. The id is a v4 UUID's: its low 62 bits are the
/// random ones.
fn samples(ratio: f64, threshold: u64, trace_id: u128) -> bool {
    let random = (trace_id as u64) << 2;
    ratio > 0.0 && random <= threshold
}

/// `ratio` as the bound [`samples`] compares with.
fn threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else {
        (ratio * u64::MAX as f64) as u64
    }
}

/// What kind of work a span is, as OTLP says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request as the gateway served it.
    Server,
    /// Work inside it (a plugin call).
    Internal,
    /// A request to an upstream.
    Client,
}

/// A finished span, on its way to the exporter.
pub struct SpanRecord {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent: u64,
    pub parent_remote: bool,
    pub kind: Kind,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    pub error: bool,
}

thread_local! {
    /// The plugin call being polled on this thread, if it is traced: the parent of any
    /// outbound request the plugin makes (`http` capability).
    static CURRENT: Cell<Option<SpanCtx>> = const { Cell::new(None) };
    /// Spans of outbound requests that ended during that poll, collected by the call.
    static FINISHED: RefCell<Vec<SpanRecord>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` (one poll of a traced plugin call) with `ctx` as the current span; the outbound
/// spans it finished are appended to `into`.
pub fn with_current<R>(ctx: SpanCtx, into: &mut Vec<SpanRecord>, f: impl FnOnce() -> R) -> R {
    let before = CURRENT.replace(Some(ctx));
    let out = f();
    CURRENT.set(before);
    FINISHED.with(|spans| {
        let mut spans = spans.borrow_mut();
        if !spans.is_empty() {
            into.append(&mut spans);
        }
    });
    out
}

/// An outbound request being made under the current span (a plugin's `http` call): it
/// carries a `traceparent` of its own span, recorded when it ends.
pub struct Outbound {
    ctx: SpanCtx,
    parent: u64,
    start: SystemTime,
}

impl Outbound {
    /// A span for a request to an upstream under the plugin call on this thread, if that call
    /// is traced; its `traceparent` set in `headers`.
    pub fn here(headers: &mut HeaderMap) -> Option<Outbound> {
        let parent = CURRENT.get()?;
        Some(Outbound::under(parent, headers))
    }

    /// A span for a request to an upstream under `parent`.
    pub fn under(parent: SpanCtx, headers: &mut HeaderMap) -> Outbound {
        let ctx = parent.child();
        headers.insert(TRACEPARENT, ctx.traceparent());
        Outbound {
            ctx,
            parent: parent.span_id,
            start: SystemTime::now(),
        }
    }

    /// The finished span: `status` is the upstream's, `None` when there was no response.
    pub fn finish(
        self,
        name: String,
        mut attributes: Vec<KeyValue>,
        status: Option<u16>,
    ) -> Option<SpanRecord> {
        if !self.ctx.sampled {
            return None;
        }
        if let Some(s) = status {
            attributes.push(KeyValue::new("http.response.status_code", i64::from(s)));
        }
        Some(SpanRecord {
            trace_id: self.ctx.trace_id,
            span_id: self.ctx.span_id,
            parent: self.parent,
            parent_remote: false,
            kind: Kind::Client,
            name,
            start: self.start,
            end: SystemTime::now(),
            attributes,
            error: status.is_none_or(|s| s >= 500),
        })
    }

    /// Finish a span made by [`Outbound::here`]: it joins the plugin call's spans.
    pub fn finish_here(self, name: String, attributes: Vec<KeyValue>, status: Option<u16>) {
        if let Some(span) = self.finish(name, attributes, status) {
            FINISHED.with(|s| s.borrow_mut().push(span));
        }
    }
}

/// A span id: random, never 0. A per-thread SplitMix64 stream seeded from the OS's random
/// numbers (via a v4 UUID): unique enough within a trace, and no lock.
pub fn span_id() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u128() as u64);
    }
    STATE.with(|s| loop {
        let next = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z != 0 {
            return z;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn traceparents_are_read_as_w3c_says() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(&hv(ok)),
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, true))
        );
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(!parse_traceparent(&hv(unsampled)).unwrap().2);
        // A later version may add fields; version 00 may not.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert!(parse_traceparent(&hv(later)).is_some());
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(parse_traceparent(&hv(bad)), None, "{bad}");
        }
    }

    #[test]
    fn new_traces_are_sampled_at_the_ratio() {
        for ratio in [0.0, 0.25, 1.0] {
            let t = threshold(ratio);
            let n = 20_000;
            let hits = (0..n)
                .filter(|_| samples(ratio, t, uuid::Uuid::new_v4().as_u128()))
                .count();
            let share = hits as f64 / n as f64;
            assert!((share - ratio).abs() < 0.02, "{ratio}: {share}");
        }
    }

    #[test]
    fn a_span_context_writes_the_traceparent_it_would_read() {
        let ctx = SpanCtx {
            trace_id: 0xabc,
            span_id: 0x12,
            sampled: true,
        };
        let v = ctx.traceparent();
        assert_eq!(
            v.to_str().unwrap(),
            "00-00000000000000000000000000000abc-0000000000000012-01"
        );
        assert_eq!(parse_traceparent(&v), Some((0xabc, 0x12, true)));
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_ne!(child.span_id, ctx.span_id);
    }
}
