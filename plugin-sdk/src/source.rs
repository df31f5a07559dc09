//! Where a plugin takes a value from: a request context key, a request header or a query
//! parameter, named in configuration as a short string. Rate limiters key their buckets with
//! these, caches their entries.
//!
//! | text | value |
//! | --- | --- |
//! | `principal`, `usage_plan`, `scopes`, `client_ip`, `route`, `request_id` | that context key (set by the host or an auth filter) |
//! | `context:KEY` | any context key, e.g. `context:param.id` |
//! | `header:NAME` | every value of the request header `NAME`, joined with `, ` |
//! | `query:NAME` | every value of the query parameter `NAME` (decoded), joined with `&` |
//!
//! ```ignore
//! use wicket_plugin_sdk::source::{join_key, Source};
//!
//! let by: Vec<Source> = config.get_as("by")?.unwrap_or_default();
//! let values: Vec<Option<String>> = by.iter().map(|s| s.get(req, ctx)).collect();
//! let key = join_key(values.iter().map(Option::as_deref));
//! ```

use std::fmt;

use serde::de::{Deserialize, Deserializer};

use crate::header::is_header_name;
use crate::query::Query;
use crate::{Context, Request};

/// The context keys a [`Source`] may name without the `context:` prefix: those the host sets
/// and those auth filters set. Anything else needs `context:KEY`, so typos are caught.
pub const WELL_KNOWN_CONTEXT_KEYS: &[&str] = &[
    "principal",
    "usage_plan",
    "scopes",
    "client_ip",
    "route",
    "request_id",
];

/// A place in the request a value is read from. Parse it with [`Source::parse`] or deserialize
/// it from a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A request context key.
    Context(String),
    /// A request header, lower case.
    Header(String),
    /// A query parameter (decoded name).
    Query(String),
}

impl Source {
    /// Parses `principal`, `client_ip`, ... (see [`WELL_KNOWN_CONTEXT_KEYS`]), `context:KEY`,
    /// `header:NAME` or `query:NAME`.
    pub fn parse(text: &str) -> Result<Source, String> {
        if let Some(key) = text.strip_prefix("context:") {
            if key.is_empty() {
                return Err("`context:` needs a context key after it".to_owned());
            }
            return Ok(Source::Context(key.to_owned()));
        }
        if let Some(name) = text.strip_prefix("header:") {
            if !is_header_name(name) {
                return Err(format!("`{text}`: `{name}` is not a valid header name"));
            }
            return Ok(Source::Header(name.to_ascii_lowercase()));
        }
        if let Some(name) = text.strip_prefix("query:") {
            if name.is_empty() {
                return Err("`query:` needs a query parameter name after it".to_owned());
            }
            return Ok(Source::Query(name.to_owned()));
        }
        if WELL_KNOWN_CONTEXT_KEYS.contains(&text) {
            return Ok(Source::Context(text.to_owned()));
        }
        Err(format!(
            "unknown source `{text}`; expected one of {}, or context:KEY, header:NAME, query:NAME",
            WELL_KNOWN_CONTEXT_KEYS.join(", ")
        ))
    }

    /// The value in this request, if there is one.
    pub fn get(&self, req: &Request, ctx: &Context) -> Option<String> {
        self.get_with(
            |key| ctx.get(key),
            |name| req.header_values(name),
            || req.query(),
        )
    }

    /// The value, read through the given lookups (context key, header values, raw query
    /// string): the pure core of [`Source::get`]. An empty list of header or query values is
    /// no value.
    pub fn get_with(
        &self,
        context: impl FnOnce(&str) -> Option<String>,
        headers: impl FnOnce(&str) -> Vec<String>,
        query: impl FnOnce() -> Option<String>,
    ) -> Option<String> {
        match self {
            Source::Context(key) => context(key),
            Source::Header(name) => {
                let values = headers(name);
                (!values.is_empty()).then(|| values.join(", "))
            }
            Source::Query(name) => {
                let raw = query()?;
                let parsed = Query::parse(&raw);
                let values = parsed.get_all(name);
                (!values.is_empty()).then(|| values.join("&"))
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Context(key) if WELL_KNOWN_CONTEXT_KEYS.contains(&key.as_str()) => {
                f.write_str(key)
            }
            Source::Context(key) => write!(f, "context:{key}"),
            Source::Header(name) => write!(f, "header:{name}"),
            Source::Query(name) => write!(f, "query:{name}"),
        }
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Source::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One or several sources, written in configuration as a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sources(pub Vec<Source>);

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let texts = match OneOrMany::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("expected a source or a list of sources, e.g. \"principal\"")
        })? {
            OneOrMany::One(text) => vec![text],
            OneOrMany::Many(texts) => texts,
        };
        texts
            .iter()
            .map(|t| Source::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map(Sources)
            .map_err(serde::de::Error::custom)
    }
}

/// Joins key parts into one string without ambiguity: an absent part and an empty one
/// differ, and no value can imitate a separator (`|` and `%` in values are percent-escaped).
pub fn join_key<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut out = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        match part {
            None => out.push('-'),
            Some(value) => {
                out.push('=');
                for c in value.chars() {
                    match c {
                        '%' => out.push_str("%25"),
                        '|' => out.push_str("%7C"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            Source::parse("principal"),
            Ok(Source::Context("principal".into()))
        );
        assert_eq!(
            Source::parse("context:param.id"),
            Ok(Source::Context("param.id".into()))
        );
        assert_eq!(
            Source::parse("header:X-Tenant"),
            Ok(Source::Header("x-tenant".into()))
        );
        assert_eq!(
            Source::parse("query:page"),
            Ok(Source::Query("page".into()))
        );
        assert!(Source::parse("princpal")
            .unwrap_err()
            .contains("unknown source"));
        assert!(Source::parse("header:a b").is_err());
        assert!(Source::parse("context:").is_err());
        assert!(Source::parse("query:").is_err());
        for text in [
            "principal",
            "context:param.id",
            "header:x-tenant",
            "query:page",
        ] {
            assert_eq!(Source::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn deserializes_one_or_many() {
        let one: Sources = serde_json::from_str(r#""client_ip""#).unwrap();
        assert_eq!(one.0, [Source::Context("client_ip".into())]);
        let many: Sources = serde_json::from_str(r#"["route", "header:x-a"]"#).unwrap();
        assert_eq!(
            many.0,
            [
                Source::Context("route".into()),
                Source::Header("x-a".into())
            ]
        );
        let err = serde_json::from_str::<Sources>(r#"["nope"]"#).unwrap_err();
        assert!(err.to_string().contains("unknown source `nope`"), "{err}");
        assert!(serde_json::from_str::<Sources>("3").is_err());
    }

    #[test]
    fn reads_values() {
        let ctx = |k: &str| (k == "principal").then(|| "alice".to_owned());
        let headers = |n: &str| match n {
            "x-a" => vec!["1".to_owned(), "2".to_owned()],
            _ => vec![],
        };
        let query = || Some("p=1&q=a%20b&p=3".to_owned());
        let get = |s: &str| Source::parse(s).unwrap().get_with(ctx, headers, query);
        assert_eq!(get("principal").as_deref(), Some("alice"));
        assert_eq!(get("usage_plan"), None);
        assert_eq!(get("header:x-a").as_deref(), Some("1, 2"));
        assert_eq!(get("header:x-b"), None);
        assert_eq!(get("query:p").as_deref(), Some("1&3"));
        assert_eq!(get("query:q").as_deref(), Some("a b"));
        assert_eq!(get("query:z"), None);
    }

    #[test]
    fn joined_keys_are_unambiguous() {
        assert_eq!(join_key([Some("a"), None, Some("")]), "=a|-|=");
        assert_ne!(join_key([Some("a|=b")]), join_key([Some("a"), Some("b")]));
        assert_eq!(join_key([Some("a|b%")]), "=a%7Cb%25");
        assert_ne!(join_key([None]), join_key([Some("-")]));
        assert_eq!(join_key([]), "");
    }
}
