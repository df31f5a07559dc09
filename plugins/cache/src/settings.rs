//! The `config` table, parsed and validated.

use serde::Deserialize;
use wicket_plugin_sdk::header::is_header_name;
use wicket_plugin_sdk::rule::ContextRule;
use wicket_plugin_sdk::source::Source;
use wicket_plugin_sdk::Config;

pub const MAX_TTL_S: u64 = 3600;
pub const MAX_ENTRY_BYTES: u64 = 16 << 20;
const MAX_WAIT_MS: u64 = 10_000;
const MAX_SETTLE_MS: u64 = 100;

#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raw {
    /// seconds an entry lives, 1 to 3600, default 300 (less when the response's s-maxage/max-age says so)
    #[serde(default = "default_ttl")]
    ttl_s: u64,
    /// methods cached, default [GET, HEAD] (GET, HEAD, OPTIONS only)
    #[serde(default = "default_methods")]
    methods: Vec<String>,
    /// response statuses stored, default [200]
    #[serde(default = "default_statuses")]
    statuses: Vec<u16>,
    /// query parameters that are part of the key (others are ignored), or ["*"] for the whole query
    #[serde(default)]
    key_query: Vec<String>,
    /// request headers that are part of the key; a response that Varies on another header is not stored
    #[serde(default)]
    key_headers: Vec<String>,
    /// one entry per caller (context principal), default false
    #[serde(default)]
    key_principal: bool,
    /// larger entries (status, headers, body) are not stored, default 1048576, at most 16 MiB
    #[serde(default = "default_max_entry")]
    max_entry_bytes: u64,
    /// who may refresh an entry with Cache-Control: max-age=0: false (default), true, or { scopes, principals, usage_plans, context }
    #[serde(default)]
    invalidation: ContextRule,
    /// concurrent misses wait for one fetch: { wait_ms = 40, settle_ms = 5 } (default), or false; waiting counts towards cpu_ms
    #[serde(default)]
    coalesce: Option<RawCoalesce>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCoalesce {
    Flag(bool),
    Table(CoalesceTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoalesceTable {
    #[serde(default = "default_wait")]
    wait_ms: u64,
    #[serde(default = "default_settle")]
    settle_ms: u64,
}

fn default_ttl() -> u64 {
    300
}
fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}
fn default_statuses() -> Vec<u16> {
    vec![200]
}
fn default_max_entry() -> u64 {
    1 << 20
}
fn default_wait() -> u64 {
    40
}
fn default_settle() -> u64 {
    5
}

/// How concurrent misses of one key wait for the first one (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalesce {
    /// How long a request waits for another's fetch before fetching itself.
    pub wait_ms: u64,
    /// How long a would-be fetcher waits after claiming the key before checking that its
    /// claim stood.
    pub settle_ms: u64,
}

/// Which query parameters are part of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyQuery {
    /// These, in this order.
    Named(Vec<Source>),
    /// The whole query string, order of parameters ignored.
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub ttl_s: u64,
    pub methods: Vec<String>,
    pub statuses: Vec<u16>,
    pub key_query: KeyQuery,
    pub key_headers: Vec<Source>,
    /// Lower-case names of `key_headers`, for checking `Vary`.
    pub key_header_names: Vec<String>,
    pub key_principal: bool,
    pub max_entry_bytes: u64,
    pub invalidation: ContextRule,
    pub coalesce: Option<Coalesce>,
}

fn invalid(message: String) -> String {
    format!("invalid plugin configuration: {message}")
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, String> {
        let raw: Raw = config.parse()?;
        if !(1..=MAX_TTL_S).contains(&raw.ttl_s) {
            return Err(invalid(format!(
                "`ttl_s` must be from 1 to {MAX_TTL_S} seconds, got {}",
                raw.ttl_s
            )));
        }
        if raw.methods.is_empty() {
            return Err(invalid(
                "`methods` is empty: nothing would be cached".into(),
            ));
        }
        let mut methods = Vec::new();
        for m in &raw.methods {
            let upper = m.to_ascii_uppercase();
            if !matches!(upper.as_str(), "GET" | "HEAD" | "OPTIONS") {
                return Err(invalid(format!(
                    "`methods`: `{m}` cannot be cached (its body is not part of the key); use GET, HEAD or OPTIONS"
                )));
            }
            if !methods.contains(&upper) {
                methods.push(upper);
            }
        }
        if raw.statuses.is_empty() {
            return Err(invalid(
                "`statuses` is empty: nothing would be cached".into(),
            ));
        }
        if let Some(s) = raw.statuses.iter().find(|s| !(200..=599).contains(*s)) {
            return Err(invalid(format!(
                "`statuses`: {s} is not a final status (200 to 599)"
            )));
        }
        let key_query = if raw.key_query.iter().any(|q| q == "*") {
            if raw.key_query.len() > 1 {
                return Err(invalid(
                    "`key_query`: \"*\" (the whole query) cannot be combined with names".into(),
                ));
            }
            KeyQuery::All
        } else {
            let mut names = Vec::new();
            for q in &raw.key_query {
                if q.is_empty() {
                    return Err(invalid("`key_query` has an empty name".into()));
                }
                names.push(Source::Query(q.clone()));
            }
            KeyQuery::Named(names)
        };
        let mut key_headers = Vec::new();
        let mut key_header_names = Vec::new();
        for h in &raw.key_headers {
            if !is_header_name(h) {
                return Err(invalid(format!(
                    "`key_headers`: `{h}` is not a header name"
                )));
            }
            let lower = h.to_ascii_lowercase();
            key_headers.push(Source::Header(lower.clone()));
            key_header_names.push(lower);
        }
        if !(1..=MAX_ENTRY_BYTES).contains(&raw.max_entry_bytes) {
            return Err(invalid(format!(
                "`max_entry_bytes` must be from 1 to {MAX_ENTRY_BYTES}, got {}",
                raw.max_entry_bytes
            )));
        }
        let coalesce = match raw.coalesce {
            None | Some(RawCoalesce::Flag(true)) => Some(Coalesce {
                wait_ms: default_wait(),
                settle_ms: default_settle(),
            }),
            Some(RawCoalesce::Flag(false)) => None,
            Some(RawCoalesce::Table(t)) => {
                if !(1..=MAX_WAIT_MS).contains(&t.wait_ms) {
                    return Err(invalid(format!(
                        "`coalesce.wait_ms` must be from 1 to {MAX_WAIT_MS}, got {}",
                        t.wait_ms
                    )));
                }
                if t.settle_ms > MAX_SETTLE_MS {
                    return Err(invalid(format!(
                        "`coalesce.settle_ms` must be at most {MAX_SETTLE_MS}, got {}",
                        t.settle_ms
                    )));
                }
                Some(Coalesce {
                    wait_ms: t.wait_ms,
                    settle_ms: t.settle_ms,
                })
            }
        };
        Ok(Settings {
            ttl_s: raw.ttl_s,
            methods,
            statuses: raw.statuses,
            key_query,
            key_headers,
            key_header_names,
            key_principal: raw.key_principal,
            max_entry_bytes: raw.max_entry_bytes,
            invalidation: raw.invalidation,
            coalesce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, String> {
        Settings::from_config(&Config::from_json(json).unwrap())
    }

    #[test]
    fn defaults() {
        let s = settings("{}").unwrap();
        assert_eq!(s.ttl_s, 300);
        assert_eq!(s.methods, ["GET", "HEAD"]);
        assert_eq!(s.statuses, [200]);
        assert_eq!(s.key_query, KeyQuery::Named(vec![]));
        assert!(s.key_headers.is_empty() && !s.key_principal);
        assert_eq!(s.max_entry_bytes, 1 << 20);
        assert_eq!(s.invalidation, ContextRule::Never);
        assert_eq!(
            s.coalesce,
            Some(Coalesce {
                wait_ms: 40,
                settle_ms: 5
            })
        );
    }

    #[test]
    fn everything_set() {
        let s = settings(
            r#"{"ttl_s": 3600, "methods": ["get"], "statuses": [200, 404], "key_query": ["page", "size"],
                "key_headers": ["Accept-Language"], "key_principal": true, "max_entry_bytes": 1000,
                "invalidation": {"scopes": ["cache:invalidate"]}, "coalesce": {"wait_ms": 500, "settle_ms": 20}}"#,
        )
        .unwrap();
        assert_eq!(s.methods, ["GET"]);
        assert_eq!(
            s.key_query,
            KeyQuery::Named(vec![
                Source::Query("page".into()),
                Source::Query("size".into())
            ])
        );
        assert_eq!(s.key_header_names, ["accept-language"]);
        assert!(matches!(s.invalidation, ContextRule::Conditions(_)));
        assert_eq!(s.coalesce.unwrap().wait_ms, 500);
        assert_eq!(
            settings(r#"{"key_query": ["*"]}"#).unwrap().key_query,
            KeyQuery::All
        );
        assert_eq!(settings(r#"{"coalesce": false}"#).unwrap().coalesce, None);
        assert_eq!(
            settings(r#"{"invalidation": true}"#).unwrap().invalidation,
            ContextRule::Always
        );
    }

    #[test]
    fn rejects_bad_config() {
        let err = |json: &str| settings(json).unwrap_err();
        assert!(err(r#"{"ttl_s": 3601}"#).contains("`ttl_s` must be from 1 to 3600"));
        assert!(err(r#"{"ttl_s": 0}"#).contains("`ttl_s`"));
        assert!(err(r#"{"ttl_s": -5}"#).contains("invalid plugin configuration"));
        assert!(err(r#"{"ttl": 5}"#).contains("unknown field `ttl`"));
        assert!(err(r#"{"methods": ["POST"]}"#).contains("cannot be cached"));
        assert!(err(r#"{"methods": []}"#).contains("empty"));
        assert!(err(r#"{"statuses": [100]}"#).contains("not a final status"));
        assert!(err(r#"{"key_query": ["*", "a"]}"#).contains("cannot be combined"));
        assert!(err(r#"{"key_headers": ["a b"]}"#).contains("not a header name"));
        assert!(err(r#"{"max_entry_bytes": 0}"#).contains("`max_entry_bytes`"));
        assert!(err(r#"{"invalidation": {}}"#).contains("matches everyone"));
        assert!(err(r#"{"invalidation": {"scope": "x"}}"#).contains("unknown field"));
        assert!(err(r#"{"coalesce": {"wait_ms": 0}}"#).contains("`coalesce.wait_ms`"));
        assert!(err(r#"{"coalesce": {"settle_ms": 1000}}"#).contains("`coalesce.settle_ms`"));
        assert!(err(r#"{"coalesce": {"wait": 10}}"#).contains("invalid plugin configuration"));
    }
}
