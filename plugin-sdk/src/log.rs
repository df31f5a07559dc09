//! Logging into the gateway's log, tagged by the host with the plugin name and the request id
//! (always granted).
//!
//! ```ignore
//! wicket_plugin_sdk::log::info("cache miss");
//! wicket_plugin_sdk::warn!("upstream answered {}", status);
//! ```

pub use crate::wit::log::Level;

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    crate::wit::log::log(level, message);
}

/// Writes `message` at level trace.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes `message` at level debug.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes `message` at level info.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes `message` at level warn.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes `message` at level error.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Logs a `format!`-style message at level trace.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::trace(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at level debug.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::debug(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at level info.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::info(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at level warn.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::warn(&::std::format!($($arg)+)) };
}

/// Logs a `format!`-style message at level error.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::error(&::std::format!($($arg)+)) };
}
