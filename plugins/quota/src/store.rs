//! Where the counts live: the host's `counters` capability (memory or Redis, shared by every
//! instance), or this instance's own memory ([`Local`]) when the host's backend fails and
//! `on_backend_error = "local"`.

use std::collections::HashMap;
use std::time::Duration;

/// A token-bucket take, as `counters.take` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub allowed: bool,
    pub remaining: u64,
    pub retry_after_ms: u64,
    pub reset_ms: u64,
}

/// The counter operations the limiter needs.
pub trait Store {
    /// Take one token from bucket `key` (`rate` per second, at most `burst`).
    fn take(&mut self, key: &str, rate: f64, burst: u64) -> Result<Taken, String>;
    /// Add one to the window counter `key`; returns the count and milliseconds left.
    fn add(&mut self, key: &str, window_ms: u64) -> Result<(u64, u64), String>;
}

/// The host's `counters` capability.
pub struct Host;

impl Store for Host {
    fn take(&mut self, key: &str, rate: f64, burst: u64) -> Result<Taken, String> {
        let t = wicket_plugin_sdk::counters::take(key, rate, burst, 1)?;
        Ok(Taken {
            allowed: t.allowed,
            remaining: t.remaining,
            retry_after_ms: t.retry_after_ms,
            reset_ms: t.reset_ms,
        })
    }

    fn add(&mut self, key: &str, window_ms: u64) -> Result<(u64, u64), String> {
        let w = wicket_plugin_sdk::counters::add(key, 1, Duration::from_millis(window_ms))?;
        Ok((w.count, w.reset_in.as_millis() as u64))
    }
}

/// Buckets and windows in this instance's memory, on a millisecond clock the caller passes
/// in (so tests can drive it). Bounded: past `MAX_KEYS` keys, full buckets and ended windows
/// are dropped, then everything if that is not enough.
#[derive(Debug, Default)]
pub struct Local {
    buckets: HashMap<String, (f64, u64)>,
    windows: HashMap<String, (u64, u64)>,
}

const MAX_KEYS: usize = 10_000;

impl Local {
    fn sweep(&mut self, now_ms: u64) {
        if self.buckets.len() + self.windows.len() < MAX_KEYS {
            return;
        }
        self.windows.retain(|_, (_, ends)| *ends > now_ms);
        self.buckets
            .retain(|_, (_, updated)| now_ms.saturating_sub(*updated) < 3_600_000);
        if self.buckets.len() + self.windows.len() >= MAX_KEYS {
            self.buckets.clear();
            self.windows.clear();
        }
    }

    pub fn take_at(&mut self, now_ms: u64, key: &str, rate: f64, burst: u64) -> Taken {
        self.sweep(now_ms);
        let burst_f = burst as f64;
        let (tokens, updated) = self
            .buckets
            .entry(key.to_owned())
            .or_insert((burst_f, now_ms));
        let elapsed = now_ms.saturating_sub(*updated) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * rate).min(burst_f);
        *updated = now_ms;
        let allowed = *tokens >= 1.0;
        if allowed {
            *tokens -= 1.0;
        }
        let wait_ms = |missing: f64| {
            if missing <= 0.0 {
                0
            } else {
                (missing / rate * 1000.0).ceil() as u64
            }
        };
        Taken {
            allowed,
            remaining: tokens.floor().max(0.0) as u64,
            retry_after_ms: if allowed { 0 } else { wait_ms(1.0 - *tokens) },
            reset_ms: wait_ms(burst_f - *tokens),
        }
    }

    pub fn add_at(&mut self, now_ms: u64, key: &str, window_ms: u64) -> (u64, u64) {
        self.sweep(now_ms);
        let (count, ends) = self
            .windows
            .entry(key.to_owned())
            .or_insert((0, now_ms + window_ms));
        if *ends <= now_ms {
            *count = 0;
            *ends = now_ms + window_ms;
        }
        *count += 1;
        (*count, *ends - now_ms)
    }
}

/// [`Local`] on the instance's monotonic clock.
pub struct LocalNow<'a> {
    pub local: &'a mut Local,
    pub now_ms: u64,
}

impl Store for LocalNow<'_> {
    fn take(&mut self, key: &str, rate: f64, burst: u64) -> Result<Taken, String> {
        Ok(self.local.take_at(self.now_ms, key, rate, burst))
    }

    fn add(&mut self, key: &str, window_ms: u64) -> Result<(u64, u64), String> {
        Ok(self.local.add_at(self.now_ms, key, window_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_bucket_admits_burst_then_rate() {
        let mut l = Local::default();
        let admitted = (0..10)
            .filter(|_| l.take_at(0, "k", 2.0, 5).allowed)
            .count();
        assert_eq!(admitted, 5);
        let refused = l.take_at(0, "k", 2.0, 5);
        assert_eq!((refused.allowed, refused.retry_after_ms), (false, 500));
        assert_eq!(refused.reset_ms, 2500);
        let admitted = (0..10)
            .filter(|_| l.take_at(1000, "k", 2.0, 5).allowed)
            .count();
        assert_eq!(admitted, 2);
    }

    #[test]
    fn local_window_counts_and_resets() {
        let mut l = Local::default();
        assert_eq!(l.add_at(0, "w", 1000), (1, 1000));
        assert_eq!(l.add_at(400, "w", 1000), (2, 600));
        assert_eq!(l.add_at(1000, "w", 1000), (1, 1000));
    }

    #[test]
    fn local_state_is_bounded() {
        let mut l = Local::default();
        for i in 0..(MAX_KEYS + 10) {
            l.take_at(0, &format!("k{i}"), 1.0, 1);
        }
        assert!(l.buckets.len() < MAX_KEYS);
    }
}
