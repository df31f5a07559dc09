//! The host side of each WIT import. Grants are checked at load (a plugin importing a
//! capability it was not granted is refused), and again on every call through
//! `HostState::require`, so a missing check can never turn into a silent grant.

pub mod http;
pub mod types;
pub mod wasi_http;

use crate::body::{Body, Tee};
use crate::runtime::bindings::{aws, config, counters, kv, log, metrics};
use crate::runtime::{Capability, HostState};
use crate::state::State;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::time::Duration;

/// The largest body `kv.set-with-body` keeps a copy of.
const MAX_STORED_BODY: usize = 64 << 20;

/// What every plugin store shares: state backends and the outbound HTTP client. A reload
/// keeps the state (`Arc`) when `[state]` did not change, so kv entries and counters survive it.
pub struct Services {
    pub state: std::sync::Arc<State>,
    pub http: http::Client,
    /// The gateway's AWS credentials: signing only, never handed to a plugin.
    pub aws: std::sync::Arc<crate::aws::Keychain>,
}

impl aws::Host for HostState {
    fn sign(
        &mut self,
        req: wasmtime::component::Resource<http::OutgoingRequest>,
        service: String,
        region: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Aws)?;
        let spec = match crate::aws::SignSpec::new(&service, &region) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        // Said now rather than at `send`: the plugin learns why before it sends.
        if let Err(e) = self.services.aws.get() {
            return Ok(Err(e.to_string()));
        }
        self.table.get_mut(&req)?.sign = Some(spec);
        Ok(Ok(()))
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = self.plugin.name.as_str();
        let request_id = self.request_id();
        let request_id = request_id.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, request_id, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, request_id, "{message}"),
            log::Level::Info => tracing::info!(plugin, request_id, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, request_id, "{message}"),
            log::Level::Error => tracing::error!(plugin, request_id, "{message}"),
        }
        Ok(())
    }
}

impl config::Host for HostState {
    fn get(&mut self) -> wasmtime::Result<String> {
        Ok(self.plugin.config_json.to_string())
    }
}

impl HostState {
    /// Keys are prefixed with the plugin instance's name so two plugins never share entries.
    fn namespaced(&self, key: &str) -> String {
        format!("{}\u{0}{key}", self.plugin.name)
    }
}

impl kv::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.require(Capability::Kv)?;
        let key = self.namespaced(&key);
        let out = self.clock.paused(self.services.state.get(&key)).await;
        Ok(out
            .map(|v| v.map(|b| b.to_vec()))
            .map_err(|e| e.to_string()))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        let key = self.namespaced(&key);
        let ttl = ttl_ms.map(Duration::from_millis);
        let set = self.services.state.set(&key, Bytes::from(value), ttl);
        let out = self.clock.paused(set).await;
        Ok(out.map_err(|e| e.to_string()))
    }

    async fn set_with_body(
        &mut self,
        key: String,
        head: Vec<u8>,
        resp: wasmtime::component::Resource<crate::capabilities::types::ResponseData>,
        ttl_ms: Option<u64>,
        max_bytes: u64,
    ) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        let key = self.namespaced(&key);
        let ttl = ttl_ms.map(Duration::from_millis);
        // The copy of a streaming body is held in memory until it ends: bounded whatever the
        // plugin asks.
        let limit = usize::try_from(max_bytes)
            .unwrap_or(usize::MAX)
            .min(MAX_STORED_BODY);
        let resp = self.table.get_mut(&resp)?;
        let stream = match std::mem::take(&mut resp.body) {
            Body::Full(body) => {
                resp.body = Body::Full(body.clone());
                if head.len() + body.len() > limit {
                    return Ok(Ok(()));
                }
                let mut value = head;
                value.extend_from_slice(&body);
                let set = self.services.state.set(&key, Bytes::from(value), ttl);
                return Ok(self.clock.paused(set).await.map_err(|e| e.to_string()));
            }
            // hyper never polls a body that is at its end from the start: nothing to tee.
            Body::Stream(stream) if http_body::Body::is_end_stream(&stream) => {
                resp.body = Body::Stream(stream);
                let set = self.services.state.set(&key, Bytes::from(head), ttl);
                return Ok(self.clock.paused(set).await.map_err(|e| e.to_string()));
            }
            Body::Stream(stream) => stream,
        };
        let state = self.services.state.clone();
        let plugin = self.plugin.name.clone();
        let store = move |value: Bytes| {
            // After the body ended, off the request's path: the response has been sent.
            tokio::spawn(async move {
                if let Err(e) = state.set(&key, value, ttl).await {
                    tracing::warn!(plugin, "storing a streamed body failed: {e}");
                }
            });
        };
        resp.body = Body::Stream(Tee::new(stream, &head, limit, store).boxed_unsync());
        Ok(Ok(()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        let key = self.namespaced(&key);
        let out = self.clock.paused(self.services.state.delete(&key)).await;
        Ok(out.map_err(|e| e.to_string()))
    }
}

impl counters::Host for HostState {
    async fn take(
        &mut self,
        key: String,
        rate: f64,
        burst: u64,
        cost: u64,
    ) -> wasmtime::Result<Result<counters::TakeResult, String>> {
        self.require(Capability::Counters)?;
        if !(rate.is_finite() && rate >= 0.0) {
            return Ok(Err(format!(
                "rate must be a finite number >= 0, got {rate}"
            )));
        }
        let key = self.namespaced(&key);
        let take = self.services.state.take(&key, rate, burst, cost);
        let out = self.clock.paused(take).await;
        Ok(out
            .map(|t| counters::TakeResult {
                allowed: t.allowed,
                remaining: t.remaining,
                retry_after_ms: t.retry_after.as_millis() as u64,
                reset_ms: t.reset.as_millis() as u64,
            })
            .map_err(|e| e.to_string()))
    }

    async fn add(
        &mut self,
        key: String,
        delta: u64,
        window_ms: u64,
    ) -> wasmtime::Result<Result<(u64, u64), String>> {
        self.require(Capability::Counters)?;
        if window_ms == 0 {
            return Ok(Err("window-ms must be at least 1".to_string()));
        }
        let key = self.namespaced(&key);
        let add = self
            .services
            .state
            .add(&key, delta, Duration::from_millis(window_ms));
        let out = self.clock.paused(add).await;
        Ok(out
            .map(|(count, left)| (count, left.as_millis() as u64))
            .map_err(|e| e.to_string()))
    }
}

/// The Prometheus type of a family a plugin records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// The type each plugin family was first recorded with. A family has one type in the
/// exposition format; two plugins (or one) recording the same name as a counter and as a
/// gauge would make `/metrics` unparseable for every scraper. The first type wins; a sample of
/// another type is dropped with a warning (once per family and type), and the plugin goes on.
static PLUGIN_FAMILIES: std::sync::LazyLock<std::sync::RwLock<HashMap<String, MetricKind>>> =
    std::sync::LazyLock::new(Default::default);

/// The exposition name of plugin metric `name`, when a sample of `kind` may be recorded to it.
fn plugin_family(plugin: &str, name: &str, kind: MetricKind) -> Option<String> {
    let family = metric_name(name);
    let known = PLUGIN_FAMILIES.read().unwrap().get(&family).copied();
    let first = match known {
        Some(first) => first,
        None if crate::admin::is_host_family(&family) => {
            tracing::warn!(
                plugin,
                metric = %family,
                "dropping plugin metric: the host records a family of this name"
            );
            return None;
        }
        None => *PLUGIN_FAMILIES
            .write()
            .unwrap()
            .entry(family.clone())
            .or_insert(kind),
    };
    if first == kind {
        return Some(family);
    }
    static WARNED: std::sync::Mutex<Vec<(String, MetricKind)>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap();
    if !warned.iter().any(|(f, k)| *f == family && *k == kind) {
        tracing::warn!(
            plugin,
            metric = %family,
            "dropping plugin metric samples: recorded as a {kind:?}, but the family is a {first:?}"
        );
        warned.push((family, kind));
    }
    None
}

/// Metric names from plugins become `wicket_plugin_<name>` with anything but
/// `[a-zA-Z0-9_]` replaced, so a plugin cannot produce an invalid exposition.
fn metric_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("wicket_plugin_{clean}")
}

fn metric_labels(plugin: &str, labels: Vec<(String, String)>) -> Vec<::metrics::Label> {
    let mut out = vec![::metrics::Label::new("plugin", plugin.to_string())];
    out.extend(
        labels
            .into_iter()
            .filter(|(k, _)| k != "plugin")
            .map(|(k, v)| ::metrics::Label::new(k, v)),
    );
    out
}

impl metrics::Host for HostState {
    fn counter_add(
        &mut self,
        name: String,
        value: u64,
        labels: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.require(Capability::Metrics)?;
        if let Some(family) = plugin_family(&self.plugin.name, &name, MetricKind::Counter) {
            let labels = metric_labels(&self.plugin.name, labels);
            ::metrics::counter!(family, labels).increment(value);
        }
        Ok(())
    }

    fn gauge_set(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.require(Capability::Metrics)?;
        if let Some(family) = plugin_family(&self.plugin.name, &name, MetricKind::Gauge) {
            let labels = metric_labels(&self.plugin.name, labels);
            ::metrics::gauge!(family, labels).set(value);
        }
        Ok(())
    }

    fn histogram_record(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.require(Capability::Metrics)?;
        if let Some(family) = plugin_family(&self.plugin.name, &name, MetricKind::Histogram) {
            let labels = metric_labels(&self.plugin.name, labels);
            ::metrics::histogram!(family, labels).record(value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_family_keeps_its_first_type() {
        let c = MetricKind::Counter;
        assert_eq!(
            plugin_family("p", "jobs.done", c).as_deref(),
            Some("wicket_plugin_jobs_done")
        );
        assert_eq!(plugin_family("q", "jobs.done", MetricKind::Gauge), None);
        assert_eq!(plugin_family("q", "jobs_done", MetricKind::Histogram), None);
        assert!(plugin_family("q", "jobs_done", c).is_some());
    }

    #[test]
    fn a_plugin_cannot_record_into_a_host_family() {
        // `wicket_plugin_seconds` is the host's per-call histogram.
        assert_eq!(plugin_family("p", "seconds", MetricKind::Histogram), None);
        assert_eq!(plugin_family("p", "seconds", MetricKind::Counter), None);
    }
}
