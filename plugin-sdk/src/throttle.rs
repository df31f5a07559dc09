//! Doing something at most once per interval in a plugin instance, e.g. logging a failing
//! state backend once every few seconds instead of on every request.
//!
//! ```ignore
//! use std::time::Duration;
//! use wicket_plugin_sdk::throttle::Throttle;
//!
//! struct MyFilter { backend_warning: Throttle }
//! // new: Throttle::new(Duration::from_secs(5))
//! if self.backend_warning.ready() {
//!     wicket_plugin_sdk::warn!("state backend failed: {e}");
//! }
//! ```
//!
//! The state lives in the instance, so with pooled isolation each warm instance keeps its own.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Says yes at most once per interval.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Cell<Option<Instant>>,
}

impl Throttle {
    /// A throttle that is ready now, then again `every` after each time it said yes.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: Cell::new(None),
        }
    }

    /// Whether the interval has passed since the last `true` (or this is the first call).
    pub fn ready(&self) -> bool {
        self.ready_at(Instant::now())
    }

    /// [`Throttle::ready`] at the given moment.
    pub fn ready_at(&self, now: Instant) -> bool {
        match self.last.get() {
            Some(last) if now.saturating_duration_since(last) < self.every => false,
            _ => {
                self.last.set(Some(now));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval() {
        let t = Throttle::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(t.ready_at(t0));
        assert!(!t.ready_at(t0 + Duration::from_secs(4)));
        assert!(t.ready_at(t0 + Duration::from_secs(5)));
        assert!(!t.ready_at(t0 + Duration::from_secs(6)));
    }
}
