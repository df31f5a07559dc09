//! A running configuration: the router with each route's compiled chain, built once from a
//! validated `GatewayConfig`. The server holds it behind an `ArcSwap`, so a new one can be
//! swapped in atomically while requests in flight finish on the old one.

use crate::capabilities::Services;
use crate::config::{GatewayConfig, PluginSpec, RouteSpec};
use crate::router::Router;
use crate::runtime::{LoadError, Plugin, Runtime};
use std::sync::Arc;

/// Per-route metric handles, created once so the request path does no label formatting.
pub struct RouteMetrics {
    pub requests_2xx: metrics::Counter,
    pub requests_3xx: metrics::Counter,
    pub requests_4xx: metrics::Counter,
    pub requests_5xx: metrics::Counter,
    /// Answers 429 (a rate limit or quota said no), a part of `requests_4xx`.
    pub throttled: metrics::Counter,
    pub seconds: metrics::Histogram,
    pub integration_seconds: metrics::Histogram,
}

impl RouteMetrics {
    /// Handles labelled with the route and, in a config with stages, the stage it serves.
    pub fn new(route: &str, stage: Option<&str>) -> RouteMetrics {
        let mut labels = vec![metrics::Label::new("route", route.to_string())];
        if let Some(stage) = stage {
            labels.push(metrics::Label::new("stage", stage.to_string()));
        }
        let requests = |class: &'static str| {
            let mut l = labels.clone();
            l.push(metrics::Label::new("class", class));
            metrics::counter!("wicket_requests_total", l)
        };
        RouteMetrics {
            requests_2xx: requests("2xx"),
            requests_3xx: requests("3xx"),
            requests_4xx: requests("4xx"),
            requests_5xx: requests("5xx"),
            throttled: metrics::counter!("wicket_requests_throttled_total", labels.clone()),
            seconds: metrics::histogram!("wicket_request_seconds", labels.clone()),
            integration_seconds: metrics::histogram!("wicket_integration_seconds", labels),
        }
    }

    pub fn count(&self, status: http::StatusCode) {
        match status.as_u16() {
            200..=299 => self.requests_2xx.increment(1),
            300..=399 => self.requests_3xx.increment(1),
            429 => {
                self.requests_4xx.increment(1);
                self.throttled.increment(1);
            }
            400..=499 => self.requests_4xx.increment(1),
            _ => self.requests_5xx.increment(1),
        }
    }
}

pub struct Route {
    pub name: Arc<str>,
    /// The stage this route serves, in a config with `[stages]`.
    pub stage: Option<Arc<str>>,
    /// Part of this route's requests go to another stage's route.
    pub canary: Option<Canary>,
    /// Filters in the order their `on-request` runs.
    pub chain: Vec<Arc<Plugin>>,
    pub integration: Arc<Plugin>,
    /// Some filter reads the request body whole, so `max_body_bytes` bounds the upload.
    pub buffers_request: bool,
    /// Upgrade requests become WebSocket connections (the integration plans a forward).
    pub websocket: bool,
    /// Some filter's `on-response` runs, and may read the request: a planned forward must
    /// copy the request's headers instead of moving them to the upstream request.
    pub reads_request_after: bool,
    pub metrics: RouteMetrics,
}

/// A canary: `basis_points` of 10,000 requests are served by `route` instead.
pub struct Canary {
    pub basis_points: u32,
    /// Callers are kept on one side by a hash of this header (per request when absent, or
    /// when the request lacks the header).
    pub sticky: Option<http::HeaderName>,
    pub route: Arc<Route>,
}

impl Route {
    /// The route that serves this request: this one, or its canary.
    pub fn choose(&self, headers: &http::HeaderMap) -> &Route {
        let Some(canary) = &self.canary else {
            return self;
        };
        let key = canary
            .sticky
            .as_ref()
            .and_then(|h| headers.get(h))
            .map(|v| stable_hash(v.as_bytes()))
            .unwrap_or_else(random);
        if key % 10_000 < u64::from(canary.basis_points) {
            &canary.route
        } else {
            self
        }
    }
}

/// FNV-1a, then a 64-bit finalizer: the same caller lands on the same side in every process
/// and after every reload, as long as the percentage holds.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A per-thread SplitMix64 stream seeded from the clock and the thread: a canary draw needs
/// no cryptographic randomness, and no lock.
fn random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let here = &t as *const u64 as u64;
            mix(t ^ here.rotate_left(32))
        });
    }
    STATE.with(|s| {
        let next = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(next);
        mix(next)
    })
}

pub struct Gateway {
    pub config: GatewayConfig,
    pub router: Router<Route>,
    /// Requests that match no route are counted here.
    pub unmatched: RouteMetrics,
    pub plugins: Vec<Arc<Plugin>>,
    /// The capabilities' backends; the pipeline runs planned forwards with its HTTP client.
    pub services: Arc<Services>,
    /// `[portal]`: the developer portal and `/openapi.json`, answered before routing.
    pub portal: Option<crate::portal::Portal>,
    /// The listener's TLS (`[server.tls]`), read with the rest of the config so that a reload
    /// also picks up a renewed certificate.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// `[server.access_log]`: where each request's line goes.
    pub access_log: Option<crate::telemetry::AccessLog>,
    /// `[telemetry]`: how each request's trace starts and where its spans go.
    pub tracer: Option<crate::telemetry::Tracer>,
    // Dropped last: the plugins' instances belong to its engine.
    _runtime: Runtime,
}

impl Gateway {
    /// Compile every plugin and wire up the routes. All problems are reported together.
    pub async fn build(
        config: GatewayConfig,
        services: Arc<Services>,
    ) -> Result<Gateway, Vec<LoadError>> {
        let runtime = Runtime::new(&config, services.clone()).map_err(|e| {
            vec![LoadError {
                location: crate::config::Location {
                    file: config.source.clone(),
                    line: 1,
                    column: 1,
                },
                key: "runtime".into(),
                message: format!("cannot start the Wasm runtime: {e:#}"),
            }]
        })?;
        let (plugins, mut errors) = load_plugins(&runtime, &config).await;
        let mut router = Router::default();
        for route in &config.routes {
            let canary = route.canary.as_ref().and_then(|c| {
                let target = wire(&config.routes[c.route], &plugins).ok()?;
                Some(Canary {
                    basis_points: c.basis_points,
                    sticky: c.sticky.clone(),
                    route: Arc::new(target),
                })
            });
            match wire(route, &plugins) {
                Ok(mut r) => {
                    r.canary = canary;
                    router.add(
                        route.methods.clone(),
                        route.host.clone(),
                        route.path.clone(),
                        r,
                    )
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        let tls = match &config.server.tls {
            Some(t) => match crate::server::tls::acceptor(t) {
                Ok(acceptor) => Some(acceptor),
                Err(e) => {
                    errors.push(LoadError {
                        location: t.location.clone(),
                        key: "server.tls".into(),
                        message: format!("{e:#}"),
                    });
                    None
                }
            },
            None => None,
        };
        let (access_log, tracer) = telemetry(&config, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let plugins: Vec<Arc<Plugin>> = plugins.into_iter().flatten().collect();
        let portal = crate::portal::Portal::for_gateway(&config, &plugins);
        if let Some(p) = &portal {
            errors.extend(shadowed_by_portal(p, &router, &config));
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        Ok(Gateway {
            tls,
            access_log,
            tracer,
            router,
            unmatched: RouteMetrics::new("(none)", None),
            portal,
            plugins,
            services,
            config,
            _runtime: runtime,
        })
    }
}

impl Gateway {
    /// Wait (up to `timeout` each) until the access log lines and trace spans queued so far
    /// are written and exported: at exit, after the requests drained.
    pub fn flush_telemetry(&self, timeout: std::time::Duration) {
        if let Some(log) = &self.access_log {
            log.flush(timeout);
        }
        if let Some(tracer) = &self.tracer {
            tracer.flush(timeout);
        }
    }
}

/// The config's access log writer and trace exporter, each with a thread of its own (which
/// ends with this gateway, once it has written what was queued).
fn telemetry(
    config: &GatewayConfig,
    errors: &mut Vec<LoadError>,
) -> (
    Option<crate::telemetry::AccessLog>,
    Option<crate::telemetry::Tracer>,
) {
    let at = |key: &str, message: String| LoadError {
        location: crate::config::Location {
            file: config.source.clone(),
            line: 1,
            column: 1,
        },
        key: key.into(),
        message,
    };
    let log = config.server.access_log.as_ref().and_then(|c| {
        crate::telemetry::AccessLog::start(c)
            .map_err(|e| {
                let path = c.path.as_ref().map(|p| p.display().to_string());
                let what = path.unwrap_or_else(|| "stdout".into());
                errors.push(at(
                    "server.access_log.path",
                    format!("cannot open {what}: {e}"),
                ));
            })
            .ok()
    });
    let tracer = config.telemetry.as_ref().and_then(|c| {
        crate::telemetry::Tracer::start(c)
            .map_err(|e| errors.push(at("telemetry", format!("cannot start the exporter: {e:#}"))))
            .ok()
    });
    (log, tracer)
}

/// Routes that would never see a request because the portal answers their path first.
fn shadowed_by_portal(
    portal: &crate::portal::Portal,
    router: &Router<Route>,
    config: &GatewayConfig,
) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for path in portal.paths() {
        if let crate::router::Match::Found { route, .. } =
            router.find(&http::Method::GET, None, path)
        {
            if let Some(spec) = config.routes.iter().find(|r| *r.name == *route.name) {
                errors.push(LoadError {
                    location: spec.location.clone(),
                    key: format!("routes[{}].path", spec.index),
                    message: format!(
                        "matches {path}, which the portal serves ([portal] path); move the portal or the route"
                    ),
                });
            }
        }
    }
    errors
}

/// Load every plugin of `config`; `None` where one failed, with why. Compiling (the slow
/// part for an external plugin met for the first time) runs on every core at once; the
/// checks that call into each plugin follow in config order.
async fn load_plugins(
    runtime: &Runtime,
    config: &GatewayConfig,
) -> (Vec<Option<Arc<Plugin>>>, Vec<LoadError>) {
    let mut errors = Vec::new();
    let mut plugins = Vec::new();
    let compiled = compile_all(runtime, &config.plugins);
    for (spec, component) in config.plugins.iter().zip(compiled) {
        if spec.per_stage {
            // Only its copies with a stage's values are loaded.
            plugins.push(None);
            continue;
        }
        let loaded = match component {
            Some(Ok(component)) => runtime.load(spec, component).await,
            Some(Err(e)) => Err(e),
            None => unreachable!("compile_all skips only per-stage plugins"),
        };
        match loaded {
            Ok(p) => plugins.push(Some(Arc::new(p))),
            Err(mut e) => {
                errors.append(&mut e);
                plugins.push(None);
            }
        }
    }
    (plugins, errors)
}

/// `runtime.compile` for each spec but the per-stage ones (`None`), on every core; results in
/// spec order.
fn compile_all(
    runtime: &Runtime,
    specs: &[PluginSpec],
) -> Vec<Option<Result<wasmtime::component::Component, Vec<LoadError>>>> {
    crate::parallel::map(specs, |s| (!s.per_stage).then(|| runtime.compile(s)))
}

/// The plugins' own problems (config keys, grants, refused configs) in a config that has
/// other problems too, so that one `wicket check` reports all of them.
pub async fn check_plugins(config: &GatewayConfig, services: Arc<Services>) -> Vec<LoadError> {
    match Runtime::new(config, services) {
        Ok(runtime) => load_plugins(&runtime, config).await.1,
        Err(_) => Vec::new(),
    }
}

/// Check that a route uses filters as filters and an integration as its integration.
fn wire(route: &RouteSpec, plugins: &[Option<Arc<Plugin>>]) -> Result<Route, Vec<LoadError>> {
    let mut errors = Vec::new();
    let mut chain = Vec::new();
    for (j, (i, location)) in route.plugins.iter().enumerate() {
        match &plugins[*i] {
            Some(p) if p.is_filter() => chain.push(p.clone()),
            Some(p) => errors.push(LoadError {
                location: location.clone(),
                key: format!("routes[{}].plugins[{j}]", route.index),
                message: format!("plugin {:?} is an integration, not a filter", p.name()),
            }),
            None => {}
        }
    }
    errors.extend(check_order(route, plugins));
    let (i, location) = &route.integration;
    let integration = match &plugins[*i] {
        Some(p) if p.is_integration() => Some(p.clone()),
        Some(p) => {
            errors.push(LoadError {
                location: location.clone(),
                key: format!("routes[{}].integration", route.index),
                message: format!("plugin {:?} is a filter, not an integration", p.name()),
            });
            None
        }
        None => None,
    };
    if let Some(i) = &integration {
        if route.websocket && i.plan.forward.as_ref().is_some_and(|f| f.sign.is_some()) {
            errors.push(LoadError {
                location: location.clone(),
                key: format!("routes[{}].websocket", route.index),
                message: format!(
                    "a WebSocket route cannot forward through {:?}: its forward is signed for AWS",
                    i.name()
                ),
            });
        }
        if route.websocket && i.plan.forward.is_none() {
            errors.push(LoadError {
                location: location.clone(),
                key: format!("routes[{}].websocket", route.index),
                message: format!(
                    "a WebSocket route needs an integration that forwards to an upstream (such \
                     as `http`); {:?} does not plan a forward",
                    i.name()
                ),
            });
        }
    }
    match integration {
        Some(integration) if errors.is_empty() => Ok(Route {
            websocket: route.websocket,
            name: route.name.as_str().into(),
            stage: route.stage.as_deref().map(Into::into),
            canary: None,
            buffers_request: chain
                .iter()
                .any(|p| p.plan.request_body == crate::runtime::BodyUse::Whole)
                || integration
                    .plan
                    .forward
                    .as_ref()
                    .is_some_and(|f| f.needs_body()),
            reads_request_after: chain.iter().any(|p| p.plan.on_response),
            chain,
            integration,
            metrics: RouteMetrics::new(&route.name, route.stage.as_deref()),
        }),
        _ => Err(errors),
    }
}

/// A filter that may answer from stored data (a cache) must not come before an auth filter:
/// it would hand a keyed caller's stored answer to a caller nobody checked. The rule reads
/// the roles plugins declare, not their names.
fn check_order(route: &RouteSpec, plugins: &[Option<Arc<Plugin>>]) -> Vec<LoadError> {
    let mut errors = Vec::new();
    let roles = |i: usize| plugins[i].as_ref().map(|p| p.description.roles);
    for (j, (store_i, store_at)) in route.plugins.iter().enumerate() {
        if !roles(*store_i).is_some_and(|r| r.answers_from_store) {
            continue;
        }
        for (auth_i, auth_at) in &route.plugins[j + 1..] {
            if roles(*auth_i).is_some_and(|r| r.auth) {
                let name = |i: usize| plugins[i].as_ref().map(|p| p.name()).unwrap_or("?");
                errors.push(LoadError {
                    location: store_at.clone(),
                    key: format!("routes[{}].plugins[{j}]", route.index),
                    message: format!(
                        "{:?} answers from stored responses but runs before the auth filter \
                         {:?} (at {auth_at}); a caller nobody checked would get a stored answer: \
                         list {:?} after {:?}",
                        name(*store_i),
                        name(*auth_i),
                        name(*store_i),
                        name(*auth_i)
                    ),
                });
            }
        }
    }
    errors
}
