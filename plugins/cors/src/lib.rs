//! `cors` filter: answers CORS preflight requests itself and adds the CORS headers to the
//! responses of allowed origins.
//!
//! ```toml
//! [plugins.cors]
//! builtin = "cors"
//! config = { allow_origins = ["https://app.example.com", "https://*.example.org"], allow_methods = ["GET", "POST"], allow_headers = ["content-type", "authorization"], expose_headers = ["x-request-id"], allow_credentials = true, max_age = 600 }
//! ```
//!
//! * `allow_origins` (required): origins allowed, each `scheme://host[:port]` exactly as
//!   browsers send it (compared case-insensitively), `scheme://*.domain[:port]` for any
//!   subdomain of `domain` at any depth (not `domain` itself), or `"*"` for every origin.
//! * `allow_methods` (default GET, HEAD, POST, PUT, PATCH, DELETE): methods a preflight may ask
//!   for; `"*"` allows any.
//! * `allow_headers` (default none): request headers a preflight may ask for (case-insensitive);
//!   `"*"` allows any (the requested list is echoed back).
//! * `expose_headers` (default none): response headers scripts may read
//!   (`Access-Control-Expose-Headers`).
//! * `allow_credentials` (default false): send `Access-Control-Allow-Credentials: true`. Not
//!   allowed together with the origin `"*"`: reflecting every origin with credentials would hand
//!   any site the user's session.
//! * `max_age` (seconds, default unset): how long browsers may cache a preflight answer.
//!
//! A preflight is an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`
//! (the route must accept `OPTIONS`). It never reaches the integration: an allowed one is
//! answered `204` with the `Access-Control-Allow-*` headers, a refused one (origin, method or a
//! header not allowed) `403` without any CORS header. On other requests, the response of an
//! allowed origin gets `Access-Control-Allow-Origin` (the origin itself, or `*` when every
//! origin is allowed without credentials), `-Allow-Credentials` and `-Expose-Headers`; the
//! response to a disallowed origin gets no CORS header (any the upstream set are removed).
//! Responses that depend on the origin carry `Vary: Origin`.

use serde::Deserialize;
use wicket_plugin_sdk::header::{is_header_name, list_contains, list_items};
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request, Response};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// ["https://app.example.com", "https://*.example.com" (any subdomain), or "*"]; other origins get no CORS headers
    allow_origins: Vec<String>,
    /// methods a preflight may ask for, default [GET, HEAD, POST, PUT, PATCH, DELETE]; "*" allows any
    #[serde(default = "default_methods")]
    allow_methods: Vec<String>,
    /// request headers a preflight may ask for, default none; "*" allows any
    #[serde(default)]
    allow_headers: Vec<String>,
    /// response headers scripts may read (Access-Control-Expose-Headers)
    #[serde(default)]
    expose_headers: Vec<String>,
    /// send Access-Control-Allow-Credentials: true, default false; not with the origin "*"
    #[serde(default)]
    allow_credentials: bool,
    /// seconds browsers may cache a preflight answer (Access-Control-Max-Age)
    #[serde(default)]
    max_age: Option<u32>,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}

/// One entry of `allow_origins`.
#[derive(Debug, PartialEq)]
enum OriginRule {
    Any,
    /// An exact origin, lower case.
    Exact(String),
    /// `scheme://*.suffix`: `scheme` and `suffix` (host and optional port) lower case.
    Subdomains {
        scheme: String,
        suffix: String,
    },
}

impl OriginRule {
    fn parse(rule: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "invalid plugin configuration: `allow_origins` entry `{rule}` {why}"
            ))
        };
        if rule == "*" {
            return Ok(OriginRule::Any);
        }
        let lower = rule.to_ascii_lowercase();
        if lower == "null" {
            return Ok(OriginRule::Exact(lower));
        }
        let Some((scheme, rest)) = lower.split_once("://") else {
            return bad("must be `scheme://host[:port]`, `scheme://*.domain` or `*`");
        };
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return bad("has an invalid scheme");
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return bad(
                "must not have a path, query or user (an origin is `scheme://host[:port]`)",
            );
        }
        match rest.strip_prefix("*.") {
            Some(suffix) => {
                if suffix.is_empty() || suffix.contains('*') || suffix.starts_with('.') {
                    return bad("must put `*.` before a domain, e.g. `https://*.example.com`");
                }
                Ok(OriginRule::Subdomains {
                    scheme: scheme.to_owned(),
                    suffix: suffix.to_owned(),
                })
            }
            None if rest.contains('*') => {
                bad("may only use `*` as the first label, e.g. `https://*.example.com`")
            }
            None => Ok(OriginRule::Exact(lower)),
        }
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginRule::Any => true,
            OriginRule::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            OriginRule::Subdomains { scheme, suffix } => {
                let origin = origin.to_ascii_lowercase();
                let Some(rest) = origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|r| r.strip_prefix("://"))
                else {
                    return false;
                };
                let Some(labels) = rest
                    .strip_suffix(suffix.as_str())
                    .and_then(|r| r.strip_suffix('.'))
                else {
                    return false;
                };
                !labels.is_empty()
                    && !labels.starts_with('.')
                    && labels
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            }
        }
    }
}

/// The filter: settings checked and prepared once per instance.
#[derive(Debug)]
struct Cors {
    origins: Vec<OriginRule>,
    any_origin: bool,
    methods: Vec<String>,
    any_method: bool,
    headers: Vec<String>,
    any_header: bool,
    expose: Option<String>,
    credentials: bool,
    max_age: Option<String>,
}

/// What a preflight gets.
#[derive(Debug, PartialEq)]
enum Preflight {
    /// Answer 204 with these headers.
    Allow(Vec<(&'static str, String)>),
    /// Answer 403: why (for the log).
    Refuse(String),
}

impl Cors {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        if s.allow_origins.is_empty() {
            return Err(
                "invalid plugin configuration: `allow_origins` must list at least one origin"
                    .to_owned(),
            );
        }
        let origins = s
            .allow_origins
            .iter()
            .map(|o| OriginRule::parse(o))
            .collect::<Result<Vec<_>, _>>()?;
        let any_origin = origins.contains(&OriginRule::Any);
        if any_origin && s.allow_credentials {
            return Err("invalid plugin configuration: `allow_credentials = true` cannot be combined with the origin \"*\"; list the origins".to_owned());
        }
        for m in &s.allow_methods {
            if m != "*" && (!is_header_name(m) || m.bytes().any(|b| b.is_ascii_lowercase())) {
                return Err(format!("invalid plugin configuration: `allow_methods` entry `{m}` is not an upper-case method name"));
            }
        }
        for (key, list) in [
            ("allow_headers", &s.allow_headers),
            ("expose_headers", &s.expose_headers),
        ] {
            for h in list.iter().filter(|h| *h != "*") {
                if !is_header_name(h) {
                    return Err(format!(
                        "invalid plugin configuration: `{key}` entry `{h}` is not a header name"
                    ));
                }
            }
        }
        if s.expose_headers.iter().any(|h| h == "*") && s.allow_credentials {
            return Err("invalid plugin configuration: `expose_headers = [\"*\"]` means nothing to browsers with credentials; list the headers".to_owned());
        }
        let any_method = s.allow_methods.iter().any(|m| m == "*");
        let any_header = s.allow_headers.iter().any(|h| h == "*");
        Ok(Self {
            origins,
            any_origin,
            methods: s.allow_methods,
            any_method,
            headers: s
                .allow_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            any_header,
            expose: (!s.expose_headers.is_empty()).then(|| s.expose_headers.join(", ")),
            credentials: s.allow_credentials,
            max_age: s.max_age.map(|n| n.to_string()),
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|rule| rule.matches(origin))
    }

    /// Whether responses differ by origin (so caches must key on it).
    fn varies_by_origin(&self) -> bool {
        !self.any_origin || self.credentials
    }

    fn allow_origin_value(&self, origin: &str) -> String {
        if self.varies_by_origin() {
            origin.to_owned()
        } else {
            "*".to_owned()
        }
    }

    /// The answer to a preflight from `origin` asking for `method` and `requested` headers
    /// (the values of `Access-Control-Request-Headers`).
    fn preflight(&self, origin: &str, method: &str, requested: &[String]) -> Preflight {
        if !self.origin_allowed(origin) {
            return Preflight::Refuse(format!("origin `{origin}` is not allowed"));
        }
        if !self.any_method && !self.methods.iter().any(|m| m == method) {
            return Preflight::Refuse(format!("method `{method}` is not allowed"));
        }
        let asked = list_items(requested.iter().map(String::as_str));
        if !self.any_header {
            if let Some(h) = asked
                .iter()
                .find(|h| !self.headers.iter().any(|a| a.eq_ignore_ascii_case(h)))
            {
                return Preflight::Refuse(format!("header `{h}` is not allowed"));
            }
        }
        let mut headers = vec![(
            "access-control-allow-origin",
            self.allow_origin_value(origin),
        )];
        if self.credentials {
            headers.push(("access-control-allow-credentials", "true".to_owned()));
        }
        let methods = if self.any_method {
            method.to_owned()
        } else {
            self.methods.join(", ")
        };
        headers.push(("access-control-allow-methods", methods));
        let allowed_headers = if self.any_header {
            asked.join(", ")
        } else {
            self.headers.join(", ")
        };
        if !allowed_headers.is_empty() {
            headers.push(("access-control-allow-headers", allowed_headers));
        }
        if let Some(age) = &self.max_age {
            headers.push(("access-control-max-age", age.clone()));
        }
        let mut vary = Vec::new();
        if self.varies_by_origin() {
            vary.push("Origin");
        }
        if self.any_method {
            vary.push("Access-Control-Request-Method");
        }
        if self.any_header {
            vary.push("Access-Control-Request-Headers");
        }
        if !vary.is_empty() {
            headers.push(("vary", vary.join(", ")));
        }
        Preflight::Allow(headers)
    }

    /// The CORS headers for the response to an ordinary request from `origin`; `None` when
    /// the origin is not allowed.
    fn actual(&self, origin: &str) -> Option<Vec<(&'static str, String)>> {
        if !self.origin_allowed(origin) {
            return None;
        }
        let mut headers = vec![(
            "access-control-allow-origin",
            self.allow_origin_value(origin),
        )];
        if self.credentials {
            headers.push(("access-control-allow-credentials", "true".to_owned()));
        }
        if let Some(expose) = &self.expose {
            headers.push(("access-control-expose-headers", expose.clone()));
        }
        Some(headers)
    }
}

/// Every `Access-Control-*` response header.
const CORS_RESPONSE_HEADERS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
];

fn set_headers(resp: &Response, headers: &[(&str, String)]) -> Result<(), Error> {
    for (name, value) in headers {
        if *name == "vary" {
            add_vary(resp, value)?;
        } else if let Err(e) = resp.set_header(name, value) {
            wicket_plugin_sdk::error!("cors: cannot set `{name}` to `{value}`: {e}");
            return Err(Error::internal());
        }
    }
    Ok(())
}

/// Adds the comma-separated `items` to the response's `Vary`, skipping those already there.
fn add_vary(resp: &Response, items: &str) -> Result<(), Error> {
    let present = resp.header_values("vary");
    for item in list_items([items]) {
        if !list_contains(present.iter().map(String::as_str), item) {
            if let Err(e) = resp.append_header("vary", item) {
                wicket_plugin_sdk::error!("cors: cannot add `{item}` to Vary: {e}");
                return Err(Error::internal());
            }
        }
    }
    Ok(())
}

impl Filter for Cors {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("answers CORS preflights (204, or 403 for a refused one) and adds CORS headers to responses of allowed origins")
            .config::<Settings>()
    }

    fn new(config: Config) -> Result<Self, String> {
        Cors::from_config(&config)
    }

    fn on_request(&self, req: &Request, _ctx: &Context) -> Result<Action, Error> {
        if req.method() != "OPTIONS" {
            return Ok(Action::Continue);
        }
        let (Some(origin), Some(method)) = (
            req.header("origin"),
            req.header("access-control-request-method"),
        ) else {
            // A plain OPTIONS request, not a preflight: the integration answers it.
            return Ok(Action::Continue);
        };
        let requested = req.header_values("access-control-request-headers");
        match self.preflight(&origin, method.trim(), &requested) {
            Preflight::Allow(headers) => {
                let resp = Response::new(204);
                set_headers(&resp, &headers)?;
                Ok(Action::Respond(resp))
            }
            Preflight::Refuse(why) => {
                wicket_plugin_sdk::info!("cors: preflight refused: {why}");
                Err(Error::forbidden("CORS preflight refused"))
            }
        }
    }

    fn on_response(&self, req: &Request, resp: &Response, _ctx: &Context) -> Result<(), Error> {
        let is_preflight = req.method() == "OPTIONS"
            && req.header("origin").is_some()
            && req.header("access-control-request-method").is_some();
        if is_preflight {
            // Our own answer from `on_request` (a refused preflight never gets here).
            return Ok(());
        }
        let origin = req.header("origin");
        let cors = origin.as_deref().and_then(|o| self.actual(o));
        match cors {
            Some(headers) => {
                for name in CORS_RESPONSE_HEADERS {
                    resp.remove_header(name);
                }
                set_headers(resp, &headers)?;
            }
            None => {
                for name in CORS_RESPONSE_HEADERS {
                    resp.remove_header(name);
                }
            }
        }
        if self.varies_by_origin() {
            add_vary(resp, "Origin")?;
        }
        Ok(())
    }
}

export_filter!(Cors);

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(json: &str) -> Result<Cors, String> {
        Cors::from_config(&Config::from_json(json).unwrap())
    }

    fn header<'a>(headers: &'a [(&str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn origin_rules() {
        let c = cors(r#"{"allow_origins": ["https://App.example.com", "https://*.example.org", "http://*.local.test:8080", "null"]}"#).unwrap();
        assert!(c.origin_allowed("https://app.example.com"));
        assert!(c.origin_allowed("HTTPS://APP.EXAMPLE.COM"));
        assert!(!c.origin_allowed("http://app.example.com"));
        assert!(!c.origin_allowed("https://app.example.com:444"));
        assert!(!c.origin_allowed("https://app.example.com.evil.test"));
        assert!(c.origin_allowed("https://a.example.org"));
        assert!(c.origin_allowed("https://a.b-c.example.org"));
        assert!(!c.origin_allowed("https://example.org"));
        assert!(!c.origin_allowed("https://evilexample.org"));
        assert!(!c.origin_allowed("https://.example.org"));
        assert!(!c.origin_allowed("https://a.example.org:443"));
        assert!(!c.origin_allowed("https://a@b.example.org"));
        assert!(!c.origin_allowed("http://a.example.org"));
        assert!(c.origin_allowed("http://x.local.test:8080"));
        assert!(!c.origin_allowed("http://x.local.test"));
        assert!(c.origin_allowed("null"));
        assert!(!c.origin_allowed(""));
    }

    #[test]
    fn rejects_bad_config() {
        for (json, needle) in [
            (r#"{}"#, "missing field `allow_origins`"),
            (r#"{"allow_origins": []}"#, "at least one"),
            (r#"{"allow_origins": ["example.com"]}"#, "scheme://"),
            (r#"{"allow_origins": ["https://example.com/"]}"#, "path"),
            (
                r#"{"allow_origins": ["https://a.*.example.com"]}"#,
                "first label",
            ),
            (r#"{"allow_origins": ["https://*."]}"#, "before a domain"),
            (
                r#"{"allow_origins": ["*"], "allow_credentials": true}"#,
                "cannot be combined",
            ),
            (
                r#"{"allow_origins": ["*"], "allow_methods": ["get"]}"#,
                "upper-case",
            ),
            (
                r#"{"allow_origins": ["*"], "allow_headers": ["a b"]}"#,
                "not a header name",
            ),
            (
                r#"{"allow_origins": ["*"], "max_age": -1}"#,
                "invalid value",
            ),
            (
                r#"{"allow_origins": ["*"], "origins": []}"#,
                "unknown field `origins`",
            ),
        ] {
            let err = cors(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn preflight_allowed() {
        let c = cors(r#"{"allow_origins": ["https://app.example.com"], "allow_methods": ["GET", "PUT"], "allow_headers": ["Content-Type", "x-api-key"], "allow_credentials": true, "max_age": 600}"#).unwrap();
        let Preflight::Allow(h) = c.preflight(
            "https://app.example.com",
            "PUT",
            &["content-type, X-API-Key".to_owned()],
        ) else {
            panic!("refused")
        };
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(header(&h, "access-control-allow-methods"), Some("GET, PUT"));
        assert_eq!(
            header(&h, "access-control-allow-headers"),
            Some("content-type, x-api-key")
        );
        assert_eq!(header(&h, "access-control-max-age"), Some("600"));
        assert_eq!(header(&h, "vary"), Some("Origin"));
    }

    #[test]
    fn preflight_refused() {
        let c = cors(r#"{"allow_origins": ["https://app.example.com"], "allow_methods": ["GET"], "allow_headers": ["content-type"]}"#).unwrap();
        assert!(
            matches!(c.preflight("https://evil.test", "GET", &[]), Preflight::Refuse(w) if w.contains("origin"))
        );
        assert!(
            matches!(c.preflight("https://app.example.com", "DELETE", &[]), Preflight::Refuse(w) if w.contains("DELETE"))
        );
        assert!(
            matches!(c.preflight("https://app.example.com", "GET", &["x-secret".into()]), Preflight::Refuse(w) if w.contains("x-secret"))
        );
    }

    #[test]
    fn wildcards_reflect_requests() {
        let c = cors(r#"{"allow_origins": ["*"], "allow_methods": ["*"], "allow_headers": ["*"]}"#)
            .unwrap();
        let Preflight::Allow(h) =
            c.preflight("https://x.test", "PURGE", &["x-a".into(), "x-b".into()])
        else {
            panic!("refused")
        };
        assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&h, "access-control-allow-methods"), Some("PURGE"));
        assert_eq!(header(&h, "access-control-allow-headers"), Some("x-a, x-b"));
        assert_eq!(header(&h, "access-control-allow-credentials"), None);
        assert_eq!(
            header(&h, "vary"),
            Some("Access-Control-Request-Method, Access-Control-Request-Headers")
        );
        assert!(!c.varies_by_origin());
    }

    #[test]
    fn actual_requests() {
        let c = cors(r#"{"allow_origins": ["https://*.example.com"], "expose_headers": ["x-request-id", "x-total"]}"#).unwrap();
        let h = c.actual("https://a.example.com").unwrap();
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some("https://a.example.com")
        );
        assert_eq!(
            header(&h, "access-control-expose-headers"),
            Some("x-request-id, x-total")
        );
        assert_eq!(header(&h, "access-control-allow-credentials"), None);
        assert!(c.actual("https://example.com").is_none());
        assert!(c.varies_by_origin());
    }
}
