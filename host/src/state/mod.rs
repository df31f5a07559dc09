//! Where plugin state lives: the `kv` store and the `counters`. Memory is the default; the
//! Redis backend (shared by several gateway instances) plugs in behind the same types.

mod memory;

pub use memory::{MemoryCounters, MemoryKv};

use crate::config::StateConfig;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state backend {0} is not available in this build")]
    Unsupported(&'static str),
}

/// The outcome of a token-bucket take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Take {
    pub allowed: bool,
    pub remaining: u64,
    pub retry_after: Duration,
    pub reset: Duration,
}

/// The state backends chosen by `[state]`.
pub struct State {
    pub kv: MemoryKv,
    pub counters: MemoryCounters,
}

impl State {
    pub fn new(config: &StateConfig) -> Result<State, StateError> {
        match config {
            StateConfig::Memory { kv_bytes } => Ok(State {
                kv: MemoryKv::new(*kv_bytes),
                counters: MemoryCounters::default(),
            }),
            StateConfig::Redis { .. } => Err(StateError::Unsupported("redis")),
        }
    }
}
