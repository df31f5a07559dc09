//! The plugins that ship inside the binary. They are ordinary components built from
//! `plugins/` by the build script; this table adds what the host must know before loading
//! them: which world they implement, what they are granted, and which config keys they take
//! (so `wicket check` can point at a typo without running the plugin).

use super::{Capability, PluginKind};

pub struct ConfigKey {
    pub name: &'static str,
    pub required: bool,
    pub doc: &'static str,
}

pub struct Builtin {
    pub name: &'static str,
    pub kind: PluginKind,
    pub summary: &'static str,
    pub grants: &'static [Capability],
    pub keys: &'static [ConfigKey],
    pub wasm: &'static [u8],
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "builtin {:?}", self.name)
    }
}

impl Builtin {
    /// Problems with a plugin's `config` table: unknown keys and missing required ones.
    pub fn check_config(&self, table: &toml::Table) -> Vec<String> {
        let mut problems = Vec::new();
        for key in table.keys() {
            if !self.keys.iter().any(|k| k.name == key) {
                let known: Vec<&str> = self.keys.iter().map(|k| k.name).collect();
                problems.push(format!(
                    "unknown key {key:?} for builtin {:?}; it takes {}",
                    self.name,
                    known.join(", ")
                ));
            }
        }
        for key in self.keys.iter().filter(|k| k.required) {
            if !table.contains_key(key.name) {
                problems.push(format!(
                    "builtin {:?} needs the key {:?}",
                    self.name, key.name
                ));
            }
        }
        problems
    }
}

macro_rules! wasm {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".wasm"))
    };
}

pub static ALL: &[Builtin] = &[
    Builtin {
        name: "http",
        kind: PluginKind::Integration,
        summary: "proxies to an HTTP backend through pooled keep-alive connections",
        grants: &[Capability::Http],
        keys: &[
            ConfigKey {
                name: "url",
                required: true,
                doc: "backend URL; {name} is replaced by the path parameter `name`, the client's query string is appended",
            },
            ConfigKey {
                name: "timeout_ms",
                required: false,
                doc: "time for the whole backend response, default 29000; past it the client gets 504",
            },
        ],
        wasm: wasm!("wicket_plugin_http"),
    },
    Builtin {
        name: "mock",
        kind: PluginKind::Integration,
        summary: "answers with a fixed response",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "status",
                required: false,
                doc: "status code, default 200",
            },
            ConfigKey {
                name: "headers",
                required: false,
                doc: "table of header name -> value template ({request_id}, {param.NAME}, any context key)",
            },
            ConfigKey {
                name: "body",
                required: false,
                doc: "a string template sent as text, or any other value sent as JSON",
            },
        ],
        wasm: wasm!("wicket_plugin_mock"),
    },
    Builtin {
        name: "headers",
        kind: PluginKind::Filter,
        summary: "sets and removes request and response headers",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "request",
                required: false,
                doc: "{ set = { name = \"value template\" }, remove = [\"name\"] } applied before the integration",
            },
            ConfigKey {
                name: "response",
                required: false,
                doc: "the same for the response, applied on the way out",
            },
        ],
        wasm: wasm!("wicket_plugin_headers"),
    },
];

pub fn find(name: &str) -> Option<&'static Builtin> {
    ALL.iter().find(|b| b.name == name)
}
