//! Failures told in a plugin author's terms: a trap with the guest's backtrace (function
//! names when the component keeps its name section) and what usually causes it, and an
//! import the host cannot link with what the host does provide. The messages go to the log
//! line of the failed request, to `wicket check` and to `wicket plugin test`.

use wasmtime::{Trap, WasmBacktrace};

/// What the host links, for the messages about imports it cannot satisfy.
pub const PROVIDED: &str = "wicket:plugin@0.1.0 (types, log, config, kv, counters, http, \
metrics, description), WASI 0.2 (cli, clocks, random, io, filesystem, sockets) and wasi:http 0.2 \
(types, outgoing-handler)";

/// What to do about an import the host does not provide.
pub const IMPORT_HINT: &str = "build against the WIT contract shipped with this gateway (`wicket \
plugin new` writes it into a project; worlds filter, integration, minimal-filter) and see what \
the component imports with `wasm-tools component wit FILE.wasm`";

/// The most guest frames a trap message shows.
const MAX_FRAMES: usize = 16;

/// A trap or other failure inside a plugin call: the cause, the guest backtrace, and a hint.
pub fn trap(err: &wasmtime::Error) -> String {
    let cause = err.root_cause().to_string();
    let mut out = cause.clone();
    if let Some(bt) = err.downcast_ref::<WasmBacktrace>() {
        let frames = bt.frames();
        if !frames.is_empty() {
            out.push_str("\n  guest backtrace (innermost first):");
            for (i, frame) in frames.iter().take(MAX_FRAMES).enumerate() {
                let name = match frame.func_name() {
                    // `{:#}`: without the hash suffix; names that are not Rust's stay as
                    // they are (C's, an export's `wicket:plugin/hooks@0.1.0#on-request`).
                    Some(n) => format!("{:#}", rustc_demangle::demangle(n)),
                    None => format!("<function {} (no name section)>", frame.func_index()),
                };
                let at = frame
                    .symbols()
                    .iter()
                    .find_map(|s| {
                        let file = s.file()?;
                        Some(match s.line() {
                            Some(line) => format!(" at {file}:{line}"),
                            None => format!(" at {file}"),
                        })
                    })
                    .unwrap_or_default();
                out.push_str(&format!("\n    {i}: {name}{at}"));
            }
            if frames.len() > MAX_FRAMES {
                out.push_str(&format!("\n    ... {} more", frames.len() - MAX_FRAMES));
            }
            if frames.iter().all(|f| f.func_name().is_none()) {
                out.push_str(
                    "\n  (no function names: the component has no name section; build it \
                     without stripping symbols, e.g. Rust `strip = \"debuginfo\"`, to see them)",
                );
            }
        }
    }
    out.push_str("\n  what to do: ");
    out.push_str(hint(err, &cause));
    out.push_str(
        "; the request was answered 500 and the instance dropped. Reproduce it with `wicket \
         plugin test FILE.wasm` and the same request.",
    );
    out
}

fn hint(err: &wasmtime::Error, cause: &str) -> &'static str {
    if cause.contains("borrow handles still remain") {
        return "the plugin returned while still holding a borrowed handle; with wit-bindgen's C \
                bindings, drop each borrow it received (`..._borrow_..._drop`) before returning";
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => {
            "an `unreachable` instruction: a panic, abort or failed assertion in the plugin \
             (Rust prints the panic message to stderr: see the plugin's stderr line before this)"
        }
        Some(Trap::MemoryOutOfBounds) | Some(Trap::TableOutOfBounds) => {
            "an out-of-bounds access: a bug in the plugin (a bad pointer or index)"
        }
        Some(Trap::StackOverflow) => "the plugin's stack overflowed: deep or unbounded recursion",
        Some(Trap::IntegerDivisionByZero) | Some(Trap::IntegerOverflow) => {
            "an integer division by zero or overflow in the plugin"
        }
        Some(Trap::IndirectCallToNull) | Some(Trap::BadSignature) => {
            "a call through a bad function pointer in the plugin"
        }
        _ => "a bug in the plugin, or a call it made the host refused (see the line above)",
    }
}

/// A component the linker refused: the import the host lacks, what the host provides, and
/// what to do.
pub fn link_error(err: &wasmtime::Error) -> String {
    let text = format!("{err:#}");
    let import = text
        .split('`')
        .nth(1)
        .filter(|_| text.contains("imports"))
        .map(str::to_string);
    match import {
        Some(name) => format!(
            "cannot link: it imports `{name}`, which this gateway does not provide in that form \
             ({text}). The gateway provides {PROVIDED}; {IMPORT_HINT}"
        ),
        None => format!("cannot link: {text}. The gateway provides {PROVIDED}; {IMPORT_HINT}"),
    }
}

/// An import outside everything the host links.
pub fn unknown_import(name: &str) -> String {
    format!(
        "imports `{name}`, which the gateway does not provide. The gateway provides {PROVIDED}; \
         {IMPORT_HINT}"
    )
}
