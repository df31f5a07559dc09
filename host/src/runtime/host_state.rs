//! What a plugin's store holds: its resource table, a locked-down WASI context, its limits,
//! and who it is (name, grants, config) so every capability call can be checked and tagged.

use super::Capability;
use crate::capabilities::Services;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The parts of a plugin's identity every store of that plugin shares.
pub struct PluginInfo {
    pub name: String,
    pub grants: u8,
    pub config_json: Arc<str>,
}

impl PluginInfo {
    pub fn granted(&self, c: Capability) -> bool {
        self.grants & c.bit() != 0
    }
}

/// Time a call spends in guest code: wall time since the call began minus the time spent in
/// host functions (outbound HTTP, Redis, WASI clocks and sleeps, header reads), measured at
/// every crossing of the component boundary by the store's call hook. What is left is time
/// the plugin's own code ran (or waited for a CPU while running).
pub struct CallClock {
    started: Instant,
    in_host: Duration,
    /// Set while a host function runs; `depth` counts nested host calls.
    host_since: Option<Instant>,
    depth: u32,
    pub budget: Duration,
}

impl CallClock {
    pub fn new() -> CallClock {
        CallClock {
            started: Instant::now(),
            in_host: Duration::ZERO,
            host_since: None,
            depth: 0,
            budget: Duration::ZERO,
        }
    }

    pub fn start(&mut self, budget: Duration) {
        self.started = Instant::now();
        self.in_host = Duration::ZERO;
        self.host_since = None;
        self.depth = 0;
        self.budget = budget;
    }

    pub fn enter_host(&mut self) {
        if self.depth == 0 {
            self.host_since = Some(Instant::now());
        }
        self.depth += 1;
    }

    pub fn leave_host(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 {
            if let Some(since) = self.host_since.take() {
                self.in_host += since.elapsed();
            }
        }
    }

    pub fn guest_time(&self) -> Duration {
        let in_host = self.in_host + self.host_since.map(|s| s.elapsed()).unwrap_or_default();
        self.started.elapsed().saturating_sub(in_host)
    }

    pub fn over_budget(&self) -> bool {
        self.guest_time() > self.budget
    }
}

/// Memory and table growth limits that remember whether they refused, so an out-of-memory
/// trap can be reported as such rather than as a generic trap.
pub struct Limits {
    pub memory: usize,
    pub hit: bool,
}

/// Tables hold function references; no honest plugin needs more than this many.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.hit = true;
            wasmtime::bail!(
                "memory limit of {} bytes exceeded (wanted {desired})",
                self.memory
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

pub struct HostState {
    pub table: ResourceTable,
    wasi: WasiCtx,
    pub limits: Limits,
    pub plugin: Arc<PluginInfo>,
    pub services: Arc<Services>,
    /// The request being served, for log lines.
    pub request_id: String,
    pub clock: CallClock,
    /// Set when a body the plugin asked for passed `max_body_bytes`: (request?, limit).
    pub body_too_large: Option<(bool, usize)>,
}

impl HostState {
    pub fn new(plugin: Arc<PluginInfo>, services: Arc<Services>, memory: usize) -> HostState {
        // No arguments, environment, files, sockets or stdio: a plugin reaches the world only
        // through the capabilities it was granted.
        let wasi = WasiCtx::builder().build();
        HostState {
            table: ResourceTable::new(),
            wasi,
            limits: Limits { memory, hit: false },
            plugin,
            services,
            request_id: String::new(),
            clock: CallClock::new(),
            body_too_large: None,
        }
    }

    /// Fails the call (a trap naming plugin and capability) unless `c` was granted.
    pub fn require(&self, c: Capability) -> wasmtime::Result<()> {
        if self.plugin.granted(c) {
            Ok(())
        } else {
            wasmtime::bail!(
                "plugin {:?} called capability {:?} without a grant",
                self.plugin.name,
                c.name()
            )
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
