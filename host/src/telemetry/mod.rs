//! What the gateway tells about each request besides its metrics: the access log line
//! (`access_log.rs`, `[server.access_log]`) and OpenTelemetry trace spans (`trace.rs`, exported
//! by `otlp.rs` to `[telemetry] otlp_endpoint`).
//!
//! Neither ever waits on its output: a request formats its line (or its spans) and hands them
//! to a bounded queue read by a thread of their own; when the queue is full they are dropped
//! and counted. `observe.rs` is what the pipeline carries through a request to collect them,
//! and costs a branch per plugin call when neither wants anything.

pub mod access_log;
pub mod observe;
pub mod otlp;
pub mod trace;

pub use access_log::AccessLog;
pub use observe::{Observation, Phase};
pub use trace::Tracer;
