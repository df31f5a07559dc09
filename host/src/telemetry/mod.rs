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

/// Queue `msg`, waiting up to `timeout` for room: for the rare caller that may wait (a flush
/// at exit), never for a request.
fn send_within<T>(
    tx: &std::sync::mpsc::SyncSender<T>,
    mut msg: T,
    timeout: std::time::Duration,
) -> bool {
    use std::sync::mpsc::TrySendError;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match tx.try_send(msg) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                msg = m;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(TrySendError::Full(_)) => return false,
        }
    }
}
