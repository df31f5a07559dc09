//! Running plugins: one wasmtime `Engine` for the process (pooling allocator, epoch
//! interruption driven by a single ticker thread), each plugin compiled once (and cached on
//! disk by content hash), its imports checked against its grants, and an `InstancePre` kept
//! so that a request pays only for instantiation, or not even that when pooled.

pub mod bindings;
pub mod builtins;
mod cache;
pub mod describe;
mod diagnose;
mod engine_settings;
mod host_state;
mod output;
mod plugin;
mod wasi_http;

pub use crate::config::Capability;
pub use describe::{BodyUse, Description, HeaderEdits, Plan};
pub(crate) use host_state::thread_cpu;
pub use host_state::{HostState, PluginInfo};
pub use plugin::{Lease, Plugin, PluginError, Verdict};

use crate::capabilities::Services;
use crate::config::{GatewayConfig, Location, PluginSource, PluginSpec};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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
/// A standard HTTP handler (WASI 0.2, any 0.2.x): runs as an integration (`wasi_http.rs`).
const WASI_HTTP_EXPORT: &str = "wasi:http/incoming-handler@0.2.";

/// A plugin that could not be loaded or wired into a route, with the place in the config
/// and the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {key}: {message}")]
pub struct LoadError {
    pub location: Location,
    pub key: String,
    pub message: String,
}

/// Where a component comes from.
pub enum Source<'a> {
    Builtin(&'static builtins::Builtin),
    /// A component file's bytes.
    Wasm(&'a [u8]),
}

/// How much of an instance slot's memory and table stays resident between instances
/// (see `with_settings`).
const KEEP_RESIDENT: usize = 1 << 20;

/// The engine and everything compiled against it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    services: Arc<Services>,
    cache_dir: Option<std::path::PathBuf>,
    epoch_tick: Duration,
}

impl Runtime {
    pub fn new(config: &GatewayConfig, services: Arc<Services>) -> anyhow::Result<Runtime> {
        let max_memory = config
            .plugins
            .iter()
            .map(|p| p.memory_limit)
            .max()
            .unwrap_or(64 << 20);
        Runtime::with_settings(&config.runtime, max_memory, services)
    }

    /// A runtime for `settings`, whose instances may use up to `max_memory` bytes each.
    pub fn with_settings(
        settings: &crate::config::RuntimeConfig,
        max_memory: usize,
        services: Arc<Services>,
    ) -> anyhow::Result<Runtime> {
        let instances = settings.max_instances;
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
            .max_component_instance_size(16 << 20)
            // A fresh instance per request takes a slot that an earlier one left. By default
            // wasmtime gives a slot's pages back with `madvise` and the next instance faults
            // them in again (about five faults per instance). Instead, keep up to this much of
            // each memory and table resident and reset only the pages that were written (found
            // with the PAGEMAP_SCAN ioctl, Linux 6.7+, where available). Fiber stacks are not
            // zeroed between uses (wasmtime's default), so they stay resident anyway.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = engine_settings::config();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // `wasi:http` for standard handlers and for toolchains that import it by default
        // (componentize-js); outgoing calls reach only a plugin's `allowed_hosts`.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::Filter::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;

        spawn_ticker(&engine, settings.epoch_tick);
        Ok(Runtime {
            engine,
            linker,
            services,
            cache_dir: settings.cache_dir.clone(),
            epoch_tick: settings.epoch_tick,
        })
    }

    /// Compile (or load from cache) and check one plugin: its description, its imports
    /// against its grants, its config keys against the keys it declares, and (by calling it)
    /// its config. Every problem found is returned, each at its place in the config.
    pub async fn load(
        &self,
        spec: &PluginSpec,
        component: Component,
    ) -> Result<Plugin, Vec<LoadError>> {
        let fail = |message| plugin_error(spec, message);
        // Imports outside what the host links are named one by one, before the linker's
        // first refusal would name only one of them.
        let unknown: Vec<LoadError> = component
            .component_type()
            .imports(&self.engine)
            .filter_map(|(name, _)| check_import(name).err())
            .flat_map(fail)
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let (pre, _) = self.prepare(component).map_err(fail)?;
        let description = self.describe(&pre, &spec.config_json).await.map_err(fail)?;

        let mut grants = spec.grants.clone();
        if matches!(spec.source, PluginSource::Builtin(_)) {
            grants.extend(description.capabilities.iter().copied());
        }
        let mut errors = Vec::new();
        let mut imported = std::collections::BTreeSet::new();
        let component = pre.component();
        for (name, _) in component.component_type().imports(&self.engine) {
            if let Ok(Some(c)) = check_import(name) {
                imported.insert(c);
            }
        }
        // A component may import a capability it never calls (componentize-js keeps every
        // import of its world): it loads, and a call to an ungranted capability fails (every
        // capability call checks the grant), so nothing ungranted ever succeeds.
        let ungranted: Vec<Capability> = imported.difference(&grants).copied().collect();
        if !ungranted.is_empty() {
            let names: Vec<&str> = ungranted.iter().map(|c| c.name()).collect();
            tracing::info!(
                plugin = %spec.name,
                "imports {} without a grant: any call to it will fail (grant it in `grants` if \
                 the plugin needs it)",
                names.join(", ")
            );
        }
        for c in &description.capabilities {
            if !grants.contains(c) {
                errors.extend(fail(format!(
                    "calls capability {:?} but is not granted it; add it to `grants`",
                    c.name()
                )));
            }
        }
        for (location, key, message) in
            description.check_keys(&spec.name, &spec.config_keys, &spec.config_location)
        {
            errors.push(LoadError {
                location,
                key,
                message,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let info = Arc::new(PluginInfo {
            name: spec.name.clone(),
            grants: grants.iter().fold(0, |acc, c| acc | c.bit()),
            config_json: spec.config_json.as_str().into(),
            epoch_tick: self.epoch_tick,
            allowed_hosts: spec.allowed_hosts.as_slice().into(),
            output_limit: Default::default(),
        });
        let mut plugin = Plugin::new(info, spec, pre, self.services.clone());
        plugin.description = description;
        plugin.imports = imported;
        match plugin.check_config().await {
            Ok(Ok(())) => {
                // A plugin that will sign for AWS (a signed forward, or a granted `aws` that
                // no unsigned forward replaces) needs the credentials now, not at its first
                // request.
                let signs = match &plugin.plan.forward {
                    Some(f) => f.sign.is_some(),
                    None => grants.contains(&Capability::Aws),
                };
                if signs {
                    if let Err(e) = self.services.aws.get() {
                        return Err(fail(format!("signs requests for AWS, but {e}")));
                    }
                }
                Ok(plugin)
            }
            Ok(Err(reason)) => Err(vec![LoadError {
                location: spec.config_location.clone(),
                key: format!("plugins.{}.config", spec.name),
                message: format!(
                    "plugin {:?} refused this config (its check-config said: {reason}); fix                      the config table here (`wicket plugins FILE.wasm` lists the keys it takes)",
                    spec.name
                ),
            }]),
            Err(e) => Err(fail(format!("failed while checking its config: {e}"))),
        }
    }

    /// The compiled component of `spec`: a built-in's was compiled at build time; an
    /// external one comes from the disk cache or is compiled now. Synchronous and
    /// independent of the other plugins, so that start-up can compile several at once.
    pub fn compile(&self, spec: &PluginSpec) -> Result<Component, Vec<LoadError>> {
        let fail = |message| plugin_error(spec, message);
        match &spec.source {
            PluginSource::Builtin(name) => match builtins::find(name) {
                Some(builtin) => self.compile_source(Source::Builtin(builtin)).map_err(fail),
                None => Err(vec![LoadError {
                    location: spec.source_location.clone(),
                    key: format!("plugins.{}.builtin", spec.name),
                    message: format!(
                        "unknown builtin {name:?}; builtins are {}",
                        builtins::names().join(", ")
                    ),
                }]),
            },
            PluginSource::Wasm(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                self.compile_source(Source::Wasm(&bytes)).map_err(fail)
            }
        }
    }

    /// Compile a component into the compile cache (`wicket compile`), or find it there.
    pub fn precompile(&self, bytes: &[u8]) -> Result<(), String> {
        self.compile_source(Source::Wasm(bytes)).map(drop)
    }

    /// Where compiled external plugins are kept; `None` when caching is off.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }

    fn compile_source(&self, source: Source<'_>) -> Result<Component, String> {
        let cache_dir = self.cache_dir.as_deref();
        match source {
            Source::Builtin(builtin) => builtin.component(&self.engine, cache_dir),
            Source::Wasm(bytes) => cache::compile(&self.engine, bytes, cache_dir),
        }
        .map_err(|e| format!("not a valid component: {e:#}"))
    }

    /// Resolve a component's imports; also returns what kinds of plugin its exports make it.
    fn prepare(
        &self,
        component: Component,
    ) -> Result<(InstancePre<HostState>, Vec<PluginKind>), String> {
        // Linking first: a component built against another contract is told so, rather than
        // that it exports no hooks.
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| diagnose::link_error(&e))?;
        let kinds = kinds(&self.engine, &component)?;
        Ok((pre, kinds))
    }

    /// Call the component's `describe` export, on an instance of its own with only `log` and
    /// `config` granted: a description costs nothing and calls nothing.
    async fn describe(
        &self,
        pre: &InstancePre<HostState>,
        config_json: &str,
    ) -> Result<Description, String> {
        if pre.component().get_export_index(None, "describe").is_none() {
            return Ok(Description::default());
        }
        let info = Arc::new(PluginInfo {
            name: "describe".into(),
            grants: Capability::Log.bit() | Capability::Config.bit(),
            config_json: config_json.into(),
            epoch_tick: self.epoch_tick,
            allowed_hosts: Arc::from([]),
            output_limit: Default::default(),
        });
        let limit = Duration::from_secs(1);
        let memory = 64 << 20;
        let mut store = plugin::new_store(&self.engine, info, self.services.clone(), memory);
        store.data_mut().clock.start(limit);
        store.set_epoch_deadline(1);
        let described = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let describe = instance.get_typed_func::<(), (bindings::description::Description,)>(
                &mut store, "describe",
            )?;
            let (d,) = describe.call_async(&mut store, ()).await?;
            wasmtime::Result::Ok(d)
        }
        .await;
        match described {
            Ok(d) => Description::from_wit(d),
            Err(e) => Err(format!(
                "failed while describing itself: {}",
                plugin::classify("describe", limit, memory, e, &store)
            )),
        }
    }

    /// What `wicket plugins FILE` shows: the component's kinds and description.
    pub async fn describe_component(
        &self,
        source: Source<'_>,
    ) -> Result<(Vec<PluginKind>, Description), String> {
        let (pre, kinds) = self.prepare(self.compile_source(source)?)?;
        let description = self.describe(&pre, "{}").await?;
        Ok((kinds, description))
    }
}

/// A problem with plugin `spec` as a whole, placed at its table in the config.
fn plugin_error(spec: &PluginSpec, message: String) -> Vec<LoadError> {
    vec![LoadError {
        location: spec.location.clone(),
        key: format!("plugins.{}", spec.name),
        message,
    }]
}

/// The kinds a component's exports make it; an error when it is neither.
fn kinds(engine: &Engine, component: &Component) -> Result<Vec<PluginKind>, String> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    let mut kinds = Vec::new();
    if exports.iter().any(|e| e == HOOKS_EXPORT) {
        kinds.push(PluginKind::Filter);
    }
    if exports
        .iter()
        .any(|e| e == HANDLER_EXPORT || e.starts_with(WASI_HTTP_EXPORT))
    {
        kinds.push(PluginKind::Integration);
    }
    if kinds.is_empty() {
        return Err(format!(
            "the component exports neither {HOOKS_EXPORT} (a filter) nor {HANDLER_EXPORT} or \
             {WASI_HTTP_EXPORT}x (an integration); it exports {}",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ));
    }
    Ok(kinds)
}

/// Every import must be WASI (sandboxed: no files, sockets or environment are given), our
/// types, or one of our capabilities, which this returns (granted or not).
fn check_import(name: &str) -> Result<Option<Capability>, String> {
    if name.starts_with("wasi:") {
        return Ok(None);
    }
    let Some(rest) = name.strip_prefix(PACKAGE) else {
        return Err(diagnose::unknown_import(name));
    };
    let interface = rest.split('@').next().unwrap_or(rest);
    if interface == "types" || interface == "description" {
        return Ok(None);
    }
    match Capability::from_name(interface) {
        Some(c) => Ok(Some(c)),
        None => Err(diagnose::unknown_import(name)),
    }
}

/// One thread advances the engine's epoch; each call's deadline is a number of ticks. It runs
/// while anything compiled against the engine lives: after a reload, a request still running
/// on the old config's plugins keeps its CPU limit, and the thread ends with the last of them.
fn spawn_ticker(engine: &Engine, tick: Duration) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wicket-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            match engine.upgrade() {
                Some(e) => e.increment_epoch(),
                None => break,
            }
        })
        .expect("spawning the epoch thread");
}
