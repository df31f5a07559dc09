//! Wicket: an API gateway whose request steps are sandboxed WebAssembly components.

pub mod capabilities;
pub mod config;
pub mod router;
pub mod runtime;
pub mod state;
