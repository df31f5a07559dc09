//! Requests per API key and usage plan, per UTC day: what `GET /admin/usage` answers, shaped
//! like API Gateway's GetUsage. A request counts once its filters set the context key
//! `principal` (the `api-key` filter does, with `usage_plan` when the key has a plan), under
//! that principal and plan, whatever the answer.
//!
//! The request path only adds one to a count in its own thread's table (a lock nobody else
//! takes but the flush, every `FLUSH`); the flush adds the counts to the state backend of
//! `[state]` (memory, or Redis shared by every gateway), so each gateway's answer is the sum
//! over all of them. Counts a failed flush could not write are kept for the next one, within
//! `MAX_PENDING` entries.

pub mod date;

use crate::capabilities::types::ContextData;
use crate::config::UsageConfig;
use crate::state::{State, StateError};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often counts go to the state backend.
pub const FLUSH: Duration = Duration::from_secs(2);
/// Distinct (day, plan, principal) entries a thread holds between flushes; past it, new
/// principals are counted as `OVERFLOW` (bounded memory whatever the callers).
pub const MAX_PENDING: usize = 50_000;
/// The principal counts go under when a table is full.
pub const OVERFLOW: &str = "(other)";

/// day -> plan -> principal -> requests.
type Counts = HashMap<u32, HashMap<String, HashMap<String, u64>>>;

#[derive(Default)]
struct Table {
    counts: Counts,
    entries: usize,
}

impl Table {
    fn add(&mut self, day: u32, plan: &str, principal: &str, n: u64) {
        let plans = self.counts.entry(day).or_default();
        if let Some(c) = plans.get_mut(plan).and_then(|p| p.get_mut(principal)) {
            *c += n;
            return;
        }
        let full = self.entries >= MAX_PENDING;
        let principal = if full { OVERFLOW } else { principal };
        let plan = if full && !plans.contains_key(plan) {
            ""
        } else {
            plan
        };
        let by_principal = plans.entry(plan.to_string()).or_default();
        match by_principal.get_mut(principal) {
            Some(c) => *c += n,
            None => {
                by_principal.insert(principal.to_string(), n);
                self.entries += 1;
            }
        }
    }

    fn drain_into(&mut self, into: &mut Table) {
        for (day, plans) in self.counts.drain() {
            for (plan, principals) in plans {
                for (principal, n) in principals {
                    into.add(day, &plan, &principal, n);
                }
            }
        }
        self.entries = 0;
    }
}

/// Every thread's table, for the flush.
static TABLES: Mutex<Vec<Arc<Mutex<Table>>>> = Mutex::new(Vec::new());
/// Counts a flush took but could not write.
static UNWRITTEN: Mutex<Option<Table>> = Mutex::new(None);

thread_local! {
    static LOCAL: Arc<Mutex<Table>> = {
        let t = Arc::new(Mutex::new(Table::default()));
        TABLES.lock().unwrap().push(t.clone());
        t
    };
}

/// Count one request of the context's `principal` on its `usage_plan` ("" without one),
/// today. Without a principal this is one scan of the context's few keys.
pub fn record(config: &UsageConfig, ctx: &ContextData) {
    if !config.enabled {
        return;
    }
    let Some(principal) = ctx.get("principal") else {
        return;
    };
    let plan = ctx.get("usage_plan").unwrap_or("");
    let day = date::today();
    LOCAL.with(|t| t.lock().unwrap().add(day, plan, principal, 1));
}

/// One count to add to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub day: u32,
    pub plan: String,
    pub principal: String,
    pub requests: u64,
}

/// One flush at a time: a reader that flushes first (`GET /admin/usage`) then sees every
/// count taken before it, none still on its way to the backend in another flush.
static FLUSHING: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(Default::default);

/// Add every count held so far to `state`; on failure they are kept for the next flush.
pub async fn flush(state: &State, config: &UsageConfig) -> Result<(), StateError> {
    let _one = FLUSHING.lock().await;
    let mut all = UNWRITTEN.lock().unwrap().take().unwrap_or_default();
    let tables: Vec<_> = TABLES.lock().unwrap().clone();
    for t in tables {
        t.lock().unwrap().drain_into(&mut all);
    }
    if all.entries == 0 {
        return Ok(());
    }
    let mut entries = Vec::with_capacity(all.entries);
    for (day, plans) in &all.counts {
        for (plan, principals) in plans {
            for (principal, n) in principals {
                entries.push(Entry {
                    day: *day,
                    plan: plan.clone(),
                    principal: principal.clone(),
                    requests: *n,
                });
            }
        }
    }
    match state.usage_add(&entries, config.retention_days).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut kept = UNWRITTEN.lock().unwrap();
            let mut back = kept.take().unwrap_or_default();
            all.drain_into(&mut back);
            *kept = Some(back);
            Err(e)
        }
    }
}

/// Flush every `FLUSH` to the state of the config serving at that moment.
pub async fn flush_every(current: impl Fn() -> (Arc<State>, UsageConfig)) {
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let (state, config) = current();
        match flush(&state, &config).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                tracing::warn!("usage counts not written (kept for the next try): {e}");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// A `GET /admin/usage` query, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub from: u32,
    pub to: u32,
    /// Only this usage plan (API Gateway's `usagePlanId`).
    pub plan: Option<String>,
    /// Only this principal (API Gateway's `keyId`).
    pub key: Option<String>,
}

/// Why a usage query was refused (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error(
        "`from` and `to` are required: UTC days as YYYY-MM-DD, e.g. ?from=2026-12-01&to=2026-12-07"
    )]
    Missing,
    #[error("`{0}` is {1:?}, not a date as YYYY-MM-DD")]
    NotADate(&'static str, String),
    #[error("`to` ({0}) is before `from` ({1})")]
    Reversed(String, String),
    #[error("the range covers {0} days; at most {1} (usage.retention_days) at once")]
    TooLong(u32, u32),
    #[error("unknown parameter {0:?}; expected from, to, plan, key")]
    Unknown(String),
    #[error("`{0}` is given more than once")]
    Repeated(String),
    #[error("the query is longer than {0} bytes")]
    TooLarge(usize),
}

/// The longest query string read.
const MAX_QUERY: usize = 2048;

impl Query {
    pub fn parse(query: Option<&str>, max_days: u32) -> Result<Query, QueryError> {
        let query = query.unwrap_or("");
        if query.len() > MAX_QUERY {
            return Err(QueryError::TooLarge(MAX_QUERY));
        }
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if !matches!(&*k, "from" | "to" | "plan" | "key") {
                return Err(QueryError::Unknown(k.chars().take(64).collect()));
            }
            if seen.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(QueryError::Repeated(k.into_owned()));
            }
        }
        let (Some(from), Some(to)) = (seen.get("from"), seen.get("to")) else {
            return Err(QueryError::Missing);
        };
        let day = |name: &'static str, s: &str| {
            date::parse(s).ok_or_else(|| QueryError::NotADate(name, s.chars().take(32).collect()))
        };
        let (f, t) = (day("from", from)?, day("to", to)?);
        if t < f {
            return Err(QueryError::Reversed(to.clone(), from.clone()));
        }
        if t - f + 1 > max_days {
            return Err(QueryError::TooLong(t - f + 1, max_days));
        }
        Ok(Query {
            from: f,
            to: t,
            plan: seen.remove("plan"),
            key: seen.remove("key"),
        })
    }
}

/// The answer to `query`: `items` maps each principal to one `[used, remaining]` pair per day
/// from `startDate` to `endDate` (remaining is `null`: limits are the quota plugin's),
/// `usagePlans` the plans each principal used, `planTotals` the requests per plan per day.
pub async fn answer(state: &State, query: &Query) -> Result<Value, StateError> {
    let days: Vec<u32> = (query.from..=query.to).collect();
    let per_day = state.usage_read(&days).await?;
    let n = days.len();
    let mut items: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut plans: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut totals: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, entries) in per_day.into_iter().enumerate() {
        for (plan, principal, used) in entries {
            if query.plan.as_ref().is_some_and(|p| *p != plan)
                || query.key.as_ref().is_some_and(|k| *k != principal)
            {
                continue;
            }
            items.entry(principal.clone()).or_insert_with(|| vec![0; n])[i] += used;
            if !plan.is_empty() {
                totals.entry(plan.clone()).or_insert_with(|| vec![0; n])[i] += used;
                plans.entry(principal).or_default().insert(plan);
            }
        }
    }
    let items: Map<String, Value> = items
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|u| json!([u, null])).collect()))
        .collect();
    let mut out = json!({
        "startDate": date::format(query.from),
        "endDate": date::format(query.to),
        "days": days.iter().map(|d| date::format(*d)).collect::<Vec<_>>(),
        "items": items,
        "usagePlans": plans,
        "planTotals": totals,
    });
    if let Some(plan) = &query.plan {
        out["usagePlanId"] = json!(plan);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_checked() {
        let q = Query::parse(Some("from=2026-12-01&to=2026-12-03&plan=gold"), 90).unwrap();
        assert_eq!((q.to - q.from, q.plan.as_deref()), (2, Some("gold")));
        let k = Query::parse(Some("to=2026-12-01&from=2026-12-01&key=a%20b"), 90).unwrap();
        assert_eq!(k.key.as_deref(), Some("a b"));
        let cases = [
            ("", QueryError::Missing),
            ("from=2026-12-01", QueryError::Missing),
            (
                "from=2026-12-01&to=yesterday",
                QueryError::NotADate("to", "yesterday".into()),
            ),
            (
                "from=2026-12-02&to=2026-12-01",
                QueryError::Reversed("2026-12-01".into(), "2026-12-02".into()),
            ),
            (
                "from=2026-01-01&to=2026-12-31",
                QueryError::TooLong(365, 90),
            ),
            (
                "from=2026-12-01&to=2026-12-01&x=1",
                QueryError::Unknown("x".into()),
            ),
            (
                "from=2026-12-01&from=2026-12-02&to=2026-12-03",
                QueryError::Repeated("from".into()),
            ),
        ];
        for (query, want) in cases {
            assert_eq!(Query::parse(Some(query), 90), Err(want), "{query}");
        }
        let long = format!("from=2026-12-01&to=2026-12-01&key={}", "a".repeat(3000));
        assert_eq!(
            Query::parse(Some(&long), 90),
            Err(QueryError::TooLarge(2048))
        );
    }

    #[test]
    fn a_full_table_counts_new_principals_together() {
        let mut t = Table::default();
        for i in 0..MAX_PENDING + 10 {
            t.add(1, "p", &format!("k{i}"), 1);
        }
        t.add(1, "p", "k0", 1);
        assert_eq!(t.entries, MAX_PENDING + 1);
        assert_eq!(t.counts[&1]["p"][OVERFLOW], 10);
        assert_eq!(t.counts[&1]["p"]["k0"], 2);
    }
}
