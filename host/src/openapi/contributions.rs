//! What one configured plugin adds to the operations of its routes. The generic part reads
//! only what every plugin says about itself (`describe`'s roles, the `plan` for its config):
//! an `auth` role can refuse with 401/403, a filter that needs the body whole can answer 413,
//! a planned forward can fail with 502. The built-ins whose config names a security scheme, a
//! request schema, limits or a canned answer add those, read from their config (only the
//! fields listed here: secrets never leave the config). The operator's
//! `[plugins.NAME.openapi]` section comes last and wins.

use crate::config::{PluginSource, PluginSpec};
use crate::runtime::{BodyUse, Description, Plan};
use serde_json::{json, Value};

/// A security scheme a plugin stands for, and the scopes an operation behind it needs.
#[derive(Debug, Clone)]
pub struct Scheme {
    /// Its name under `components.securitySchemes`.
    pub name: String,
    pub scheme: Value,
    pub scopes: Vec<String>,
}

/// A plugin's part of an operation.
#[derive(Debug, Default)]
pub struct Contribution {
    /// Alternatives: a caller satisfies the plugin with any one of them.
    pub schemes: Vec<Scheme>,
    pub parameters: Vec<Value>,
    /// The request body's schema and the methods it applies to.
    pub request_body: Option<(Value, Vec<String>)>,
    /// Status code -> Response Object.
    pub responses: Vec<(String, Value)>,
    /// The limits a caller is held to (`x-wicket-limits`).
    pub limits: Option<Value>,
}

/// The gateway's error body, `{"message", "requestId"}`.
pub const ERROR_SCHEMA: &str = "WicketError";
/// `validate`'s refusal: the error body with the violations.
pub const VALIDATION_SCHEMA: &str = "WicketValidationError";

/// The schemas the contributions' responses refer to.
pub fn error_schemas() -> Value {
    json!({
        ERROR_SCHEMA: {
            "type": "object",
            "description": "An error answered by the gateway; the detail is in its log line with the same request id.",
            "required": ["message", "requestId"],
            "properties": {
                "message": {"type": "string"},
                "requestId": {"type": "string", "description": "The id of this request in the gateway's logs."}
            }
        },
        VALIDATION_SCHEMA: {
            "type": "object",
            "required": ["message", "errors", "requestId"],
            "properties": {
                "message": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "in": {"type": "string", "enum": ["body", "query", "header"]},
                            "path": {"type": "string"},
                            "message": {"type": "string"}
                        }
                    }
                },
                "requestId": {"type": "string"}
            }
        }
    })
}

/// A response whose body is the gateway's error schema.
pub fn error_response(description: &str, schema: &str, headers: Value) -> Value {
    let mut r = json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    });
    if headers.as_object().is_some_and(|h| !h.is_empty()) {
        r["headers"] = headers;
    }
    r
}

fn plain_error(description: &str) -> Value {
    error_response(description, ERROR_SCHEMA, json!({}))
}

/// The built-in a plugin is, if it is one.
pub fn builtin(spec: &PluginSpec) -> Option<&str> {
    match &spec.source {
        PluginSource::Builtin(name) => Some(name),
        PluginSource::Wasm(_) => None,
    }
}

/// What the plugin `spec` (described by `description`, planned as `plan`) adds.
pub fn contribution(spec: &PluginSpec, description: &Description, plan: &Plan) -> Contribution {
    let config: Value = serde_json::from_str(&spec.config_json).unwrap_or(Value::Null);
    let mut c = match builtin(spec) {
        Some(name) => builtin_contribution(name, &spec.name, &config),
        None => Contribution::default(),
    };
    // An auth filter whose refusals are not known here may answer either.
    let refuses = |c: &Contribution| c.responses.iter().any(|(k, _)| k == "401" || k == "403");
    if description.roles.auth && !refuses(&c) {
        c.responses.push((
            "401".into(),
            plain_error("Unauthorized: no credentials, or not valid ones"),
        ));
        c.responses.push((
            "403".into(),
            plain_error("Forbidden: the credentials do not allow this call"),
        ));
    }
    if plan.request_body == BodyUse::Whole {
        c.responses.push((
            "413".into(),
            plain_error("Request body larger than the gateway accepts"),
        ));
    }
    if plan.forward.is_some() {
        c.responses.push((
            "502".into(),
            plain_error("The upstream could not be reached"),
        ));
    }
    if let Some(scheme) = &spec.openapi.security_scheme {
        // `x-wicket-name` names the scheme in the document (an imported scheme keeps its
        // name whatever the plugin is called); by default it is the plugin's name.
        let mut scheme = scheme.clone();
        let name = scheme
            .as_object_mut()
            .and_then(|o| o.remove("x-wicket-name"))
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| spec.name.clone());
        c.schemes = vec![Scheme {
            name,
            scheme,
            scopes: c
                .schemes
                .first()
                .map(|s| s.scopes.clone())
                .unwrap_or_default(),
        }];
    }
    c
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn builtin_contribution(builtin: &str, name: &str, config: &Value) -> Contribution {
    let mut c = Contribution::default();
    match builtin {
        "api-key" => {
            let header = config["header"].as_str().unwrap_or("x-api-key");
            c.schemes.push(Scheme {
                name: name.into(),
                scheme: json!({"type": "apiKey", "in": "header", "name": header}),
                scopes: Vec::new(),
            });
            c.responses.push((
                "403".into(),
                plain_error("Forbidden: missing or unknown API key"),
            ));
        }
        "jwt" => {
            let scopes = strings(&config["required_scopes"]);
            let mut bearer = json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"});
            if let Some(aud) = config.get("audience").filter(|a| !a.is_null()) {
                bearer["description"] = format!("A JWT for the audience {aud}").into();
            }
            c.schemes.push(Scheme {
                name: name.into(),
                scheme: bearer,
                scopes: scopes.clone(),
            });
            if let Some(issuer) = config["issuer"].as_str() {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    public_url(issuer).trim_end_matches('/')
                );
                c.schemes.push(Scheme {
                    name: format!("{name}-oidc"),
                    scheme: json!({"type": "openIdConnect", "openIdConnectUrl": discovery}),
                    scopes,
                });
            }
            c.responses.push((
                "401".into(),
                error_response(
                    "No bearer token, or not a valid one",
                    ERROR_SCHEMA,
                    json!({"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer error=\"invalid_token\" (RFC 6750)"}}),
                ),
            ));
            c.responses.push((
                "403".into(),
                plain_error("The token lacks a required scope"),
            ));
        }
        "introspect" => {
            let scopes = strings(&config["required_scopes"]);
            // The config names the introspection endpoint only; the token endpoint is
            // usually its sibling. `[plugins.NAME.openapi] security_scheme` says otherwise.
            let url = public_url(config["introspection_url"].as_str().unwrap_or(""));
            let token_url = match url.rsplit_once('/') {
                Some((base, _)) if url.contains("://") => format!("{base}/token"),
                _ => "/oauth2/token".into(),
            };
            let scope_map: serde_json::Map<String, Value> = scopes
                .iter()
                .map(|s| (s.clone(), Value::String(String::new())))
                .collect();
            c.schemes.push(Scheme {
                name: name.into(),
                scheme: json!({
                    "type": "oauth2",
                    "description": "An opaque OAuth2 access token, checked by RFC 7662 introspection",
                    "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": scope_map}}
                }),
                scopes,
            });
            c.responses
                .push(("401".into(), plain_error("No token, or an inactive one")));
            c.responses.push((
                "403".into(),
                plain_error("The token lacks a required scope"),
            ));
        }
        "sigv4" => {
            c.schemes.push(Scheme {
                name: name.into(),
                scheme: json!({
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4",
                    "x-amazon-apigateway-authtype": "awsSigv4"
                }),
                scopes: Vec::new(),
            });
            c.responses.push((
                "403".into(),
                plain_error("Missing Authentication Token, or a signature that does not verify"),
            ));
        }
        "validate" => validate(config, &mut c),
        "quota" => {
            let keys = ["by", "rate", "burst", "quota", "plans", "limits"];
            let limits: serde_json::Map<String, Value> = keys
                .iter()
                .filter_map(|k| config.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            c.limits = Some(Value::Object(limits));
            let int = json!({"schema": {"type": "integer"}});
            c.responses.push((
                "429".into(),
                error_response(
                    "Too Many Requests: over a rate or quota limit",
                    ERROR_SCHEMA,
                    json!({
                        "Retry-After": {"description": "Seconds until a retry can succeed", "schema": {"type": "integer"}},
                        "RateLimit-Limit": int,
                        "RateLimit-Remaining": int,
                        "RateLimit-Reset": int
                    }),
                ),
            ));
        }
        _ => {}
    }
    c
}

/// `url` without what must not be published: its user info (`user:password@`), query and
/// fragment.
fn public_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

fn validate(config: &Value, c: &mut Contribution) {
    for q in strings(&config["required_query"]) {
        c.parameters.push(
            json!({"name": q, "in": "query", "required": true, "schema": {"type": "string"}}),
        );
    }
    for h in strings(&config["required_headers"]) {
        c.parameters.push(
            json!({"name": h, "in": "header", "required": true, "schema": {"type": "string"}}),
        );
    }
    if let Some(schema) = config.get("schema").filter(|s| !s.is_null()) {
        let methods = match config.get("body_methods") {
            Some(m) => strings(m),
            None => vec!["POST".into(), "PUT".into(), "PATCH".into()],
        };
        c.request_body = Some((schema.clone(), methods));
    }
    c.responses.push((
        "400".into(),
        error_response(
            "The request does not match its schema or lacks a required parameter",
            VALIDATION_SCHEMA,
            json!({}),
        ),
    ));
}

/// The success response of a route whose integration is `spec`: a `mock`'s canned answer, or
/// whatever the upstream answers.
pub fn success(spec: &PluginSpec) -> (String, Value) {
    if builtin(spec) == Some("mock") {
        let config: Value = serde_json::from_str(&spec.config_json).unwrap_or(Value::Null);
        let status = config["status"].as_u64().unwrap_or(200).to_string();
        let mut response = json!({"description": "The mock's answer"});
        let headers = config["headers"].as_object();
        let content_type = headers
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .and_then(|(_, v)| v.as_str())
            })
            .map(String::from);
        match config.get("body") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                let ct = content_type.unwrap_or_else(|| "text/plain".into());
                response["content"] = json!({ct: {"schema": {"type": "string"}, "example": text}});
            }
            Some(body) => {
                let ct = content_type.unwrap_or_else(|| "application/json".into());
                response["content"] = json!({ct: {"example": body}});
            }
        }
        if let Some(h) = headers {
            let declared: serde_json::Map<String, Value> = h
                .keys()
                .filter(|k| !k.eq_ignore_ascii_case("content-type"))
                .map(|k| (k.clone(), json!({"schema": {"type": "string"}})))
                .collect();
            if !declared.is_empty() {
                response["headers"] = Value::Object(declared);
            }
        }
        (status, response)
    } else {
        (
            "default".into(),
            json!({"description": "The upstream's answer"}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn published_urls_lose_their_credentials_and_query() {
        assert_eq!(
            public_url("https://gw:s3cret@auth.example.com/oauth2/introspect?k=v#x"),
            "https://auth.example.com/oauth2/introspect"
        );
        assert_eq!(public_url("https://a@b@c.example/x"), "https://c.example/x");
        assert_eq!(
            public_url("https://login.example.com"),
            "https://login.example.com"
        );
    }
}
