//! The `config` table, parsed and validated into [`Limits`].

use std::collections::BTreeMap;

use serde::Deserialize;
use wicket_plugin_sdk::source::{Source, Sources};
use wicket_plugin_sdk::Config;

use crate::period::Period;

/// Largest accepted `rate` (tokens per second) and `burst`.
const MAX_RATE: f64 = 1e9;
const MAX_BURST: u64 = 1 << 40;

#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// whose requests count together: principal, usage_plan, client_ip (default), route, header:NAME, query:NAME, context:KEY, or a list of these
    by: Option<Sources>,
    /// token bucket refill, requests per second
    rate: Option<f64>,
    /// token bucket size, default the rate rounded up
    burst: Option<u64>,
    /// { limit = 10000, period = "day" } (minute, hour, day, week, month; UTC calendar periods, weeks start Monday), or a list of them
    quota: Option<Quotas>,
    /// { gold = { rate = 100, burst = 200, quota = {...} } }: replaces rate/burst/quota for callers whose usage_plan is listed
    #[serde(default)]
    plans: BTreeMap<String, PolicySettings>,
    /// further limits, all enforced: [{ name, by, rate, burst, quota, plans }]
    #[serde(default)]
    limits: Vec<LimitSettings>,
    /// when the state backend fails: "local" (default; same limits in each plugin instance's memory), "allow", or "deny" (503)
    #[serde(default)]
    on_backend_error: OnBackendError,
    /// add RateLimit-Limit/-Remaining/-Reset to admitted responses, default true
    #[serde(default = "yes")]
    headers: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitSettings {
    name: Option<String>,
    by: Option<Sources>,
    rate: Option<f64>,
    burst: Option<u64>,
    quota: Option<Quotas>,
    #[serde(default)]
    plans: BTreeMap<String, PolicySettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySettings {
    rate: Option<f64>,
    burst: Option<u64>,
    quota: Option<Quotas>,
}

/// `quota = { ... }` or `quota = [{ ... }, ...]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Quotas {
    One(QuotaSettings),
    Many(Vec<QuotaSettings>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaSettings {
    limit: u64,
    period: Period,
}

/// What a request gets when the state backend fails (Redis down or slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBackendError {
    /// Admit it (fail open), without RateLimit headers.
    Allow,
    /// Refuse it: 503 with `Retry-After: 1` (fail closed).
    Deny,
    /// Enforce the same limits in this plugin instance's memory until the backend answers
    /// again: an outage is not "unlimited", but the limit then holds per instance.
    #[default]
    Local,
}

/// A token bucket: `rate` tokens per second, at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub rate: f64,
    pub burst: u64,
}

/// At most `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: Period,
}

/// What one caller is allowed under one limit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub bucket: Option<Bucket>,
    pub quotas: Vec<Quota>,
}

/// One limit: whose requests it counts together (`by`) and how many it admits, by default and
/// per usage plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Part of every state key of this limit.
    pub id: String,
    pub by: Vec<Source>,
    /// For callers without a usage plan listed in `plans`.
    pub default: Option<Policy>,
    pub plans: BTreeMap<String, Policy>,
}

impl Limit {
    /// The policy for a caller on `plan`, and the plan name to key it by (`None`: default).
    pub fn policy(&self, plan: Option<&str>) -> Option<(Option<&str>, &Policy)> {
        if let Some((name, policy)) = plan.and_then(|p| self.plans.get_key_value(p)) {
            return Some((Some(name.as_str()), policy));
        }
        self.default.as_ref().map(|p| (None, p))
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub limits: Vec<Limit>,
    pub on_backend_error: OnBackendError,
    pub headers: bool,
}

fn invalid(message: String) -> String {
    format!("invalid plugin configuration: {message}")
}

fn policy(
    at: &str,
    rate: Option<f64>,
    burst: Option<u64>,
    quota: Option<Quotas>,
) -> Result<Option<Policy>, String> {
    let bucket = match (rate, burst) {
        (None, None) => None,
        (None, Some(_)) => return Err(invalid(format!("`{at}burst` needs a `{at}rate`"))),
        (Some(rate), burst) => {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                return Err(invalid(format!(
                    "`{at}rate` must be a number of requests per second above 0 (at most 1e9), got {rate}"
                )));
            }
            let burst = burst.unwrap_or((rate.ceil() as u64).max(1));
            if !(1..=MAX_BURST).contains(&burst) {
                return Err(invalid(format!(
                    "`{at}burst` must be from 1 to {MAX_BURST}, got {burst}"
                )));
            }
            Some(Bucket { rate, burst })
        }
    };
    let quotas = match quota {
        None => Vec::new(),
        Some(Quotas::One(q)) => vec![q],
        Some(Quotas::Many(qs)) => qs,
    };
    let mut out = Vec::with_capacity(quotas.len());
    for q in quotas {
        if q.limit == 0 {
            return Err(invalid(format!(
                "`{at}quota.limit` must be at least 1 (0 would refuse everything)"
            )));
        }
        out.push(Quota {
            limit: q.limit,
            period: q.period,
        });
    }
    if bucket.is_none() && out.is_empty() {
        return Ok(None);
    }
    Ok(Some(Policy {
        bucket,
        quotas: out,
    }))
}

fn plans(
    at: &str,
    raw: BTreeMap<String, PolicySettings>,
) -> Result<BTreeMap<String, Policy>, String> {
    let mut out = BTreeMap::new();
    for (name, p) in raw {
        if name.trim().is_empty() {
            return Err(invalid(format!("`{at}plans` has an empty plan name")));
        }
        let here = format!("{at}plans.{name}.");
        match policy(&here, p.rate, p.burst, p.quota)? {
            Some(policy) => {
                out.insert(name, policy);
            }
            None => {
                return Err(invalid(format!(
                    "`{at}plans.{name}` sets neither `rate` nor `quota`"
                )))
            }
        }
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Limits {
    pub fn from_config(config: &Config) -> Result<Limits, String> {
        let s: Settings = config.parse()?;
        let default_by =
            s.by.map(|b| b.0)
                .unwrap_or_else(|| vec![Source::Context("client_ip".to_owned())]);
        if default_by.is_empty() {
            return Err(invalid("`by` is an empty list".to_owned()));
        }
        let mut limits = Vec::new();
        let top_default = policy("", s.rate, s.burst, s.quota)?;
        let top_plans = plans("", s.plans)?;
        if top_default.is_some() || !top_plans.is_empty() {
            limits.push(Limit {
                id: "main".to_owned(),
                by: default_by.clone(),
                default: top_default,
                plans: top_plans,
            });
        }
        for (i, l) in s.limits.into_iter().enumerate() {
            let at = format!("limits[{i}].");
            let id = match l.name {
                Some(name) if valid_name(&name) && name != "main" => name,
                Some(name) => {
                    return Err(invalid(format!(
                        "`{at}name` must be 1 to 64 letters, digits, `-`, `_` or `.` and not `main`, got `{name}`"
                    )))
                }
                None => i.to_string(),
            };
            if limits.iter().any(|other: &Limit| other.id == id) {
                return Err(invalid(format!("`{at}name`: two limits are named `{id}`")));
            }
            let by = match l.by {
                Some(b) if b.0.is_empty() => {
                    return Err(invalid(format!("`{at}by` is an empty list")))
                }
                Some(b) => b.0,
                None => default_by.clone(),
            };
            let default = policy(&at, l.rate, l.burst, l.quota)?;
            let plans = plans(&at, l.plans)?;
            if default.is_none() && plans.is_empty() {
                return Err(invalid(format!(
                    "`limits[{i}]` sets no `rate`, `quota` or `plans`"
                )));
            }
            limits.push(Limit {
                id,
                by,
                default,
                plans,
            });
        }
        if limits.is_empty() {
            return Err(invalid(
                "no limit: set `rate` (and `burst`), `quota`, `plans` or `limits`".to_owned(),
            ));
        }
        Ok(Limits {
            limits,
            on_backend_error: s.on_backend_error,
            headers: s.headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(json: &str) -> Result<Limits, String> {
        Limits::from_config(&Config::from_json(json).unwrap())
    }

    #[test]
    fn a_bucket_and_a_quota() {
        let l = limits(
            r#"{"by": "principal", "rate": 10, "burst": 20, "quota": {"limit": 10000, "period": "day"}}"#,
        )
        .unwrap();
        assert_eq!(l.limits.len(), 1);
        let main = &l.limits[0];
        assert_eq!(main.id, "main");
        assert_eq!(main.by, [Source::Context("principal".into())]);
        let (plan, p) = main.policy(Some("gold")).unwrap();
        assert_eq!(plan, None);
        assert_eq!(
            p.bucket,
            Some(Bucket {
                rate: 10.0,
                burst: 20
            })
        );
        assert_eq!(
            p.quotas,
            [Quota {
                limit: 10000,
                period: Period::Day
            }]
        );
        assert_eq!(l.on_backend_error, OnBackendError::Local);
        assert!(l.headers);
    }

    #[test]
    fn defaults_burst_and_by() {
        let l = limits(r#"{"rate": 2.5}"#).unwrap();
        assert_eq!(l.limits[0].by, [Source::Context("client_ip".into())]);
        assert_eq!(
            l.limits[0].default.as_ref().unwrap().bucket.unwrap().burst,
            3
        );
    }

    #[test]
    fn plans_and_several_limits() {
        let l = limits(
            r#"{"by": ["principal"], "rate": 1, "burst": 1,
                "plans": {"gold": {"rate": 100, "burst": 200}, "silver": {"quota": [{"limit": 5, "period": "month"}, {"limit": 2, "period": "minute"}]}},
                "limits": [{"by": "route", "rate": 1000}, {"name": "per-ip", "by": "client_ip", "quota": {"limit": 9, "period": "week"}}],
                "on_backend_error": "deny", "headers": false}"#,
        )
        .unwrap();
        let ids: Vec<&str> = l.limits.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["main", "0", "per-ip"]);
        let main = &l.limits[0];
        let (plan, gold) = main.policy(Some("gold")).unwrap();
        assert_eq!(plan, Some("gold"));
        assert_eq!(gold.bucket.unwrap().burst, 200);
        assert_eq!(main.policy(Some("silver")).unwrap().1.quotas.len(), 2);
        assert_eq!(main.policy(Some("bronze")).unwrap().0, None);
        assert_eq!(main.policy(None).unwrap().1.bucket.unwrap().rate, 1.0);
        assert_eq!(l.limits[1].by, [Source::Context("route".into())]);
        assert_eq!(l.on_backend_error, OnBackendError::Deny);
        assert!(!l.headers);
    }

    #[test]
    fn plans_only_limit_skips_other_callers() {
        let l = limits(r#"{"plans": {"gold": {"rate": 1}}}"#).unwrap();
        assert!(l.limits[0].policy(None).is_none());
        assert!(l.limits[0].policy(Some("gold")).is_some());
    }

    #[test]
    fn rejects_bad_config() {
        let err = |json: &str| limits(json).unwrap_err();
        assert!(err("{}").contains("no limit"));
        assert!(err(r#"{"rate": 0}"#).contains("`rate` must be"));
        assert!(err(r#"{"rate": -1}"#).contains("`rate` must be"));
        assert!(err(r#"{"burst": 3}"#).contains("needs a `rate`"));
        assert!(err(r#"{"rate": 1, "burst": 0}"#).contains("`burst` must be"));
        assert!(err(r#"{"quota": {"limit": 0, "period": "day"}}"#).contains("at least 1"));
        assert!(err(r#"{"quota": {"limit": 5, "period": "year"}}"#)
            .contains("invalid plugin configuration"));
        assert!(err(r#"{"rate": 1, "burts": 2}"#).contains("unknown field `burts`"));
        assert!(err(r#"{"rate": 1, "by": "princpal"}"#).contains("unknown source"));
        assert!(err(r#"{"rate": 1, "by": []}"#).contains("empty list"));
        assert!(err(r#"{"plans": {"gold": {}}}"#).contains("neither"));
        assert!(err(r#"{"plans": {"gold": {"rate": 1, "by": "route"}}}"#)
            .contains("unknown field `by`"));
        assert!(err(r#"{"limits": [{"by": "route"}]}"#).contains("sets no"));
        assert!(err(r#"{"limits": [{"name": "a b", "rate": 1}]}"#).contains("`limits[0].name`"));
        assert!(
            err(r#"{"limits": [{"name": "x", "rate": 1}, {"name": "x", "rate": 1}]}"#)
                .contains("two limits")
        );
        assert!(err(r#"{"rate": 1, "on_backend_error": "maybe"}"#).contains("unknown variant"));
        assert!(
            err(r#"{"plans": {"gold": {"rate": 1, "burst": 0}}}"#).contains("`plans.gold.burst`")
        );
    }
}
