//! The plugin instance's configuration.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The `config` table of the plugin's `[plugins.NAME]` section, parsed from the JSON the host
/// hands over (`{}` when the section has none).
///
/// Most plugins deserialize it into their own settings type with [`Config::parse`]; mark that
/// type `#[serde(deny_unknown_fields)]` so a misspelt key is reported instead of ignored. The
/// getters read single keys of the top-level table.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    value: Value,
}

impl Config {
    /// Reads the configuration of this plugin instance from the host (`config` capability,
    /// always granted).
    pub fn load() -> Result<Self, String> {
        Self::from_json(&crate::wit::config::get())
    }

    /// Parses configuration JSON text. The top level must be an object (a TOML table).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("the configuration is not valid JSON: {e}"))?;
        Self::from_value(value)
    }

    /// Wraps an already parsed value, which must be an object (`null` counts as empty).
    pub fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Object(_) => Ok(Self { value }),
            Value::Null => Ok(Self {
                value: Value::Object(Map::new()),
            }),
            other => Err(format!(
                "the configuration must be a table, not {}",
                kind(&other)
            )),
        }
    }

    /// The whole configuration.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The top-level table.
    pub fn as_map(&self) -> &Map<String, Value> {
        match &self.value {
            Value::Object(map) => map,
            // `from_value` only accepts objects.
            _ => unreachable!("Config always wraps an object"),
        }
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.as_map().is_empty()
    }

    /// Deserializes the whole table into `T`, with a message fit for the gateway's log on
    /// failure, e.g. `invalid plugin configuration: unknown field `urll`, expected `url` or
    /// `timeout_ms``.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(&self.value).map_err(|e| format!("invalid plugin configuration: {e}"))
    }

    /// The value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().get(key)
    }

    /// Deserializes the value under `key` into `T`; `Ok(None)` when the key is absent.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|e| format!("invalid plugin configuration key `{key}`: {e}")),
        }
    }

    /// The string under `key`, if present and a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The string under `key`, or `default` when absent or not a string.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.str(key).unwrap_or(default)
    }

    /// The non-negative integer under `key`, if present and one.
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// The integer under `key`, if present and one.
    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// The number under `key`, if present and a number.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// The boolean under `key`, if present and a boolean.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            value: Value::Object(Map::new()),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        url: String,
        #[serde(default = "default_timeout")]
        timeout_ms: u32,
    }

    fn default_timeout() -> u32 {
        29000
    }

    #[test]
    fn getters_read_top_level_keys() {
        let config =
            Config::from_json(r#"{"greeting": "hi", "n": 3, "neg": -2, "ratio": 0.5, "on": true}"#)
                .unwrap();
        assert_eq!(config.str("greeting"), Some("hi"));
        assert_eq!(config.str_or("missing", "hello"), "hello");
        assert_eq!(config.str_or("n", "fallback"), "fallback");
        assert_eq!(config.u64("n"), Some(3));
        assert_eq!(config.u64("neg"), None);
        assert_eq!(config.i64("neg"), Some(-2));
        assert_eq!(config.f64("ratio"), Some(0.5));
        assert_eq!(config.bool("on"), Some(true));
        assert_eq!(config.get_as::<u16>("n").unwrap(), Some(3));
        assert_eq!(config.get_as::<u16>("missing").unwrap(), None);
        assert!(config.get_as::<String>("n").unwrap_err().contains("`n`"));
    }

    #[test]
    fn parse_applies_defaults() {
        let config = Config::from_json(r#"{"url": "http://x/"}"#).unwrap();
        assert_eq!(
            config.parse::<Settings>().unwrap(),
            Settings {
                url: "http://x/".into(),
                timeout_ms: 29000
            }
        );
    }

    #[test]
    fn parse_rejects_unknown_keys_with_a_clear_message() {
        let config = Config::from_json(r#"{"url": "http://x/", "timeout": 5}"#).unwrap();
        let err = config.parse::<Settings>().unwrap_err();
        assert!(err.starts_with("invalid plugin configuration"), "{err}");
        assert!(err.contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn parse_reports_missing_keys() {
        let err = Config::default().parse::<Settings>().unwrap_err();
        assert!(err.contains("missing field `url`"), "{err}");
    }

    #[test]
    fn top_level_must_be_a_table() {
        assert!(Config::from_json("[1]").unwrap_err().contains("an array"));
        assert!(Config::from_json("{")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(Config::from_json("null").unwrap().is_empty());
        assert!(Config::from_json("{}").unwrap().is_empty());
    }
}
