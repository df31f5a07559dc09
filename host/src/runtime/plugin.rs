//! One loaded plugin: how its instances are made (fresh per request, or from a pool of warm
//! ones), the limits every call runs under, and the calls the pipeline makes. Request,
//! response and context are moved into the instance's resource table for a call and moved
//! back out after it, so nothing is copied to hand them over.

use super::bindings::{description as wit, handler, hooks, Action};
use super::describe::{Description, Plan};
use super::host_state::{HostState, PluginInfo};
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use crate::capabilities::Services;
use crate::config::{Isolation, PluginSpec};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Instance, InstancePre, Resource};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Why a plugin call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin:?} ran past its CPU time limit of {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin {plugin:?} went past its memory limit of {limit} bytes")]
    OutOfMemory { plugin: String, limit: usize },
    #[error("plugin {plugin:?} trapped: {detail}")]
    Trap { plugin: String, detail: String },
    /// A body the plugin asked for passed `max_body_bytes`.
    #[error("plugin {plugin:?} asked for a {} body larger than {limit} bytes", if *.request { "request" } else { "response" })]
    BodyTooLarge {
        plugin: String,
        request: bool,
        limit: usize,
    },
    #[error("plugin {plugin:?} could not be instantiated: {detail}")]
    Instantiate { plugin: String, detail: String },
    /// The plugin returned an error of its own; `status` and `message` are for the client.
    #[error("plugin {plugin:?} failed with {status}: {message}")]
    Failed {
        plugin: String,
        status: u16,
        message: String,
    },
}

/// The CPU time the calls made while loading (`check-config`, `plan`) may take at least,
/// whatever the plugin's `cpu_ms`: start-up work (a first instantiation, an interpreter's
/// import of its modules) may take longer than a request's hook, and must not stop the
/// gateway from starting.
const LOAD_CPU: Duration = Duration::from_secs(5);

/// A live instance, its loaded exports, and how often it has served.
pub(super) struct Warm {
    pub(super) store: Store<HostState>,
    pub(super) instance: Instance,
    hooks: Option<hooks::Guest>,
    handler: Option<handler::Guest>,
    uses: u64,
}

/// Warm instances waiting for a request. The pool keeps at least `pool_size` and grows to the
/// largest number ever in use at once, so a steady load never instantiates per request
/// whatever its concurrency; the pooling allocator's `max_instances` bounds the total.
struct Pool {
    idle: Mutex<Vec<Warm>>,
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

pub struct Plugin {
    pub info: Arc<PluginInfo>,
    /// What the plugin says it is; `Description::default()` when it does not say.
    pub description: Description,
    /// What this configured instance does; filled in by `load` after `check-config`.
    pub plan: Plan,
    /// The capabilities the component imports (granted or not: see `info.grants`).
    pub imports: std::collections::BTreeSet<crate::config::Capability>,
    isolation: Isolation,
    pub(super) cpu_limit: Duration,
    memory_limit: usize,
    engine: wasmtime::Engine,
    services: Arc<Services>,
    pre: InstancePre<HostState>,
    hooks: Option<hooks::GuestIndices>,
    handler: Option<handler::GuestIndices>,
    /// The `wasi:http/incoming-handler` export of a standard HTTP handler (`wasi_http.rs`).
    pub(super) proxy: Option<wasmtime_wasi_http::p2::bindings::ProxyIndices>,
    has_plan: bool,
    pool: Pool,
    on_request_seconds: metrics::Histogram,
    on_response_seconds: metrics::Histogram,
    handle_seconds: metrics::Histogram,
}

/// What a filter's `on-request` decided.
pub enum Verdict {
    /// Go on with the next plugin.
    Continue,
    /// The filter answered with this response.
    Respond(ResponseData),
    /// The filter refused the request with an error of its own (a 401, a 429): an answer
    /// too, rendered by the host's `rescue`.
    Refuse(PluginError),
}

/// The outcome of `on-request`: the request and context back, and the verdict.
pub struct OnRequest {
    pub req: RequestData,
    pub ctx: ContextData,
    pub verdict: Verdict,
    /// The instance to run this request's `on-response` on, when the plugin keeps one
    /// instance per request.
    pub lease: Lease,
}

/// An instance reserved for the rest of one request (fresh isolation), or nothing (pooled:
/// `on-response` takes whichever warm instance is free).
#[derive(Default)]
pub struct Lease(Option<Warm>);

impl Plugin {
    pub(super) fn new(
        info: Arc<PluginInfo>,
        spec: &PluginSpec,
        pre: InstancePre<HostState>,
        services: Arc<Services>,
    ) -> Plugin {
        let engine = pre.engine().clone();
        let histogram = |phase: &'static str| metrics::histogram!("wicket_plugin_seconds", "plugin" => spec.name.clone(), "phase" => phase);
        Plugin {
            info,
            description: Description::default(),
            plan: Plan::default(),
            imports: Default::default(),
            isolation: spec.isolation,
            cpu_limit: spec.cpu_limit,
            memory_limit: spec.memory_limit,
            engine,
            services,
            hooks: hooks::GuestIndices::new(&pre).ok(),
            handler: handler::GuestIndices::new(&pre).ok(),
            proxy: wasmtime_wasi_http::p2::bindings::ProxyIndices::new(&pre).ok(),
            has_plan: pre.component().get_export_index(None, "plan").is_some(),
            pre,
            pool: Pool {
                idle: Mutex::new(Vec::new()),
                in_use: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            },
            on_request_seconds: histogram("on_request"),
            on_response_seconds: histogram("on_response"),
            handle_seconds: histogram("handle"),
        }
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// What `wicket check` says of the plugin's capabilities: what it imports, what it is
    /// granted, and which imports it will be refused.
    pub fn capabilities_line(&self) -> String {
        let names = |it: &mut dyn Iterator<Item = crate::config::Capability>| {
            let v: Vec<&str> = it.map(|c| c.name()).collect();
            if v.is_empty() {
                "nothing".to_string()
            } else {
                v.join(", ")
            }
        };
        let granted = |c: &crate::config::Capability| self.info.granted(*c);
        let mut line = format!(
            "{}: imports {}; granted {}",
            self.info.name,
            names(&mut self.imports.iter().copied()),
            names(&mut crate::config::Capability::ALL.into_iter().filter(granted)),
        );
        let refused: Vec<&str> = self
            .imports
            .iter()
            .filter(|c| !granted(c))
            .map(|c| c.name())
            .collect();
        if !refused.is_empty() {
            line.push_str(&format!(
                " (not granted: {}; calls to it fail)",
                refused.join(", ")
            ));
        }
        line
    }

    pub fn is_filter(&self) -> bool {
        self.hooks.is_some()
    }

    pub fn is_integration(&self) -> bool {
        self.handler.is_some() || self.proxy.is_some()
    }

    fn new_store(&self) -> Store<HostState> {
        new_store(
            &self.engine,
            self.info.clone(),
            self.services.clone(),
            self.memory_limit,
        )
    }

    fn begin_call(&self, store: &mut Store<HostState>, request_id: &str, cpu: Duration) {
        let data = store.data_mut();
        data.clock.start(cpu);
        data.set_request_id(request_id);
        data.body_too_large = None;
        store.set_epoch_deadline(1);
    }

    /// Why a call failed; a timeout names the budget the call ran under.
    fn classify(&self, err: wasmtime::Error, store: &Store<HostState>) -> PluginError {
        let cpu = store.data().clock.budget;
        classify(&self.info.name, cpu, self.memory_limit, err, store)
    }

    async fn instantiate(&self, request_id: &str, cpu: Duration) -> Result<Warm, PluginError> {
        let mut store = self.new_store();
        self.begin_call(&mut store, request_id, cpu);
        let loaded = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let hooks = match &self.hooks {
                Some(ix) => Some(ix.load(&mut store, &instance)?),
                None => None,
            };
            let handler = match &self.handler {
                Some(ix) => Some(ix.load(&mut store, &instance)?),
                None => None,
            };
            wasmtime::Result::Ok((instance, hooks, handler))
        }
        .await;
        match loaded {
            Ok((instance, hooks, handler)) => Ok(Warm {
                store,
                instance,
                hooks,
                handler,
                uses: 0,
            }),
            Err(e) => Err(match self.classify(e, &store) {
                PluginError::Trap { plugin, detail } => PluginError::Instantiate { plugin, detail },
                other => other,
            }),
        }
    }

    /// Run `f` on `lease` or a warm instance. Afterwards a pooled instance goes back to the
    /// pool if healthy and not worn out; with `keep`, the instance is handed back to the caller
    /// instead (a fresh instance serves both hooks of its one request). An instance that
    /// failed is never used again.
    pub(super) async fn with_instance<R>(
        &self,
        request_id: &str,
        cpu: Duration,
        lease: Option<Warm>,
        keep: bool,
        f: impl AsyncFnOnce(&mut Warm) -> wasmtime::Result<R>,
    ) -> Result<(R, Option<Warm>), PluginError> {
        let pooled = match self.isolation {
            Isolation::Pooled { size, max_uses } => Some((size, max_uses)),
            Isolation::Request => None,
        };
        let warm = match (lease, pooled) {
            (Some(w), _) => Some(w),
            (None, Some(_)) => self.pool.idle.lock().unwrap().pop(),
            (None, None) => None,
        };
        let in_use = self.pool.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        self.pool.peak.fetch_max(in_use, Ordering::Relaxed);
        let _in_use = InUse(&self.pool.in_use);
        let mut warm = match warm {
            Some(w) => w,
            None => self.instantiate(request_id, cpu).await?,
        };
        self.begin_call(&mut warm.store, request_id, cpu);
        let result = f(&mut warm).await;
        match result {
            Ok(r) => {
                warm.uses += 1;
                if keep {
                    return Ok((r, Some(warm)));
                }
                if let Some((size, max_uses)) = pooled {
                    if warm.uses < max_uses {
                        let keep_idle = size.max(self.pool.peak.load(Ordering::Relaxed));
                        let mut idle = self.pool.idle.lock().unwrap();
                        if idle.len() < keep_idle {
                            idle.push(warm);
                        }
                    }
                }
                Ok((r, None))
            }
            Err(e) => Err(self.classify(e, &warm.store)),
        }
    }

    fn plugin_error(&self, e: super::bindings::types::Error) -> PluginError {
        PluginError::Failed {
            plugin: self.info.name.clone(),
            status: e.status,
            message: e.message,
        }
    }

    /// Ask the plugin whether its config is usable (its `check-config` export) and, when it
    /// is, what it will do with it (its `plan` export). Runs on a fresh instance; a pooled
    /// plugin keeps that instance, warm, for the first request.
    pub(super) async fn check_config(&mut self) -> Result<Result<(), String>, PluginError> {
        let has_plan = self.has_plan;
        let (out, _) = self
            .with_instance(
                "load",
                self.cpu_limit.max(LOAD_CPU),
                None,
                false,
                async |warm: &mut Warm| {
                    let checked = match (&warm.hooks, &warm.handler) {
                        (Some(h), _) => h.call_check_config(&mut warm.store).await?,
                        (None, Some(h)) => h.call_check_config(&mut warm.store).await?,
                        (None, None) => Ok(()),
                    };
                    if checked.is_err() || !has_plan {
                        return Ok((checked, None));
                    }
                    let plan = warm
                        .instance
                        .get_typed_func::<(), (wit::InstancePlan,)>(&mut warm.store, "plan")?;
                    let (plan,) = plan.call_async(&mut warm.store, ()).await?;
                    Ok((checked, Some(plan)))
                },
            )
            .await?;
        let (checked, plan) = out;
        if let Some(plan) = plan {
            match Plan::from_wit(plan) {
                Ok(p) => self.plan = p,
                Err(e) => return Ok(Err(e)),
            }
        }
        if !self.is_filter() {
            // Hooks an integration does not have are never called.
            self.plan.on_request = false;
            self.plan.on_response = false;
        }
        Ok(checked)
    }

    /// The filter's `on-request` hook.
    pub async fn on_request(
        &self,
        request_id: &str,
        req: RequestData,
        ctx: ContextData,
    ) -> Result<OnRequest, PluginError> {
        let started = Instant::now();
        let keep = self.isolation == Isolation::Request;
        let out = self
            .with_instance(
                request_id,
                self.cpu_limit,
                None,
                keep,
                async |warm: &mut Warm| {
                    let hooks = warm.hooks.as_ref().expect("routes use filters as filters");
                    let store = &mut warm.store;
                    let req_r = store.data_mut().table.push(req)?;
                    let ctx_r = store.data_mut().table.push(ctx)?;
                    let action = hooks
                        .call_on_request(&mut *store, borrow(&req_r), borrow(&ctx_r))
                        .await?;
                    let table = &mut store.data_mut().table;
                    let req = table.delete(req_r)?;
                    let ctx = table.delete(ctx_r)?;
                    let action = match action {
                        Ok(Action::Continue) => Ok(None),
                        Ok(Action::Respond(r)) => Ok(Some(table.delete(r)?)),
                        Err(e) => Err(e),
                    };
                    Ok((req, ctx, action))
                },
            )
            .await;
        self.on_request_seconds
            .record(started.elapsed().as_secs_f64());
        let ((req, ctx, action), lease) = out?;
        let verdict = match action {
            Ok(None) => Verdict::Continue,
            Ok(Some(resp)) => Verdict::Respond(resp),
            Err(e) => Verdict::Refuse(self.plugin_error(e)),
        };
        Ok(OnRequest {
            req,
            ctx,
            verdict,
            lease: Lease(lease),
        })
    }

    /// The filter's `on-response` hook.
    pub async fn on_response(
        &self,
        request_id: &str,
        lease: Lease,
        req: RequestData,
        resp: ResponseData,
        ctx: ContextData,
    ) -> Result<(RequestData, ResponseData, ContextData), PluginError> {
        let started = Instant::now();
        let out = self
            .with_instance(
                request_id,
                self.cpu_limit,
                lease.0,
                false,
                async |warm: &mut Warm| {
                    let hooks = warm.hooks.as_ref().expect("routes use filters as filters");
                    let store = &mut warm.store;
                    let req_r = store.data_mut().table.push(req)?;
                    let resp_r = store.data_mut().table.push(resp)?;
                    let ctx_r = store.data_mut().table.push(ctx)?;
                    let result = hooks
                        .call_on_response(
                            &mut *store,
                            borrow(&req_r),
                            borrow(&resp_r),
                            borrow(&ctx_r),
                        )
                        .await?;
                    let table = &mut store.data_mut().table;
                    let parts = (
                        table.delete(req_r)?,
                        table.delete(resp_r)?,
                        table.delete(ctx_r)?,
                    );
                    Ok(result.map(|()| parts))
                },
            )
            .await;
        self.on_response_seconds
            .record(started.elapsed().as_secs_f64());
        out?.0.map_err(|e| self.plugin_error(e))
    }

    /// The integration's `handle`. The inner result is the integration's own answer: a
    /// response, or an error it chose (a 502, a 504) that the filters still see on the way out.
    pub async fn handle(
        self: &Arc<Self>,
        request_id: &str,
        req: RequestData,
        ctx: ContextData,
    ) -> Result<(RequestData, ContextData, Result<ResponseData, PluginError>), PluginError> {
        let started = Instant::now();
        if self.handler.is_none() && self.proxy.is_some() {
            let out = super::wasi_http::handle(self, request_id, req, ctx).await;
            self.handle_seconds.record(started.elapsed().as_secs_f64());
            return out;
        }
        let out = self
            .with_instance(
                request_id,
                self.cpu_limit,
                None,
                false,
                async |warm: &mut Warm| {
                    let handler = warm
                        .handler
                        .as_ref()
                        .expect("routes use integrations as integrations");
                    let store = &mut warm.store;
                    let req_r = store.data_mut().table.push(req)?;
                    let ctx_r = store.data_mut().table.push(ctx)?;
                    let result = handler
                        .call_handle(&mut *store, borrow(&req_r), borrow(&ctx_r))
                        .await?;
                    let table = &mut store.data_mut().table;
                    let req = table.delete(req_r)?;
                    let ctx = table.delete(ctx_r)?;
                    let result = match result {
                        Ok(resp) => Ok(table.delete(resp)?),
                        Err(e) => Err(e),
                    };
                    Ok((req, ctx, result))
                },
            )
            .await;
        self.handle_seconds.record(started.elapsed().as_secs_f64());
        let ((req, ctx, result), _) = out?;
        Ok((req, ctx, result.map_err(|e| self.plugin_error(e))))
    }
}

/// Counts an instance in use until dropped, whatever way the call ends.
struct InUse<'a>(&'a AtomicUsize);

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A store for one instance of a plugin, with its limits and CPU accounting.
pub(super) fn new_store(
    engine: &wasmtime::Engine,
    info: Arc<PluginInfo>,
    services: Arc<Services>,
    memory_limit: usize,
) -> Store<HostState> {
    let state = HostState::new(info, services, memory_limit);
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // Past each epoch tick, either stop a plugin that has used up its CPU time or let other
    // requests run before it continues: a spinning plugin must not hold a worker thread.
    // Host calls that may suspend the plugin stop its clock themselves (`CallClock::paused`);
    // a call hook on every crossing cost ~1.7k instructions per plugin call.
    store.epoch_deadline_callback(|mut ctx| {
        let clock = &mut ctx.data_mut().clock;
        if clock.over_budget() {
            tracing::debug!(budget = ?clock.budget, "plugin over its CPU budget");
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

pub(super) fn classify(
    plugin: &str,
    cpu_limit: Duration,
    memory_limit: usize,
    err: wasmtime::Error,
    store: &Store<HostState>,
) -> PluginError {
    let plugin = plugin.to_string();
    if let Some((request, limit)) = store.data().body_too_large {
        PluginError::BodyTooLarge {
            plugin,
            request,
            limit,
        }
    } else if store.data().limits.hit {
        PluginError::OutOfMemory {
            plugin,
            limit: memory_limit,
        }
    } else if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        PluginError::Timeout {
            plugin,
            limit: cpu_limit,
        }
    } else {
        PluginError::Trap {
            plugin,
            detail: super::diagnose::trap(&err),
        }
    }
}

/// A borrowed handle to a resource the host owns, for passing as `borrow<T>`.
fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(r.rep())
}
