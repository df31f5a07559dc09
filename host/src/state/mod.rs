//! Where plugin state lives: the `kv` store and the `counters`. Memory (the default) keeps
//! it in this process; Redis shares it between gateway instances. Both sit behind `State`,
//! chosen once by `[state]`; capabilities never know which one they talk to.

mod memory;
mod redis;

pub use memory::{MemoryCounters, MemoryKv, MemoryUsage};
pub use redis::RedisState;

use crate::config::StateConfig;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state backend misconfigured: {0}")]
    Config(String),
    #[error("state backend error: {0}")]
    Backend(String),
    #[error("state backend did not answer within {0:?}")]
    Timeout(Duration),
    #[error("value of {0} bytes is larger than the store")]
    TooLarge(usize),
}

/// The outcome of a token-bucket take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Take {
    pub allowed: bool,
    pub remaining: u64,
    pub retry_after: Duration,
    pub reset: Duration,
}

impl Take {
    /// The outcome for a bucket left with `tokens` after a take of `cost`.
    pub fn from_tokens(allowed: bool, tokens: f64, rate: f64, burst: u64, cost: u64) -> Take {
        let wait = |missing: f64| {
            if missing <= 0.0 || rate <= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(missing / rate)
            }
        };
        Take {
            allowed,
            remaining: tokens.floor().max(0.0) as u64,
            retry_after: if allowed {
                Duration::ZERO
            } else {
                wait(cost as f64 - tokens)
            },
            reset: wait(burst as f64 - tokens),
        }
    }
}

/// The state backend chosen by `[state]`.
pub enum State {
    Memory {
        kv: MemoryKv,
        counters: MemoryCounters,
        /// Boxed: the variant is large enough without it.
        usage: Box<MemoryUsage>,
    },
    Redis(Arc<RedisState>),
}

impl State {
    pub fn new(config: &StateConfig) -> Result<State, StateError> {
        match config {
            StateConfig::Memory { kv_bytes } => Ok(State::Memory {
                kv: MemoryKv::new(*kv_bytes),
                counters: MemoryCounters::default(),
                usage: Box::default(),
            }),
            StateConfig::Redis { url, timeout } => {
                Ok(State::Redis(RedisState::new(url, *timeout)?))
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StateError> {
        match self {
            State::Memory { kv, .. } => Ok(kv.get(key)),
            State::Redis(r) => r.get(key).await,
        }
    }

    pub async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StateError> {
        match self {
            State::Memory { kv, .. } => {
                let len = value.len();
                if kv.set(key, value, ttl) {
                    Ok(())
                } else {
                    Err(StateError::TooLarge(len))
                }
            }
            State::Redis(r) => r.set(key, value, ttl).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StateError> {
        match self {
            State::Memory { kv, .. } => {
                kv.delete(key);
                Ok(())
            }
            State::Redis(r) => r.delete(key).await,
        }
    }

    pub async fn take(
        &self,
        key: &str,
        rate: f64,
        burst: u64,
        cost: u64,
    ) -> Result<Take, StateError> {
        match self {
            State::Memory { counters, .. } => {
                Ok(counters.take(key, rate, burst, cost, Instant::now()))
            }
            State::Redis(r) => r.take(key, rate, burst, cost).await,
        }
    }

    pub async fn add(
        &self,
        key: &str,
        delta: u64,
        window: Duration,
    ) -> Result<(u64, Duration), StateError> {
        match self {
            State::Memory { counters, .. } => Ok(counters.add(key, delta, window, Instant::now())),
            State::Redis(r) => r.add(key, delta, window).await,
        }
    }

    /// Add request counts per day, plan and principal (`usage.rs`); kept `retention_days`.
    pub async fn usage_add(
        &self,
        entries: &[crate::usage::Entry],
        retention_days: u32,
    ) -> Result<(), StateError> {
        match self {
            State::Memory { usage, .. } => {
                usage.add(entries, retention_days, crate::usage::date::today());
                Ok(())
            }
            State::Redis(r) => r.usage_add(entries, retention_days).await,
        }
    }

    /// (plan, principal, requests) of each of `days`.
    pub async fn usage_read(
        &self,
        days: &[u32],
    ) -> Result<Vec<Vec<(String, String, u64)>>, StateError> {
        match self {
            State::Memory { usage, .. } => Ok(usage.read(days)),
            State::Redis(r) => r.usage_read(days).await,
        }
    }
}
