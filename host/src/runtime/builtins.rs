//! The plugins that ship inside the binary: ordinary components built from `plugins/` by the
//! build script. Everything else about them (kind, capabilities, config keys, roles) they say
//! themselves through their `describe` export, as any external plugin does.

macro_rules! wasm {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".wasm"))
    };
}

/// Name (as in `builtin = "..."`) and component bytes, in the order `wicket plugins` lists them.
pub static ALL: &[(&str, &[u8])] = &[
    ("http", wasm!("wicket_plugin_http")),
    ("mock", wasm!("wicket_plugin_mock")),
    ("headers", wasm!("wicket_plugin_headers")),
    ("api-key", wasm!("wicket_plugin_api_key")),
    ("cors", wasm!("wicket_plugin_cors")),
    ("validate", wasm!("wicket_plugin_validate")),
    ("sigv4", wasm!("wicket_plugin_sigv4")),
    ("xml-json", wasm!("wicket_plugin_xml_json")),
    ("jwt", wasm!("wicket_plugin_jwt")),
    ("quota", wasm!("wicket_plugin_quota")),
    ("introspect", wasm!("wicket_plugin_introspect")),
    ("cache", wasm!("wicket_plugin_cache")),
    ("json-map", wasm!("wicket_plugin_json_map")),
];

/// The component of the built-in `name`.
pub fn find(name: &str) -> Option<&'static [u8]> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, wasm)| *wasm)
}

/// The names of every built-in, for error messages.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|(n, _)| *n).collect()
}
