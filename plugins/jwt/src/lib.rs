//! `jwt` filter: admits OAuth2 bearer tokens that are JWTs signed by a trusted issuer, as API
//! Gateway's JWT authorizers do.
//!
//! ```toml
//! [plugins.oauth]
//! builtin = "jwt"
//! config.jwks_url = "https://issuer.example/.well-known/jwks.json"
//! config.issuer = "https://issuer.example/"
//! config.audience = ["pets-api"]
//! config.required_scopes = ["pets:read"]
//! config.claims_to_headers = { sub = "x-user", tenant = "x-tenant" }
//! ```
//!
//! Keys:
//! * `jwks_url`: where the issuer publishes its keys (a JWKS), fetched through the `http`
//!   capability, kept for `jwks_cache_ttl_s` (default 300) and shared with the other instances
//!   through `kv`. A token naming an unknown `kid` makes the set be fetched again, at most once
//!   per `min_refresh_s` (default 30) across all instances (a `counters` window), so a key
//!   rotation is picked up at once and a flood of made-up `kid`s costs one fetch.
//!   `jwks_timeout_ms` (default 1500) and `jwks_max_bytes` (default 150000) bound a fetch.
//!   When a refresh fails, the keys already known are kept.
//! * `jwks`: the key set inline instead (a table `{ keys = [...] }`, or its JSON text).
//! * `hs_secret`: enables HS256 with this shared secret (at least 32 bytes). HS256 is never
//!   verified with a public key, whatever the token says.
//! * `algorithms`: the algorithms accepted, default RS256/384/512, PS256/384/512, ES256,
//!   ES384, EdDSA (and HS256 when `hs_secret` is set). A key whose JWK names an `alg` verifies
//!   that algorithm only; otherwise its type decides. `alg: none` is always refused.
//!
//! Claims: `exp` is required, `exp`/`nbf`/`iat` are checked with `leeway_s` (default 60);
//! `issuer` must equal `iss` and `audience` (a string or a list) must meet `aud`, when set;
//! `required_scopes` must all be in `scope` (space-separated) or `scp`.
//!
//! A missing token gets `401` with `WWW-Authenticate: Bearer`; a malformed, unverifiable,
//! expired or otherwise wrong one `401` with `WWW-Authenticate: Bearer error="invalid_token",
//! error_description="..."`; missing scopes `403` with `error="insufficient_scope"` (RFC 6750).
//! When no keys can be had at all, `503`. An accepted token sets the context keys `principal`
//! (`sub`, else `client_id`), `scopes`, `auth.method` = `jwt`, and `claims_to_headers` copies
//! claims into request headers (a client's own values of those headers are always removed).

mod claims;
mod jws;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use wicket_plugin_sdk::auth::{self, Bearer, BearerError, Identity};
use wicket_plugin_sdk::header::is_header_name;
use wicket_plugin_sdk::{
    counters, export_filter, http, kv, Action, Config, Context, Error, Filter, Request,
};

use claims::{ClaimError, Policy};
use jws::{Alg, Jwk, JwsError, Keys};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// URL of the issuer's JWKS, fetched through http, cached and shared through kv
    #[serde(default)]
    jwks_url: Option<String>,
    /// the JWKS inline instead ({ keys = [...] } or its JSON text)
    #[serde(default)]
    jwks: Option<Value>,
    /// shared secret (>= 32 bytes) enabling HS256; HS256 never uses a public key
    #[serde(default)]
    hs_secret: Option<String>,
    /// required iss claim
    #[serde(default)]
    issuer: Option<String>,
    /// accepted aud value, a string or a list
    #[serde(default)]
    audience: Option<OneOrMany>,
    /// scopes the token must hold (scope or scp claim); missing ones give 403 insufficient_scope
    #[serde(default)]
    required_scopes: Vec<String>,
    /// clock leeway for exp, nbf and iat, default 60
    #[serde(default = "default_leeway_s")]
    leeway_s: u64,
    /// table of claim -> request header set for the integration (client values removed)
    #[serde(default)]
    claims_to_headers: BTreeMap<String, String>,
    /// accepted algorithms, default RS256/384/512 PS256/384/512 ES256 ES384 EdDSA (+HS256 with hs_secret)
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    /// how long a fetched JWKS is used, default 300
    #[serde(default = "default_jwks_cache_ttl_s")]
    jwks_cache_ttl_s: u64,
    /// at most one refetch for an unknown kid per this many seconds, default 30
    #[serde(default = "default_min_refresh_s")]
    min_refresh_s: u64,
    /// time for one JWKS fetch, default 1500
    #[serde(default = "default_jwks_timeout_ms")]
    jwks_timeout_ms: u64,
    /// largest JWKS accepted, default 150000
    #[serde(default = "default_jwks_max_bytes")]
    jwks_max_bytes: usize,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn default_leeway_s() -> u64 {
    60
}
fn default_jwks_cache_ttl_s() -> u64 {
    300
}
fn default_min_refresh_s() -> u64 {
    30
}
fn default_jwks_timeout_ms() -> u64 {
    1500
}
fn default_jwks_max_bytes() -> usize {
    150_000
}

fn invalid(message: impl std::fmt::Display) -> String {
    format!("invalid plugin configuration: {message}")
}

/// Where the keys come from.
#[derive(Debug)]
enum Source {
    Inline(Vec<Jwk>),
    Remote(Remote),
    /// HS256 only.
    None,
}

#[derive(Debug)]
struct Remote {
    url: String,
    ttl_ms: u64,
    min_refresh_ms: u64,
    timeout: Duration,
    max_bytes: usize,
}

/// The keys this instance knows, and when they were fetched (by any instance).
#[derive(Debug, Default)]
struct Cached {
    keys: Vec<Jwk>,
    loaded: bool,
    fetched_at_ms: u64,
    /// No fetch before this time after a failed one (per instance).
    retry_at_ms: u64,
    /// The last refresh for an unknown kid by this instance, when the shared gate is down.
    local_refresh_ms: u64,
}

const KV_JWKS: &str = "jwks";
const COUNTER_REFRESH: &str = "jwks-refresh";
const RETRY_AFTER_FAILURE_MS: u64 = 1000;

struct Jwt {
    policy: Policy,
    allowed: Vec<Alg>,
    hs_secret: Option<Vec<u8>>,
    source: Source,
    claims_to_headers: Vec<(String, String)>,
    cache: RefCell<Cached>,
}

fn now_ms() -> u64 {
    auth::now_unix_ms()
}

impl Jwt {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        let hs_secret = match &s.hs_secret {
            Some(secret) if secret.len() < 32 => {
                return Err(invalid(
                    "`hs_secret` must be at least 32 bytes (HS256 needs a 256-bit key)",
                ))
            }
            other => other.as_ref().map(|s| s.as_bytes().to_vec()),
        };
        let source = match (&s.jwks_url, &s.jwks) {
            (Some(_), Some(_)) => return Err(invalid("set `jwks_url` or `jwks`, not both")),
            (Some(url), None) => {
                let scheme_ok = ["http://", "https://"].iter().any(|p| {
                    url.get(..p.len())
                        .is_some_and(|u| u.eq_ignore_ascii_case(p))
                });
                if !scheme_ok {
                    return Err(invalid(format!(
                        "`jwks_url` must start with http:// or https://, got `{url}`"
                    )));
                }
                if s.jwks_cache_ttl_s == 0 || s.min_refresh_s == 0 {
                    return Err(invalid(
                        "`jwks_cache_ttl_s` and `min_refresh_s` must be positive",
                    ));
                }
                if !(1..=60_000).contains(&s.jwks_timeout_ms) {
                    return Err(invalid("`jwks_timeout_ms` must be from 1 to 60000"));
                }
                Source::Remote(Remote {
                    url: url.clone(),
                    ttl_ms: s.jwks_cache_ttl_s.saturating_mul(1000),
                    min_refresh_ms: s.min_refresh_s.saturating_mul(1000),
                    timeout: Duration::from_millis(s.jwks_timeout_ms),
                    max_bytes: s.jwks_max_bytes,
                })
            }
            (None, Some(jwks)) => {
                let parsed: Value = match jwks {
                    Value::String(text) => serde_json::from_str(text)
                        .map_err(|e| invalid(format!("`jwks` is not valid JSON: {e}")))?,
                    other => other.clone(),
                };
                let (keys, problems) =
                    jws::parse_jwks(&parsed).map_err(|e| invalid(format!("`jwks`: {e}")))?;
                if let Some(p) = problems.first() {
                    return Err(invalid(format!("`jwks`: {p}")));
                }
                if keys.is_empty() {
                    return Err(invalid("`jwks` holds no signature verification key"));
                }
                Source::Inline(keys)
            }
            (None, None) if hs_secret.is_some() => Source::None,
            (None, None) => {
                return Err(invalid(
                    "set `jwks_url` or `jwks` (or `hs_secret` for HS256 tokens)",
                ))
            }
        };
        let allowed = match &s.algorithms {
            None => Alg::ALL
                .into_iter()
                .filter(|a| *a != Alg::HS256 || hs_secret.is_some())
                .filter(|a| *a == Alg::HS256 || !matches!(source, Source::None))
                .collect(),
            Some(names) => {
                let mut out = Vec::new();
                for name in names {
                    let alg = Alg::from_name(name).ok_or_else(|| {
                        let known: Vec<&str> = Alg::ALL.iter().map(|a| a.name()).collect();
                        invalid(format!(
                            "unknown algorithm `{name}` in `algorithms`; known: {}",
                            known.join(", ")
                        ))
                    })?;
                    if alg == Alg::HS256 && hs_secret.is_none() {
                        return Err(invalid(
                            "`algorithms` lists HS256 but `hs_secret` is not set",
                        ));
                    }
                    out.push(alg);
                }
                if out.is_empty() {
                    return Err(invalid("`algorithms` is empty"));
                }
                out
            }
        };
        let audience = match s.audience {
            None => Vec::new(),
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(list)) => {
                if list.is_empty() {
                    return Err(invalid("`audience` is an empty list"));
                }
                list
            }
        };
        if audience.iter().any(String::is_empty) || s.issuer.as_deref() == Some("") {
            return Err(invalid("`issuer` and `audience` may not be empty strings"));
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
        if s.leeway_s > 3600 {
            return Err(invalid("`leeway_s` must be at most 3600"));
        }
        let mut claims_to_headers = Vec::new();
        for (claim, header) in s.claims_to_headers {
            if claim.is_empty() || !is_header_name(&header) {
                return Err(invalid(format!(
                    "`claims_to_headers`: `{claim}` -> `{header}` is not a claim and a header name"
                )));
            }
            claims_to_headers.push((claim, header.to_ascii_lowercase()));
        }
        Ok(Self {
            policy: Policy {
                issuer: s.issuer,
                audience,
                required_scopes: s.required_scopes,
                leeway_s: s.leeway_s,
            },
            allowed,
            hs_secret,
            source,
            claims_to_headers,
            cache: RefCell::new(Cached::default()),
        })
    }

    /// Fetches the JWKS: `(raw JSON text, parsed keys)`.
    fn fetch(remote: &Remote) -> Result<(String, Vec<Jwk>), String> {
        let req = http::OutgoingRequest::new("GET", &remote.url);
        let _ = req.set_header("accept", "application/json");
        let resp = http::send(req, remote.timeout).map_err(|e| e.describe())?;
        if resp.status() != 200 {
            return Err(format!("status {}", resp.status()));
        }
        let body = resp.body();
        if body.len() > remote.max_bytes {
            return Err(format!("{} bytes, more than jwks_max_bytes", body.len()));
        }
        let text = String::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
        let keys = parse_remote(&text)?;
        Ok((text, keys))
    }

    /// Fetches the keys and shares them with the other instances.
    fn refetch(&self, remote: &Remote, cache: &mut Cached, now: u64) -> bool {
        match Self::fetch(remote) {
            Ok((text, keys)) => {
                let record = format!("{now}\n{text}");
                if let Err(e) = kv::set(
                    KV_JWKS,
                    record.as_bytes(),
                    Some(Duration::from_millis(remote.ttl_ms)),
                ) {
                    wicket_plugin_sdk::warn!("jwt: cannot share the key set through kv: {e}");
                }
                wicket_plugin_sdk::info!("jwt: fetched {} key(s) from {}", keys.len(), remote.url);
                cache.keys = keys;
                cache.loaded = true;
                cache.fetched_at_ms = now;
                true
            }
            Err(e) => {
                wicket_plugin_sdk::warn!(
                    "jwt: fetching the key set from {} failed: {e}",
                    remote.url
                );
                cache.retry_at_ms = now + RETRY_AFTER_FAILURE_MS;
                false
            }
        }
    }

    /// The key set another instance stored, if newer than `than_ms`.
    fn shared(&self, than_ms: u64, cache: &mut Cached) -> bool {
        let Ok(Some(record)) = kv::get(KV_JWKS) else {
            return false;
        };
        let record = String::from_utf8_lossy(&record);
        let Some((at, text)) = record.split_once('\n') else {
            return false;
        };
        let Ok(at) = at.parse::<u64>() else {
            return false;
        };
        if cache.loaded && at <= than_ms {
            return false;
        }
        match parse_remote(text) {
            Ok(keys) => {
                cache.keys = keys;
                cache.loaded = true;
                cache.fetched_at_ms = at;
                true
            }
            Err(_) => false,
        }
    }

    /// Makes sure the remote keys are loaded and fresh (stale ones are kept when a refresh
    /// fails). `false` when there are no keys at all.
    fn ensure_keys(&self, remote: &Remote, now: u64) -> bool {
        let mut cache = self.cache.borrow_mut();
        let fresh = |c: &Cached| c.loaded && now < c.fetched_at_ms.saturating_add(remote.ttl_ms);
        if fresh(&cache) {
            return true;
        }
        let than = cache.fetched_at_ms;
        if self.shared(than, &mut cache) && fresh(&cache) {
            return true;
        }
        if now >= cache.retry_at_ms {
            self.refetch(remote, &mut cache, now);
        }
        cache.loaded
    }

    /// A token named a kid we do not know: take a newer set another instance fetched, or
    /// fetch, at most once per `min_refresh_s` across instances. Whether the keys changed.
    fn refresh_for_unknown_kid(&self, remote: &Remote, now: u64) -> bool {
        let mut cache = self.cache.borrow_mut();
        let than = cache.fetched_at_ms;
        if self.shared(than, &mut cache) {
            return true;
        }
        let allowed = match counters::add(
            COUNTER_REFRESH,
            1,
            Duration::from_millis(remote.min_refresh_ms),
        ) {
            Ok(window) => window.count == 1,
            Err(e) => {
                wicket_plugin_sdk::warn!(
                    "jwt: refresh gate unavailable ({e}); using this instance's"
                );
                now >= cache.local_refresh_ms.saturating_add(remote.min_refresh_ms)
            }
        };
        if !allowed {
            return false;
        }
        cache.local_refresh_ms = now;
        self.refetch(remote, &mut cache, now)
    }

    fn verify_signature(&self, token: &jws::Token<'_>, now: u64) -> Result<(), Refusal> {
        let with = |jwks: &[Jwk]| {
            token.verify(&Keys {
                jwks,
                hs_secret: self.hs_secret.as_deref(),
                allowed: &self.allowed,
            })
        };
        match &self.source {
            Source::Inline(keys) => with(keys).map_err(Refusal::from),
            Source::None => with(&[]).map_err(Refusal::from),
            Source::Remote(remote) => {
                if token.alg == Alg::HS256 || !self.allowed.contains(&token.alg) {
                    return with(&[]).map_err(Refusal::from);
                }
                if !self.ensure_keys(remote, now) {
                    return Err(Refusal::Unavailable);
                }
                let first = with(&self.cache.borrow().keys);
                match first {
                    Err(JwsError::UnknownKid(_)) if self.refresh_for_unknown_kid(remote, now) => {
                        with(&self.cache.borrow().keys).map_err(Refusal::from)
                    }
                    other => other.map_err(Refusal::from),
                }
            }
        }
    }

    /// Who the bearer token stands for.
    fn authenticate(
        &self,
        token: &str,
        now_ms: u64,
    ) -> Result<(Identity, serde_json::Map<String, Value>), Refusal> {
        let parsed = jws::parse_token(token)?;
        self.verify_signature(&parsed, now_ms)?;
        let claims: Value = serde_json::from_slice(&parsed.payload)
            .map_err(|_| Refusal::Invalid("malformed token: the claims are not JSON".into()))?;
        let Value::Object(claims) = claims else {
            return Err(Refusal::Invalid(
                "malformed token: the claims are not a JSON object".into(),
            ));
        };
        let subject = self
            .policy
            .check(&claims, now_ms / 1000)
            .map_err(|e| match e {
                ClaimError::Invalid(why) => Refusal::Invalid(why),
                ClaimError::InsufficientScope(needed) => Refusal::InsufficientScope(needed),
            })?;
        let identity = Identity::new("jwt", &subject.principal).scopes(subject.scopes);
        Ok((identity, claims))
    }
}

/// The keys of a fetched JWKS; problems with single keys are logged, a set without any
/// usable key is an error.
fn parse_remote(text: &str) -> Result<Vec<Jwk>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let (keys, problems) = jws::parse_jwks(&value)?;
    for p in &problems {
        wicket_plugin_sdk::warn!("jwt: skipping a key of the fetched set: {p}");
    }
    if keys.is_empty() {
        return Err("the key set holds no signature verification key".into());
    }
    Ok(keys)
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    Missing,
    Invalid(String),
    InsufficientScope(Vec<String>),
    Unavailable,
}

impl From<JwsError> for Refusal {
    fn from(e: JwsError) -> Self {
        Refusal::Invalid(e.describe())
    }
}

/// The text of a claim for a header: strings as they are, anything else as JSON.
fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Filter for Jwt {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("admits OAuth2 bearer JWTs verified against a JWKS (401/403 per RFC 6750); sets principal, scopes")
            .config::<Settings>()
            .capabilities(&["http", "kv", "counters"]).auth()
    }

    /// Headers only, on the way in.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        wicket_plugin_sdk::Plan::default().on_response(false)
    }

    fn new(config: Config) -> Result<Self, String> {
        Jwt::from_config(&config)
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        // Headers filled from claims never come from the client.
        for (_, header) in &self.claims_to_headers {
            req.remove_header(header);
        }
        let outcome = match auth::bearer_token(req) {
            Bearer::Missing => Err(Refusal::Missing),
            Bearer::Malformed => Err(Refusal::Invalid("malformed Authorization header".into())),
            Bearer::Token(token) => self.authenticate(&token, now_ms()),
        };
        match outcome {
            Ok((identity, claims)) => {
                identity.apply(ctx);
                for (claim, header) in &self.claims_to_headers {
                    if let Some(value) = claims.get(claim) {
                        if let Err(e) = req.set_header(header, &claim_text(value)) {
                            wicket_plugin_sdk::warn!(
                                "jwt: claim {claim} cannot go in {header}: {e}"
                            );
                        }
                    }
                }
                Ok(Action::Continue)
            }
            Err(refusal) => Ok(refuse(ctx, &refusal)),
        }
    }
}

fn refuse(ctx: &Context, refusal: &Refusal) -> Action {
    match refusal {
        Refusal::Missing => BearerError::Missing.respond(ctx),
        Refusal::Invalid(why) => {
            wicket_plugin_sdk::debug!("jwt: refused: {why}");
            BearerError::InvalidToken(why.clone()).respond(ctx)
        }
        Refusal::InsufficientScope(needed) => {
            BearerError::InsufficientScope(needed.clone()).respond(ctx)
        }
        Refusal::Unavailable => auth::refuse(ctx, 503, "Service Unavailable", &[]),
    }
}

export_filter!(Jwt);

#[cfg(test)]
mod tests;
