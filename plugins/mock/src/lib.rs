//! `mock` integration: answers every request with a configured response.
//!
//! ```toml
//! [plugins.hello]
//! wasm = "plugins/target/wasm32-wasip2/release/wicket_plugin_mock.wasm"
//! config = { status = 200, headers = { x-request = "{request_id}" }, body = { id = "{param.id}" } }
//! ```
//!
//! * `status` (default 200).
//! * `headers`: header name → value template.
//! * `body`: a string, sent as is (`content-type: text/plain` unless `headers` sets one), or any
//!   other JSON value, serialized (`content-type: application/json` unless `headers` sets one).
//!   Every string in it is a template: `{request_id}`, `{param.NAME}`, any context key.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use wicket_plugin_sdk::template::{has_placeholders, render_json_with, render_template_with};
use wicket_plugin_sdk::{
    export_integration, Config, Context, Error, Integration, Request, Response,
};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, PartialEq, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// status code, default 200
    #[serde(default = "default_status")]
    status: u16,
    /// table of header name -> value template ({request_id}, {param.NAME}, any context key)
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// a string template sent as text, or any other value sent as JSON
    #[serde(default)]
    body: Option<Value>,
}

fn default_status() -> u16 {
    200
}

/// The body as configured.
#[derive(Debug, PartialEq)]
enum Body {
    Empty,
    Text(String),
    Json(Value),
}

#[derive(Debug)]
struct Mock {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Mock {
    fn from_config(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if !(100..=599).contains(&settings.status) {
            return Err(format!(
                "invalid plugin configuration: `status` must be in 100..=599, got {}",
                settings.status
            ));
        }
        let body = match settings.body {
            None | Some(Value::Null) => Body::Empty,
            Some(Value::String(s)) => Body::Text(s),
            Some(other) => Body::Json(other),
        };
        let mut headers: Vec<(String, String)> = settings.headers.into_iter().collect();
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if !has_content_type {
            match body {
                Body::Text(_) => headers.push(("content-type".into(), "text/plain".into())),
                Body::Json(_) => headers.push(("content-type".into(), "application/json".into())),
                Body::Empty => {}
            }
        }
        Ok(Self {
            status: settings.status,
            headers,
            body,
        })
    }

    /// The headers and body for one request, templates rendered with `lookup`.
    fn render<F>(&self, mut lookup: F) -> (Vec<(String, String)>, Vec<u8>)
    where
        F: FnMut(&str) -> Option<String>,
    {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), render_template_with(value, &mut lookup)))
            .collect();
        let body = match &self.body {
            Body::Empty => Vec::new(),
            Body::Text(text) if !has_placeholders(text) => text.as_bytes().to_vec(),
            Body::Text(text) => render_template_with(text, &mut lookup).into_bytes(),
            Body::Json(value) => {
                let rendered = render_json_with(value, &mut lookup);
                serde_json::to_vec(&rendered).unwrap_or_default()
            }
        };
        (headers, body)
    }
}

impl Integration for Mock {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("answers with a fixed response").config::<Settings>()
    }

    fn new(config: Config) -> Result<Self, String> {
        Mock::from_config(&config)
    }

    fn handle(&self, _req: &Request, ctx: &Context) -> Result<Response, Error> {
        let (headers, body) = self.render(|key| ctx.get(key));
        let resp = Response::new(self.status);
        for (name, value) in &headers {
            if let Err(e) = resp.set_header(name, value) {
                wicket_plugin_sdk::error!("mock: cannot set header `{name}`: {e}");
                return Err(Error::internal());
            }
        }
        resp.set_body(&body);
        Ok(resp)
    }
}

export_integration!(Mock);

#[cfg(test)]
mod tests {
    use super::*;

    fn mock(json: &str) -> Result<Mock, String> {
        Mock::from_config(&Config::from_json(json).unwrap())
    }

    fn lookup(key: &str) -> Option<String> {
        match key {
            "request_id" => Some("r-1".into()),
            "param.id" => Some("9".into()),
            _ => None,
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn defaults_to_an_empty_200() {
        let m = mock("{}").unwrap();
        assert_eq!(m.status, 200);
        let (headers, body) = m.render(lookup);
        assert!(headers.is_empty());
        assert!(body.is_empty());
    }

    #[test]
    fn string_body_is_text_and_templated() {
        let m = mock(r#"{"status": 201, "body": "hi {param.id} {nope}!"}"#).unwrap();
        assert_eq!(m.status, 201);
        let (headers, body) = m.render(lookup);
        assert_eq!(header(&headers, "content-type"), Some("text/plain"));
        assert_eq!(body, b"hi 9 !");
    }

    #[test]
    fn json_body_is_serialized_with_rendered_strings() {
        let m = mock(r#"{"body": {"id": "{param.id}", "n": [1, "{request_id}"]}}"#).unwrap();
        let (headers, body) = m.render(lookup);
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value, serde_json::json!({"id": "9", "n": [1, "r-1"]}));
        let (_, body) = mock(r#"{"body": 5}"#).unwrap().render(lookup);
        assert_eq!(body, b"5");
    }

    #[test]
    fn configured_headers_win_and_are_templated() {
        let m = mock(
            r#"{"headers": {"Content-Type": "text/html", "x-id": "{request_id}"}, "body": "<p>"}"#,
        )
        .unwrap();
        let (headers, body) = m.render(lookup);
        assert_eq!(headers.len(), 2);
        assert_eq!(header(&headers, "content-type"), Some("text/html"));
        assert_eq!(header(&headers, "x-id"), Some("r-1"));
        assert_eq!(body, b"<p>");
    }

    #[test]
    fn rejects_bad_config() {
        let err = mock(r#"{"stauts": 200}"#).unwrap_err();
        assert!(err.contains("unknown field `stauts`"), "{err}");
        assert!(mock(r#"{"status": 99}"#).is_err());
        assert!(mock(r#"{"status": 70000}"#).is_err());
        assert!(mock(r#"{"headers": {"x": 1}}"#).is_err());
    }
}
