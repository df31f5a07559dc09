//! A plugin's description of itself (the worlds' `describe` and `plan` exports), read by the host once at load.
//!
//! The [`Description`] says what the plugin is whatever its config: a summary line, the
//! capabilities it calls, its config keys (derived from the settings type with
//! `#[derive(ConfigKeys)]`), and its roles. The [`Plan`] says what one configured instance does:
//! which hooks do something, whether it needs a body whole, and work the host can do itself
//! (fixed header edits, a plain forward) without calling into the plugin per request.
//!
//! ```ignore
//! #[derive(serde::Deserialize, ConfigKeys)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     /// request header holding the key, default x-api-key
//!     #[serde(default)]
//!     header: Option<String>,
//! }
//!
//! impl Filter for ApiKey {
//!     fn describe() -> Description {
//!         Description::new("admits requests carrying a known API key")
//!             .config::<Settings>()
//!             .auth()
//!     }
//!     // ...
//! }
//! ```

pub use wicket_plugin_sdk_derive::ConfigKeys;

/// The kind of value a config key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A number (integer or float).
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array,
    /// A table (JSON object).
    Table,
    /// Several kinds are accepted.
    Any,
}

/// One key of a plugin's `config` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKey {
    /// The key as written in TOML.
    pub name: String,
    /// Its kind.
    pub kind: ValueKind,
    /// Whether a config without it is refused.
    pub required: bool,
    /// One line: what it does, and its default.
    pub doc: String,
}

/// A settings type whose fields are the plugin's config keys; derive it with
/// `#[derive(ConfigKeys)]` beside `#[derive(Deserialize)]`.
pub trait ConfigKeys {
    /// The keys, in field order.
    fn config_keys() -> Vec<ConfigKey>;
}

/// What a plugin is, whatever its config. See the module docs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Description {
    /// One line: what the plugin does.
    pub summary: String,
    /// Capabilities it calls, by their names in `grants`.
    pub capabilities: Vec<String>,
    /// Its config keys; `None`: not declared, any key accepted.
    pub config_keys: Option<Vec<ConfigKey>>,
    /// Decides whether the caller may go on.
    pub auth: bool,
    /// May answer from data stored for earlier requests (a cache): must come after auth.
    pub answers_from_store: bool,
}

impl Description {
    /// A description with a summary line, no declared keys and no roles.
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            ..Self::default()
        }
    }

    /// Declares the config keys: the fields of `T`.
    pub fn config<T: ConfigKeys>(mut self) -> Self {
        self.config_keys = Some(T::config_keys());
        self
    }

    /// Declares that the plugin takes no config keys at all.
    pub fn no_config(mut self) -> Self {
        self.config_keys = Some(Vec::new());
        self
    }

    /// The capabilities the plugin calls (`kv`, `counters`, `http`, `metrics`).
    pub fn capabilities(mut self, names: &[&str]) -> Self {
        self.capabilities = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// The plugin decides whether the caller may go on (API keys, signatures, tokens).
    pub fn auth(mut self) -> Self {
        self.auth = true;
        self
    }

    /// The plugin may answer from data stored for earlier requests.
    pub fn answers_from_store(mut self) -> Self {
        self.answers_from_store = true;
        self
    }
}

/// How much of a body a configured plugin uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyUse {
    /// Never reads or replaces it: the body streams past (asking anyway still works: the host
    /// buffers it then).
    #[default]
    None,
    /// Reads or replaces it: the host buffers it whole before the hook.
    Whole,
}

/// Header changes the host applies in place of a hook: removals first, then sets; values are
/// `{key}` templates of the request context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Header names removed.
    pub remove: Vec<String>,
    /// Header names and value templates set.
    pub set: Vec<(String, String)>,
}

/// An integration's whole behaviour as a forward the host runs itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Backend URL; `{name}` / `{name+}` are the route's path parameters. The client's query
    /// is appended.
    pub url: String,
    /// Time for the response head.
    pub timeout_ms: u32,
    /// Signed by the host with the gateway's AWS credentials (the client's `Authorization`
    /// and `X-Amz-*` headers dropped first).
    pub sign: Option<SignSpec>,
}

/// AWS Signature Version 4 for a planned forward: what the host signs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignSpec {
    /// The service's signing name (`s3`, `dynamodb`, `sqs`, `lambda`, ...).
    pub service: String,
    /// The region of the credential scope.
    pub region: String,
    /// Client `X-Amz-*` headers kept and signed (lower case); every other one is dropped.
    pub pass_headers: Vec<String>,
}

/// What one configured instance does. The default calls every hook and reads no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Whether `on_request` does anything for this config.
    pub on_request: bool,
    /// Whether `on_response` does anything for this config.
    pub on_response: bool,
    /// What the request hook (or `handle`) does with the request body.
    pub request_body: BodyUse,
    /// What `on_response` does with the response body.
    pub response_body: BodyUse,
    /// Applied by the host instead of calling `on_request`.
    pub request_headers: Option<HeaderEdits>,
    /// Applied by the host instead of calling `on_response`.
    pub response_headers: Option<HeaderEdits>,
    /// Run by the host instead of calling `handle`.
    pub forward: Option<Forward>,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            on_request: true,
            on_response: true,
            request_body: BodyUse::None,
            response_body: BodyUse::None,
            request_headers: None,
            response_headers: None,
            forward: None,
        }
    }
}

impl Plan {
    /// Whether `on_request` does anything.
    pub fn on_request(mut self, yes: bool) -> Self {
        self.on_request = yes;
        self
    }

    /// Whether `on_response` does anything.
    pub fn on_response(mut self, yes: bool) -> Self {
        self.on_response = yes;
        self
    }

    /// The request hook needs the request body whole.
    pub fn request_body(mut self, use_: BodyUse) -> Self {
        self.request_body = use_;
        self
    }

    /// `on_response` needs the response body whole.
    pub fn response_body(mut self, use_: BodyUse) -> Self {
        self.response_body = use_;
        self
    }

    /// The host applies `edits` to the request instead of calling `on_request`.
    pub fn request_headers(mut self, edits: HeaderEdits) -> Self {
        self.on_request = false;
        self.request_headers = Some(edits);
        self
    }

    /// The host applies `edits` to the response instead of calling `on_response`.
    pub fn response_headers(mut self, edits: HeaderEdits) -> Self {
        self.on_response = false;
        self.response_headers = Some(edits);
        self
    }

    /// The host runs `forward` instead of calling `handle`.
    pub fn forward(mut self, forward: Forward) -> Self {
        self.forward = Some(forward);
        self
    }
}

/// Conversions into the WIT types (one copy, shared by the filter and integration bindings).
macro_rules! into_wit {
    ($wit:path) => {
        const _: () = {
            use $wit as w;

            impl From<ValueKind> for w::ValueKind {
                fn from(k: ValueKind) -> Self {
                    match k {
                        ValueKind::String => w::ValueKind::String,
                        ValueKind::Integer => w::ValueKind::Integer,
                        ValueKind::Number => w::ValueKind::Number,
                        ValueKind::Boolean => w::ValueKind::Boolean,
                        ValueKind::Array => w::ValueKind::Array,
                        ValueKind::Table => w::ValueKind::Table,
                        ValueKind::Any => w::ValueKind::Any,
                    }
                }
            }

            impl From<Description> for w::Description {
                fn from(d: Description) -> Self {
                    let mut roles = w::Roles::empty();
                    if d.auth {
                        roles = roles | w::Roles::AUTH;
                    }
                    if d.answers_from_store {
                        roles = roles | w::Roles::ANSWERS_FROM_STORE;
                    }
                    w::Description {
                        summary: d.summary,
                        capabilities: d.capabilities,
                        config_keys: d.config_keys.map(|keys| {
                            keys.into_iter()
                                .map(|k| w::ConfigKey {
                                    name: k.name,
                                    kind: k.kind.into(),
                                    required: k.required,
                                    doc: k.doc,
                                })
                                .collect()
                        }),
                        roles,
                    }
                }
            }

            impl From<BodyUse> for w::BodyUse {
                fn from(b: BodyUse) -> Self {
                    match b {
                        BodyUse::None => w::BodyUse::None,
                        BodyUse::Whole => w::BodyUse::Whole,
                    }
                }
            }

            impl From<HeaderEdits> for w::HeaderEdits {
                fn from(e: HeaderEdits) -> Self {
                    w::HeaderEdits {
                        remove: e.remove,
                        set: e.set,
                    }
                }
            }

            impl From<Plan> for w::InstancePlan {
                fn from(p: Plan) -> Self {
                    w::InstancePlan {
                        on_request: p.on_request,
                        on_response: p.on_response,
                        request_body: p.request_body.into(),
                        response_body: p.response_body.into(),
                        request_headers: p.request_headers.map(Into::into),
                        response_headers: p.response_headers.map(Into::into),
                        forward: p.forward.map(|f| w::Forward {
                            url: f.url,
                            timeout_ms: f.timeout_ms,
                            sign: f.sign.map(|s| w::SignSpec {
                                service: s.service,
                                region: s.region,
                                pass_headers: s.pass_headers,
                            }),
                        }),
                    }
                }
            }
        };
    };
}

into_wit!(crate::filter_bindings::wicket::plugin::description);

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    #[derive(serde::Deserialize, ConfigKeys)]
    struct Inner {
        /// nested key
        #[serde(default)]
        depth: u32,
    }

    #[allow(dead_code)]
    #[derive(serde::Deserialize, ConfigKeys)]
    struct Settings {
        /// backend URL;
        /// the query is appended
        url: String,
        /// time, default 29000
        #[serde(default = "default_timeout")]
        timeout_ms: u32,
        /// optional name
        name: Option<String>,
        #[serde(rename = "max-bytes")]
        max_bytes: u64,
        /// a list
        #[serde(default)]
        methods: Vec<String>,
        /// a table
        #[serde(default)]
        set: std::collections::BTreeMap<String, String>,
        /// either
        #[config(kind = "any")]
        #[serde(default)]
        remove: Vec<String>,
        #[serde(skip)]
        cached: u8,
        #[serde(flatten)]
        inner: Inner,
    }

    fn default_timeout() -> u32 {
        29_000
    }

    #[test]
    fn derives_keys_from_fields_and_serde_attributes() {
        let keys = Settings::config_keys();
        let seen: Vec<(&str, ValueKind, bool, &str)> = keys
            .iter()
            .map(|k| (k.name.as_str(), k.kind, k.required, k.doc.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "url",
                    ValueKind::String,
                    true,
                    "backend URL; the query is appended"
                ),
                (
                    "timeout_ms",
                    ValueKind::Integer,
                    false,
                    "time, default 29000"
                ),
                ("name", ValueKind::String, false, "optional name"),
                ("max-bytes", ValueKind::Integer, true, ""),
                ("methods", ValueKind::Array, false, "a list"),
                ("set", ValueKind::Table, false, "a table"),
                ("remove", ValueKind::Any, false, "either"),
                ("depth", ValueKind::Integer, false, "nested key"),
            ]
        );
    }

    #[test]
    fn container_defaults_make_every_key_optional() {
        #[allow(dead_code)]
        #[derive(Default, serde::Deserialize, ConfigKeys)]
        #[serde(default, rename_all = "camelCase")]
        struct Loose {
            max_age: u32,
        }
        let keys = Loose::config_keys();
        assert_eq!(keys[0].name, "maxAge");
        assert!(!keys[0].required);
    }

    #[test]
    fn plan_defaults_call_every_hook_and_read_no_body() {
        let plan = Plan::default();
        assert!(plan.on_request && plan.on_response);
        assert_eq!(plan.request_body, BodyUse::None);
        let plan = Plan::default().request_headers(HeaderEdits::default());
        assert!(!plan.on_request, "the host applies the edits instead");
    }
}
