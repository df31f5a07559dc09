//! What a plugin's store holds: its resource table, a locked-down WASI context, its limits,
//! and who it is (name, grants, config) so every capability call can be checked and tagged.

use super::output::{OutputLimit, OutputTag, PluginOutput};
use super::Capability;
use crate::capabilities::wasi_http::Outbound;
use crate::capabilities::Services;
use crate::config::Origin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The parts of a plugin's identity every store of that plugin shares.
pub struct PluginInfo {
    pub name: String,
    pub grants: u8,
    pub config_json: Arc<str>,
    /// The engine's epoch tick: what a call's CPU clock counts for a segment it cannot measure.
    pub epoch_tick: Duration,
    /// Origins `wasi:http/outgoing-handler` may reach (config `allowed_hosts`).
    pub allowed_hosts: Arc<[Origin]>,
    /// The rate limit of the plugin's stdout and stderr lines, shared by its instances.
    pub output_limit: Arc<OutputLimit>,
}

impl PluginInfo {
    pub fn granted(&self, c: Capability) -> bool {
        self.grants & c.bit() != 0
    }
}

/// CPU time a call spends in guest code, from the calling thread's CPU clock
/// (`CLOCK_THREAD_CPUTIME_ID`), so time the plugin waited (for I/O, or for a CPU on a loaded
/// machine) is never counted against it.
///
/// Most calls end within one epoch tick; they read no clock at all. The clock is armed at the
/// call's first tick, charged one tick for the time before it, and from then on reads the CPU
/// clock when guest code stops for a host call that may suspend it (I/O), resumes after one,
/// and at each tick. A segment that ends on another thread than it began (the call's fiber
/// yielded at a tick and resumed elsewhere) counts as one tick.
pub struct CallClock {
    spent: Duration,
    /// Armed: guest code has run past a tick in this call.
    armed: bool,
    /// The open segment: thread CPU time and thread id when guest code (re)started.
    segment: Option<(Duration, libc::pid_t)>,
    /// Nested host calls (a host function calling back into the guest).
    depth: u32,
    tick: Duration,
    pub budget: Duration,
}

/// The calling thread's CPU time and id.
pub(crate) fn thread_cpu() -> (Duration, libc::pid_t) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    (Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32), tid)
}

impl CallClock {
    pub fn new(tick: Duration) -> CallClock {
        CallClock {
            spent: Duration::ZERO,
            armed: false,
            segment: None,
            depth: 0,
            tick,
            budget: Duration::ZERO,
        }
    }

    pub fn start(&mut self, budget: Duration) {
        self.spent = Duration::ZERO;
        self.armed = false;
        self.segment = None;
        self.depth = 0;
        self.budget = budget;
    }

    fn close(&mut self) {
        if let Some((began, tid)) = self.segment.take() {
            let (now, here) = thread_cpu();
            self.spent += if here == tid {
                now.saturating_sub(began)
            } else {
                self.tick
            };
        }
    }

    /// Await `f`, a host call that may suspend the plugin (I/O), with the clock stopped:
    /// meanwhile the thread runs other requests, and their CPU time is not the plugin's.
    /// Host calls that never suspend (headers, context, log) stay on the clock: their work
    /// is done for the plugin, on its thread.
    pub async fn paused<F: std::future::Future>(&mut self, f: F) -> F::Output {
        self.enter_host();
        let out = f.await;
        self.leave_host();
        out
    }

    fn enter_host(&mut self) {
        if self.depth == 0 && self.armed {
            self.close();
        }
        self.depth += 1;
    }

    fn leave_host(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 && self.armed {
            self.segment = Some(thread_cpu());
        }
    }

    /// At an epoch tick, while guest code runs: the guest time so far.
    pub fn guest_time(&mut self) -> Duration {
        if !self.armed {
            self.armed = true;
            self.spent = self.tick;
        } else {
            self.close();
        }
        self.segment = Some(thread_cpu());
        self.spent
    }

    pub fn over_budget(&mut self) -> bool {
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
    http: WasiHttpCtx,
    outbound: Outbound,
    pub limits: Limits,
    pub plugin: Arc<PluginInfo>,
    pub services: Arc<Services>,
    /// The plugin and the request being served, for the lines it logs (through `log`, and
    /// its stdout and stderr).
    output: Arc<OutputTag>,
    pub clock: CallClock,
    /// Set when a body the plugin asked for passed `max_body_bytes`: (request?, limit).
    pub body_too_large: Option<(bool, usize)>,
}

impl HostState {
    pub fn new(plugin: Arc<PluginInfo>, services: Arc<Services>, memory: usize) -> HostState {
        // No arguments, environment, files, sockets or stdin: a plugin reaches the world only
        // through the capabilities it was granted. Its stdout and stderr become log lines.
        let output = Arc::new(OutputTag {
            plugin: plugin.name.as_str().into(),
            limit: plugin.output_limit.clone(),
            request_id: Mutex::new(String::new()),
        });
        let wasi = WasiCtx::builder()
            .stdout(PluginOutput {
                tag: output.clone(),
                stream: "stdout",
            })
            .stderr(PluginOutput {
                tag: output.clone(),
                stream: "stderr",
            })
            .build();
        let clock = CallClock::new(plugin.epoch_tick);
        let outbound = Outbound::new(
            plugin.name.as_str().into(),
            plugin.allowed_hosts.clone(),
            services.http.clone(),
        );
        HostState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            outbound,
            limits: Limits { memory, hit: false },
            plugin,
            services,
            output,
            clock,
            body_too_large: None,
        }
    }

    /// The request the next call serves, for every line it logs.
    pub fn set_request_id(&mut self, request_id: &str) {
        let mut tagged = self.output.request_id.lock().unwrap();
        tagged.clear();
        tagged.push_str(request_id);
    }

    /// The request being served.
    pub fn request_id(&self) -> std::sync::MutexGuard<'_, String> {
        self.output.request_id.lock().unwrap()
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

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{thread_cpu, CallClock};
    use std::time::Duration;

    /// Burn `d` of this thread's CPU time (not wall time: other tests share the cores).
    fn spin(d: Duration) {
        let start = thread_cpu().0;
        while thread_cpu().0 - start < d {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn counts_cpu_not_waiting_and_not_host_calls() {
        let tick = Duration::from_millis(2);
        let mut clock = CallClock::new(tick);
        clock.start(Duration::from_millis(100));
        // The first tick arms the clock and charges one tick.
        assert_eq!(clock.guest_time(), tick);
        spin(Duration::from_millis(30));
        let after_spin = clock.guest_time();
        assert!(after_spin >= Duration::from_millis(25), "{after_spin:?}");
        // Sleeping (waiting for a CPU or I/O) costs the plugin nothing.
        std::thread::sleep(Duration::from_millis(30));
        let after_sleep = clock.guest_time();
        assert!(
            after_sleep - after_spin < Duration::from_millis(5),
            "{after_sleep:?}"
        );
        // CPU spent inside a host call is the host's.
        clock.enter_host();
        spin(Duration::from_millis(30));
        clock.leave_host();
        let after_host = clock.guest_time();
        assert!(
            after_host - after_sleep < Duration::from_millis(5),
            "{after_host:?}"
        );
        assert!(!clock.over_budget());
        spin(Duration::from_millis(80));
        assert!(clock.over_budget());
    }
}
