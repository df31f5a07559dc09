//! The claims of a verified token: lifetime (`exp`, `nbf`, `iat` with leeway), issuer,
//! audience, scopes (`scope` or `scp`) and the subject.

use serde_json::{Map, Value};
use wicket_plugin_sdk::auth;

/// What the claims must satisfy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub required_scopes: Vec<String>,
    pub leeway_s: u64,
}

/// Who the token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub principal: String,
    pub scopes: Vec<String>,
}

/// Why the claims are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    /// 401 `invalid_token`.
    Invalid(String),
    /// 403 `insufficient_scope`, with the scopes required.
    InsufficientScope(Vec<String>),
}

fn invalid<T>(why: impl Into<String>) -> Result<T, ClaimError> {
    Err(ClaimError::Invalid(why.into()))
}

/// A NumericDate claim (RFC 7519 §2): a JSON number of seconds; `None` when absent. A string,
/// or a number out of range, is invalid.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ClaimError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                _ => invalid(format!("the {name} claim is out of range")),
            },
        },
        Some(_) => invalid(format!("the {name} claim is not a number")),
    }
}

/// The token's scopes: `scope` (space-separated, RFC 8693/9068) or `scp` (a list, or a
/// space-separated string as some issuers write it).
fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
    let mut out = Vec::new();
    match claims.get("scope") {
        None => {}
        Some(Value::String(s)) => out.extend(auth::split_scopes(s)),
        Some(_) => return invalid("the scope claim is not a string"),
    }
    match claims.get("scp") {
        None => {}
        Some(Value::String(s)) => out.extend(auth::split_scopes(s)),
        Some(Value::Array(items)) => {
            for item in items {
                match item.as_str() {
                    Some(s) if !s.is_empty() && !s.contains(' ') => out.push(s.to_owned()),
                    _ => return invalid("the scp claim holds something that is not a scope"),
                }
            }
        }
        Some(_) => return invalid("the scp claim is neither a list nor a string"),
    }
    out.dedup();
    Ok(out)
}

impl Policy {
    /// Checks the claims at `now` (seconds since the epoch).
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<Subject, ClaimError> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let leeway = i64::try_from(self.leeway_s).unwrap_or(0);
        let Some(exp) = numeric_date(claims, "exp")? else {
            return invalid("the token has no exp claim");
        };
        if now > exp.saturating_add(leeway) {
            return invalid("the token expired");
        }
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if now.saturating_add(leeway) < nbf {
                return invalid("the token is not valid yet (nbf)");
            }
        }
        if let Some(iat) = numeric_date(claims, "iat")? {
            if now.saturating_add(leeway) < iat {
                return invalid("the token was issued in the future (iat)");
            }
        }
        if let Some(issuer) = &self.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == issuer => {}
                Some(Value::String(_)) => return invalid("wrong issuer"),
                _ => return invalid("the token has no iss claim"),
            }
        }
        if !self.audience.is_empty() {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => self.audience.contains(aud),
                Some(Value::Array(auds)) => auds.iter().any(|a| {
                    a.as_str()
                        .is_some_and(|a| self.audience.iter().any(|w| w == a))
                }),
                None => return invalid("the token has no aud claim"),
                Some(_) => return invalid("the aud claim is neither a string nor a list"),
            };
            if !ok {
                return invalid("wrong audience");
            }
        }
        let principal = match (claims.get("sub"), claims.get("client_id")) {
            (Some(Value::String(sub)), _) if !sub.is_empty() => sub.clone(),
            (None, Some(Value::String(client))) if !client.is_empty() => client.clone(),
            (None, _) => return invalid("the token has no sub claim"),
            _ => return invalid("the sub claim is not a non-empty string"),
        };
        let scopes = scopes(claims)?;
        if !self.required_scopes.iter().all(|s| scopes.contains(s)) {
            return Err(ClaimError::InsufficientScope(self.required_scopes.clone()));
        }
        Ok(Subject { principal, scopes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn policy() -> Policy {
        Policy {
            issuer: Some("https://issuer.example".into()),
            audience: vec!["api".into(), "other".into()],
            required_scopes: vec!["pets:read".into()],
            leeway_s: 60,
        }
    }

    fn good() -> Value {
        json!({"iss": "https://issuer.example", "aud": "api", "sub": "alice",
               "exp": NOW + 10, "nbf": NOW - 10, "iat": NOW - 10, "scope": "pets:read pets:write"})
    }

    fn with(changes: Value) -> Map<String, Value> {
        let mut c = claims(good());
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    fn refused(changes: Value) -> String {
        match policy().check(&with(changes), NOW) {
            Err(ClaimError::Invalid(why)) => why,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_good_claims() {
        let s = policy().check(&claims(good()), NOW).unwrap();
        assert_eq!(s.principal, "alice");
        assert_eq!(s.scopes, ["pets:read", "pets:write"]);
        // Leeway both ways.
        assert!(policy().check(&with(json!({"exp": NOW - 60})), NOW).is_ok());
        assert!(policy().check(&with(json!({"nbf": NOW + 60})), NOW).is_ok());
        // aud as a list, scp as a list, float dates.
        let s = policy()
            .check(
                &with(json!({"aud": ["x", "other"], "scope": null, "scp": ["pets:read"], "exp": (NOW as f64) + 0.5})),
                NOW,
            )
            .unwrap();
        assert_eq!(s.scopes, ["pets:read"]);
        // No issuer or audience configured: not checked.
        let open = Policy {
            required_scopes: vec![],
            ..Policy::default()
        };
        assert!(open
            .check(&claims(json!({"sub": "x", "exp": NOW})), NOW)
            .is_ok());
        // client_id stands in for a missing sub (client-credentials tokens).
        let s = open
            .check(&claims(json!({"client_id": "svc", "exp": NOW})), NOW)
            .unwrap();
        assert_eq!(s.principal, "svc");
    }

    #[test]
    fn refuses_bad_claims() {
        assert_eq!(refused(json!({"exp": NOW - 61})), "the token expired");
        assert_eq!(refused(json!({"exp": null})), "the token has no exp claim");
        assert_eq!(
            refused(json!({"exp": "2030-01-01"})),
            "the exp claim is not a number"
        );
        assert_eq!(
            refused(json!({"exp": (NOW + 100).to_string()})),
            "the exp claim is not a number"
        );
        assert_eq!(
            refused(json!({"nbf": NOW + 61})),
            "the token is not valid yet (nbf)"
        );
        assert_eq!(
            refused(json!({"nbf": true})),
            "the nbf claim is not a number"
        );
        assert_eq!(
            refused(json!({"iat": NOW + 61})),
            "the token was issued in the future (iat)"
        );
        assert_eq!(
            refused(json!({"iss": "https://evil.example"})),
            "wrong issuer"
        );
        assert_eq!(refused(json!({"iss": null})), "the token has no iss claim");
        assert_eq!(refused(json!({"iss": 1})), "the token has no iss claim");
        assert_eq!(refused(json!({"aud": "nope"})), "wrong audience");
        assert_eq!(refused(json!({"aud": ["a", "b"]})), "wrong audience");
        assert_eq!(refused(json!({"aud": null})), "the token has no aud claim");
        assert_eq!(
            refused(json!({"aud": 5})),
            "the aud claim is neither a string nor a list"
        );
        assert_eq!(refused(json!({"sub": null})), "the token has no sub claim");
        assert_eq!(
            refused(json!({"sub": ""})),
            "the sub claim is not a non-empty string"
        );
        assert_eq!(
            refused(json!({"scope": ["a"]})),
            "the scope claim is not a string"
        );
        assert_eq!(
            refused(json!({"scp": [1]})),
            "the scp claim holds something that is not a scope"
        );
        assert_eq!(
            refused(json!({"exp": 1e300})),
            "the exp claim is out of range"
        );
    }

    #[test]
    fn missing_scopes_are_insufficient_scope() {
        assert_eq!(
            policy().check(&with(json!({"scope": "pets:write"})), NOW),
            Err(ClaimError::InsufficientScope(vec!["pets:read".into()]))
        );
        assert_eq!(
            policy().check(&with(json!({"scope": null})), NOW),
            Err(ClaimError::InsufficientScope(vec!["pets:read".into()]))
        );
    }
}
