//! `quota` filter: token-bucket rate limits and period quotas per caller, with their counts in
//! the host's `counters` capability, so with `[state] backend = "redis"` every gateway
//! instance enforces one shared limit.
//!
//! ```toml
//! [plugins.limit]
//! builtin = "quota"
//! config.by = "principal"                                # whose requests count together
//! config.rate = 10                                       # tokens per second
//! config.burst = 20                                      # bucket size
//! config.quota = { limit = 10000, period = "day" }       # minute, hour, day, week, month
//! config.plans = { gold = { rate = 100, burst = 200, quota = { limit = 1000000, period = "month" } } }
//! config.limits = [{ name = "per-route", by = "route", rate = 1000, burst = 1000 }]
//! config.on_backend_error = "local"                      # or "allow", "deny"
//! ```
//!
//! * `by`: a source or a list of sources (see `wicket_plugin_sdk::source`): `principal`,
//!   `usage_plan`, `client_ip`, `route`, `header:NAME`, `query:NAME`, `context:KEY`. Default
//!   `client_ip`. Callers without a value share one bucket (e.g. every anonymous caller).
//! * `rate`/`burst`/`quota` at the top level form the limit `main`; `plans.NAME` replaces
//!   them for callers whose context `usage_plan` is `NAME`. A limit with only `plans` does
//!   not apply to callers on other plans. `limits` adds further limits, each with its own
//!   `by` (default: the top-level one), `rate`, `burst`, `quota` and `plans`; a request must
//!   pass all of them. `burst` defaults to the rate rounded up.
//! * Periods are UTC calendar periods (see `period`): a `month` is the calendar month, 28 to
//!   31 days, as API Gateway usage plans count it, not a fixed 30 days.
//! * Over a limit: `429 {"message": "Too Many Requests"}` with `Retry-After` and
//!   `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) for the limit that
//!   refused. Admitted responses carry the RateLimit headers of the tightest limit
//!   (`headers = false` leaves them out).
//! * Token buckets are checked before quotas, so a throttled request never uses up the
//!   caller's quota; a request refused by a later limit has still taken its token from the
//!   earlier ones (the capability has no refund).
//! * `on_backend_error` (the state backend failed or timed out after `[state]
//!   redis_timeout_ms`): `allow` admits, `deny` answers 503 with `Retry-After: 1`, `local`
//!   (default) enforces the same limits in this plugin instance's own memory, so an outage
//!   means "the limit per instance" rather than "unlimited". The backend is tried again on the
//!   next request, so service returns with Redis.

mod limiter;
mod period;
mod settings;
mod store;

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wicket_plugin_sdk::auth::{self, USAGE_PLAN};
use wicket_plugin_sdk::throttle::Throttle;
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request, Response};

use limiter::{plan_ops, run, seconds, Decision, Status};
use settings::{Limits, OnBackendError};
use store::{Host, Local, LocalNow};

/// Context key carrying the RateLimit values (`LIMIT REMAINING RESET`, RESET in seconds)
/// from `on_request` to `on_response`: a pooled plugin may serve the two hooks on different
/// instances. One key, so the hot path makes one context call each way.
const CTX_STATUS: &str = "quota.ratelimit";

/// The context value for `status`.
fn status_value(status: &Status) -> String {
    format!(
        "{} {} {}",
        status.limit,
        status.remaining,
        seconds(status.reset_ms)
    )
}

/// The (limit, remaining, reset seconds) of a context value written by [`status_value`].
fn parse_status(value: &str) -> Option<(u64, u64, u64)> {
    let mut parts = value.split(' ').map(|p| p.parse::<u64>().ok());
    let out = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(out)
}

struct Quota {
    limits: Limits,
    local: RefCell<Local>,
    started: Instant,
    backend_warning: Throttle,
    /// Whether any limit has `plans` (else the plan is not looked up) or a `quota` (else the
    /// wall clock is not read).
    has_plans: bool,
    has_quotas: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Quota {
    /// Logs a backend failure, at most once per 5 seconds per instance.
    fn warn_backend(&self, error: &str) {
        if !self.backend_warning.ready() {
            return;
        }
        let mode = match self.limits.on_backend_error {
            OnBackendError::Allow => "admitting",
            OnBackendError::Deny => "refusing",
            OnBackendError::Local => "limiting in this instance",
        };
        wicket_plugin_sdk::warn!("quota: state backend failed ({error}); {mode} meanwhile");
    }

    fn decide(&self, req: &Request, ctx: &Context) -> Result<Option<Decision>, Action> {
        let plan = if self.has_plans {
            ctx.get(USAGE_PLAN)
        } else {
            None
        };
        let now = if self.has_quotas { now_ms() } else { 0 };
        let ops = plan_ops(&self.limits, plan.as_deref(), now, |s| s.get(req, ctx));
        if ops.is_empty() {
            return Ok(None);
        }
        match run(&ops, &mut Host, None) {
            Ok(decision) => Ok(Some(decision)),
            Err((failed, best, error)) => {
                self.warn_backend(&error);
                match self.limits.on_backend_error {
                    OnBackendError::Allow => Ok(None),
                    OnBackendError::Deny => Err(auth::refuse(
                        ctx,
                        503,
                        "Service Unavailable",
                        &[("retry-after", "1")],
                    )),
                    OnBackendError::Local => {
                        let mut local = self.local.borrow_mut();
                        let mut store = LocalNow {
                            local: &mut local,
                            now_ms: self.started.elapsed().as_millis() as u64,
                        };
                        // The local store never fails.
                        Ok(run(&ops[failed..], &mut store, best).ok())
                    }
                }
            }
        }
    }
}

/// Records `status` in the context for `on_response`, unless an earlier quota filter of this
/// request recorded a tighter one.
fn remember(ctx: &Context, status: Status) {
    let earlier = ctx.get(CTX_STATUS).as_deref().and_then(parse_status);
    if let Some((limit, remaining, reset_s)) = earlier {
        let earlier = Status {
            limit,
            remaining,
            reset_ms: reset_s * 1000,
            retry_after_ms: 0,
        };
        if !status.tighter_than(&earlier) {
            return;
        }
    }
    ctx.set(CTX_STATUS, &status_value(&status));
}

impl Filter for Quota {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("token-bucket rate limits and day/week/month quotas per caller (429 with Retry-After and RateLimit-* headers); state in counters, shared through Redis")
            .config::<settings::Settings>()
            .capabilities(&["counters"])
    }

    fn new(config: Config) -> Result<Self, String> {
        let limits = Limits::from_config(&config)?;
        let has_plans = limits.limits.iter().any(|l| !l.plans.is_empty());
        let has_quotas = limits.limits.iter().any(|l| {
            l.default
                .iter()
                .chain(l.plans.values())
                .any(|p| !p.quotas.is_empty())
        });
        Ok(Self {
            limits,
            has_plans,
            has_quotas,
            local: RefCell::new(Local::default()),
            started: Instant::now(),
            backend_warning: Throttle::new(Duration::from_secs(5)),
        })
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        let decision = match self.decide(req, ctx) {
            Ok(Some(decision)) => decision,
            Ok(None) => return Ok(Action::Continue),
            Err(answer) => return Ok(answer),
        };
        match decision {
            Decision::Admit(None) => Ok(Action::Continue),
            Decision::Admit(Some(status)) => {
                if self.limits.headers {
                    remember(ctx, status);
                }
                Ok(Action::Continue)
            }
            Decision::Refuse(status) => {
                let limit = status.limit.to_string();
                let remaining = status.remaining.to_string();
                let reset = seconds(status.reset_ms).to_string();
                let retry = seconds(status.retry_after_ms).max(1).to_string();
                // The refusal's own numbers, not an earlier filter's.
                ctx.set(CTX_STATUS, &status_value(&status));
                Ok(auth::refuse(
                    ctx,
                    429,
                    "Too Many Requests",
                    &[
                        ("retry-after", &retry),
                        ("ratelimit-limit", &limit),
                        ("ratelimit-remaining", &remaining),
                        ("ratelimit-reset", &reset),
                    ],
                ))
            }
        }
    }

    fn on_response(&self, _req: &Request, resp: &Response, ctx: &Context) -> Result<(), Error> {
        if !self.limits.headers {
            return Ok(());
        }
        let Some(value) = ctx.get(CTX_STATUS) else {
            return Ok(());
        };
        if let Some((limit, remaining, reset)) = parse_status(&value) {
            // Digits only: setting cannot fail.
            let _ = resp.set_header("ratelimit-limit", &limit.to_string());
            let _ = resp.set_header("ratelimit-remaining", &remaining.to_string());
            let _ = resp.set_header("ratelimit-reset", &reset.to_string());
        }
        Ok(())
    }
}

export_filter!(Quota);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_the_context() {
        let s = Status {
            limit: 20,
            remaining: 3,
            reset_ms: 1500,
            retry_after_ms: 0,
        };
        assert_eq!(status_value(&s), "20 3 2");
        assert_eq!(parse_status("20 3 2"), Some((20, 3, 2)));
        assert_eq!(parse_status("20 3"), None);
        assert_eq!(parse_status("20 3 2 1"), None);
        assert_eq!(parse_status("a b c"), None);
    }
}
