//! `validate` filter: refuses bad requests before they reach the integration, as API Gateway's
//! request validators do. It checks required query parameters and headers, and validates JSON
//! request bodies against a JSON Schema (draft 2020-12).
//!
//! ```toml
//! [plugins.check-pet]
//! builtin = "validate"
//! config.required_query = ["version"]
//! config.required_headers = ["x-api-key"]
//! config.schema = { type = "object", required = ["name"], properties = { name = { type = "string", minLength = 1 }, age = { type = "integer", minimum = 0 } }, additionalProperties = false }
//! ```
//!
//! * `schema` (optional): the JSON Schema, inline (a TOML table is a JSON object). Draft
//!   2020-12 unless the schema's `$schema` names another draft. The schema itself is checked
//!   against its meta-schema at load (`wicket check` reports a bad one with the line). External
//!   `$ref`s cannot be fetched (a plugin has no network or files): a schema must be
//!   self-contained (`$defs` and local `$ref`s work).
//! * `validate_formats` (default false): also check `format` (`email`, `date-time`, `uuid`, ...),
//!   which draft 2020-12 treats as an annotation only.
//! * `body_methods` (default POST, PUT, PATCH): the methods whose body is validated.
//! * `body_required` (default true): an empty body (for those methods) is a violation; when
//!   false an empty body is let through unvalidated.
//! * `required_query`, `required_headers` (default none): names that must be present (a query
//!   parameter with an empty value counts as present, as in API Gateway).
//! * `max_errors` (default 10): violations listed at most.
//!
//! A request that fails gets `400` and
//! `{"message": "Invalid request body", "errors": [{"in": "body", "path": "/age", "message": "-1 is less than the minimum of 0"}, ...], "requestId": "..."}`:
//! `in` is `body`, `query` or `header`, `path` a JSON pointer into the body (`""` for the whole
//! body) or the parameter's name. When only parameters are missing the message is
//! `Missing required request parameters`. A body that is not JSON is one violation whose message
//! gives the parse error's line and column.

use serde::Deserialize;
use serde_json::Value;
use wicket_plugin_sdk::body::{error_response, parse_json, Violation};
use wicket_plugin_sdk::header::is_header_name;
use wicket_plugin_sdk::query::Query;
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// the JSON Schema (draft 2020-12), inline; self-contained (local $ref and $defs only)
    #[serde(default)]
    schema: Option<Value>,
    /// also check `format` (email, date-time, uuid, ...), default false
    #[serde(default)]
    validate_formats: bool,
    /// methods whose body is validated, default [POST, PUT, PATCH]
    #[serde(default = "default_body_methods")]
    body_methods: Vec<String>,
    /// an empty body is a violation, default true
    #[serde(default = "default_true")]
    body_required: bool,
    /// query parameters that must be present
    #[serde(default)]
    required_query: Vec<String>,
    /// headers that must be present
    #[serde(default)]
    required_headers: Vec<String>,
    /// violations listed at most, default 10
    #[serde(default = "default_max_errors")]
    max_errors: usize,
}

fn default_body_methods() -> Vec<String> {
    ["POST", "PUT", "PATCH"].map(String::from).to_vec()
}

fn default_true() -> bool {
    true
}

fn default_max_errors() -> usize {
    10
}

/// Longest message kept for one violation: a schema message quotes the offending value.
const MAX_MESSAGE_CHARS: usize = 300;

const BODY_MESSAGE: &str = "Invalid request body";
const PARAMS_MESSAGE: &str = "Missing required request parameters";

struct Validate {
    schema: Option<jsonschema::Validator>,
    body_methods: Vec<String>,
    body_required: bool,
    required_query: Vec<String>,
    required_headers: Vec<String>,
    max_errors: usize,
}

/// Shortens `message` to `MAX_MESSAGE_CHARS` characters.
fn clip(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}...", &message[..i]),
        None => message,
    }
}

impl Validate {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        let schema = match &s.schema {
            None => None,
            Some(schema) => {
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .should_validate_formats(s.validate_formats)
                    .build(schema)
                    .map_err(|e| {
                        let at = e.schema_path().as_str();
                        let at = if at.is_empty() { "/" } else { at };
                        format!("invalid plugin configuration: `schema` is not a usable JSON Schema (at {at}): {e}")
                    })?;
                Some(validator)
            }
        };
        for m in &s.body_methods {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!("invalid plugin configuration: `body_methods` entry `{m}` is not an upper-case method name"));
            }
        }
        for h in &s.required_headers {
            if !is_header_name(h) {
                return Err(format!(
                    "invalid plugin configuration: `required_headers` entry `{h}` is not a header name"
                ));
            }
        }
        if s.required_query.iter().any(String::is_empty) {
            return Err(
                "invalid plugin configuration: `required_query` has an empty name".to_owned(),
            );
        }
        if s.max_errors == 0 {
            return Err("invalid plugin configuration: `max_errors` must be positive".to_owned());
        }
        Ok(Self {
            schema,
            body_methods: s.body_methods,
            body_required: s.body_required,
            required_query: s.required_query,
            required_headers: s.required_headers,
            max_errors: s.max_errors,
        })
    }

    /// Violations of the parameter rules: `query` is the raw query string, `has_header` tells
    /// whether a header is present.
    fn check_params(
        &self,
        query: Option<&str>,
        has_header: impl Fn(&str) -> bool,
    ) -> Vec<Violation> {
        let mut errors = Vec::new();
        if !self.required_query.is_empty() {
            let query = Query::parse(query.unwrap_or(""));
            for name in &self.required_query {
                if !query.contains(name) {
                    errors.push(Violation::new(
                        "query",
                        name,
                        "required query parameter is missing",
                    ));
                }
            }
        }
        for name in &self.required_headers {
            if !has_header(name) {
                errors.push(Violation::new("header", name, "required header is missing"));
            }
        }
        errors
    }

    fn checks_body(&self, method: &str) -> bool {
        self.schema.is_some() && self.body_methods.iter().any(|m| m == method)
    }

    /// Violations of the body schema (`checks_body` said yes).
    fn check_body(&self, body: &[u8]) -> Vec<Violation> {
        let Some(schema) = &self.schema else {
            return Vec::new();
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return if self.body_required {
                vec![Violation::new("body", "", "a JSON body is required")]
            } else {
                Vec::new()
            };
        }
        let value = match parse_json(body) {
            Ok(v) => v,
            Err(e) => {
                return vec![Violation::new(
                    "body",
                    "",
                    format!("the body is not valid JSON: {e}"),
                )]
            }
        };
        schema
            .iter_errors(&value)
            .take(self.max_errors)
            .map(|e| {
                Violation::new(
                    "body",
                    e.instance_path().as_str().to_owned(),
                    clip(e.to_string()),
                )
            })
            .collect()
    }

    /// Every violation of `req`, at most `max_errors`; the message to answer with.
    fn check(
        &self,
        method: &str,
        query: Option<&str>,
        has_header: impl Fn(&str) -> bool,
        body: impl FnOnce() -> Vec<u8>,
    ) -> Option<(&'static str, Vec<Violation>)> {
        let mut errors = self.check_params(query, has_header);
        let mut message = PARAMS_MESSAGE;
        if self.checks_body(method) {
            let body_errors = self.check_body(&body());
            if !body_errors.is_empty() {
                message = BODY_MESSAGE;
            }
            errors.extend(body_errors);
        }
        errors.truncate(self.max_errors);
        (!errors.is_empty()).then_some((message, errors))
    }
}

impl Filter for Validate {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("refuses requests whose JSON body breaks a JSON Schema (2020-12) or that lack required query parameters or headers: 400 with the list of violations")
            .config::<Settings>()
    }

    /// The body is read only when a schema checks it; nothing happens on the way out.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        let body = if self.schema.is_some() || self.body_required {
            wicket_plugin_sdk::BodyUse::Whole
        } else {
            wicket_plugin_sdk::BodyUse::None
        };
        wicket_plugin_sdk::Plan::default()
            .on_response(false)
            .request_body(body)
    }

    fn new(config: Config) -> Result<Self, String> {
        Validate::from_config(&config)
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        let method = req.method();
        let outcome = self.check(
            &method,
            req.query().as_deref(),
            |name| req.header(name).is_some(),
            || req.body(),
        );
        match outcome {
            None => Ok(Action::Continue),
            Some((message, errors)) => {
                wicket_plugin_sdk::debug!("validate: refused with {} violation(s)", errors.len());
                Ok(Action::Respond(error_response(400, message, &errors, ctx)))
            }
        }
    }
}

export_filter!(Validate);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validate(config: Value) -> Result<Validate, String> {
        Validate::from_config(&Config::from_value(config).unwrap())
    }

    fn pet() -> Validate {
        validate(json!({
            "required_query": ["version"],
            "required_headers": ["x-api-key"],
            "schema": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "age": {"type": "integer", "minimum": 0},
                    "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}
                },
                "additionalProperties": false,
                "$defs": {"tag": {"type": "string", "maxLength": 5}}
            }
        }))
        .unwrap()
    }

    fn run(v: &Validate, method: &str, query: &str, body: &str) -> Option<(&'static str, Value)> {
        v.check(
            method,
            Some(query),
            |h| h == "x-api-key",
            || body.as_bytes().to_vec(),
        )
        .map(|(m, e)| (m, serde_json::to_value(e).unwrap()))
    }

    #[test]
    fn a_good_request_passes() {
        assert_eq!(
            run(
                &pet(),
                "POST",
                "version=1",
                r#"{"name": "Rex", "age": 3, "tags": ["a"]}"#
            ),
            None
        );
        // GET bodies are not validated.
        assert_eq!(run(&pet(), "GET", "version=", ""), None);
    }

    #[test]
    fn body_violations_have_paths() {
        let (message, errors) = run(
            &pet(),
            "POST",
            "version=1",
            r#"{"age": -1, "tags": ["toolong"], "x": 1}"#,
        )
        .unwrap();
        assert_eq!(message, "Invalid request body");
        let paths: Vec<&str> = errors
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        for p in ["", "/age", "/tags/0"] {
            assert!(paths.contains(&p), "{p} in {errors}");
        }
        assert!(errors.as_array().unwrap().iter().all(|e| e["in"] == "body"));
        assert!(errors.to_string().contains("minimum of 0"), "{errors}");
    }

    #[test]
    fn params_and_parse_errors() {
        let v = pet();
        let (message, errors) = v
            .check(
                "PUT",
                Some("other=1"),
                |_| false,
                || b"{\"name\": }".to_vec(),
            )
            .unwrap();
        assert_eq!(message, "Invalid request body");
        assert_eq!(
            errors[0],
            Violation::new("query", "version", "required query parameter is missing")
        );
        assert_eq!(
            errors[1],
            Violation::new("header", "x-api-key", "required header is missing")
        );
        assert!(
            errors[2].message.contains("line 1, column 10"),
            "{:?}",
            errors[2]
        );
        let (message, errors) = v.check("GET", None, |_| false, Vec::new).unwrap();
        assert_eq!(message, "Missing required request parameters");
        assert_eq!(errors.len(), 2);
        let (_, errors) = run(&v, "POST", "version=1", "  ").unwrap();
        assert_eq!(errors[0]["message"], "a JSON body is required");
    }

    #[test]
    fn limits_and_options() {
        let v = validate(json!({"schema": {"type": "array", "items": {"type": "string"}}, "max_errors": 2, "body_required": false})).unwrap();
        let (_, errors) = run(&v, "POST", "", "[1, 2, 3, 4]").unwrap();
        assert_eq!(errors.as_array().unwrap().len(), 2);
        assert_eq!(run(&v, "POST", "", ""), None);
        let long = format!("[\"{}\"]", "x".repeat(2000));
        let v =
            validate(json!({"schema": {"type": "array", "items": {"type": "integer"}}})).unwrap();
        let (_, errors) = run(&v, "POST", "", &long).unwrap();
        assert!(errors[0]["message"].as_str().unwrap().len() < 400);
        let v = validate(
            json!({"schema": {"type": "string", "format": "email"}, "validate_formats": true}),
        )
        .unwrap();
        assert!(run(&v, "POST", "", "\"nope\"").is_some());
        assert!(run(&v, "POST", "", "\"a@example.com\"").is_none());
        let v = validate(json!({"schema": {"type": "string", "format": "email"}})).unwrap();
        assert!(run(&v, "POST", "", "\"nope\"").is_none());
    }

    #[test]
    fn rejects_bad_config() {
        for (config, needle) in [
            (
                json!({"schema": {"type": "nope"}}),
                "not a usable JSON Schema",
            ),
            (
                json!({"schema": {"$ref": "https://example.com/s.json"}}),
                "not a usable JSON Schema",
            ),
            (
                json!({"schema": {"minimum": "x"}}),
                "not a usable JSON Schema",
            ),
            (json!({"required_headers": ["a b"]}), "not a header name"),
            (json!({"body_methods": ["post"]}), "upper-case"),
            (json!({"max_errors": 0}), "positive"),
            (json!({"schemas": {}}), "unknown field `schemas`"),
        ] {
            let err = validate(config.clone()).err().unwrap_or_default();
            assert!(err.contains(needle), "{config}: {err}");
        }
    }
}
