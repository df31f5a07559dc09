//! Running plugins: one wasmtime `Engine` for the process (pooling allocator, epoch
//! interruption driven by a single ticker thread), each plugin compiled once (and cached on
//! disk by content hash), its imports checked against its grants, and an `InstancePre` kept
//! so that a request pays only for instantiation, or not even that when pooled.

pub mod bindings;
pub mod builtins;
mod cache;
mod host_state;
mod plugin;

pub use host_state::{HostState, PluginInfo};
pub use plugin::{Lease, Plugin, PluginError, Verdict};

use crate::capabilities::Services;
use crate::config::{GatewayConfig, Location, PluginSource, PluginSpec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// A capability a plugin can be granted: one WIT import interface each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Log,
    Config,
    Kv,
    Counters,
    Http,
    Metrics,
}

impl Capability {
    pub const ALL: [Capability; 6] = [
        Capability::Log,
        Capability::Config,
        Capability::Kv,
        Capability::Counters,
        Capability::Http,
        Capability::Metrics,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Config => "config",
            Capability::Kv => "kv",
            Capability::Counters => "counters",
            Capability::Http => "http",
            Capability::Metrics => "metrics",
        }
    }

    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What a component exports: the hooks of a filter, the handler of an integration, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Filter,
    Integration,
}

impl PluginKind {
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Filter => "filter",
            PluginKind::Integration => "integration",
        }
    }
}

const PACKAGE: &str = "wicket:plugin/";
const HOOKS_EXPORT: &str = "wicket:plugin/hooks@0.1.0";
const HANDLER_EXPORT: &str = "wicket:plugin/handler@0.1.0";

/// A plugin that could not be loaded or wired into a route, with the place in the config
/// and the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {key}: {message}")]
pub struct LoadError {
    pub location: Location,
    pub key: String,
    pub message: String,
}

/// The engine and everything compiled against it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    services: Arc<Services>,
    cache_dir: Option<std::path::PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(config: &GatewayConfig, services: Arc<Services>) -> anyhow::Result<Runtime> {
        let max_memory = config
            .plugins
            .iter()
            .map(|p| p.memory_limit)
            .max()
            .unwrap_or(64 << 20);
        let instances = config.runtime.max_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances * 4)
            .total_memories(instances * 2)
            .total_tables(instances * 2)
            .total_stacks(instances)
            .max_memory_size(max_memory)
            .max_core_instances_per_component(64)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .table_elements(1 << 17)
            .max_core_instance_size(16 << 20)
            .max_component_instance_size(16 << 20);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::Filter::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(
            engine.clone(),
            config.runtime.epoch_tick,
            ticker_stop.clone(),
        );
        Ok(Runtime {
            engine,
            linker,
            services,
            cache_dir: config.runtime.cache_dir.clone(),
            ticker_stop,
        })
    }

    /// Compile (or load from cache) and check one plugin: its imports against its grants,
    /// its exports, and (by calling it) its config.
    pub async fn load(&self, spec: &PluginSpec) -> Result<Plugin, LoadError> {
        let fail = |message: String| LoadError {
            location: spec.location.clone(),
            key: format!("plugins.{}", spec.name),
            message,
        };
        let bytes: std::borrow::Cow<'_, [u8]> = match &spec.source {
            PluginSource::Builtin(b) => b.wasm.into(),
            PluginSource::Wasm(path) => std::fs::read(path)
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?
                .into(),
        };
        let component = cache::compile(&self.engine, &bytes, self.cache_dir.as_deref())
            .map_err(|e| fail(format!("not a valid component: {e:#}")))?;
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            check_import(name, spec).map_err(fail)?;
        }
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let is_filter = exports.iter().any(|e| e == HOOKS_EXPORT);
        let is_integration = exports.iter().any(|e| e == HANDLER_EXPORT);
        if !is_filter && !is_integration {
            return Err(fail(format!(
                "the component exports neither {HOOKS_EXPORT} (a filter) nor {HANDLER_EXPORT} \
                 (an integration); it exports {}",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            )));
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| fail(format!("cannot link: {e:#}")))?;
        let info = Arc::new(PluginInfo {
            name: spec.name.clone(),
            grants: spec.grants.iter().fold(0, |acc, c| acc | c.bit()),
            config_json: spec.config_json.as_str().into(),
        });
        let plugin = Plugin::new(
            info,
            spec,
            pre,
            is_filter,
            is_integration,
            self.services.clone(),
        )
        .map_err(|e| fail(format!("{e:#}")))?;
        match plugin.check_config().await {
            Ok(Ok(())) => Ok(plugin),
            Ok(Err(reason)) => Err(LoadError {
                location: spec.config_location.clone(),
                key: format!("plugins.{}.config", spec.name),
                message: reason,
            }),
            Err(e) => Err(fail(format!("failed while checking its config: {e}"))),
        }
    }
}

/// Every import must be WASI (sandboxed: no files, sockets or environment are given) or one
/// of our capabilities that the plugin was granted.
fn check_import(name: &str, spec: &PluginSpec) -> Result<(), String> {
    if name.starts_with("wasi:") {
        return Ok(());
    }
    let Some(rest) = name.strip_prefix(PACKAGE) else {
        return Err(format!(
            "imports {name:?}, which the gateway does not provide"
        ));
    };
    let interface = rest.split('@').next().unwrap_or(rest);
    if interface == "types" {
        return Ok(());
    }
    match Capability::from_name(interface) {
        Some(c) if spec.grants.contains(&c) => Ok(()),
        Some(c) => Err(format!(
            "imports capability {:?} ({name}) but is not granted it; add it to `grants`",
            c.name()
        )),
        None => Err(format!(
            "imports {name:?}, which the gateway does not provide"
        )),
    }
}

/// One thread advances the engine's epoch; each call's deadline is a number of ticks.
fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("wicket-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch thread");
}
