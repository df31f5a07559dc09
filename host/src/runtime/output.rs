//! A plugin's standard output and error, as log lines: a `println!` (Rust), `print` (Python)
//! or `console.log` (JavaScript) left in a plugin shows up tagged with the plugin's name and
//! the request it was serving, instead of vanishing. Lines are capped in length, and in number
//! per plugin per second, so a chatty or hostile plugin cannot flood the log.

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line logged; a longer one is cut into pieces of this size.
const MAX_LINE: usize = 4096;
/// Lines a plugin may log per second (all its instances together); the rest are counted and
/// reported once the second is over.
pub const LINES_PER_SECOND: u64 = 100;

/// Per plugin, shared by its instances: the rate limit's window.
#[derive(Default)]
pub struct OutputLimit {
    /// The current second (Unix time) in the high 32 bits, lines seen in it in the low 32.
    window: AtomicU64,
    dropped: AtomicU64,
}

impl OutputLimit {
    /// Whether one more line may be logged now; reports what the last window dropped.
    fn admit(&self, plugin: &str) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            & 0xffff_ffff;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (second, count) = (current >> 32, current & 0xffff_ffff);
            let next = if second == now {
                (now << 32) | (count + 1).min(0xffff_ffff)
            } else {
                (now << 32) | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if second != now {
                        let dropped = self.dropped.swap(0, Ordering::Relaxed);
                        if dropped > 0 {
                            tracing::warn!(
                                plugin,
                                dropped,
                                "plugin output over {LINES_PER_SECOND} lines a second: lines dropped"
                            );
                        }
                    }
                    let admitted = next & 0xffff_ffff <= LINES_PER_SECOND;
                    if !admitted {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    return admitted;
                }
                Err(seen) => current = seen,
            }
        }
    }
}

/// What a store's output stream needs to tag its lines: the plugin, and the request the
/// instance is serving now (set at the start of each call).
pub struct OutputTag {
    pub plugin: Arc<str>,
    pub limit: Arc<OutputLimit>,
    pub request_id: Mutex<String>,
}

/// `stdout` or `stderr` of one store.
#[derive(Clone)]
pub struct PluginOutput {
    pub tag: Arc<OutputTag>,
    pub stream: &'static str,
}

impl IsTerminal for PluginOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            out: self.clone(),
            partial: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.2 streams are linked (`p2_stream`); a sink keeps the trait whole.
        Box::new(tokio::io::sink())
    }
}

/// Collects bytes into lines and logs each complete one.
struct LineWriter {
    out: PluginOutput,
    partial: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let tag = &self.out.tag;
        if !tag.limit.admit(&tag.plugin) {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let request_id = tag.request_id.lock().unwrap().clone();
        tracing::info!(
            target: "wicket::plugin_output",
            plugin = &*tag.plugin,
            request_id,
            stream = self.out.stream,
            "{text}"
        );
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut rest = &bytes[..];
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..end]);
            for piece in line.chunks(MAX_LINE) {
                self.emit(piece);
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE {
            let piece: Vec<u8> = self.partial.drain(..MAX_LINE).collect();
            self.emit(&piece);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl Drop for LineWriter {
    /// A last line without a newline is still logged when the instance goes away.
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_admits_a_burst_per_second_then_drops() {
        let limit = OutputLimit::default();
        let admitted = (0..LINES_PER_SECOND * 2)
            .filter(|_| limit.admit("p"))
            .count() as u64;
        // The loop may straddle a second: at least the burst, at most two.
        assert!((LINES_PER_SECOND..=2 * LINES_PER_SECOND).contains(&admitted));
    }
}
