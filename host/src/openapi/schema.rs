//! JSON plumbing shared by export and import: merging fragments, rewriting `$ref`s between
//! `#/components/schemas/` (OpenAPI) and `#/$defs/` (the self-contained schemas `validate`
//! takes), and upgrading OpenAPI 3.0 schemas to JSON Schema 2020-12.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

pub const COMPONENTS: &str = "#/components/schemas/";
pub const DEFS: &str = "#/$defs/";

/// Merge `fragment` into `base`: objects key by key, `parameters` arrays by (`name`, `in`),
/// anything else replaced by the fragment's value.
pub fn merge(base: &mut Value, fragment: &Value) {
    match (base, fragment) {
        (Value::Object(b), Value::Object(f)) => {
            for (k, v) in f {
                match b.get_mut(k) {
                    Some(existing) if k == "parameters" => merge_parameters(existing, v),
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, f) => *b = f.clone(),
    }
}

fn merge_parameters(base: &mut Value, fragment: &Value) {
    let (Value::Array(b), Value::Array(f)) = (&mut *base, fragment) else {
        *base = fragment.clone();
        return;
    };
    // Header names are case-insensitive (`validate` takes them in lower case).
    let key = |p: &Value| {
        let name = p["name"].as_str().unwrap_or_default();
        let name = if p["in"] == "header" {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        };
        (name, p["in"].clone())
    };
    for p in f {
        match b.iter_mut().find(|q| key(q) == key(p)) {
            Some(q) => merge(q, p),
            None => b.push(p.clone()),
        }
    }
}

/// Rewrite every `$ref` starting with `from` to start with `to` instead, renaming the target
/// (the pointer's first token; a deeper pointer keeps its rest) through `rename`.
pub fn rewrite_refs(value: &mut Value, from: &str, to: &str, rename: &dyn Fn(&str) -> String) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "$ref" {
                    if let Some(pointer) = v.as_str().and_then(|r| r.strip_prefix(from)) {
                        let (name, rest) = match pointer.split_once('/') {
                            Some((n, r)) => (n, format!("/{r}")),
                            None => (pointer, String::new()),
                        };
                        *v = Value::String(format!("{to}{}{rest}", rename(name)));
                    }
                } else {
                    rewrite_refs(v, from, to, rename);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                rewrite_refs(v, from, to, rename);
            }
        }
        _ => {}
    }
}

/// The names `value` refers to under `prefix`, followed through `lookup` transitively.
pub fn referenced(
    value: &Value,
    prefix: &str,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo = vec![value.clone()];
    while let Some(v) = todo.pop() {
        let mut names = Vec::new();
        collect_refs(&v, prefix, &mut names);
        for name in names {
            if found.insert(name.clone()) {
                if let Some(target) = lookup(&name) {
                    todo.push(target);
                }
            }
        }
    }
    found
}

fn collect_refs(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(pointer) = v.as_str().and_then(|r| r.strip_prefix(prefix)) {
                        let name = pointer.split('/').next().unwrap_or(pointer);
                        out.push(unescape_pointer(name));
                    }
                } else {
                    collect_refs(v, prefix, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, prefix, out)),
        _ => {}
    }
}

/// A JSON Pointer token as a name (`~1` is `/`, `~0` is `~`).
pub fn unescape_pointer(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// An OpenAPI 3.0 Schema Object as JSON Schema 2020-12: `nullable` becomes a `null` type and
/// boolean `exclusiveMinimum`/`exclusiveMaximum` become numbers. Only schema positions are
/// visited, so a property that happens to be named `nullable` is left alone.
pub fn upgrade_30(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    upgrade_object(map);
    for (k, v) in map.iter_mut() {
        match k.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(m) = v {
                    m.values_mut().for_each(upgrade_30);
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                if let Value::Array(a) = v {
                    a.iter_mut().for_each(upgrade_30);
                }
            }
            "items"
            | "additionalProperties"
            | "not"
            | "contains"
            | "propertyNames"
            | "if"
            | "then"
            | "else"
            | "unevaluatedProperties"
            | "unevaluatedItems" => upgrade_30(v),
            _ => {}
        }
    }
}

fn upgrade_object(map: &mut Map<String, Value>) {
    if map.remove("nullable") == Some(Value::Bool(true)) {
        match map.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                map.insert("type".into(), serde_json::json!([t, "null"]));
            }
            Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => {
                types.push("null".into());
            }
            _ => {}
        }
        if let Some(Value::Array(options)) = map.get_mut("enum") {
            if !options.contains(&Value::Null) {
                options.push(Value::Null);
            }
        }
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(exclusive)) = map.get(flag).cloned() {
            map.remove(flag);
            if exclusive {
                if let Some(b) = map.remove(bound) {
                    map.insert(flag.into(), b);
                }
            }
        }
    }
}

/// `value` without nulls (TOML has none): null members and items are left out. Returns whether
/// any was.
pub fn strip_nulls(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            let mut stripped = map.len() != before;
            for v in map.values_mut() {
                stripped |= strip_nulls(v);
            }
            stripped
        }
        Value::Array(items) => {
            let before = items.len();
            items.retain(|v| !v.is_null());
            let mut stripped = items.len() != before;
            for v in items.iter_mut() {
                stripped |= strip_nulls(v);
            }
            stripped
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_parameters_by_name_and_location() {
        let mut base =
            json!({"parameters": [{"name": "id", "in": "path", "required": true}], "summary": "a"});
        merge(
            &mut base,
            &json!({"parameters": [{"name": "id", "in": "path", "description": "d"}, {"name": "q", "in": "query"}], "summary": "b"}),
        );
        assert_eq!(
            base,
            json!({"parameters": [{"name": "id", "in": "path", "required": true, "description": "d"}, {"name": "q", "in": "query"}], "summary": "b"})
        );
    }

    #[test]
    fn upgrades_nullable_and_exclusive_bounds() {
        let mut s = json!({"type": "object", "properties": {"n": {"type": "integer", "nullable": true, "minimum": 0, "exclusiveMinimum": true}, "nullable": {"type": "string"}}});
        upgrade_30(&mut s);
        assert_eq!(
            s["properties"]["n"],
            json!({"type": ["integer", "null"], "exclusiveMinimum": 0})
        );
        assert_eq!(s["properties"]["nullable"], json!({"type": "string"}));
    }

    #[test]
    fn follows_refs_transitively() {
        let defs =
            json!({"A": {"$ref": "#/components/schemas/B"}, "B": {"type": "string"}, "C": {}});
        let found = referenced(
            &json!({"$ref": "#/components/schemas/A"}),
            COMPONENTS,
            &|n| defs.get(n).cloned(),
        );
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["A", "B"]);
    }
}
