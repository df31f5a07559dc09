//! `{key}` templates, shared by the plugins that build strings from the request context (the
//! `wicket-template` crate, which the gateway uses for plans too, over the plugin's context).
//!
//! A placeholder is `{` + a key + `}`, the key made of ASCII letters, digits and `_ . - + :`
//! (e.g. `{request_id}`, `{param.id}`, `{route}`). Anything else, such as a lone brace or
//! `{"json": 1}`, is copied as is.

use serde_json::Value;

use crate::Context;

/// Renders `template` with the request context: `{key}` becomes the context value of `key`
/// (e.g. `{request_id}`, `{client_ip}`, `{param.id}`), a key that is not set becomes the empty
/// string.
pub fn render_template(template: &str, ctx: &Context) -> String {
    render_template_with(template, |key| ctx.get(key))
}

/// Renders `template`, replacing each `{key}` with `lookup(key)`, `None` becoming the empty
/// string. The pure core of [`render_template`].
pub fn render_template_with<F>(template: &str, lookup: F) -> String
where
    F: FnMut(&str) -> Option<String>,
{
    wicket_template::render(template, lookup)
}

/// Whether `template` contains at least one placeholder (so rendering can be skipped).
pub fn has_placeholders(template: &str) -> bool {
    let mut found = false;
    render_template_with(template, |_| {
        found = true;
        None
    });
    found
}

/// Renders every string inside a JSON value (object keys are kept as they are).
pub fn render_json_with<F>(value: &Value, lookup: &mut F) -> Value
where
    F: FnMut(&str) -> Option<String>,
{
    match value {
        Value::String(s) => Value::String(render_template_with(s, &mut *lookup)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| render_json_with(v, lookup)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render_json_with(v, lookup)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Renders every string inside a JSON value with the request context; see [`render_template`].
pub fn render_json(value: &Value, ctx: &Context) -> Value {
    render_json_with(value, &mut |key: &str| ctx.get(key))
}

/// Renders a URL template whose placeholders are path parameters: `{id}` becomes the context
/// value `param.id`, and a greedy parameter may be written `{path+}` as in the route template
/// (becoming `param.path`). Values are inserted as they are (the host keeps the client's
/// percent-encoding); a parameter that is not set becomes the empty string.
pub fn render_url_with<F>(template: &str, lookup: F) -> String
where
    F: FnMut(&str) -> Option<String>,
{
    wicket_template::render_url(template, lookup)
}

/// Appends a raw query string to `url`: after `?`, or after `&` when `url` already has a
/// query. An absent or empty query leaves `url` unchanged. A `#fragment` in `url` stays last.
pub fn append_query(url: &str, query: Option<&str>) -> String {
    wicket_template::append_query(url, query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ctx() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("request_id", "req-1"),
            ("param.id", "42"),
            ("param.path", "a/b/c"),
            ("route", "GET /pets/{id}"),
        ])
    }

    fn render(template: &str) -> String {
        let ctx = ctx();
        render_template_with(template, |k| ctx.get(k).map(|v| v.to_string()))
    }

    fn url(template: &str) -> String {
        let ctx = ctx();
        render_url_with(template, |k| ctx.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn replaces_known_keys() {
        assert_eq!(render("id={request_id}"), "id=req-1");
        assert_eq!(render("{param.id}/{request_id}"), "42/req-1");
        assert_eq!(render("{request_id}{request_id}"), "req-1req-1");
    }

    #[test]
    fn missing_keys_become_empty() {
        assert_eq!(render("a{nope}b"), "ab");
        assert_eq!(render("{param.missing}"), "");
    }

    #[test]
    fn non_placeholders_are_literal() {
        assert_eq!(render("plain"), "plain");
        assert_eq!(render(""), "");
        assert_eq!(render("{"), "{");
        assert_eq!(render("}{"), "}{");
        assert_eq!(render("{}"), "{}");
        assert_eq!(render("{ request_id }"), "{ request_id }");
        assert_eq!(render(r#"{"a": 1}"#), r#"{"a": 1}"#);
        assert_eq!(render("{{request_id}"), "{req-1");
        assert_eq!(render("{request_id"), "{request_id");
        assert_eq!(render("é{request_id}ü"), "éreq-1ü");
    }

    #[test]
    fn values_are_not_rendered_again() {
        let out = render_template_with("{a}", |_| Some("{a}".to_owned()));
        assert_eq!(out, "{a}");
    }

    #[test]
    fn detects_placeholders() {
        assert!(has_placeholders("x-{request_id}"));
        assert!(!has_placeholders("{} { x } plain"));
    }

    #[test]
    fn renders_strings_inside_json() {
        let ctx = ctx();
        let mut lookup = |k: &str| ctx.get(k).map(|v| v.to_string());
        let value = serde_json::json!({
            "id": "{param.id}",
            "{request_id}": ["{request_id}", 1, true, null],
            "nested": {"n": 2.5}
        });
        let rendered = render_json_with(&value, &mut lookup);
        assert_eq!(
            rendered,
            serde_json::json!({
                "id": "42",
                "{request_id}": ["req-1", 1, true, null],
                "nested": {"n": 2.5}
            })
        );
    }

    #[test]
    fn url_params_come_from_param_keys() {
        assert_eq!(
            url("http://127.0.0.1:9000/pets/{id}"),
            "http://127.0.0.1:9000/pets/42"
        );
        assert_eq!(url("http://h/files/{path+}"), "http://h/files/a/b/c");
        assert_eq!(url("http://h/files/{path}"), "http://h/files/a/b/c");
        // Only path parameters: other context keys are not reachable from a URL.
        assert_eq!(url("http://h/{request_id}"), "http://h/");
        assert_eq!(url("http://h/{missing}/x"), "http://h//x");
    }

    #[test]
    fn query_is_appended_with_the_right_separator() {
        assert_eq!(append_query("http://h/p", Some("a=1")), "http://h/p?a=1");
        assert_eq!(
            append_query("http://h/p?x=2", Some("a=1")),
            "http://h/p?x=2&a=1"
        );
        assert_eq!(append_query("http://h/p?", Some("a=1")), "http://h/p?a=1");
        assert_eq!(
            append_query("http://h/p?x=2&", Some("a=1")),
            "http://h/p?x=2&a=1"
        );
        assert_eq!(
            append_query("http://h/p#top", Some("a=1")),
            "http://h/p?a=1#top"
        );
        assert_eq!(append_query("http://h/p", None), "http://h/p");
        assert_eq!(append_query("http://h/p?x=2", Some("")), "http://h/p?x=2");
    }
}
