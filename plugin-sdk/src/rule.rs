//! Who may do something, as a rule over the request context that auth filters filled in
//! (`principal`, `scopes`, `usage_plan`, any other key). Written in configuration as `true`
//! (anyone), `false` (no one) or a table whose conditions must all hold:
//!
//! ```toml
//! invalidation = { scopes = ["cache:invalidate"] }         # the caller holds every scope listed
//! invalidation = { principals = ["ops", "deploy-bot"] }    # the caller is one of these
//! invalidation = { usage_plans = ["gold"], context = { "auth.method" = ["jwt"] } }
//! ```
//!
//! A condition on a context key that is not set fails, so an unauthenticated caller matches
//! no table rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Context;

/// A rule over the request context; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ContextRule {
    /// No caller matches.
    #[default]
    Never,
    /// Every caller matches.
    Always,
    /// Callers for whom every condition holds.
    Conditions(Conditions),
}

/// The conditions of a table rule; every one given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// The caller's `scopes` (space-separated) hold every one of these.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The caller's `principal` is one of these.
    #[serde(default)]
    pub principals: Vec<String>,
    /// The caller's `usage_plan` is one of these.
    #[serde(default)]
    pub usage_plans: Vec<String>,
    /// For each context key, the values it may have.
    #[serde(default)]
    pub context: BTreeMap<String, Vec<String>>,
}

impl ContextRule {
    /// Whether the caller described by `ctx` matches.
    pub fn allows(&self, ctx: &Context) -> bool {
        self.allows_with(|key| ctx.get(key))
    }

    /// Whether the caller whose context keys `get` returns matches: the pure core of
    /// [`ContextRule::allows`].
    pub fn allows_with(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        let c = match self {
            ContextRule::Never => return false,
            ContextRule::Always => return true,
            ContextRule::Conditions(c) => c,
        };
        let one_of = |key: &str, allowed: &[String]| {
            allowed.is_empty() || get(key).is_some_and(|v| allowed.contains(&v))
        };
        if !c.scopes.is_empty() {
            let held = get("scopes").unwrap_or_default();
            let held: Vec<&str> = held.split(' ').filter(|s| !s.is_empty()).collect();
            if !c.scopes.iter().all(|s| held.contains(&s.as_str())) {
                return false;
            }
        }
        one_of("principal", &c.principals)
            && one_of("usage_plan", &c.usage_plans)
            && c.context
                .iter()
                .all(|(key, values)| get(key).is_some_and(|v| values.contains(&v)))
    }
}

impl<'de> Deserialize<'de> for ContextRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Table(serde_json::Value),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Flag(true) => Ok(ContextRule::Always),
            Raw::Flag(false) => Ok(ContextRule::Never),
            Raw::Table(value @ serde_json::Value::Object(_)) => {
                let c = Conditions::deserialize(value).map_err(serde::de::Error::custom)?;
                if c.scopes.is_empty()
                    && c.principals.is_empty()
                    && c.usage_plans.is_empty()
                    && c.context.is_empty()
                {
                    return Err(serde::de::Error::custom(
                        "an empty rule table matches everyone; write `true` if that is meant",
                    ));
                }
                if c.context.values().any(Vec::is_empty) {
                    return Err(serde::de::Error::custom(
                        "a `context` key with no allowed values matches no one",
                    ));
                }
                Ok(ContextRule::Conditions(c))
            }
            Raw::Table(_) => Err(serde::de::Error::custom(
                "expected true, false or a table of conditions (scopes, principals, usage_plans, context)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Result<ContextRule, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn ctx(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn flags() {
        assert!(rule("true").unwrap().allows_with(ctx(&[])));
        assert!(!rule("false")
            .unwrap()
            .allows_with(ctx(&[("principal", "x")])));
        assert!(!ContextRule::default().allows_with(ctx(&[])));
    }

    #[test]
    fn scopes_must_all_be_held() {
        let r = rule(r#"{"scopes": ["cache:invalidate", "admin"]}"#).unwrap();
        assert!(r.allows_with(ctx(&[("scopes", "read admin cache:invalidate")])));
        assert!(!r.allows_with(ctx(&[("scopes", "read cache:invalidate")])));
        assert!(!r.allows_with(ctx(&[("scopes", "cache:invalidateX admin")])));
        assert!(!r.allows_with(ctx(&[])));
    }

    #[test]
    fn principals_plans_and_context() {
        let r = rule(
            r#"{"principals": ["ops"], "usage_plans": ["gold"], "context": {"auth.method": ["jwt", "api-key"]}}"#,
        )
        .unwrap();
        assert!(r.allows_with(ctx(&[
            ("principal", "ops"),
            ("usage_plan", "gold"),
            ("auth.method", "api-key")
        ])));
        assert!(!r.allows_with(ctx(&[("principal", "ops"), ("usage_plan", "gold")])));
        assert!(!r.allows_with(ctx(&[
            ("principal", "eve"),
            ("usage_plan", "gold"),
            ("auth.method", "jwt")
        ])));
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(rule("{}").unwrap_err().contains("matches everyone"));
        assert!(rule(r#"{"scope": ["x"]}"#)
            .unwrap_err()
            .contains("unknown field"));
        assert!(rule(r#"{"context": {"k": []}}"#)
            .unwrap_err()
            .contains("no one"));
        assert!(rule(r#""yes""#)
            .unwrap_err()
            .contains("expected true, false"));
    }
}
