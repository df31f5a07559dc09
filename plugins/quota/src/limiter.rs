//! Turning one request into counter operations, and their results into a decision.

use wicket_plugin_sdk::auth::sha256_hex;
use wicket_plugin_sdk::source::join_key;

use crate::settings::Limits;
use crate::store::Store;

/// One counter operation of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Take a token from a bucket.
    Take { key: String, rate: f64, burst: u64 },
    /// Count the request in a period.
    Add {
        key: String,
        window_ms: u64,
        limit: u64,
    },
}

/// Where a caller stands under one limit, as the RateLimit headers tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// `RateLimit-Limit`: the burst, or the period's quota.
    pub limit: u64,
    /// `RateLimit-Remaining`.
    pub remaining: u64,
    /// Milliseconds until the bucket is full again or the period ends (`RateLimit-Reset`).
    pub reset_ms: u64,
    /// Milliseconds until a refused request may succeed (`Retry-After`); 0 when admitted.
    pub retry_after_ms: u64,
}

impl Status {
    /// Whether `self` says less room is left than `other`: fewer requests remaining, or as
    /// many for longer.
    pub fn tighter_than(&self, other: &Status) -> bool {
        (self.remaining, std::cmp::Reverse(self.reset_ms))
            < (other.remaining, std::cmp::Reverse(other.reset_ms))
    }

    /// The tighter of two statuses.
    pub fn tightest(a: Option<Status>, b: Status) -> Status {
        match a {
            Some(a) if !b.tighter_than(&a) => a,
            _ => b,
        }
    }
}

/// What the operations decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every limit admitted; the tightest status, if any limit applied.
    Admit(Option<Status>),
    /// A limit refused; the later operations were not run.
    Refuse(Status),
}

/// Key values past this length are replaced by their SHA-256, so keys stay small.
const MAX_KEY_VALUE: usize = 128;

/// The operations for a request whose sources read `value` (see [`Limits`]), whose caller
/// is on `plan`, at `now_ms` (wall clock): every token bucket first, then every period quota,
/// so a request refused by a bucket never counts against a quota.
pub fn plan_ops(
    limits: &Limits,
    plan: Option<&str>,
    now_ms: u64,
    mut value: impl FnMut(&wicket_plugin_sdk::source::Source) -> Option<String>,
) -> Vec<Op> {
    let mut takes = Vec::new();
    let mut adds = Vec::new();
    for limit in &limits.limits {
        let Some((plan_name, policy)) = limit.policy(plan) else {
            continue;
        };
        let values: Vec<Option<String>> = limit.by.iter().map(&mut value).collect();
        let mut who = join_key(values.iter().map(Option::as_deref));
        if who.len() > MAX_KEY_VALUE {
            who = format!("#{}", sha256_hex(who.as_bytes()));
        }
        let plan_part = join_key([plan_name]);
        if let Some(b) = policy.bucket {
            takes.push(Op::Take {
                key: format!("tb|{}|{plan_part}|{who}", limit.id),
                rate: b.rate,
                burst: b.burst,
            });
        }
        for (j, q) in policy.quotas.iter().enumerate() {
            let window = q.period.window(now_ms);
            adds.push(Op::Add {
                key: format!("q|{}|{plan_part}|{j}|{}|{who}", limit.id, window.id),
                window_ms: window.left_ms,
                limit: q.limit,
            });
        }
    }
    takes.extend(adds);
    takes
}

/// Runs `ops` in order on `store`, starting from the tightest status so far (`best`). Stops
/// at the first refusal. On a store error, returns the index of the failed operation and the
/// tightest status of the ones before it, so the caller can go on elsewhere.
pub fn run(
    ops: &[Op],
    store: &mut impl Store,
    mut best: Option<Status>,
) -> Result<Decision, (usize, Option<Status>, String)> {
    for (i, op) in ops.iter().enumerate() {
        let status = match op {
            Op::Take { key, rate, burst } => {
                let t = store.take(key, *rate, *burst).map_err(|e| (i, best, e))?;
                let status = Status {
                    limit: *burst,
                    remaining: t.remaining,
                    reset_ms: t.reset_ms,
                    retry_after_ms: t.retry_after_ms,
                };
                if !t.allowed {
                    return Ok(Decision::Refuse(Status {
                        retry_after_ms: t.retry_after_ms.max(1),
                        ..status
                    }));
                }
                status
            }
            Op::Add {
                key,
                window_ms,
                limit,
            } => {
                let (count, left_ms) = store.add(key, *window_ms).map_err(|e| (i, best, e))?;
                let status = Status {
                    limit: *limit,
                    remaining: limit.saturating_sub(count),
                    reset_ms: left_ms,
                    retry_after_ms: 0,
                };
                if count > *limit {
                    return Ok(Decision::Refuse(Status {
                        retry_after_ms: left_ms.max(1),
                        ..status
                    }));
                }
                status
            }
        };
        best = Some(Status::tightest(best, status));
    }
    Ok(Decision::Admit(best))
}

/// Whole seconds for a header, rounded up.
pub fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Local, LocalNow, Taken};
    use wicket_plugin_sdk::source::Source;
    use wicket_plugin_sdk::Config;

    fn limits(json: &str) -> Limits {
        Limits::from_config(&Config::from_json(json).unwrap()).unwrap()
    }

    fn who(s: &Source) -> Option<String> {
        match s {
            Source::Context(k) if k == "principal" => Some("alice".into()),
            Source::Context(k) if k == "route" => Some("pets".into()),
            _ => None,
        }
    }

    #[test]
    fn buckets_come_before_quotas_and_plans_pick_policies() {
        let l = limits(
            r#"{"by": "principal", "quota": {"limit": 3, "period": "day"},
                "plans": {"gold": {"rate": 5, "burst": 10}},
                "limits": [{"by": ["route", "client_ip"], "rate": 1, "burst": 2}]}"#,
        );
        let ops = plan_ops(&l, None, 86_400_000 * 3 + 5, who);
        assert_eq!(
            ops,
            [
                Op::Take {
                    key: "tb|0|-|=pets|-".into(),
                    rate: 1.0,
                    burst: 2
                },
                Op::Add {
                    key: "q|main|-|0|d3|=alice".into(),
                    window_ms: 86_400_000 - 5,
                    limit: 3
                },
            ]
        );
        let ops = plan_ops(&l, Some("gold"), 0, who);
        assert_eq!(
            ops[0],
            Op::Take {
                key: "tb|main|=gold|=alice".into(),
                rate: 5.0,
                burst: 10
            }
        );
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn long_key_values_are_hashed() {
        let l = limits(r#"{"by": "header:x-k", "rate": 1}"#);
        let long = "x".repeat(500);
        let ops = plan_ops(&l, None, 0, |_| Some(long.clone()));
        let Op::Take { key, .. } = &ops[0] else {
            panic!()
        };
        assert!(key.len() < 100, "{key}");
        assert!(key.contains('#'));
    }

    #[test]
    fn run_reports_the_tightest_status_and_refusals() {
        let l = limits(
            r#"{"by": "principal", "rate": 1, "burst": 3, "quota": {"limit": 2, "period": "day"}}"#,
        );
        let ops = plan_ops(&l, None, 0, who);
        let mut local = Local::default();
        let mut store = LocalNow {
            local: &mut local,
            now_ms: 0,
        };
        let first = run(&ops, &mut store, None).unwrap();
        // The bucket has 2 left, the quota 1: the quota is tighter.
        assert_eq!(
            first,
            Decision::Admit(Some(Status {
                limit: 2,
                remaining: 1,
                reset_ms: 86_400_000,
                retry_after_ms: 0
            }))
        );
        run(&ops, &mut store, None).unwrap();
        match run(&ops, &mut store, None).unwrap() {
            Decision::Refuse(s) => {
                assert_eq!((s.limit, s.remaining), (2, 0));
                assert_eq!(s.retry_after_ms, 86_400_000);
            }
            other => panic!("{other:?}"),
        }
        // The bucket refuses before the quota is touched.
        let mut local = Local::default();
        let mut store = LocalNow {
            local: &mut local,
            now_ms: 0,
        };
        let l = limits(r#"{"rate": 1, "burst": 1, "quota": {"limit": 5, "period": "day"}}"#);
        let ops = plan_ops(&l, None, 0, who);
        run(&ops, &mut store, None).unwrap();
        match run(&ops, &mut store, None).unwrap() {
            Decision::Refuse(s) => assert_eq!((s.limit, s.retry_after_ms), (1, 1000)),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.local.add_at(0, &ops_key(&ops[1]), 1000).0, 2);
    }

    fn ops_key(op: &Op) -> String {
        match op {
            Op::Take { key, .. } | Op::Add { key, .. } => key.clone(),
        }
    }

    struct Failing(usize);

    impl Store for Failing {
        fn take(&mut self, _: &str, _: f64, burst: u64) -> Result<Taken, String> {
            if self.0 == 0 {
                return Err("down".into());
            }
            self.0 -= 1;
            Ok(Taken {
                allowed: true,
                remaining: burst - 1,
                retry_after_ms: 0,
                reset_ms: 10,
            })
        }

        fn add(&mut self, _: &str, _: u64) -> Result<(u64, u64), String> {
            Err("down".into())
        }
    }

    #[test]
    fn run_reports_where_the_store_failed() {
        let l = limits(
            r#"{"rate": 1, "burst": 5, "limits": [{"rate": 1, "burst": 9}, {"quota": {"limit": 1, "period": "hour"}}]}"#,
        );
        let ops = plan_ops(&l, None, 0, who);
        let (i, best, e) = run(&ops, &mut Failing(1), None).unwrap_err();
        assert_eq!((i, e.as_str()), (1, "down"));
        assert_eq!(best.unwrap().remaining, 4);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds(0), 0);
        assert_eq!(seconds(1), 1);
        assert_eq!(seconds(1000), 1);
        assert_eq!(seconds(1001), 2);
    }
}
