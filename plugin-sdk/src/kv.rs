//! The shared key-value store (grant: `kv`).
//!
//! Keys are namespaced per plugin instance by the host. Values are bytes; the `_string`
//! variants store UTF-8 text.

use std::time::Duration;

/// The value under `key`, if present and not expired.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
    crate::wit::kv::get(key)
}

/// The value under `key` as text (invalid UTF-8 replaced), if present and not expired.
pub fn get_string(key: &str) -> Result<Option<String>, String> {
    Ok(get(key)?.map(|bytes| match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

/// Stores `value` under `key`, expiring after `ttl` when given (rounded down to milliseconds).
pub fn set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), String> {
    crate::wit::kv::set(key, value, ttl.map(duration_ms))
}

/// Stores the text `value` under `key`; see [`set`].
pub fn set_string(key: &str, value: &str, ttl: Option<Duration>) -> Result<(), String> {
    set(key, value.as_bytes(), ttl)
}

/// Stores `head` followed by `resp`'s body under `key` (expiring after `ttl`), without the
/// body passing through the plugin: a streaming body goes on to the client as it arrives and
/// the host stores the copy it kept once the body has ended. Nothing is stored when `head` and
/// the body together pass `max_bytes` (the host bounds it at 64 MiB), or when the body ends
/// in an error. Returns once a whole body is stored, or at once for a streaming one.
pub fn set_with_body(
    key: &str,
    head: &[u8],
    resp: &crate::Response,
    ttl: Option<Duration>,
    max_bytes: u64,
) -> Result<(), String> {
    crate::wit::kv::set_with_body(key, head, resp, ttl.map(duration_ms), max_bytes)
}

/// Removes `key`.
pub fn delete(key: &str) -> Result<(), String> {
    crate::wit::kv::delete(key)
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
