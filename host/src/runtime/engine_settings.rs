//! The engine settings that decide how code is compiled. The runtime builds its engine from
//! them, and so does the build script when it precompiles the built-in plugins: a setting
//! that changes code generation must be made here, or the embedded artifacts stop matching
//! (the runtime would then notice at load and compile them again, which is slow, not wrong).
//! This file is also compiled into `host/build.rs` (`#[path]`), so it uses nothing but
//! wasmtime.

/// A `wasmtime::Config` with every code-generation setting of Wicket's engine.
pub fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    config
}
