//! The host side of each WIT import. Grants are checked at load (a plugin importing a
//! capability it was not granted is refused), and again on every call through
//! `HostState::require`, so a missing check can never turn into a silent grant.

pub mod http;
pub mod types;

use crate::runtime::bindings::{config, counters, kv, log, metrics};
use crate::runtime::{Capability, HostState};
use crate::state::State;
use bytes::Bytes;
use std::time::Duration;

/// What every plugin store shares: state backends and the outbound HTTP client. A reload
/// keeps the state (`Arc`) when `[state]` did not change, so kv entries and counters survive it.
pub struct Services {
    pub state: std::sync::Arc<State>,
    pub http: http::Client,
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = self.plugin.name.as_str();
        let request_id = self.request_id.as_str();
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
        let out = self.services.state.get(&key).await;
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
        let out = self.services.state.set(&key, Bytes::from(value), ttl).await;
        Ok(out.map_err(|e| e.to_string()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        let key = self.namespaced(&key);
        let out = self.services.state.delete(&key).await;
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
        let out = self.services.state.take(&key, rate, burst, cost).await;
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
        let out = self
            .services
            .state
            .add(&key, delta, Duration::from_millis(window_ms))
            .await;
        Ok(out
            .map(|(count, left)| (count, left.as_millis() as u64))
            .map_err(|e| e.to_string()))
    }
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
        let labels = metric_labels(&self.plugin.name, labels);
        ::metrics::counter!(metric_name(&name), labels).increment(value);
        Ok(())
    }

    fn gauge_set(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.require(Capability::Metrics)?;
        let labels = metric_labels(&self.plugin.name, labels);
        ::metrics::gauge!(metric_name(&name), labels).set(value);
        Ok(())
    }

    fn histogram_record(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.require(Capability::Metrics)?;
        let labels = metric_labels(&self.plugin.name, labels);
        ::metrics::histogram!(metric_name(&name), labels).record(value);
        Ok(())
    }
}
