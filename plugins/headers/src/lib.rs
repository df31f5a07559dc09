//! `headers` filter: removes and sets request headers on the way in and response headers on
//! the way out.
//!
//! ```toml
//! [plugins.tag]
//! wasm = "plugins/target/wasm32-wasip2/release/wicket_plugin_headers.wasm"
//! config.request = { set = { x-request-id = "{request_id}" }, remove = ["cookie"] }
//! config.response = { set = { x-pet = "{param.id}" }, remove = { server = true } }
//! ```
//!
//! `remove` is a list of names or a table whose keys are the names. Removals apply before
//! sets. Values are templates: `{request_id}`, `{param.NAME}`, any context key.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use wicket_plugin_sdk::header::is_header_name;
use wicket_plugin_sdk::template::render_template_with;
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request, Response};

/// The plugin's `config` table.
#[derive(Debug, Default, Deserialize, PartialEq, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// { set = { name = "value template" }, remove = ["name"] } applied before the integration
    #[serde(default)]
    request: Edits,
    /// the same for the response, applied on the way out
    #[serde(default)]
    response: Edits,
}

/// The changes to one side's headers.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Edits {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    remove: Names,
}

/// Header names, given as a list or as the keys of a table.
#[derive(Debug, Default, PartialEq)]
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;

        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = Names;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of header names or a table whose keys are header names")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Names(names))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some((name, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    names.push(name);
                }
                Ok(Names(names))
            }
        }

        deserializer.deserialize_any(NamesVisitor)
    }
}

impl Edits {
    fn validate(&self, side: &str) -> Result<(), String> {
        let names = self.remove.0.iter().chain(self.set.keys());
        for name in names {
            if !is_header_name(name) {
                return Err(format!(
                    "invalid plugin configuration: `{side}` has an invalid header name `{name}`"
                ));
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.0.is_empty()
    }

    /// The sets for one request, values rendered with `lookup`.
    fn rendered_sets<F>(&self, mut lookup: F) -> Vec<(&str, String)>
    where
        F: FnMut(&str) -> Option<String>,
    {
        self.set
            .iter()
            .map(|(name, value)| (name.as_str(), render_template_with(value, &mut lookup)))
            .collect()
    }
}

impl Settings {
    fn from_config(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        settings.request.validate("request")?;
        settings.response.validate("response")?;
        Ok(settings)
    }
}

/// Applies `edits` through the given header operations: removals first, then sets.
fn apply<F>(
    edits: &Edits,
    ctx: &Context,
    mut remove: impl FnMut(&str),
    mut set: F,
) -> Result<(), Error>
where
    F: FnMut(&str, &str) -> Result<(), String>,
{
    for name in &edits.remove.0 {
        remove(name);
    }
    for (name, value) in edits.rendered_sets(|key| ctx.get(key)) {
        if let Err(e) = set(name, &value) {
            wicket_plugin_sdk::error!("headers: cannot set `{name}` to `{value}`: {e}");
            return Err(Error::internal());
        }
    }
    Ok(())
}

struct Headers {
    settings: Settings,
}

impl Filter for Headers {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("sets and removes request and response headers")
            .config::<Settings>()
    }

    /// Fixed edits: the host applies them itself, and skips a side with nothing to do.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        let edits = |e: &Edits| wicket_plugin_sdk::HeaderEdits {
            remove: e.remove.0.clone(),
            set: e.set.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        let mut plan = wicket_plugin_sdk::Plan::default()
            .on_request(false)
            .on_response(false);
        if !self.settings.request.is_empty() {
            plan = plan.request_headers(edits(&self.settings.request));
        }
        if !self.settings.response.is_empty() {
            plan = plan.response_headers(edits(&self.settings.response));
        }
        plan
    }

    fn new(config: Config) -> Result<Self, String> {
        Ok(Self {
            settings: Settings::from_config(&config)?,
        })
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        let edits = &self.settings.request;
        if !edits.is_empty() {
            apply(
                edits,
                ctx,
                |name| req.remove_header(name),
                |name, value| req.set_header(name, value),
            )?;
        }
        Ok(Action::Continue)
    }

    fn on_response(&self, _req: &Request, resp: &Response, ctx: &Context) -> Result<(), Error> {
        let edits = &self.settings.response;
        if !edits.is_empty() {
            apply(
                edits,
                ctx,
                |name| resp.remove_header(name),
                |name, value| resp.set_header(name, value),
            )?;
        }
        Ok(())
    }
}

export_filter!(Headers);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, String> {
        Settings::from_config(&Config::from_json(json).unwrap())
    }

    #[test]
    fn empty_config_does_nothing() {
        let s = settings("{}").unwrap();
        assert!(s.request.is_empty() && s.response.is_empty());
    }

    #[test]
    fn remove_accepts_a_list_or_a_table() {
        let s = settings(
            r#"{"request": {"remove": ["cookie", "x-a"]},
                "response": {"remove": {"server": true, "x-b": "anything"}}}"#,
        )
        .unwrap();
        assert_eq!(s.request.remove.0, ["cookie", "x-a"]);
        assert_eq!(s.response.remove.0, ["server", "x-b"]);
    }

    #[test]
    fn sets_are_rendered() {
        let s = settings(
            r#"{"response": {"set": {"x-id": "{request_id}", "x-pet": "pet-{param.id}", "x-c": "c"}}}"#,
        )
        .unwrap();
        let sets = s.response.rendered_sets(|k| match k {
            "request_id" => Some("r-1".into()),
            "param.id" => Some("5".into()),
            _ => None,
        });
        assert_eq!(
            sets,
            [
                ("x-c", "c".to_owned()),
                ("x-id", "r-1".to_owned()),
                ("x-pet", "pet-5".to_owned())
            ]
        );
    }

    #[test]
    fn rejects_bad_config() {
        let err = settings(r#"{"requests": {}}"#).unwrap_err();
        assert!(err.contains("unknown field `requests`"), "{err}");
        let err = settings(r#"{"request": {"add": {}}}"#).unwrap_err();
        assert!(err.contains("unknown field `add`"), "{err}");
        let err = settings(r#"{"request": {"remove": "cookie"}}"#).unwrap_err();
        assert!(err.contains("a list of header names or a table"), "{err}");
        let err = settings(r#"{"response": {"set": {"bad name": "x"}}}"#).unwrap_err();
        assert!(err.contains("invalid header name `bad name`"), "{err}");
        assert!(settings(r#"{"request": {"set": {"x": 1}}}"#).is_err());
        assert!(settings(r#"{"request": {"remove": [1]}}"#).is_err());
    }

    #[test]
    fn header_names_are_tokens() {
        assert!(is_header_name("x-request-id"));
        assert!(is_header_name("X_Foo.Bar~1"));
        assert!(!is_header_name(""));
        assert!(!is_header_name("a:b"));
        assert!(!is_header_name("a b"));
        assert!(!is_header_name("é"));
    }
}
