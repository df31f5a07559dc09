//! Wicket: an API gateway whose request steps are sandboxed WebAssembly components.
//! `pipeline.rs` tells a request's story; `runtime/` runs plugins; `capabilities/` is what
//! plugins may call; `config/` turns the TOML file into validated types.

pub mod admin;
pub mod aws;
pub mod body;
pub mod canonical;
pub mod capabilities;
pub mod config;
pub mod dashboard;
pub mod deploy;
pub mod error;
pub mod forwarded;
pub mod gateway;
pub mod inbound;
pub mod openapi;
pub mod parallel;
pub mod pipeline;
pub mod plugin_test;
pub mod portal;
pub mod router;
pub mod runtime;
pub mod scaffold;
pub mod server;
pub mod state;
pub mod stats;
pub mod telemetry;
pub mod template;
pub mod usage;
pub mod websocket;
