//! The plugins that ship inside the binary: ordinary components built from `plugins/` by the
//! build script. Everything else about them (kind, capabilities, config keys, roles) they say
//! themselves through their `describe` export, as any external plugin does.
//!
//! Each ships twice: as its component, and as that component compiled for this host at build
//! time with the runtime's engine settings, so starting a gateway compiles nothing.

use std::path::Path;
use wasmtime::component::Component;
use wasmtime::Engine;

/// A built-in plugin: its component, and the same compiled at build time.
pub struct Builtin {
    /// As in `builtin = "..."`.
    pub name: &'static str,
    pub wasm: &'static [u8],
    precompiled: &'static [u8],
}

macro_rules! builtin {
    ($name:literal, $file:literal) => {
        Builtin {
            name: $name,
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".wasm")),
            precompiled: include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".cwasm")),
        }
    };
}

/// Every built-in, in the order `wicket plugins` lists them.
pub static ALL: &[Builtin] = &[
    builtin!("http", "wicket_plugin_http"),
    builtin!("mock", "wicket_plugin_mock"),
    builtin!("headers", "wicket_plugin_headers"),
    builtin!("api-key", "wicket_plugin_api_key"),
    builtin!("cors", "wicket_plugin_cors"),
    builtin!("validate", "wicket_plugin_validate"),
    builtin!("sigv4", "wicket_plugin_sigv4"),
    builtin!("xml-json", "wicket_plugin_xml_json"),
    builtin!("jwt", "wicket_plugin_jwt"),
    builtin!("quota", "wicket_plugin_quota"),
    builtin!("introspect", "wicket_plugin_introspect"),
    builtin!("cache", "wicket_plugin_cache"),
    builtin!("json-map", "wicket_plugin_json_map"),
    builtin!("lambda", "wicket_plugin_lambda"),
];

/// The built-in `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    ALL.iter().find(|b| b.name == name)
}

/// The names of every built-in, for error messages.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|b| b.name).collect()
}

impl Builtin {
    /// The compiled component. The build-time artifact is used when it fits `engine`:
    /// wasmtime checks its version, settings and the CPU features it was compiled for. When it
    /// does not (a binary built on another machine, or an engine setting made outside
    /// `engine_settings`), the component is compiled now, through the disk cache, and a
    /// warning says why start-up is slow.
    pub fn component(
        &self,
        engine: &Engine,
        cache_dir: Option<&Path>,
    ) -> wasmtime::Result<Component> {
        // SAFETY: the bytes were written by `Engine::precompile_component` in our build
        // script and are embedded read-only in this binary; `deserialize` checks that they
        // were made by this wasmtime version for this engine's configuration.
        match unsafe { Component::deserialize(engine, self.precompiled) } {
            Ok(component) => Ok(component),
            Err(e) => {
                tracing::warn!(
                    plugin = self.name,
                    "the built-in's precompiled code does not fit this engine, compiling it: {e:#}"
                );
                super::cache::compile(engine, self.wasm, cache_dir)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's engine (with its pooling allocator and the rest) accepts every embedded
    /// artifact: a code-generation setting made outside `engine_settings` fails here rather
    /// than silently slowing every start.
    #[test]
    fn every_precompiled_builtin_fits_the_runtime_engine() {
        let state =
            crate::state::State::new(&crate::config::StateConfig::Memory { kv_bytes: 1 << 20 })
                .unwrap();
        let services = std::sync::Arc::new(crate::capabilities::Services {
            state: state.into(),
            http: crate::capabilities::http::Client::new(1 << 20),
            aws: std::sync::Arc::new(crate::aws::Keychain::from_process()),
        });
        let runtime = super::super::Runtime::with_settings(
            &crate::config::RuntimeConfig::default(),
            64 << 20,
            services,
        )
        .unwrap();
        for builtin in ALL {
            // SAFETY: as in `Builtin::component`.
            unsafe { Component::deserialize(&runtime.engine, builtin.precompiled) }
                .unwrap_or_else(|e| panic!("{}: {e:#}", builtin.name));
        }
    }
}
