//! A loaded gateway as an OpenAPI 3.1 document: a path item per route path, an operation per
//! method, each assembled from what the route's plugins contribute (`contributions.rs`).
//!
//! Greedy parameters (`{path+}`, API Gateway's `{proxy+}`) have no OpenAPI form: the path is
//! written with a plain `{path}`, the parameter carries `x-wicket-greedy: true` and the path
//! item `x-wicket-path` holds the template as configured. A route without `methods` has the
//! five common methods and `x-wicket-any-method: true`. Routes are chosen by `select`, so a
//! stage (or any other subset) is a filter on routes plus its own `servers`.

use super::contributions::{self, contribution, error_response, success, Scheme, ERROR_SCHEMA};
use super::schema::{self, merge, DEFS};
use crate::config::{GatewayConfig, RouteSpec};
use crate::runtime::Plugin;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Which routes, and the servers the document names.
pub struct ExportOptions<'a> {
    pub select: &'a dyn Fn(&RouteSpec) -> bool,
    /// `None`: `[openapi] servers`, or else the gateway's own listen address.
    pub servers: Option<Vec<String>>,
}

/// Methods a route without `methods` is documented with.
const ANY_METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
/// Methods OpenAPI 3.1 has an operation field for.
const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// An OpenAPI document, its top-level fields in the order readers expect.
#[derive(Debug, serde::Serialize)]
pub struct Document {
    pub openapi: &'static str,
    pub info: Value,
    pub servers: Vec<Value>,
    pub paths: Map<String, Value>,
    pub components: Value,
}

impl Document {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("JSON values serialize")
    }

    pub fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        serde_yaml_ng::to_string(self)
    }
}

/// The document for `config`, whose plugins loaded as `plugins` (same order). Also returns
/// warnings: what could not be expressed.
pub fn document(
    config: &GatewayConfig,
    plugins: &[Arc<Plugin>],
    options: &ExportOptions,
) -> (Document, Vec<String>) {
    let mut doc = Doc {
        paths: Map::new(),
        schemas: contributions::error_schemas()
            .as_object()
            .cloned()
            .unwrap_or_default(),
        schemes: Map::new(),
        warnings: Vec::new(),
    };
    for route in config.routes.iter().filter(|r| (options.select)(r)) {
        doc.route(config, plugins, route);
    }
    let servers = options.servers.clone().unwrap_or_else(|| {
        if config.openapi.servers.is_empty() {
            let scheme = if config.server.tls.is_some() {
                "https"
            } else {
                "http"
            };
            vec![format!("{scheme}://{}", config.server.listen)]
        } else {
            config.openapi.servers.clone()
        }
    });
    let mut info = json!({
        "title": config.openapi.title.clone().unwrap_or_else(|| "API served by Wicket".into()),
        "version": config.openapi.version.clone().unwrap_or_else(|| "1".into()),
    });
    if let Some(d) = &config.openapi.description {
        info["description"] = d.clone().into();
    }
    let mut components = json!({"schemas": doc.schemas});
    if !doc.schemes.is_empty() {
        components["securitySchemes"] = Value::Object(doc.schemes);
    }
    let document = Document {
        openapi: "3.1.0",
        info,
        servers: servers.iter().map(|s| json!({ "url": s })).collect(),
        paths: doc.paths,
        components,
    };
    (document, doc.warnings)
}

struct Doc {
    paths: Map<String, Value>,
    schemas: Map<String, Value>,
    schemes: Map<String, Value>,
    warnings: Vec<String>,
}

/// A route's path parameters: name and whether it is greedy.
fn path_params(template: &str) -> Vec<(String, bool)> {
    template
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|inner| match inner.strip_suffix('+') {
            Some(name) => (name.to_string(), true),
            None => (inner.to_string(), false),
        })
        .collect()
}

impl Doc {
    fn route(&mut self, config: &GatewayConfig, plugins: &[Arc<Plugin>], route: &RouteSpec) {
        let template = route.path.as_str();
        let params = path_params(template);
        let path = template.replace("+}", "}");
        let methods: Vec<String> = match &route.methods {
            Some(ms) => ms.iter().map(|m| m.as_str().to_ascii_lowercase()).collect(),
            None => ANY_METHODS.iter().map(|m| m.to_string()).collect(),
        };
        let methods: Vec<String> = methods
            .into_iter()
            .filter(|m| {
                let known = OPENAPI_METHODS.contains(&m.as_str());
                if !known {
                    self.warnings.push(format!(
                        "route {:?}: method {} has no OpenAPI operation; left out",
                        route.name,
                        m.to_ascii_uppercase()
                    ));
                }
                known
            })
            .collect();
        let chain: Vec<usize> = route.plugins.iter().map(|(i, _)| *i).collect();
        let parts: Vec<_> = chain
            .iter()
            .chain(std::iter::once(&route.integration.0))
            .map(|&i| {
                let p = &plugins[i];
                (i, contribution(&config.plugins[i], &p.description, &p.plan))
            })
            .collect();
        let item = self.paths.entry(path.clone()).or_insert_with(|| json!({}));
        if params.iter().any(|(_, greedy)| *greedy) {
            item["x-wicket-path"] = template.into();
        }
        if route.methods.is_none() {
            item["x-wicket-any-method"] = true.into();
        }
        if let Some(host) = &route.host {
            item["x-wicket-host"] = host.clone().into();
        }
        let mut operations = Vec::new();
        for method in &methods {
            if item.get(method).is_some() {
                self.warnings.push(format!(
                    "route {:?}: {} {path} is already documented by an earlier route (another host?); left out",
                    route.name,
                    method.to_ascii_uppercase()
                ));
                continue;
            }
            let op_id = if methods.len() == 1 {
                route.name.clone()
            } else {
                format!("{}-{method}", route.name)
            };
            operations.push((method.clone(), op_id));
        }
        let mut built = Vec::new();
        for (method, op_id) in operations {
            let op = self.operation(config, route, &params, &parts, &method, op_id);
            built.push((method, op));
        }
        let item = self.paths.get_mut(&path).expect("inserted above");
        for (method, op) in built {
            item[method.as_str()] = op;
        }
    }

    fn operation(
        &mut self,
        config: &GatewayConfig,
        route: &RouteSpec,
        params: &[(String, bool)],
        parts: &[(usize, contributions::Contribution)],
        method: &str,
        op_id: String,
    ) -> Value {
        let mut parameters: Vec<Value> = params
            .iter()
            .map(|(name, greedy)| {
                let mut p = json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
                if *greedy {
                    p["x-wicket-greedy"] = true.into();
                    p["description"] = "The rest of the path, '/' included".into();
                }
                p
            })
            .collect();
        let mut responses = Map::new();
        let (status, ok) = success(&config.plugins[route.integration.0]);
        responses.insert(status, ok);
        let mut requirement: Vec<Vec<(String, Vec<String>)>> = vec![Vec::new()];
        let mut request_body = None;
        let mut limits = Vec::new();
        for (_, c) in parts {
            for p in &c.parameters {
                if !parameters
                    .iter()
                    .any(|q| q["name"] == p["name"] && q["in"] == p["in"])
                {
                    parameters.push(p.clone());
                }
            }
            if let Some((schema, methods)) = &c.request_body {
                if methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
                    request_body = Some(self.hoist(&route.name, schema.clone()));
                }
            }
            for (code, r) in &c.responses {
                responses.entry(code.clone()).or_insert_with(|| r.clone());
            }
            if let Some(l) = &c.limits {
                limits.push(l.clone());
            }
            if !c.schemes.is_empty() {
                requirement = self.and_any_of(requirement, &c.schemes);
            }
        }
        responses.entry("500".to_string()).or_insert_with(|| {
            error_response(
                "A plugin failed (see the gateway's log line with the request id)",
                ERROR_SCHEMA,
                json!({}),
            )
        });
        responses.entry("504".to_string()).or_insert_with(|| {
            error_response(
                "No response within the gateway's timeout",
                ERROR_SCHEMA,
                json!({}),
            )
        });
        let mut op = json!({
            "operationId": op_id,
            "summary": route.name,
            "x-wicket-route": route.name,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(schema) = request_body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        if requirement.iter().any(|r| !r.is_empty()) {
            op["security"] = requirement
                .into_iter()
                .map(|alt| {
                    Value::Object(
                        alt.into_iter()
                            .map(|(name, scopes)| (name, json!(scopes)))
                            .collect(),
                    )
                })
                .collect();
        }
        if !limits.is_empty() {
            op["x-wicket-limits"] = Value::Array(limits);
        }
        for (i, _) in parts {
            let openapi = &config.plugins[*i].openapi;
            if let Some(schemas) = openapi.schemas.as_ref().and_then(Value::as_object) {
                for (name, s) in schemas {
                    self.add_schema(name, s.clone());
                }
            }
            if let Some(fragment) = &openapi.operation {
                merge(&mut op, fragment);
            }
        }
        op
    }

    /// Every alternative so far, each combined with each of `schemes` (a route's auth filters
    /// all apply; a plugin's schemes are alternatives).
    fn and_any_of(
        &mut self,
        so_far: Vec<Vec<(String, Vec<String>)>>,
        schemes: &[Scheme],
    ) -> Vec<Vec<(String, Vec<String>)>> {
        for s in schemes {
            self.schemes.insert(s.name.clone(), s.scheme.clone());
        }
        let mut out = Vec::new();
        for alt in so_far {
            for s in schemes {
                let mut a = alt.clone();
                a.push((s.name.clone(), s.scopes.clone()));
                out.push(a);
            }
        }
        out
    }

    /// `schema` with its `$defs` moved to `components.schemas` (a `#/$defs/` reference inside
    /// an OpenAPI document would resolve against the document's root, not the schema's).
    fn hoist(&mut self, route: &str, mut schema: Value) -> Value {
        let defs = schema
            .as_object_mut()
            .and_then(|o| o.remove("$defs"))
            .and_then(|d| match d {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        let mut names = std::collections::HashMap::new();
        for (name, def) in &defs {
            let taken = self.schemas.get(name).is_some_and(|s| s != def);
            let chosen = if taken {
                format!("{}.{name}", sanitize(route))
            } else {
                name.clone()
            };
            names.insert(name.clone(), chosen);
        }
        let rename = |n: &str| {
            let n = schema::unescape_pointer(n);
            names.get(&n).cloned().unwrap_or(n)
        };
        for (name, mut def) in defs {
            schema::rewrite_refs(&mut def, DEFS, schema::COMPONENTS, &rename);
            self.add_schema(&rename(&name), def);
        }
        schema::rewrite_refs(&mut schema, DEFS, schema::COMPONENTS, &rename);
        schema
    }

    fn add_schema(&mut self, name: &str, schema: Value) {
        match self.schemas.get(name) {
            Some(existing) if *existing != schema => self.warnings.push(format!(
                "two different schemas are named {name:?}; the first is kept"
            )),
            Some(_) => {}
            None => {
                self.schemas.insert(name.to_string(), schema);
            }
        }
    }
}

/// A component name (`^[a-zA-Z0-9.\-_]+$`) from any string.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
