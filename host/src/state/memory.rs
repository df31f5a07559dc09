//! In-process state: an LRU bounded in bytes for `kv`, and token buckets and fixed windows
//! behind one mutex for `counters` (a take is a few arithmetic operations, so a single lock
//! costs less than sharding would).

use super::Take;
use bytes::Bytes;
use lru::LruCache;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry {
    value: Bytes,
    expires: Option<Instant>,
}

/// Key-value entries, least recently used evicted first once `capacity` bytes are held.
pub struct MemoryKv {
    inner: Mutex<KvInner>,
    capacity: usize,
}

struct KvInner {
    lru: LruCache<String, Entry>,
    bytes: usize,
}

impl MemoryKv {
    pub fn new(capacity: usize) -> MemoryKv {
        MemoryKv {
            inner: Mutex::new(KvInner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity,
        }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let mut inner = self.inner.lock().unwrap();
        let expired = match inner.lru.get(key) {
            None => return None,
            Some(e) => e.expires.is_some_and(|t| t <= Instant::now()),
        };
        if expired {
            if let Some(e) = inner.lru.pop(key) {
                inner.bytes -= key.len() + e.value.len();
            }
            return None;
        }
        inner.lru.get(key).map(|e| e.value.clone())
    }

    /// Store `value`; an entry larger than the whole capacity is refused (returns false).
    pub fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> bool {
        let size = key.len() + value.len();
        if size > self.capacity {
            return false;
        }
        let mut inner = self.inner.lock().unwrap();
        let expires = ttl.map(|t| Instant::now() + t);
        if let Some(old) = inner.lru.put(key.to_string(), Entry { value, expires }) {
            inner.bytes -= key.len() + old.value.len();
        }
        inner.bytes += size;
        while inner.bytes > self.capacity {
            match inner.lru.pop_lru() {
                Some((k, e)) => inner.bytes -= k.len() + e.value.len(),
                None => break,
            }
        }
        true
    }

    pub fn delete(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(e) = inner.lru.pop(key) {
            inner.bytes -= key.len() + e.value.len();
        }
    }

    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap().bytes
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

struct Window {
    count: u64,
    resets: Instant,
}

/// Token buckets and fixed windows.
#[derive(Default)]
pub struct MemoryCounters {
    inner: Mutex<CounterInner>,
}

#[derive(Default)]
struct CounterInner {
    buckets: HashMap<String, Bucket>,
    windows: HashMap<String, Window>,
    ops: u64,
}

/// Entries idle for this long are dropped when the maps are swept.
const IDLE: Duration = Duration::from_secs(3600);

impl MemoryCounters {
    pub fn take(&self, key: &str, rate: f64, burst: u64, cost: u64, now: Instant) -> Take {
        let mut inner = self.inner.lock().unwrap();
        inner.sweep(now);
        let burst_f = burst as f64;
        let bucket = inner.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst_f,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst_f);
        bucket.updated = now;
        let allowed = bucket.tokens >= cost as f64;
        if allowed {
            bucket.tokens -= cost as f64;
        }
        Take::from_tokens(allowed, bucket.tokens, rate, burst, cost)
    }

    /// Add `delta` to the window `key`; returns the new count and the time until it resets.
    pub fn add(&self, key: &str, delta: u64, window: Duration, now: Instant) -> (u64, Duration) {
        let mut inner = self.inner.lock().unwrap();
        inner.sweep(now);
        let w = inner.windows.entry(key.to_string()).or_insert(Window {
            count: 0,
            resets: now + window,
        });
        if w.resets <= now {
            w.count = 0;
            w.resets = now + window;
        }
        w.count = w.count.saturating_add(delta);
        (w.count, w.resets - now)
    }
}

impl CounterInner {
    /// Every 4096 operations, forget buckets idle for an hour and windows that ended, so
    /// that keys from one-off clients do not accumulate forever.
    fn sweep(&mut self, now: Instant) {
        self.ops += 1;
        if !self.ops.is_multiple_of(4096) {
            return;
        }
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.updated) < IDLE);
        self.windows.retain(|_, w| w.resets > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_evicts_least_recently_used_within_capacity() {
        let kv = MemoryKv::new(30);
        assert!(kv.set("a", Bytes::from_static(b"0123456789"), None));
        assert!(kv.set("b", Bytes::from_static(b"0123456789"), None));
        assert!(kv.get("a").is_some()); // a is now the most recently used
        assert!(kv.set("c", Bytes::from_static(b"0123456789"), None));
        assert_eq!(kv.get("b"), None);
        assert!(kv.get("a").is_some() && kv.get("c").is_some());
        assert!(kv.bytes() <= 30);
        assert!(!kv.set("big", Bytes::from(vec![0; 64]), None));
    }

    #[test]
    fn kv_expires() {
        let kv = MemoryKv::new(1000);
        kv.set(
            "k",
            Bytes::from_static(b"v"),
            Some(Duration::from_millis(0)),
        );
        assert_eq!(kv.get("k"), None);
        assert_eq!(kv.bytes(), 0);
        kv.set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(60)));
        assert_eq!(kv.get("k").as_deref(), Some(&b"v"[..]));
        kv.delete("k");
        assert_eq!(kv.get("k"), None);
    }

    #[test]
    fn bucket_admits_burst_then_rate() {
        let c = MemoryCounters::default();
        let t0 = Instant::now();
        let admitted = (0..10)
            .filter(|_| c.take("k", 2.0, 5, 1, t0).allowed)
            .count();
        assert_eq!(admitted, 5);
        let refused = c.take("k", 2.0, 5, 1, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        // One second later two tokens are back.
        let t1 = t0 + Duration::from_secs(1);
        let admitted = (0..10)
            .filter(|_| c.take("k", 2.0, 5, 1, t1).allowed)
            .count();
        assert_eq!(admitted, 2);
    }

    #[test]
    fn window_counts_and_resets() {
        let c = MemoryCounters::default();
        let t0 = Instant::now();
        assert_eq!(c.add("w", 1, Duration::from_secs(10), t0).0, 1);
        assert_eq!(c.add("w", 2, Duration::from_secs(10), t0).0, 3);
        let (n, left) = c.add(
            "w",
            1,
            Duration::from_secs(10),
            t0 + Duration::from_secs(11),
        );
        assert_eq!((n, left), (1, Duration::from_secs(10)));
    }
}

/// Requests per day, plan and principal (`GET /admin/usage`), kept `retention_days`; each
/// day holds at most `MAX_USAGE_ENTRIES` (plan, principal) pairs, the rest counted together
/// under `usage::OVERFLOW`.
#[derive(Default)]
pub struct MemoryUsage {
    days: Mutex<std::collections::BTreeMap<u32, UsageDay>>,
}

/// (plan, principal) -> requests.
type UsageDay = HashMap<(String, String), u64>;

const MAX_USAGE_ENTRIES: usize = 100_000;

impl MemoryUsage {
    pub fn add(&self, entries: &[crate::usage::Entry], retention_days: u32, today: u32) {
        let mut days = self.days.lock().unwrap();
        let oldest = today.saturating_sub(retention_days);
        days.retain(|day, _| *day >= oldest);
        for e in entries.iter().filter(|e| e.day >= oldest) {
            let day = days.entry(e.day).or_default();
            let mut key = (e.plan.clone(), e.principal.clone());
            if day.len() >= MAX_USAGE_ENTRIES && !day.contains_key(&key) {
                key = (String::new(), crate::usage::OVERFLOW.to_string());
            }
            *day.entry(key).or_default() += e.requests;
        }
    }

    /// (plan, principal, requests) of each of `days`.
    pub fn read(&self, days: &[u32]) -> Vec<Vec<(String, String, u64)>> {
        let held = self.days.lock().unwrap();
        days.iter()
            .map(|d| {
                held.get(d)
                    .map(|m| {
                        m.iter()
                            .map(|((p, k), n)| (p.clone(), k.clone(), *n))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }
}
