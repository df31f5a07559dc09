//! Atomic counters for rate limits and quotas (grant: `counters`).
//!
//! Keys are namespaced per plugin instance by the host.

use std::time::Duration;

pub use crate::wit::counters::TakeResult;

/// Takes `cost` tokens from the token bucket `key`, which holds at most `burst` tokens and
/// refills at `rate` tokens per second. Nothing is taken when the bucket holds too few.
pub fn take(key: &str, rate: f64, burst: u64, cost: u64) -> Result<TakeResult, String> {
    crate::wit::counters::take(key, rate, burst, cost)
}

/// The state of a fixed window counter after [`add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// The count in the current window, this addition included.
    pub count: u64,
    /// Time until the window resets.
    pub reset_in: Duration,
}

/// Adds `delta` to the fixed window counter `key`, whose window is `window` long and starts
/// when the counter is first touched.
pub fn add(key: &str, delta: u64, window: Duration) -> Result<WindowCount, String> {
    let (count, reset_ms) = crate::wit::counters::add(key, delta, crate::kv::duration_ms(window))?;
    Ok(WindowCount {
        count,
        reset_in: Duration::from_millis(reset_ms),
    })
}
