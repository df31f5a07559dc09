//! `http` integration: forwards the client's request to an HTTP backend and returns the
//! backend's response as is (neither body passes through the plugin).
//!
//! ```toml
//! [plugins.pets]
//! wasm = "plugins/target/wasm32-wasip2/release/wicket_plugin_http.wasm"
//! grants = ["http"]
//! config = { url = "http://127.0.0.1:9000/pets/{id}", timeout_ms = 5000 }
//! ```
//!
//! * `url` (required): the backend URL. `{name}` is replaced by the path parameter `name`
//!   (context key `param.name`); a greedy parameter may be written `{path+}`. The client's query
//!   string is appended.
//! * `timeout_ms` (default 29000): how long to wait for the whole response.
//! * `sign = { service = "s3", region = "us-east-1" }`: the gateway signs the request with AWS
//!   Signature Version 4, with its own AWS credentials (environment or shared files; the
//!   plugin never sees them), after dropping the client's `Authorization` and `X-Amz-*`
//!   headers: a route fronting S3, DynamoDB, SQS. S3 is signed with `UNSIGNED-PAYLOAD`, so
//!   the body streams; every other service signs the body's SHA-256, so the body is read
//!   whole first (within `server.max_body_bytes`, 413 past it).
//!
//! A timeout answers `504 Endpoint request timed out`, any other failure `502 Bad Gateway`; the
//! details go to the log.

use std::time::Duration;

use serde::Deserialize;
use wicket_plugin_sdk::template::{append_query, render_url_with};
use wicket_plugin_sdk::{
    aws, export_integration, http, sigv4, Config, Context, Error, Integration, Request, Response,
};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, PartialEq, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// backend URL; {name} is replaced by the path parameter `name`, the client's query string is appended
    url: String,
    /// time for the whole backend response, default 29000; past it the client gets 504
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u32,
    /// { service = "s3", region = "us-east-1" }: SigV4-sign the request with the gateway's AWS credentials
    #[serde(default)]
    sign: Option<SignSettings>,
}

/// What to sign for.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct SignSettings {
    service: String,
    region: String,
    /// Client X-Amz-* headers kept and signed, such as x-amz-target.
    #[serde(default)]
    pass_headers: Vec<String>,
}

fn default_timeout_ms() -> u32 {
    29_000
}

impl Settings {
    fn from_config(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        let scheme_ok = ["http://", "https://"].iter().any(|s| {
            settings
                .url
                .get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        if !scheme_ok {
            return Err(format!(
                "invalid plugin configuration: `url` must start with http:// or https://, got `{}`",
                settings.url
            ));
        }
        if settings.timeout_ms == 0 {
            return Err("invalid plugin configuration: `timeout_ms` must be positive".to_owned());
        }
        if let Some(sign) = &settings.sign {
            for (key, value) in [("service", &sign.service), ("region", &sign.region)] {
                if !sigv4::is_scope_name(value) {
                    return Err(format!(
                        "invalid plugin configuration: `sign.{key}` must be lower-case letters, \
                         digits and '-' (like \"s3\", \"us-east-1\"), got `{value}`"
                    ));
                }
            }
            for name in &sign.pass_headers {
                let lower = name.to_ascii_lowercase();
                if !lower.starts_with("x-amz-")
                    || !wicket_plugin_sdk::header::is_header_name(&lower)
                {
                    return Err(format!(
                        "invalid plugin configuration: `sign.pass_headers` names X-Amz-* \
                         headers, got `{name}`"
                    ));
                }
            }
        }
        Ok(settings)
    }

    /// The backend URL for a request: path parameters substituted, client query appended.
    fn target_url<F>(&self, query: Option<&str>, lookup: F) -> String
    where
        F: FnMut(&str) -> Option<String>,
    {
        append_query(&render_url_with(&self.url, lookup), query)
    }
}

struct HttpIntegration {
    settings: Settings,
}

impl Integration for HttpIntegration {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new(
            "proxies to an HTTP backend through pooled keep-alive connections",
        )
        .config::<Settings>()
        .capabilities(&["http", "aws"])
    }

    /// The whole behaviour is a forward: the host runs it without calling into the plugin.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        wicket_plugin_sdk::Plan::default().forward(wicket_plugin_sdk::Forward {
            url: self.settings.url.clone(),
            timeout_ms: self.settings.timeout_ms,
            sign: self
                .settings
                .sign
                .as_ref()
                .map(|s| wicket_plugin_sdk::SignSpec {
                    service: s.service.clone(),
                    region: s.region.clone(),
                    pass_headers: s
                        .pass_headers
                        .iter()
                        .map(|h| h.to_ascii_lowercase())
                        .collect(),
                }),
        })
    }

    fn new(config: Config) -> Result<Self, String> {
        Ok(Self {
            settings: Settings::from_config(&config)?,
        })
    }

    fn handle(&self, req: &Request, ctx: &Context) -> Result<Response, Error> {
        let url = self
            .settings
            .target_url(req.query().as_deref(), |key| ctx.get(key));
        let outgoing = http::forward(req, &url).map_err(|e| e.into_client_error())?;
        if let Some(sign) = &self.settings.sign {
            // What the plan has the host do, when a host calls `handle` instead.
            for name in req.header_names() {
                let lower = name.to_ascii_lowercase();
                let passed = sign
                    .pass_headers
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&lower));
                if lower == "authorization" || (lower.starts_with("x-amz-") && !passed) {
                    outgoing.remove_header(&name);
                }
            }
            aws::sign(&outgoing, &sign.service, &sign.region).map_err(|e| {
                wicket_plugin_sdk::warn!("http: cannot sign for AWS: {e}");
                Error::internal()
            })?;
        }
        let timeout = Duration::from_millis(self.settings.timeout_ms.into());
        http::send(outgoing, timeout).map_err(|e| e.into_client_error())
    }
}

export_integration!(HttpIntegration);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(json: &str) -> Result<Settings, String> {
        Settings::from_config(&Config::from_json(json).unwrap())
    }

    fn url(template: &str, query: Option<&str>, params: &[(&str, &str)]) -> String {
        let ctx: HashMap<String, String> = params
            .iter()
            .map(|(k, v)| (format!("param.{k}"), v.to_string()))
            .collect();
        let s = settings(&format!(r#"{{"url": "{template}"}}"#)).unwrap();
        s.target_url(query, |k| ctx.get(k).cloned())
    }

    #[test]
    fn parses_config_with_default_timeout() {
        let s = settings(r#"{"url": "http://127.0.0.1:9000/pets/{id}"}"#).unwrap();
        assert_eq!(s.url, "http://127.0.0.1:9000/pets/{id}");
        assert_eq!(s.timeout_ms, 29_000);
        let s = settings(r#"{"url": "HTTPS://h/", "timeout_ms": 50}"#).unwrap();
        assert_eq!(s.timeout_ms, 50);
    }

    #[test]
    fn rejects_bad_config() {
        let err = settings(r#"{"url": "http://h/", "timeout": 5}"#).unwrap_err();
        assert!(err.contains("unknown field `timeout`"), "{err}");
        assert!(settings("{}").unwrap_err().contains("missing field `url`"));
        assert!(settings(r#"{"url": "ftp://h/"}"#)
            .unwrap_err()
            .contains("http://"));
        assert!(settings(r#"{"url": "http://h/", "timeout_ms": 0}"#).is_err());
        assert!(settings(r#"{"url": "http://h/", "timeout_ms": -1}"#).is_err());
        let s =
            settings(r#"{"url": "http://h/", "sign": {"service": "s3", "region": "us-east-1"}}"#)
                .unwrap();
        assert_eq!(
            s.sign,
            Some(SignSettings {
                service: "s3".into(),
                region: "us-east-1".into(),
                pass_headers: vec![],
            })
        );
        let err =
            settings(r#"{"url": "http://h/", "sign": {"service": "S3", "region": "us-east-1"}}"#)
                .unwrap_err();
        assert!(err.contains("`sign.service`"), "{err}");
        assert!(
            settings(r#"{"url": "http://h/", "sign": {"service": "s3"}}"#)
                .unwrap_err()
                .contains("missing field `region`")
        );
    }

    #[test]
    fn builds_target_urls() {
        assert_eq!(
            url("http://127.0.0.1:9000/pets/{id}", None, &[("id", "7")]),
            "http://127.0.0.1:9000/pets/7"
        );
        assert_eq!(
            url("http://h/pets/{id}", Some("limit=2&x=y"), &[("id", "7")]),
            "http://h/pets/7?limit=2&x=y"
        );
        assert_eq!(
            url("http://h/s?api=1", Some("limit=2"), &[]),
            "http://h/s?api=1&limit=2"
        );
        assert_eq!(
            url(
                "http://h/files/{path+}",
                Some("v=1"),
                &[("path", "a/b%20c/d")]
            ),
            "http://h/files/a/b%20c/d?v=1"
        );
        assert_eq!(url("http://h/static", Some(""), &[]), "http://h/static");
    }
}
