//! What a plugin says about itself (its `describe` and `plan` exports), in host types: read once
//! at load, then used by `wicket check` (keys, grants, filter order), `wicket plugins`, and the
//! pipeline (hooks to skip, bodies to buffer, edits and forwards the host runs itself).

use super::bindings::description as wit;
use crate::config::{Capability, Location};

/// A plugin's description; `Description::default()` for a component that exports none.
#[derive(Debug, Clone, Default)]
pub struct Description {
    pub summary: String,
    pub capabilities: Vec<Capability>,
    /// `None`: the plugin does not declare its keys, so none are checked.
    pub config_keys: Option<Vec<ConfigKey>>,
    pub roles: Roles,
    /// Whether the component exports `describe` at all.
    pub declared: bool,
}

#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: String,
    pub kind: &'static str,
    pub required: bool,
    pub doc: String,
}

/// The roles the host's checks reason about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    pub auth: bool,
    pub answers_from_store: bool,
}

/// How much of a body a plugin needs before its hook runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyUse {
    #[default]
    None,
    Whole,
}

/// Header edits the host applies itself: removals, then sets of `{key}` templates.
#[derive(Debug, Clone, Default)]
pub struct HeaderEdits {
    pub remove: Vec<http::HeaderName>,
    pub set: Vec<(http::HeaderName, String)>,
}

/// A forward the host runs itself instead of calling the integration.
#[derive(Debug, Clone)]
pub struct Forward {
    pub url: String,
    pub timeout: std::time::Duration,
    /// Signed with the gateway's AWS credentials (the client's `Authorization` and
    /// `X-Amz-*` headers dropped first).
    pub sign: Option<crate::aws::SignSpec>,
}

impl Forward {
    /// Whether the request body must be read whole before the forward: to sign its hash.
    pub fn needs_body(&self) -> bool {
        self.sign
            .as_ref()
            .is_some_and(crate::aws::SignSpec::hashes_streams)
    }
}

/// What one configured plugin instance does. The default (for components without a `plan`
/// export) calls every hook and buffers no body up front.
#[derive(Debug, Clone)]
pub struct Plan {
    pub on_request: bool,
    pub on_response: bool,
    pub request_body: BodyUse,
    pub response_body: BodyUse,
    pub request_headers: Option<HeaderEdits>,
    pub response_headers: Option<HeaderEdits>,
    pub forward: Option<Forward>,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
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

impl Description {
    /// The host's view of a component's description. A capability name the host does not know
    /// is an error: the plugin would fail when it calls it.
    pub fn from_wit(d: wit::Description) -> Result<Description, String> {
        let mut capabilities = Vec::new();
        for name in &d.capabilities {
            match Capability::from_name(name) {
                Some(c) => capabilities.push(c),
                None => {
                    return Err(format!(
                        "describes capability {name:?}, which the gateway does not provide"
                    ))
                }
            }
        }
        Ok(Description {
            summary: d.summary,
            capabilities,
            config_keys: d.config_keys.map(|keys| {
                keys.into_iter()
                    .map(|k| ConfigKey {
                        name: k.name,
                        kind: kind_name(k.kind),
                        required: k.required,
                        doc: k.doc,
                    })
                    .collect()
            }),
            roles: Roles {
                auth: d.roles.contains(wit::Roles::AUTH),
                answers_from_store: d.roles.contains(wit::Roles::ANSWERS_FROM_STORE),
            },
            declared: true,
        })
    }

    /// Problems with the keys a config gives: each unknown key (at its own line) and each
    /// missing required key (at `table`, the config table or the plugin's section).
    pub fn check_keys(
        &self,
        plugin: &str,
        given: &[(String, Location)],
        table: &Location,
    ) -> Vec<(Location, String, String)> {
        let Some(keys) = &self.config_keys else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (key, location) in given {
            if !keys.iter().any(|k| k.name == *key) {
                let known: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                let takes = if known.is_empty() {
                    "it takes no keys".to_string()
                } else {
                    format!("it takes {}", known.join(", "))
                };
                problems.push((
                    location.clone(),
                    format!("plugins.{plugin}.config.{key}"),
                    format!("unknown key {key:?}; {takes}"),
                ));
            }
        }
        for key in keys.iter().filter(|k| k.required) {
            if !given.iter().any(|(g, _)| *g == key.name) {
                problems.push((
                    table.clone(),
                    format!("plugins.{plugin}.config"),
                    format!("needs the key {:?} ({})", key.name, key.doc),
                ));
            }
        }
        problems
    }

    /// The lines `wicket plugins` prints for a plugin called `name`.
    pub fn render(&self, name: &str, kinds: &[&str]) -> String {
        let mut out = format!("{name} ({})", kinds.join(", "));
        if self.summary.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!(": {}\n", self.summary));
        }
        let wanted: Vec<&str> = self
            .capabilities
            .iter()
            .map(|c| c.name())
            .filter(|c| !matches!(*c, "log" | "config"))
            .collect();
        if !wanted.is_empty() {
            out.push_str(&format!("  grants: {}\n", wanted.join(", ")));
        }
        let mut roles = Vec::new();
        if self.roles.auth {
            roles.push("auth");
        }
        if self.roles.answers_from_store {
            roles.push("answers-from-store");
        }
        if !roles.is_empty() {
            out.push_str(&format!("  roles: {}\n", roles.join(", ")));
        }
        match &self.config_keys {
            None if self.declared => out.push_str("  (config keys not declared)\n"),
            None => out.push_str("  (exports no description)\n"),
            Some(keys) => {
                for k in keys {
                    let req = if k.required { " (required)" } else { "" };
                    out.push_str(&format!("  {}{req}: {}\n", k.name, k.doc));
                }
            }
        }
        out
    }
}

impl Description {
    /// What `wicket plugins --json` prints for a plugin called `name`.
    pub fn to_json(&self, name: &str, kinds: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "kinds": kinds,
            "summary": self.summary,
            "capabilities": self.capabilities.iter().map(|c| c.name()).collect::<Vec<_>>(),
            "roles": {
                "auth": self.roles.auth,
                "answers_from_store": self.roles.answers_from_store,
            },
            "config_keys": self.config_keys.as_ref().map(|keys| keys.iter().map(|k| serde_json::json!({
                "name": k.name,
                "kind": k.kind,
                "required": k.required,
                "doc": k.doc,
            })).collect::<Vec<_>>()),
        })
    }
}

impl Plan {
    /// The host's view of a plan; header names are checked here, once.
    pub fn from_wit(p: wit::InstancePlan) -> Result<Plan, String> {
        Ok(Plan {
            on_request: p.on_request,
            on_response: p.on_response,
            request_body: body_use(p.request_body),
            response_body: body_use(p.response_body),
            request_headers: p.request_headers.map(header_edits).transpose()?,
            response_headers: p.response_headers.map(header_edits).transpose()?,
            forward: match p.forward {
                Some(f) => {
                    let scheme_ok = ["http://", "https://"].iter().any(|s| {
                        f.url
                            .get(..s.len())
                            .is_some_and(|p| p.eq_ignore_ascii_case(s))
                    });
                    if !scheme_ok || f.timeout_ms == 0 {
                        return Err(format!(
                            "plans a forward to {:?} within {} ms; needs an http(s) URL and a \
                             positive timeout",
                            f.url, f.timeout_ms
                        ));
                    }
                    let sign = match f.sign {
                        Some(s) => {
                            let mut spec = crate::aws::SignSpec::new(&s.service, &s.region)
                                .map_err(|e| format!("plans a signed forward: {e}"))?;
                            for name in &s.pass_headers {
                                match http::HeaderName::from_bytes(name.as_bytes()) {
                                    Ok(n) if n.as_str().starts_with("x-amz-") => {
                                        spec.pass_headers.push(n)
                                    }
                                    _ => {
                                        return Err(format!(
                                            "plans a signed forward passing {name:?}, which is \
                                             no X-Amz-* header name"
                                        ))
                                    }
                                }
                            }
                            Some(spec)
                        }
                        None => None,
                    };
                    Some(Forward {
                        url: f.url,
                        timeout: std::time::Duration::from_millis(f.timeout_ms.into()),
                        sign,
                    })
                }
                None => None,
            },
        })
    }
}

fn body_use(b: wit::BodyUse) -> BodyUse {
    match b {
        wit::BodyUse::None => BodyUse::None,
        wit::BodyUse::Whole => BodyUse::Whole,
    }
}

fn header_edits(e: wit::HeaderEdits) -> Result<HeaderEdits, String> {
    let name = |n: &str| {
        http::HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| format!("plans an edit of the invalid header name {n:?}"))
    };
    Ok(HeaderEdits {
        remove: e.remove.iter().map(|n| name(n)).collect::<Result<_, _>>()?,
        set: e
            .set
            .into_iter()
            .map(|(n, v)| Ok((name(&n)?, v)))
            .collect::<Result<_, String>>()?,
    })
}

fn kind_name(k: wit::ValueKind) -> &'static str {
    match k {
        wit::ValueKind::String => "string",
        wit::ValueKind::Integer => "integer",
        wit::ValueKind::Number => "number",
        wit::ValueKind::Boolean => "boolean",
        wit::ValueKind::Array => "array",
        wit::ValueKind::Table => "table",
        wit::ValueKind::Any => "any",
    }
}

/// The `description` interface holds only types: nothing for the host to implement.
impl wit::Host for super::HostState {}
