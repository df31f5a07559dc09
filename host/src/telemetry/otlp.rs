//! Span export: a bounded queue that requests hand finished spans to, and a thread of its own
//! that batches them and POSTs them to the collector as OTLP/HTTP protobuf
//! (`opentelemetry-otlp`'s exporter, over our own hyper and rustls client: no second HTTP or
//! TLS stack).
//!
//! A request never waits here: when the queue is full (the collector is slow or down) a span
//! is dropped and counted in `wicket_trace_spans_dropped_total`. A batch goes out when it has
//! `batch_spans` spans or `export_interval` after the last one; the exporter retries a failed
//! batch twice, then it is counted in `wicket_trace_export_errors_total` and let go.

use super::trace::{Kind, SpanRecord};
use crate::config::TelemetryConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// What requests (and a flush at exit) hand the export thread.
enum Item {
    Span(SpanRecord),
    /// Answered once everything queued before it is exported (or failed).
    Flush(std::sync::mpsc::Sender<()>),
}

pub struct Exporter {
    tx: SyncSender<Item>,
    dropped: metrics::Counter,
}

impl Exporter {
    pub fn start(config: &TelemetryConfig) -> anyhow::Result<Exporter> {
        let client = OtlpClient {
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .pool_idle_timeout(Duration::from_secs(90))
            .build(crate::capabilities::http::connector()),
            timeout: config.export_timeout,
        };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(config.otlp_endpoint.to_string())
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(config.export_timeout)
            .with_headers(config.headers.clone().into_iter().collect())
            .with_retry_policy(opentelemetry_otlp::RetryPolicy::recommended().with_max_retries(2))
            .build()?;
        exporter.set_resource(
            &opentelemetry_sdk::Resource::builder_empty()
                .with_service_name(config.service_name.clone())
                .build(),
        );
        let (tx, rx) = sync_channel(config.queue_spans);
        let batch = Batching {
            size: config.batch_spans,
            interval: config.export_interval,
        };
        std::thread::Builder::new()
            .name("wicket-otlp".into())
            .spawn(move || export_spans(rx, exporter, batch))?;
        Ok(Exporter {
            tx,
            dropped: metrics::counter!("wicket_trace_spans_dropped_total"),
        })
    }

    /// Queue a finished span; dropped and counted when the queue is full.
    pub fn submit(&self, span: SpanRecord) {
        if self.tx.try_send(Item::Span(span)).is_err() {
            self.dropped.increment(1);
        }
    }

    /// Wait up to `timeout` until the spans queued so far are exported.
    pub fn flush(&self, timeout: Duration) {
        let (ack, done) = std::sync::mpsc::channel();
        if super::send_within(&self.tx, Item::Flush(ack), timeout) {
            let _ = done.recv_timeout(timeout);
        }
    }
}

struct Batching {
    size: usize,
    interval: Duration,
}

/// The export thread: until the config that started it is gone, then what is left.
fn export_spans(rx: Receiver<Item>, exporter: opentelemetry_otlp::SpanExporter, b: Batching) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("traces: cannot start the export thread's runtime: {e}");
            return;
        }
    };
    let scope = InstrumentationScope::builder("wicket")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let exported = metrics::counter!("wicket_trace_spans_exported_total");
    let errors = metrics::counter!("wicket_trace_export_errors_total");
    let mut batch: Vec<SpanData> = Vec::with_capacity(b.size);
    let mut since = Instant::now();
    let mut open = true;
    let mut failing = false;
    let mut acks = Vec::new();
    while open {
        let wait = b.interval.saturating_sub(since.elapsed());
        let mut item = match rx.recv_timeout(wait) {
            Ok(item) => Some(item),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                open = false;
                None
            }
        };
        while let Some(it) = item.take() {
            match it {
                Item::Span(span) => batch.push(span_data(span, &scope)),
                Item::Flush(ack) => acks.push(ack),
            }
            if batch.len() < b.size && acks.is_empty() {
                item = rx.try_recv().ok();
            }
        }
        let due =
            batch.len() >= b.size || since.elapsed() >= b.interval || !open || !acks.is_empty();
        if !due {
            continue;
        }
        since = Instant::now();
        if batch.is_empty() {
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
            continue;
        }
        let spans = std::mem::replace(&mut batch, Vec::with_capacity(b.size));
        let n = spans.len() as u64;
        match runtime.block_on(exporter.export(spans)) {
            Ok(()) => {
                exported.increment(n);
                failing = false;
            }
            Err(e) => {
                errors.increment(1);
                if !failing {
                    tracing::warn!("traces: exporting {n} spans failed: {e}");
                }
                failing = true;
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// The SDK's form of a span, as the OTLP exporter takes it.
fn span_data(s: SpanRecord, scope: &InstrumentationScope) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(s.trace_id),
            SpanId::from(s.span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from(s.parent),
        parent_span_is_remote: s.parent_remote,
        span_kind: match s.kind {
            Kind::Server => SpanKind::Server,
            Kind::Internal => SpanKind::Internal,
            Kind::Client => SpanKind::Client,
        },
        name: s.name.into(),
        start_time: s.start,
        end_time: s.end,
        attributes: s.attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if s.error {
            Status::error("")
        } else {
            Status::Unset
        },
        instrumentation_scope: scope.clone(),
    }
}

/// The collector's HTTP client: hyper with the gateway's rustls connector.
#[derive(Debug)]
struct OtlpClient {
    client: hyper_util::client::legacy::Client<crate::capabilities::http::Connector, Full<Bytes>>,
    timeout: Duration,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let request = request.map(Full::new);
        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            // The collector's answer is small (a partial-success message at most).
            let body = http_body_util::Limited::new(body, 1 << 20)
                .collect()
                .await?
                .to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err("the collector did not answer in time".into()),
        }
    }
}
