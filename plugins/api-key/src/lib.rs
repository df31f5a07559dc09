//! `api-key` filter: admits requests that carry a known API key, as API Gateway's API keys do.
//!
//! ```toml
//! [plugins.keys]
//! builtin = "api-key"
//! config.header = "x-api-key"
//! config.keys = [
//!   { key_sha256 = "4c5dc9b7708905f77f5e5d16316b5dfb425e68cb326dcd55a860e90a7707031e", principal = "alice", plan = "gold" },
//! ]
//! ```
//!
//! * `header` (default `x-api-key`): the request header holding the key.
//! * `keys` (required): the known keys, stored as the lower- or upper-case hex SHA-256 of the
//!   key (`printf %s "$KEY" | sha256sum`), each with the `principal` it stands for and an
//!   optional usage `plan`.
//!
//! A request without the header, with several values of it, or with an unknown key gets
//! `403 {"message": "Forbidden"}`. A known key sets the context keys `principal`,
//! `usage_plan` (when the key has a plan) and `auth.method` = `api-key`.
//!
//! The presented key is hashed and compared with every configured hash in constant time.

use serde::Deserialize;
use wicket_plugin_sdk::auth::{self, Identity};
use wicket_plugin_sdk::header::is_header_name;
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// request header holding the key, default x-api-key
    #[serde(default = "default_header")]
    header: String,
    /// [{ key_sha256 = "<hex SHA-256 of the key>", principal = "...", plan = "..." }]; plan is optional
    keys: Vec<KeySettings>,
}

fn default_header() -> String {
    "x-api-key".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySettings {
    key_sha256: String,
    principal: String,
    #[serde(default)]
    plan: Option<String>,
}

/// One known key.
#[derive(Debug, PartialEq)]
struct Key {
    sha256: [u8; 32],
    principal: String,
    plan: Option<String>,
}

#[derive(Debug)]
struct ApiKey {
    header: String,
    keys: Vec<Key>,
}

fn invalid(message: String) -> String {
    format!("invalid plugin configuration: {message}")
}

impl ApiKey {
    fn from_config(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if !is_header_name(&settings.header) {
            return Err(invalid(format!(
                "`header` is not a valid header name: `{}`",
                settings.header
            )));
        }
        if settings.keys.is_empty() {
            return Err(invalid("`keys` is empty: no request could pass".to_owned()));
        }
        let mut keys: Vec<Key> = Vec::with_capacity(settings.keys.len());
        for (i, k) in settings.keys.into_iter().enumerate() {
            let sha256: [u8; 32] = auth::hex_decode(&k.key_sha256)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "`keys[{i}].key_sha256` must be 64 hex digits (the SHA-256 of the key), got `{}`",
                        k.key_sha256
                    ))
                })?;
            if k.principal.trim().is_empty() {
                return Err(invalid(format!("`keys[{i}].principal` is empty")));
            }
            if k.plan.as_deref().is_some_and(|p| p.trim().is_empty()) {
                return Err(invalid(format!(
                    "`keys[{i}].plan` is empty; leave it out instead"
                )));
            }
            if let Some(j) = keys.iter().position(|other| other.sha256 == sha256) {
                return Err(invalid(format!(
                    "`keys[{i}]` has the same key_sha256 as `keys[{j}]`"
                )));
            }
            keys.push(Key {
                sha256,
                principal: k.principal,
                plan: k.plan,
            });
        }
        Ok(Self {
            header: settings.header.to_ascii_lowercase(),
            keys,
        })
    }

    /// The key `presented` stands for. Every configured hash is compared, in constant time,
    /// whether or not an earlier one matched.
    fn lookup(&self, presented: &str) -> Option<&Key> {
        let digest = auth::sha256(presented.as_bytes());
        let mut found = None;
        for key in &self.keys {
            if auth::constant_time_eq(&digest, &key.sha256) {
                found = Some(key);
            }
        }
        found
    }

    /// The caller for the header values received, or why there is none (for the log).
    fn authenticate(&self, values: &[String]) -> Result<Identity, &'static str> {
        let presented = match values {
            [] => return Err("no API key"),
            [one] => one,
            _ => return Err("several API key headers"),
        };
        let key = self.lookup(presented).ok_or("unknown API key")?;
        Ok(Identity::new("api-key", &key.principal).usage_plan(key.plan.as_deref()))
    }
}

impl Filter for ApiKey {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("admits requests carrying a known API key (403 Forbidden otherwise); sets principal, usage_plan")
            .config::<Settings>().auth()
    }

    /// Headers only, on the way in.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        wicket_plugin_sdk::Plan::default().on_response(false)
    }

    fn new(config: Config) -> Result<Self, String> {
        ApiKey::from_config(&config)
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        match self.authenticate(&req.header_values(&self.header)) {
            Ok(identity) => {
                identity.apply(ctx);
                Ok(Action::Continue)
            }
            Err(why) => {
                wicket_plugin_sdk::debug!("api-key: refused: {why}");
                Err(Error::forbidden("Forbidden"))
            }
        }
    }
}

export_filter!(ApiKey);

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice-key-0123456789";
    const BOB: &str = "bob-key-9876543210";

    fn plugin(json: &str) -> Result<ApiKey, String> {
        ApiKey::from_config(&Config::from_json(json).unwrap())
    }

    fn two_keys() -> ApiKey {
        plugin(&format!(
            r#"{{"keys": [
                {{"key_sha256": "{}", "principal": "alice", "plan": "gold"}},
                {{"key_sha256": "{}", "principal": "bob"}}
            ]}}"#,
            auth::sha256_hex(ALICE.as_bytes()),
            auth::sha256_hex(BOB.as_bytes()).to_uppercase()
        ))
        .unwrap()
    }

    #[test]
    fn known_keys_give_their_identity() {
        let p = two_keys();
        assert_eq!(p.header, "x-api-key");
        let alice = p.authenticate(&[ALICE.to_owned()]).unwrap();
        assert_eq!(
            alice,
            Identity::new("api-key", "alice").usage_plan(Some("gold"))
        );
        let bob = p.authenticate(&[BOB.to_owned()]).unwrap();
        assert_eq!(bob, Identity::new("api-key", "bob"));
    }

    #[test]
    fn missing_unknown_and_repeated_keys_are_refused() {
        let p = two_keys();
        assert_eq!(p.authenticate(&[]), Err("no API key"));
        assert_eq!(p.authenticate(&["nope".into()]), Err("unknown API key"));
        assert_eq!(
            p.authenticate(&[auth::sha256_hex(ALICE.as_bytes())]),
            Err("unknown API key"),
            "the hash itself is not a key"
        );
        assert_eq!(
            p.authenticate(&[ALICE.into(), ALICE.into()]),
            Err("several API key headers")
        );
        assert_eq!(
            p.authenticate(&[format!("{ALICE} ")]),
            Err("unknown API key")
        );
    }

    #[test]
    fn header_is_configurable() {
        let hash = auth::sha256_hex(b"k");
        let p = plugin(&format!(
            r#"{{"header": "X-Key", "keys": [{{"key_sha256": "{hash}", "principal": "p"}}]}}"#
        ))
        .unwrap();
        assert_eq!(p.header, "x-key");
    }

    #[test]
    fn rejects_bad_config() {
        let hash = auth::sha256_hex(b"k");
        let err = plugin(r#"{"keys": []}"#).unwrap_err();
        assert!(err.contains("`keys` is empty"), "{err}");
        let err = plugin("{}").unwrap_err();
        assert!(err.contains("missing field `keys`"), "{err}");
        let err = plugin(r#"{"keys": [{"key_sha256": "abc", "principal": "p"}]}"#).unwrap_err();
        assert!(
            err.contains("`keys[0].key_sha256` must be 64 hex digits"),
            "{err}"
        );
        let err = plugin(&format!(
            r#"{{"keys": [{{"key": "k", "key_sha256": "{hash}", "principal": "p"}}]}}"#
        ))
        .unwrap_err();
        assert!(err.contains("unknown field `key`"), "{err}");
        let err = plugin(&format!(
            r#"{{"keys": [{{"key_sha256": "{hash}", "principal": " "}}]}}"#
        ))
        .unwrap_err();
        assert!(err.contains("principal` is empty"), "{err}");
        let err = plugin(&format!(
            r#"{{"keys": [{{"key_sha256": "{hash}", "principal": "a"}}, {{"key_sha256": "{}", "principal": "b"}}]}}"#,
            hash.to_uppercase()
        ))
        .unwrap_err();
        assert!(
            err.contains("`keys[1]` has the same key_sha256 as `keys[0]`"),
            "{err}"
        );
        let err = plugin(&format!(
            r#"{{"header": "x key", "keys": [{{"key_sha256": "{hash}", "principal": "a"}}]}}"#
        ))
        .unwrap_err();
        assert!(err.contains("not a valid header name"), "{err}");
        let err = plugin(&format!(
            r#"{{"keys": [{{"key_sha256": "{hash}", "principal": "a", "plan": ""}}]}}"#
        ))
        .unwrap_err();
        assert!(err.contains("plan` is empty"), "{err}");
    }
}
