//! What the pipeline gathers about one request for its access log line and its spans. Made
//! once per request; each plugin call goes through [`Observation::observe`] and
//! [`Observation::record`], which do nothing but a branch when neither the log line nor a
//! sampled trace wants the call.

use super::trace::{Kind, Outbound, RequestTrace, SpanCtx, SpanRecord};
use super::{AccessLog, Tracer};
use crate::capabilities::types::ContextData;
use crate::config::AccessLogField;
use opentelemetry::KeyValue;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

/// Which hook of a plugin ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    OnRequest,
    OnResponse,
    Handle,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::OnRequest => "on_request",
            Phase::OnResponse => "on_response",
            Phase::Handle => "handle",
        }
    }
}

/// One request's observations; `'g` is the gateway serving it.
pub struct Observation<'g> {
    log: Option<&'g AccessLog>,
    tracer: Option<&'g Tracer>,
    /// `None` when tracing is off for the config.
    pub trace: Option<RequestTrace>,
    want_times: bool,
    pub plugin_times: Vec<(&'g str, Phase, Duration)>,
    pub integration: Option<Duration>,
    /// The access log's `context.*` values, captured when the route is done.
    pub context: Vec<Option<String>>,
}

/// A plugin call in progress, when observed.
pub struct CallTiming {
    started: Instant,
    start: SystemTime,
    /// The call's own span, when its trace is sampled; with its CPU time and the outbound
    /// requests it made.
    span: Option<(SpanCtx, Duration, Vec<SpanRecord>)>,
}

impl<'g> Observation<'g> {
    pub fn new(log: Option<&'g AccessLog>, tracer: Option<&'g Tracer>) -> Observation<'g> {
        Observation {
            log,
            tracer,
            trace: None,
            want_times: log.is_some_and(|l| l.config.wants(&AccessLogField::PluginTimes)),
            plugin_times: Vec::new(),
            integration: None,
            context: Vec::new(),
        }
    }

    /// The request's sampled span, if any: what plugin calls and forwards are children of.
    pub fn sampled(&self) -> Option<SpanCtx> {
        self.trace.as_ref().map(|t| t.ctx).filter(|c| c.sampled)
    }

    /// `fut`, a plugin call, timed and traced when something wants it.
    pub fn observe<F: Future + Unpin>(&self, fut: F) -> Observed<F> {
        let sampled = self.sampled();
        let call = (self.want_times || sampled.is_some()).then(|| {
            Box::new(CallTiming {
                started: Instant::now(),
                start: SystemTime::now(),
                span: sampled.map(|parent| (parent.child(), Duration::ZERO, Vec::new())),
            })
        });
        Observed { inner: fut, call }
    }

    /// A plugin call ended with `verdict` (`continue`, `respond`, `refuse`, `error`).
    pub fn record(
        &mut self,
        call: Option<Box<CallTiming>>,
        plugin: &'g str,
        phase: Phase,
        verdict: &'static str,
    ) {
        let Some(call) = call else { return };
        if self.want_times {
            self.plugin_times
                .push((plugin, phase, call.started.elapsed()));
        }
        let (Some((ctx, cpu, outbound)), Some(tracer), Some(trace)) =
            (call.span, self.tracer, &self.trace)
        else {
            return;
        };
        tracer.submit(SpanRecord {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            parent: trace.ctx.span_id,
            parent_remote: false,
            kind: Kind::Internal,
            name: format!("{plugin} {}", phase.name()),
            start: call.start,
            end: SystemTime::now(),
            attributes: vec![
                KeyValue::new("wicket.plugin", plugin.to_string()),
                KeyValue::new("wicket.phase", phase.name()),
                KeyValue::new("wicket.verdict", verdict),
                KeyValue::new("wicket.cpu_us", cpu.as_micros() as i64),
            ],
            error: verdict == "error",
        });
        for span in outbound {
            tracer.submit(span);
        }
    }

    /// An outbound request the host makes for the request (a planned forward): its span and
    /// `traceparent`, when tracing is on.
    pub fn outbound(&self, headers: &mut http::HeaderMap) -> Option<Outbound> {
        let trace = self.trace.as_ref()?;
        if let Some(state) = &trace.tracestate {
            headers.insert(super::trace::TRACESTATE, state.clone());
        }
        Some(Outbound::under(trace.ctx, headers))
    }

    /// End a planned forward's span, begun by [`Observation::outbound`].
    pub fn forwarded(
        &self,
        span: Outbound,
        integration: &str,
        url_template: &str,
        method: &http::Method,
        status: Option<u16>,
    ) {
        let Some(tracer) = self.tracer else { return };
        let attrs = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("wicket.integration", integration.to_string()),
            KeyValue::new("url.template", url_template.to_string()),
        ];
        if let Some(record) = span.finish(method.to_string(), attrs, status) {
            tracer.submit(record);
        }
    }

    /// Keep the context values the access log line names, before the context goes.
    pub fn capture_context(&mut self, ctx: &ContextData) {
        let Some(log) = self.log else { return };
        for field in &log.config.fields {
            if let AccessLogField::Context(key) = field {
                self.context.push(ctx.get(key).map(str::to_string));
            }
        }
    }

    /// End the request's own span.
    pub fn finish(&mut self, name: String, attributes: Vec<KeyValue>, status: u16) {
        let (Some(trace), Some(tracer)) = (&self.trace, self.tracer) else {
            return;
        };
        if !trace.ctx.sampled {
            return;
        }
        tracer.submit(SpanRecord {
            trace_id: trace.ctx.trace_id,
            span_id: trace.ctx.span_id,
            parent: trace.parent.unwrap_or(0),
            parent_remote: trace.parent.is_some(),
            kind: Kind::Server,
            name,
            start: trace.start,
            end: SystemTime::now(),
            attributes,
            error: status >= 500,
        });
    }
}

/// A plugin call's future, measured: its wall time, and when traced the CPU time of its own
/// polls (what the thread spent inside them: guest code and the host work done for it, not
/// the other requests run while it waited) with the call as the current span.
pub struct Observed<F> {
    inner: F,
    call: Option<Box<CallTiming>>,
}

impl<F: Future + Unpin> Future for Observed<F> {
    type Output = (F::Output, Option<Box<CallTiming>>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let inner = Pin::new(&mut this.inner);
        let polled = match this.call.as_mut().and_then(|c| c.span.as_mut()) {
            None => inner.poll(cx),
            Some((ctx, cpu, outbound)) => {
                let before = crate::runtime::thread_cpu().0;
                let polled = super::trace::with_current(*ctx, outbound, || inner.poll(cx));
                *cpu += crate::runtime::thread_cpu().0.saturating_sub(before);
                polled
            }
        };
        match polled {
            Poll::Ready(out) => Poll::Ready((out, this.call.take())),
            Poll::Pending => Poll::Pending,
        }
    }
}
