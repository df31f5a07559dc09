//! One loaded plugin: how its instances are made (fresh per request, or from a pool of warm
//! ones), the limits every call runs under, and the three calls the pipeline makes. Request,
//! response and context are moved into the instance's resource table for a call and moved
//! back out after it, so nothing is copied to hand them over.

use super::bindings::{Action, Filter, FilterPre, Integration, IntegrationPre};
use super::host_state::{HostState, PluginInfo};
use crate::capabilities::types::{ContextData, RequestData, ResponseData};
use crate::capabilities::Services;
use crate::config::{Isolation, PluginSpec};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{InstancePre, Resource};
use wasmtime::{CallHook, Store, Trap, UpdateDeadline};

/// Why a plugin call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin:?} ran past its CPU time limit of {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin {plugin:?} went past its memory limit of {limit} bytes")]
    OutOfMemory { plugin: String, limit: usize },
    #[error("plugin {plugin:?} trapped: {detail}")]
    Trap { plugin: String, detail: String },
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

/// A warm instance and how often it has served.
struct Warm<B> {
    store: Store<HostState>,
    bindings: B,
    uses: u64,
}

/// The instances of one export kind (filter or integration) of a plugin.
struct Slot<P, B> {
    pre: P,
    idle: Mutex<Vec<Warm<B>>>,
}

trait Instantiate<B> {
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<B>;
}

impl Instantiate<Filter> for FilterPre<HostState> {
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Filter> {
        self.instantiate_async(store).await
    }
}

impl Instantiate<Integration> for IntegrationPre<HostState> {
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Integration> {
        self.instantiate_async(store).await
    }
}

pub struct Plugin {
    pub info: Arc<PluginInfo>,
    isolation: Isolation,
    cpu_limit: Duration,
    memory_limit: usize,
    engine: wasmtime::Engine,
    services: Arc<Services>,
    filter: Option<Slot<FilterPre<HostState>, Filter>>,
    integration: Option<Slot<IntegrationPre<HostState>, Integration>>,
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
pub struct Lease(Option<Warm<Filter>>);

impl Plugin {
    pub(super) fn new(
        info: Arc<PluginInfo>,
        spec: &PluginSpec,
        pre: InstancePre<HostState>,
        is_filter: bool,
        is_integration: bool,
        services: Arc<Services>,
    ) -> anyhow::Result<Plugin> {
        let engine = pre.engine().clone();
        let filter = if is_filter {
            Some(Slot {
                pre: FilterPre::new(pre.clone())?,
                idle: Mutex::new(Vec::new()),
            })
        } else {
            None
        };
        let integration = if is_integration {
            Some(Slot {
                pre: IntegrationPre::new(pre)?,
                idle: Mutex::new(Vec::new()),
            })
        } else {
            None
        };
        let histogram = |phase: &'static str| metrics::histogram!("wicket_plugin_seconds", "plugin" => spec.name.clone(), "phase" => phase);
        Ok(Plugin {
            info,
            isolation: spec.isolation,
            cpu_limit: spec.cpu_limit,
            memory_limit: spec.memory_limit,
            engine,
            services,
            filter,
            integration,
            on_request_seconds: histogram("on_request"),
            on_response_seconds: histogram("on_response"),
            handle_seconds: histogram("handle"),
        })
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn is_filter(&self) -> bool {
        self.filter.is_some()
    }

    pub fn is_integration(&self) -> bool {
        self.integration.is_some()
    }

    fn new_store(&self) -> Store<HostState> {
        let state = HostState::new(self.info.clone(), self.services.clone(), self.memory_limit);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Past each epoch tick, either stop a plugin that has used up its time or let other
        // requests run before it continues: a spinning plugin must not hold a worker thread.
        // Time in host functions is not the plugin's: the clock pauses across each call out.
        store.call_hook(|mut ctx, hook| {
            let clock = &mut ctx.data_mut().clock;
            match hook {
                CallHook::CallingHost => clock.enter_host(),
                CallHook::ReturningFromHost => clock.leave_host(),
                CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
            }
            Ok(())
        });
        store.epoch_deadline_callback(|ctx| {
            if ctx.data().clock.over_budget() {
                let clock = &ctx.data().clock;
                tracing::debug!(guest = ?clock.guest_time(), "plugin over its CPU budget");
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    fn begin_call(&self, store: &mut Store<HostState>, request_id: &str) {
        let data = store.data_mut();
        data.clock.start(self.cpu_limit);
        data.request_id.clear();
        data.request_id.push_str(request_id);
        store.set_epoch_deadline(1);
    }

    fn classify(&self, err: wasmtime::Error, store: &Store<HostState>) -> PluginError {
        let plugin = self.info.name.clone();
        if store.data().limits.hit {
            PluginError::OutOfMemory {
                plugin,
                limit: self.memory_limit,
            }
        } else if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            PluginError::Timeout {
                plugin,
                limit: self.cpu_limit,
            }
        } else {
            PluginError::Trap {
                plugin,
                detail: format!("{err:#}"),
            }
        }
    }

    /// Run `f` on `lease` or an instance from `slot`. Afterwards a pooled instance goes back
    /// to the pool if healthy and not worn out; with `keep`, the instance is handed back to
    /// the caller instead (a fresh instance serves both hooks of its one request). An
    /// instance that failed is never used again.
    async fn with_instance<P, B, R>(
        &self,
        slot: &Slot<P, B>,
        request_id: &str,
        lease: Option<Warm<B>>,
        keep: bool,
        f: impl AsyncFnOnce(&mut Store<HostState>, &B) -> wasmtime::Result<R>,
    ) -> Result<(R, Option<Warm<B>>), PluginError>
    where
        P: Instantiate<B>,
    {
        let pooled = match self.isolation {
            Isolation::Pooled { size, max_uses } => Some((size, max_uses)),
            Isolation::Request => None,
        };
        let warm = match (lease, pooled) {
            (Some(w), _) => Some(w),
            (None, Some(_)) => slot.idle.lock().unwrap().pop(),
            (None, None) => None,
        };
        let mut warm = match warm {
            Some(w) => w,
            None => {
                let mut store = self.new_store();
                self.begin_call(&mut store, request_id);
                match slot.pre.instantiate(&mut store).await {
                    Ok(bindings) => Warm {
                        store,
                        bindings,
                        uses: 0,
                    },
                    Err(e) => {
                        return Err(match self.classify(e, &store) {
                            PluginError::Trap { plugin, detail } => {
                                PluginError::Instantiate { plugin, detail }
                            }
                            other => other,
                        })
                    }
                }
            }
        };
        self.begin_call(&mut warm.store, request_id);
        let result = f(&mut warm.store, &warm.bindings).await;
        match result {
            Ok(r) => {
                warm.uses += 1;
                if keep {
                    return Ok((r, Some(warm)));
                }
                if let Some((size, max_uses)) = pooled {
                    if warm.uses < max_uses {
                        let mut idle = slot.idle.lock().unwrap();
                        if idle.len() < size {
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

    /// Ask the plugin whether its config is usable (its `check-config` export). Runs on a
    /// fresh instance; a pooled plugin keeps that instance, warm, for the first request.
    pub async fn check_config(&self) -> Result<Result<(), String>, PluginError> {
        if let Some(slot) = &self.filter {
            let out = self
                .with_instance(slot, "load", None, false, async |store, b: &Filter| {
                    b.wicket_plugin_hooks().call_check_config(&mut *store).await
                })
                .await?;
            return Ok(out.0);
        }
        let slot = self
            .integration
            .as_ref()
            .expect("a plugin exports hooks or a handler");
        let out = self
            .with_instance(slot, "load", None, false, async |store, b: &Integration| {
                b.wicket_plugin_handler()
                    .call_check_config(&mut *store)
                    .await
            })
            .await?;
        Ok(out.0)
    }

    /// The filter's `on-request` hook.
    pub async fn on_request(
        &self,
        request_id: &str,
        req: RequestData,
        ctx: ContextData,
    ) -> Result<OnRequest, PluginError> {
        let slot = self
            .filter
            .as_ref()
            .expect("routes use only plugins that export hooks");
        let started = Instant::now();
        let keep = self.isolation == Isolation::Request;
        let out = self
            .with_instance(
                slot,
                request_id,
                None,
                keep,
                async |store, bindings: &Filter| {
                    let req_r = store.data_mut().table.push(req)?;
                    let ctx_r = store.data_mut().table.push(ctx)?;
                    let action = bindings
                        .wicket_plugin_hooks()
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
        let slot = self
            .filter
            .as_ref()
            .expect("routes use only plugins that export hooks");
        let started = Instant::now();
        let out = self
            .with_instance(
                slot,
                request_id,
                lease.0,
                false,
                async |store, bindings: &Filter| {
                    let req_r = store.data_mut().table.push(req)?;
                    let resp_r = store.data_mut().table.push(resp)?;
                    let ctx_r = store.data_mut().table.push(ctx)?;
                    let result = bindings
                        .wicket_plugin_hooks()
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
        &self,
        request_id: &str,
        req: RequestData,
        ctx: ContextData,
    ) -> Result<(RequestData, ContextData, Result<ResponseData, PluginError>), PluginError> {
        let slot = self
            .integration
            .as_ref()
            .expect("routes use only integrations that export the handler");
        let started = Instant::now();
        let out = self
            .with_instance(
                slot,
                request_id,
                None,
                false,
                async |store, bindings: &Integration| {
                    let req_r = store.data_mut().table.push(req)?;
                    let ctx_r = store.data_mut().table.push(ctx)?;
                    let result = bindings
                        .wicket_plugin_handler()
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

/// A borrowed handle to a resource the host owns, for passing as `borrow<T>`.
fn borrow<T: 'static>(r: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(r.rep())
}
