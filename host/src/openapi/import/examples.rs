//! The answers of imported mocks: an operation's first example, or a value built from its
//! response schema when the document gives none.

use super::Importer;
use crate::openapi::schema::{strip_nulls, COMPONENTS};
use serde_json::{json, Map, Value};

impl Importer<'_> {
    /// A `mock` config answering the operation's first success response with its first
    /// example, or a sample built from its schema.
    pub(super) fn mock(&mut self, op: &Value) -> Value {
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        let chosen = responses
            .iter()
            .find(|(code, _)| code.starts_with('2'))
            .or_else(|| responses.iter().find(|(code, _)| *code == "default"))
            .or_else(|| responses.iter().next());
        let Some((code, response)) = chosen else {
            return json!({"status": 204});
        };
        let status: u16 = match code.as_str() {
            "2XX" | "default" => 200,
            c => c.parse().unwrap_or(200),
        };
        let response = self.resolve(response);
        let mut config = json!({"status": status});
        let content = response["content"].as_object().cloned().unwrap_or_default();
        let media = content
            .iter()
            .find(|(ct, _)| ct.starts_with("application/json"))
            .or_else(|| content.iter().next());
        if let Some((ct, media)) = media {
            let example = media
                .get("example")
                .cloned()
                .or_else(|| {
                    media["examples"]
                        .as_object()
                        .and_then(|e| e.values().next())
                        .map(|e| self.resolve(e)["value"].clone())
                })
                .or_else(|| {
                    let schema = self.resolve(&media["schema"]);
                    schema
                        .get("example")
                        .cloned()
                        .or_else(|| schema["examples"].get(0).cloned())
                })
                .filter(|e| !e.is_null())
                .unwrap_or_else(|| self.sample(&media["schema"], 0));
            let mut body = if ct.contains("json") {
                example
            } else {
                match example {
                    Value::String(s) => Value::String(s),
                    other => Value::String(other.to_string()),
                }
            };
            if strip_nulls(&mut body) {
                self.warnings
                    .push(format!("a mock body had nulls, which TOML cannot hold; they were left out (response {code})"));
            }
            config["headers"] = json!({"content-type": ct});
            config["body"] = body;
        }
        config
    }

    /// A value that fits `schema` (first enum value, a property per property), for mocks of
    /// operations without examples.
    fn sample(&self, schema: &Value, depth: usize) -> Value {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix(COMPONENTS) {
                Some(n) => self.components.get(n).cloned().unwrap_or(Value::Null),
                None => self.resolve(schema),
            },
            None => schema.clone(),
        };
        if depth > 8 {
            return Value::Null;
        }
        if let Some(e) = schema.get("example").or_else(|| schema["examples"].get(0)) {
            return e.clone();
        }
        if let Some(e) = schema["enum"].get(0) {
            return e.clone();
        }
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        if let Some(all) = schema["allOf"].as_array() {
            let mut merged = Map::new();
            for s in all {
                if let Value::Object(m) = self.sample(s, depth + 1) {
                    merged.extend(m);
                }
            }
            return Value::Object(merged);
        }
        if let Some(first) = schema["oneOf"].get(0).or_else(|| schema["anyOf"].get(0)) {
            return self.sample(first, depth + 1);
        }
        let kind = match &schema["type"] {
            Value::String(t) => t.clone(),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null")
                .to_string(),
            _ if schema.get("properties").is_some() => "object".into(),
            _ => String::new(),
        };
        match kind.as_str() {
            "object" => Value::Object(
                schema["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, s)| (k.clone(), self.sample(s, depth + 1)))
                    .filter(|(_, v)| !v.is_null())
                    .collect(),
            ),
            "array" => {
                let item = self.sample(&schema["items"], depth + 1);
                Value::Array(if item.is_null() { vec![] } else { vec![item] })
            }
            "integer" => json!(schema["minimum"].as_i64().unwrap_or(1)),
            "number" => json!(schema["minimum"].as_f64().unwrap_or(1.5)),
            "boolean" => json!(true),
            "string" => json!(match schema["format"].as_str() {
                Some("date-time") => "2026-01-01T00:00:00Z",
                Some("date") => "2026-01-01",
                Some("uuid") => "00000000-0000-4000-8000-000000000000",
                Some("email") => "user@example.com",
                Some("uri") => "https://example.com/",
                _ => "string",
            }),
            _ => Value::Null,
        }
    }
}
