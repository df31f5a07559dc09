//! `introspect` filter: admits opaque OAuth2 bearer tokens by asking the authorization server
//! whether they are active (RFC 7662 token introspection).
//!
//! ```toml
//! [plugins.opaque]
//! builtin = "introspect"
//! config.introspection_url = "https://auth.example/oauth2/introspect"
//! config.client_id = "gateway"
//! config.client_secret = "..."
//! config.required_scopes = ["pets:read"]
//! ```
//!
//! * `introspection_url`, `client_id`, `client_secret` (required): the token is POSTed as
//!   `token=...&token_type_hint=access_token`, the gateway authenticating with HTTP Basic
//!   (`client_secret_basic`).
//! * `cache_ttl_s` (default 60): an answer is kept (in `kv`, shared by every instance) under
//!   the SHA-256 of the token until the token's `exp` or for `cache_ttl_s`, whichever is
//!   sooner; inactive answers for `cache_ttl_s`. Failed calls are not kept.
//! * `timeout_ms` (default 1500): time for one introspection call.
//! * `required_scopes`: scopes the token's `scope` must hold (403 `insufficient_scope`).
//!
//! `active: false`, an expired `exp` and any failure of the call (unreachable, timeout,
//! status other than 200, not JSON) give `401` with `WWW-Authenticate: Bearer
//! error="invalid_token"`; no token gives `401` with `WWW-Authenticate: Bearer`. An active
//! token sets `principal` (`sub`, else `username`, else `client_id`), `scopes` and
//! `auth.method` = `introspect`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wicket_plugin_sdk::auth::{self, Bearer, BearerError, Identity};
use wicket_plugin_sdk::{
    export_filter, http, kv, query, Action, Config, Context, Error, Filter, Request,
};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// the authorization server's introspection endpoint
    introspection_url: String,
    /// the gateway's client id (HTTP Basic to the endpoint)
    client_id: String,
    /// the gateway's client secret
    client_secret: String,
    /// answers are cached per token hash until exp, at most this long, default 60
    #[serde(default = "default_cache_ttl_s")]
    cache_ttl_s: u64,
    /// time for one introspection call, default 1500; a failure gives 401
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    /// scopes the token must hold; missing ones give 403 insufficient_scope
    #[serde(default)]
    required_scopes: Vec<String>,
}

fn default_cache_ttl_s() -> u64 {
    60
}

fn default_timeout_ms() -> u64 {
    1500
}

fn invalid(message: impl std::fmt::Display) -> String {
    format!("invalid plugin configuration: {message}")
}

/// What the authorization server said about a token, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Verdict {
    active: bool,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    exp: Option<u64>,
}

impl Verdict {
    fn inactive() -> Self {
        Verdict {
            active: false,
            principal: String::new(),
            scopes: Vec::new(),
            exp: None,
        }
    }

    /// Reads an introspection response (RFC 7662 §2.2) at `now`. A response without a
    /// boolean `active` is an error; an active token past its `exp` or before its `nbf`, or
    /// without anyone to name, is inactive.
    fn from_response(body: &[u8], now: u64) -> Result<Verdict, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
        let Some(active) = value.get("active").and_then(Value::as_bool) else {
            return Err("the answer has no boolean `active`".into());
        };
        if !active {
            return Ok(Verdict::inactive());
        }
        let time = |name: &str| value.get(name).and_then(Value::as_u64);
        let exp = time("exp");
        if exp.is_some_and(|exp| exp <= now) || time("nbf").is_some_and(|nbf| nbf > now) {
            return Ok(Verdict::inactive());
        }
        let principal = ["sub", "username", "client_id"].iter().find_map(|k| {
            value
                .get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        });
        let Some(principal) = principal else {
            return Ok(Verdict::inactive());
        };
        let scopes = value
            .get("scope")
            .and_then(Value::as_str)
            .map(auth::split_scopes)
            .unwrap_or_default();
        Ok(Verdict {
            active: true,
            principal: principal.to_owned(),
            scopes,
            exp,
        })
    }

    /// How long this verdict may be kept at `now_ms` (milliseconds since the epoch): until
    /// `exp`, at most `ttl_s`.
    fn cache_for(&self, now_ms: u64, ttl_s: u64) -> Option<Duration> {
        let ttl_ms = ttl_s.saturating_mul(1000);
        let ms = match self.exp {
            Some(exp) if self.active => exp.saturating_mul(1000).saturating_sub(now_ms).min(ttl_ms),
            _ => ttl_ms,
        };
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

fn now_ms() -> u64 {
    auth::now_unix_ms()
}

struct Introspect {
    url: String,
    basic: String,
    cache_ttl_s: u64,
    timeout: Duration,
    required_scopes: Vec<String>,
}

impl Introspect {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        let scheme_ok = ["http://", "https://"].iter().any(|p| {
            s.introspection_url
                .get(..p.len())
                .is_some_and(|u| u.eq_ignore_ascii_case(p))
        });
        if !scheme_ok {
            return Err(invalid(format!(
                "`introspection_url` must start with http:// or https://, got `{}`",
                s.introspection_url
            )));
        }
        if s.client_id.is_empty() || s.client_secret.is_empty() {
            return Err(invalid("`client_id` and `client_secret` may not be empty"));
        }
        if s.cache_ttl_s > 86_400 {
            return Err(invalid("`cache_ttl_s` must be at most 86400"));
        }
        if !(1..=60_000).contains(&s.timeout_ms) {
            return Err(invalid("`timeout_ms` must be from 1 to 60000"));
        }
        if let Some(bad) = s
            .required_scopes
            .iter()
            .find(|sc| sc.is_empty() || sc.contains(' '))
        {
            return Err(invalid(format!(
                "`required_scopes` holds `{bad}`, which is not a scope"
            )));
        }
        // RFC 6749 §2.3.1: both parts form-encoded, then Basic.
        let credentials = format!(
            "{}:{}",
            query::encode(&s.client_id),
            query::encode(&s.client_secret)
        );
        Ok(Self {
            url: s.introspection_url,
            basic: format!("Basic {}", auth::base64_encode(credentials.as_bytes())),
            cache_ttl_s: s.cache_ttl_s,
            timeout: Duration::from_millis(s.timeout_ms),
            required_scopes: s.required_scopes,
        })
    }

    /// The form body of the introspection request.
    fn form(token: &str) -> String {
        format!(
            "token={}&token_type_hint=access_token",
            query::encode(token)
        )
    }

    /// Asks the authorization server.
    fn ask(&self, token: &str, now: u64) -> Result<Verdict, String> {
        let req = http::OutgoingRequest::new("POST", &self.url);
        for (name, value) in [
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
            ("authorization", self.basic.as_str()),
        ] {
            req.set_header(name, value)
                .map_err(|e| format!("header {name}: {e}"))?;
        }
        req.set_body(Self::form(token).as_bytes());
        let resp = http::send(req, self.timeout).map_err(|e| e.describe())?;
        if resp.status() != 200 {
            return Err(format!("the server answered {}", resp.status()));
        }
        Verdict::from_response(&resp.body(), now)
    }

    /// The verdict on `token` at `now_ms`: cached, or asked for and cached.
    fn verdict(&self, token: &str, now_ms: u64) -> Result<Verdict, String> {
        let now = now_ms / 1000;
        let key = format!("tok:{}", auth::sha256_hex(token.as_bytes()));
        match kv::get(&key) {
            Ok(Some(bytes)) => {
                if let Ok(v) = serde_json::from_slice::<Verdict>(&bytes) {
                    if !(v.active && v.exp.is_some_and(|exp| exp <= now)) {
                        return Ok(v);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => wicket_plugin_sdk::warn!("introspect: cache unavailable: {e}"),
        }
        let verdict = self.ask(token, now)?;
        if let Some(ttl) = verdict.cache_for(now_ms, self.cache_ttl_s) {
            let bytes = serde_json::to_vec(&verdict).unwrap_or_default();
            if let Err(e) = kv::set(&key, &bytes, Some(ttl)) {
                wicket_plugin_sdk::warn!("introspect: cannot cache: {e}");
            }
        }
        Ok(verdict)
    }

    /// The identity for a verdict, or the refusal.
    fn admit(&self, verdict: Verdict) -> Result<Identity, BearerError> {
        if !verdict.active {
            return Err(BearerError::InvalidToken("the token is not active".into()));
        }
        if !self
            .required_scopes
            .iter()
            .all(|s| verdict.scopes.contains(s))
        {
            return Err(BearerError::InsufficientScope(self.required_scopes.clone()));
        }
        Ok(Identity::new("introspect", &verdict.principal).scopes(verdict.scopes))
    }
}

impl Filter for Introspect {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("admits opaque OAuth2 tokens the authorization server says are active (RFC 7662); sets principal, scopes")
            .config::<Settings>()
            .capabilities(&["http", "kv"]).auth()
    }

    /// Headers only, on the way in.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        wicket_plugin_sdk::Plan::default().on_response(false)
    }

    fn new(config: Config) -> Result<Self, String> {
        Introspect::from_config(&config)
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        let token = match auth::bearer_token(req) {
            Bearer::Missing => return Ok(BearerError::Missing.respond(ctx)),
            Bearer::Malformed => {
                let e = BearerError::InvalidToken("malformed Authorization header".into());
                return Ok(e.respond(ctx));
            }
            Bearer::Token(token) => token,
        };
        let verdict = match self.verdict(&token, now_ms()) {
            Ok(v) => v,
            Err(e) => {
                wicket_plugin_sdk::warn!("introspect: introspection at {} failed: {e}", self.url);
                let e = BearerError::InvalidToken("the token could not be introspected".into());
                return Ok(e.respond(ctx));
            }
        };
        match self.admit(verdict) {
            Ok(identity) => {
                identity.apply(ctx);
                Ok(Action::Continue)
            }
            Err(refusal) => Ok(refusal.respond(ctx)),
        }
    }
}

export_filter!(Introspect);

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn plugin(json: &str) -> Result<Introspect, String> {
        Introspect::from_config(&Config::from_json(json).unwrap())
    }

    fn good() -> Introspect {
        plugin(
            r#"{"introspection_url": "http://idp/introspect", "client_id": "gw", "client_secret": "s3cr:t",
                "required_scopes": ["read"]}"#,
        )
        .unwrap()
    }

    #[test]
    fn reads_introspection_answers() {
        let v = Verdict::from_response(
            br#"{"active": true, "sub": "alice", "scope": "read write", "exp": 1700000100, "client_id": "app"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(
            v,
            Verdict {
                active: true,
                principal: "alice".into(),
                scopes: vec!["read".into(), "write".into()],
                exp: Some(1_700_000_100)
            }
        );
        let v = Verdict::from_response(br#"{"active": true, "username": "bob"}"#, NOW).unwrap();
        assert_eq!((v.principal.as_str(), v.exp), ("bob", None));
        let v = Verdict::from_response(br#"{"active": true, "client_id": "svc"}"#, NOW).unwrap();
        assert_eq!(v.principal, "svc");
        for inactive in [
            r#"{"active": false, "sub": "alice"}"#,
            r#"{"active": true, "sub": "alice", "exp": 1700000000}"#,
            r#"{"active": true, "sub": "alice", "nbf": 1700000001}"#,
            r#"{"active": true}"#,
        ] {
            assert_eq!(
                Verdict::from_response(inactive.as_bytes(), NOW).unwrap(),
                Verdict::inactive(),
                "{inactive}"
            );
        }
        for broken in ["", "[]", r#"{"active": "true"}"#, r#"{"sub": "x"}"#] {
            assert!(
                Verdict::from_response(broken.as_bytes(), NOW).is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn caches_until_exp_or_the_ttl() {
        let v = |exp| Verdict {
            active: true,
            principal: "a".into(),
            scopes: vec![],
            exp,
        };
        let now_ms = NOW * 1000 + 250;
        assert_eq!(
            v(Some(NOW + 10)).cache_for(now_ms, 60),
            Some(Duration::from_millis(9750))
        );
        assert_eq!(
            v(Some(NOW + 100)).cache_for(now_ms, 60),
            Some(Duration::from_secs(60))
        );
        assert_eq!(v(None).cache_for(now_ms, 60), Some(Duration::from_secs(60)));
        assert_eq!(v(Some(NOW)).cache_for(now_ms, 60), None);
        assert_eq!(v(None).cache_for(now_ms, 0), None);
        assert_eq!(
            Verdict::inactive().cache_for(now_ms, 60),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn admits_by_scope() {
        let p = good();
        let active = |scopes: &[&str]| Verdict {
            active: true,
            principal: "alice".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            exp: None,
        };
        assert_eq!(
            p.admit(active(&["read", "x"])).unwrap(),
            Identity::new("introspect", "alice").scopes(vec!["read".into(), "x".into()])
        );
        assert_eq!(
            p.admit(active(&["write"])),
            Err(BearerError::InsufficientScope(vec!["read".into()]))
        );
        assert_eq!(
            p.admit(Verdict::inactive()),
            Err(BearerError::InvalidToken("the token is not active".into()))
        );
    }

    #[test]
    fn builds_the_request() {
        let p = good();
        // "gw:s3cr%3At" in base64.
        assert_eq!(
            p.basic,
            format!("Basic {}", auth::base64_encode(b"gw:s3cr%3At"))
        );
        assert_eq!(
            Introspect::form("a+b/c="),
            "token=a%2Bb%2Fc%3D&token_type_hint=access_token"
        );
        assert_eq!(p.timeout, Duration::from_millis(1500));
        assert_eq!(p.cache_ttl_s, 60);
    }

    #[test]
    fn rejects_bad_config() {
        for (json, needle) in [
            (
                r#"{"client_id": "a", "client_secret": "b"}"#,
                "missing field `introspection_url`",
            ),
            (
                r#"{"introspection_url": "http://x", "client_secret": "b"}"#,
                "missing field `client_id`",
            ),
            (
                r#"{"introspection_url": "ftp://x", "client_id": "a", "client_secret": "b"}"#,
                "http://",
            ),
            (
                r#"{"introspection_url": "http://x", "client_id": "", "client_secret": "b"}"#,
                "may not be empty",
            ),
            (
                r#"{"introspection_url": "http://x", "client_id": "a", "client_secret": "b", "ttl": 1}"#,
                "unknown field `ttl`",
            ),
            (
                r#"{"introspection_url": "http://x", "client_id": "a", "client_secret": "b", "timeout_ms": 0}"#,
                "timeout_ms",
            ),
            (
                r#"{"introspection_url": "http://x", "client_id": "a", "client_secret": "b", "cache_ttl_s": 100000}"#,
                "cache_ttl_s",
            ),
            (
                r#"{"introspection_url": "http://x", "client_id": "a", "client_secret": "b", "required_scopes": [""]}"#,
                "not a scope",
            ),
        ] {
            let err = plugin(json)
                .err()
                .unwrap_or_else(|| panic!("{json} was accepted"));
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
