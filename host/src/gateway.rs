//! A running configuration: the router with each route's compiled chain, built once from a
//! validated `GatewayConfig`. The server holds it behind an `ArcSwap`, so a new one can be
//! swapped in atomically while requests in flight finish on the old one.

use crate::capabilities::Services;
use crate::config::{GatewayConfig, RouteSpec};
use crate::router::Router;
use crate::runtime::{LoadError, Plugin, Runtime};
use std::sync::Arc;

/// Per-route metric handles, created once so the request path does no label formatting.
pub struct RouteMetrics {
    pub requests_2xx: metrics::Counter,
    pub requests_3xx: metrics::Counter,
    pub requests_4xx: metrics::Counter,
    pub requests_5xx: metrics::Counter,
    pub seconds: metrics::Histogram,
    pub integration_seconds: metrics::Histogram,
}

impl RouteMetrics {
    pub fn new(route: &str) -> RouteMetrics {
        let requests = |class: &'static str| metrics::counter!("wicket_requests_total", "route" => route.to_string(), "class" => class);
        RouteMetrics {
            requests_2xx: requests("2xx"),
            requests_3xx: requests("3xx"),
            requests_4xx: requests("4xx"),
            requests_5xx: requests("5xx"),
            seconds: metrics::histogram!("wicket_request_seconds", "route" => route.to_string()),
            integration_seconds: metrics::histogram!(
                "wicket_integration_seconds",
                "route" => route.to_string()
            ),
        }
    }

    pub fn count(&self, status: http::StatusCode) {
        match status.as_u16() {
            200..=299 => self.requests_2xx.increment(1),
            300..=399 => self.requests_3xx.increment(1),
            400..=499 => self.requests_4xx.increment(1),
            _ => self.requests_5xx.increment(1),
        }
    }
}

pub struct Route {
    pub name: Arc<str>,
    /// Filters in the order their `on-request` runs.
    pub chain: Vec<Arc<Plugin>>,
    pub integration: Arc<Plugin>,
    /// Some filter reads the request body whole, so `max_body_bytes` bounds the upload.
    pub buffers_request: bool,
    /// Upgrade requests become WebSocket connections (the integration plans a forward).
    pub websocket: bool,
    pub metrics: RouteMetrics,
}

pub struct Gateway {
    pub config: GatewayConfig,
    pub router: Router<Route>,
    /// Requests that match no route are counted here.
    pub unmatched: RouteMetrics,
    pub plugins: Vec<Arc<Plugin>>,
    /// The capabilities' backends; the pipeline runs planned forwards with its HTTP client.
    pub services: Arc<Services>,
    /// The listener's TLS (`[server.tls]`), read with the rest of the config so that a reload
    /// also picks up a renewed certificate.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
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
            match wire(route, &plugins) {
                Ok(r) => router.add(
                    route.methods.clone(),
                    route.host.clone(),
                    route.path.clone(),
                    r,
                ),
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
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Gateway {
            tls,
            router,
            unmatched: RouteMetrics::new("(none)"),
            plugins: plugins.into_iter().flatten().collect(),
            services,
            config,
            _runtime: runtime,
        })
    }
}

/// Load every plugin of `config`; `None` where one failed, with why.
async fn load_plugins(
    runtime: &Runtime,
    config: &GatewayConfig,
) -> (Vec<Option<Arc<Plugin>>>, Vec<LoadError>) {
    let mut errors = Vec::new();
    let mut plugins = Vec::new();
    for spec in &config.plugins {
        match runtime.load(spec).await {
            Ok(p) => plugins.push(Some(Arc::new(p))),
            Err(mut e) => {
                errors.append(&mut e);
                plugins.push(None);
            }
        }
    }
    (plugins, errors)
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
            buffers_request: chain
                .iter()
                .any(|p| p.plan.request_body == crate::runtime::BodyUse::Whole),
            chain,
            integration,
            metrics: RouteMetrics::new(&route.name),
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
