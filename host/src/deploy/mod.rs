//! Changing the running config without a restart: `SIGHUP`, `POST /admin/reload`,
//! `wicket run --watch` (`watch.rs`) and `POST /admin/rollback` all come here.
//!
//! A new config is loaded completely (parsed, every plugin compiled and its config checked,
//! a changed listen address bound) on the deploy runtime, away from the threads serving
//! requests, before one `ArcSwap` store makes it current. Requests in flight keep the `Arc` of
//! the gateway they started on; a keep-alive connection loads the current one for each
//! request. The old gateway (its plugins, instance pools and engine) is dropped with the last
//! request that holds it. A config that does not load changes nothing: the old one serves on,
//! and the problems are logged and returned, each with its `FILE:LINE:COL`.

mod watch;

pub use watch::watch;

use crate::capabilities::{http, Services};
use crate::config::{ConfigError, GatewayConfig, RuntimeShape};
use crate::gateway::Gateway;
use crate::server::Shared;
use crate::state::State;
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, Mutex};

/// A config that was deployed, kept for rollback.
#[derive(Clone)]
struct Deployed {
    config: GatewayConfig,
    hash: String,
}

/// What a successful reload or rollback deployed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// SHA-256 of the config file and every file it reads.
    pub hash: String,
    pub routes: usize,
    pub plugins: usize,
    /// From the trigger to the new config serving.
    pub millis: u64,
    /// Settings that changed but only take effect on a restart.
    pub notes: Vec<String>,
}

/// Why nothing was deployed: every problem, one line each.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct Refused {
    pub problems: Vec<String>,
}

impl Refused {
    fn one(problem: String) -> Refused {
        Refused {
            problems: vec![problem],
        }
    }
}

/// The listeners the proxy serves on: one per worker, sharing the port.
pub struct ProxyListeners {
    /// The address the config asked for (port 0 included), to tell a change from none.
    pub configured: SocketAddr,
    /// Where each worker takes a replacement listener.
    pub rebind: Vec<mpsc::UnboundedSender<crate::server::Rebind>>,
}

/// The admin listener's serving task, to stop when the address changes.
struct AdminListener {
    configured: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

struct Current {
    services: Arc<Services>,
    history: VecDeque<Deployed>,
    proxy: ProxyListeners,
    admin: Option<AdminListener>,
}

/// Deploys configs onto the running server; one deploy at a time.
pub struct Deployer {
    /// Itself, for the admin listener it starts (which calls back into it).
    me: Weak<Deployer>,
    path: PathBuf,
    shared: Shared,
    /// How the process was started: what a reload cannot change.
    shape: RuntimeShape,
    max_connections: usize,
    metrics: PrometheusHandle,
    /// The last 15 minutes, for the dashboard (`GET /admin/stats`).
    stats: Arc<crate::stats::Stats>,
    current: Mutex<Current>,
}

/// The runtime deploys, the admin listener and the file watcher run on: compiling plugins
/// takes a core for a while, and must not hold up a worker serving requests.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wicket-deploy")
            .enable_all()
            .build()
            .expect("the deploy runtime")
    })
}

/// The services for `config`: `previous`'s state when `[state]` is unchanged (kv entries and
/// counters survive the reload), its HTTP client (and pooled connections) when the body limit
/// it enforces is unchanged.
pub fn services(
    config: &GatewayConfig,
    previous: Option<(&Services, &GatewayConfig)>,
) -> Result<Arc<Services>, Refused> {
    let state = match previous {
        Some((s, old)) if old.state == config.state => s.state.clone(),
        _ => Arc::new(
            State::new(&config.state)
                .map_err(|e| Refused::one(format!("{}: state: {e}", config.source.display())))?,
        ),
    };
    let client = match previous {
        Some((s, old)) if old.server.max_body_bytes == config.server.max_body_bytes => {
            s.http.clone()
        }
        _ => http::Client::new(config.server.max_body_bytes),
    };
    Ok(Arc::new(Services {
        state,
        http: client,
        // Read again for each deployed config: a reload picks up new credentials.
        aws: Arc::new(crate::aws::Keychain::from_process()),
    }))
}

/// The config's problems, the plugins' own included, as `wicket check` prints them.
async fn problems(config: &GatewayConfig, issues: Vec<crate::config::ConfigIssue>) -> Refused {
    let mut problems: Vec<String> = issues.iter().map(ToString::to_string).collect();
    if let Ok(services) = services(config, None) {
        problems.extend(
            crate::gateway::check_plugins(config, services)
                .await
                .iter()
                .map(ToString::to_string),
        );
    }
    Refused { problems }
}

/// SHA-256 of the config text and of every file it reads (a missing one counts as empty).
pub fn fingerprint(text: &[u8], inputs: &[PathBuf]) -> String {
    let mut digest = Sha256::new();
    digest.update(text);
    for path in inputs {
        digest.update(path.as_os_str().as_encoded_bytes());
        digest.update(std::fs::read(path).unwrap_or_default());
    }
    digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bind a listener on `addr` that the other workers' listeners share (`SO_REUSEPORT`: the
/// kernel spreads new connections over them).
pub fn shared_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// `n` listeners on one port: the first on `addr`, the others on the port it got.
pub fn bind_workers(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let first = shared_listener(addr)?;
    let bound = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(shared_listener(bound)?);
    }
    Ok(all)
}

impl Deployer {
    /// Take over the running `config` (already serving through `shared`); start the admin
    /// listener, if any, and the `SIGHUP` handler on the deploy runtime.
    pub fn start(
        path: PathBuf,
        config: GatewayConfig,
        services: Arc<Services>,
        shared: Shared,
        proxy: ProxyListeners,
        metrics: PrometheusHandle,
    ) -> anyhow::Result<Arc<Deployer>> {
        let text = std::fs::read(&path).unwrap_or_default();
        let hash = fingerprint(&text, &config.inputs);
        record_loaded(&hash);
        let stats = crate::stats::Stats::new(metrics.clone());
        runtime().spawn(stats.clone().sample());
        let serving = shared.clone();
        runtime().spawn(crate::usage::flush_every(move || {
            let gw = serving.load();
            (gw.services.state.clone(), gw.config.usage)
        }));
        let deployer = Arc::new_cyclic(|me| Deployer {
            me: me.clone(),
            path,
            shared,
            shape: config.server.runtime,
            max_connections: config.server.max_connections,
            metrics,
            stats,
            current: Mutex::new(Current {
                services,
                history: VecDeque::new(),
                proxy,
                admin: None,
            }),
        });
        let admin = match config.server.admin {
            Some(addr) => Some(deployer.start_admin(addr)?),
            None => None,
        };
        {
            let mut current = deployer.current.try_lock().expect("not shared yet");
            current.admin = admin;
            current.history.push_back(Deployed { config, hash });
        }
        // Registered before `start` returns: from then on a SIGHUP reloads instead of ending
        // the process (its default action).
        let mut hangups = {
            let _runtime = runtime().enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?
        };
        let on_hangup = deployer.clone();
        runtime().spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!(trigger = "SIGHUP", "reloading the config");
                let _ = on_hangup.reload().await;
            }
        });
        Ok(deployer)
    }

    /// The config file and every file the running config reads.
    pub fn watched(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.path.clone()];
        paths.extend(self.shared.load().config.inputs.iter().cloned());
        paths
    }

    /// Read the config file again and deploy it.
    pub async fn reload(&self) -> Result<Outcome, Refused> {
        let started = Instant::now();
        let result = self.load_file().await;
        let result = match result {
            Ok(deployed) => self.deploy(deployed, started, true).await,
            Err(e) => Err(e),
        };
        self.report("reload", &result);
        result
    }

    /// Deploy the config that served before the current one.
    pub async fn rollback(&self) -> Result<Outcome, Refused> {
        let started = Instant::now();
        let previous = {
            let current = self.current.lock().await;
            let n = current.history.len();
            if n < 2 {
                None
            } else {
                Some(current.history[n - 2].clone())
            }
        };
        let result = match previous {
            None => Err(Refused::one(
                "no earlier config to roll back to (`[runtime] history` keeps the last N)".into(),
            )),
            Some(deployed) => self.deploy(deployed, started, false).await,
        };
        self.report("rollback", &result);
        result
    }

    /// Log the outcome and count it.
    fn report(&self, what: &'static str, result: &Result<Outcome, Refused>) {
        match result {
            Ok(o) => {
                metrics::counter!("wicket_config_reloads_total", "result" => "ok").increment(1);
                tracing::info!(
                    action = what,
                    hash = o.hash,
                    routes = o.routes,
                    plugins = o.plugins,
                    millis = o.millis,
                    "config deployed"
                );
                for note in &o.notes {
                    tracing::warn!(action = what, "{note}");
                }
            }
            Err(refused) => {
                metrics::counter!("wicket_config_reloads_total", "result" => "error").increment(1);
                for problem in &refused.problems {
                    tracing::error!(action = what, "{problem}");
                }
                tracing::error!(
                    action = what,
                    problems = refused.problems.len(),
                    "config refused; the running config keeps serving"
                );
            }
        }
    }

    /// Parse and validate the file; all its problems, the plugins' own included, when invalid.
    async fn load_file(&self) -> Result<Deployed, Refused> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            Refused::one(
                ConfigError::Read {
                    path: self.path.clone(),
                    source: e,
                }
                .to_string(),
            )
        })?;
        let (config, issues) = GatewayConfig::parse_lenient(&self.path, &text)
            .map_err(|e| Refused::one(e.to_string()))?;
        if !issues.is_empty() {
            return Err(problems(&config, issues).await);
        }
        let hash = fingerprint(text.as_bytes(), &config.inputs);
        Ok(Deployed { config, hash })
    }

    /// Build `next` completely, bind what changed, then swap it in.
    async fn deploy(
        &self,
        next: Deployed,
        started: Instant,
        record: bool,
    ) -> Result<Outcome, Refused> {
        let mut current = self.current.lock().await;
        let running = self.shared.load_full();
        let services = services(&next.config, Some((&current.services, &running.config)))?;
        let gateway = Gateway::build(next.config.clone(), services.clone())
            .await
            .map_err(|errors| Refused {
                problems: errors.iter().map(ToString::to_string).collect(),
            })?;
        let server = &next.config.server;
        let mut notes = Vec::new();
        if server.runtime != self.shape {
            notes.push(format!(
                "server.runtime and server.workers changed ({:?} -> {:?}); they take effect on \
                 a restart",
                self.shape, server.runtime
            ));
        }
        if server.max_connections != self.max_connections {
            notes.push(format!(
                "server.max_connections changed ({} -> {}); it takes effect on a restart",
                self.max_connections, server.max_connections
            ));
        }
        // New addresses are bound before anything changes: a port in use refuses the config.
        let listen = server.listen;
        let proxy = if listen != current.proxy.configured {
            let fresh = bind_workers(listen, current.proxy.rebind.len()).map_err(|e| {
                Refused::one(format!(
                    "{}: server.listen: cannot bind {listen}: {e}",
                    next.config.source.display()
                ))
            })?;
            Some(fresh)
        } else {
            None
        };
        let admin_changed = server.admin != current.admin.as_ref().map(|a| a.configured);
        let admin = match server.admin {
            Some(addr) if admin_changed => Some(self.start_admin(addr).map_err(|e| {
                Refused::one(format!(
                    "{}: server.admin: {e:#}",
                    next.config.source.display()
                ))
            })?),
            _ => None,
        };

        let outcome = Outcome {
            hash: next.hash.clone(),
            routes: next.config.routes.len(),
            plugins: next.config.plugins.len(),
            millis: 0,
            notes,
        };
        let old = self.shared.swap(Arc::new(gateway));
        runtime().spawn(retire(old));
        current.services = services;
        if let Some(fresh) = proxy {
            let addr = fresh.first().and_then(|l| l.local_addr().ok());
            let mut switched = Vec::new();
            for (worker, listener) in current.proxy.rebind.iter().zip(fresh) {
                let (done, acked) = tokio::sync::oneshot::channel();
                if worker.send((listener, done)).is_ok() {
                    switched.push(acked);
                }
            }
            // Answer once every worker serves the new address and has closed the old one.
            for acked in switched {
                let _ = tokio::time::timeout(Duration::from_secs(5), acked).await;
            }
            current.proxy.configured = listen;
            if let Some(addr) = addr {
                tracing::info!(listener = "proxy", addr = %addr, "listening");
            }
        }
        if admin_changed {
            if let Some(old) = current.admin.take() {
                old.task.abort();
            }
            current.admin = admin;
        }
        record_loaded(&next.hash);
        if record {
            current.history.push_back(next.clone());
        } else {
            // A rollback: the config rolled back from leaves the history.
            current.history.pop_back();
        }
        while current.history.len() > next.config.runtime.history.max(1) {
            current.history.pop_front();
        }
        Ok(Outcome {
            millis: started.elapsed().as_millis() as u64,
            ..outcome
        })
    }

    /// Bind the admin listener on `addr` and serve it on the deploy runtime.
    fn start_admin(&self, addr: SocketAddr) -> anyhow::Result<AdminListener> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("cannot bind the admin listener {addr}: {e}"))?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let _guard = runtime().enter();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tracing::info!(listener = "admin", addr = %bound, "listening");
        let task = runtime().spawn(crate::admin::serve(
            listener,
            self.metrics.clone(),
            self.me.clone(),
        ));
        Ok(AdminListener {
            configured: addr,
            task,
        })
    }

    /// The dashboard's history.
    pub fn stats(&self) -> &crate::stats::Stats {
        &self.stats
    }

    /// The state backend and `[usage]` of the config serving now.
    pub fn usage(&self) -> (Arc<State>, crate::config::UsageConfig) {
        let gw = self.shared.load();
        (gw.services.state.clone(), gw.config.usage)
    }

    /// The hashes of the deployed configs kept for rollback, oldest first.
    pub async fn history(&self) -> Vec<String> {
        let current = self.current.lock().await;
        current.history.iter().map(|d| d.hash.clone()).collect()
    }
}

/// The loaded config's hash (its first 48 bits, exact in a float) and when it was loaded.
fn record_loaded(hash: &str) {
    let head = u64::from_str_radix(&hash[..12.min(hash.len())], 16).unwrap_or(0);
    metrics::gauge!("wicket_config_hash").set(head as f64);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    metrics::gauge!("wicket_config_loaded_timestamp_seconds").set(now.as_secs_f64());
}

/// Drop a replaced gateway once the last request holding it has ended: here, on the deploy
/// runtime, not on the worker that happens to finish that request (tearing down an engine and
/// its instance pools takes a while); then hand the memory it freed back to the system, so
/// that RSS follows the live configs rather than the most ever held.
async fn retire(old: Arc<Gateway>) {
    let mut wait = Duration::from_millis(10);
    // After the swap no one can take a new reference: once ours is the only one, it stays so.
    while Arc::strong_count(&old) > 1 {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
    }
    drop(old);
    release_free_memory();
}

/// Return what a retired config freed to the system: the binary's allocator is mimalloc
/// (`main.rs`), which keeps freed pages for reuse (RSS grew 13% over 200 reloads); glibc's
/// malloc too, for the code that allocated before it or links without it.
fn release_free_memory() {
    // SAFETY: mi_collect has no preconditions; with `force` it frees the calling thread's
    // unused pages and purges empty segments back to the OS.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; it only returns free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
