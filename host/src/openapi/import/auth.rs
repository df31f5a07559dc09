//! Security schemes as auth filters: the first requirement of an operation becomes its
//! chain's filters, each scheme's secrets a placeholder that accepts nothing.

use super::{to_toml, ImportError, Importer};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

impl Importer<'_> {
    /// The auth filters for the operation's first security requirement; `None` when one of
    /// its schemes has no filter (the operation is left out rather than served open).
    pub(super) fn auth(
        &mut self,
        what: &str,
        op: &Value,
    ) -> Result<Option<Vec<String>>, ImportError> {
        let security = op.get("security").or_else(|| self.doc.get("security"));
        let Some(alternatives) = security.and_then(Value::as_array) else {
            return Ok(Some(Vec::new()));
        };
        if alternatives
            .iter()
            .any(|a| a.as_object().is_some_and(Map::is_empty))
        {
            // `{}` among the alternatives: anonymous access is allowed.
            return Ok(Some(Vec::new()));
        }
        let Some(first) = alternatives.first().and_then(Value::as_object) else {
            return Ok(Some(Vec::new()));
        };
        if alternatives.len() > 1 {
            self.warnings.push(format!(
                "{what}: only the first security requirement ({}) is enforced; the gateway's filters all apply, it has no alternatives",
                first.keys().cloned().collect::<Vec<_>>().join(" + ")
            ));
        }
        let mut chain = Vec::new();
        for (scheme_name, scopes) in first {
            let scopes: Vec<String> = scopes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect();
            let scheme = self.resolve(&self.doc["components"]["securitySchemes"][scheme_name]);
            match self.auth_plugin(scheme_name, &scheme, &scopes)? {
                Some(name) => chain.push(name),
                None => {
                    self.warnings.push(format!(
                        "{what}: left out: no filter enforces security scheme {scheme_name:?} ({})",
                        scheme_summary(&scheme)
                    ));
                    return Ok(None);
                }
            }
        }
        Ok(Some(chain))
    }

    /// The plugin enforcing `scheme` with `scopes`, created on first use.
    fn auth_plugin(
        &mut self,
        scheme_name: &str,
        scheme: &Value,
        scopes: &[String],
    ) -> Result<Option<String>, ImportError> {
        let key = (scheme_name.to_string(), scopes.to_vec());
        if let Some(name) = self.auth_plugins.get(&key) {
            return Ok(Some(name.clone()));
        }
        let name = if scopes.is_empty() {
            self.unique_plugin(scheme_name)
        } else {
            self.unique_plugin(&format!("{scheme_name}-{}", scopes.join("-")))
        };
        let kind = scheme["type"].as_str().unwrap_or("");
        let sigv4 = scheme["x-amazon-apigateway-authtype"].as_str() == Some("awsSigv4");
        let (builtin, config, comment) = match kind {
            "apiKey" if sigv4 => (
                "sigv4",
                json!({
                    "region": "PLACEHOLDER-region",
                    "credentials": [{"access_key": "PLACEHOLDER-access-key", "secret_key": placeholder_secret(), "principal": "PLACEHOLDER"}]
                }),
                "PLACEHOLDER: set region and credentials (the secret here is random: nothing verifies until you do)",
            ),
            "apiKey" if scheme["in"] == "header" => (
                "api-key",
                json!({
                    "header": scheme["name"].as_str().unwrap_or("x-api-key").to_ascii_lowercase(),
                    "keys": [{"key_sha256": placeholder_secret(), "principal": "PLACEHOLDER"}]
                }),
                "PLACEHOLDER: key_sha256 is the hash of a random value, so no key is accepted until you list yours (hex SHA-256 of each key)",
            ),
            "http" if scheme["scheme"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("bearer")) => {
                ("jwt", jwt_config(None, scopes), JWT_COMMENT)
            }
            "oauth2" => ("jwt", jwt_config(None, scopes), JWT_COMMENT),
            "openIdConnect" => {
                let issuer = scheme["openIdConnectUrl"]
                    .as_str()
                    .map(|u| u.trim_end_matches("/.well-known/openid-configuration").to_string());
                ("jwt", jwt_config(issuer, scopes), JWT_COMMENT)
            }
            _ => return Ok(None),
        };
        let mut scheme_doc = scheme.clone();
        scheme_doc["x-wicket-name"] = scheme_name.into();
        let value = json!({"plugins": {name.clone(): {
            "builtin": builtin,
            "config": config,
            "openapi": {"security_scheme": scheme_doc},
        }}});
        let text = to_toml(&value, comment)?;
        self.plugins.insert(name.clone(), text);
        self.auth_plugins.insert(key, name.clone());
        Ok(Some(name))
    }
}

const JWT_COMMENT: &str = "PLACEHOLDER: jwks_url points nowhere (.invalid), so no token verifies until you set it (and issuer, audience)";

fn jwt_config(issuer: Option<String>, scopes: &[String]) -> Value {
    let mut c = json!({"jwks_url": "https://PLACEHOLDER.invalid/.well-known/jwks.json"});
    if let Some(i) = issuer {
        c["issuer"] = i.into();
    }
    if !scopes.is_empty() {
        c["required_scopes"] = json!(scopes);
    }
    c
}

/// A hex string nobody knows the preimage of: a placeholder secret that accepts nothing.
fn placeholder_secret() -> String {
    let random = format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    Sha256::digest(random.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scheme_summary(scheme: &Value) -> String {
    match (scheme["type"].as_str(), scheme["in"].as_str()) {
        (Some("apiKey"), Some(location)) => format!("an API key in the {location}"),
        (Some("http"), _) => format!("HTTP {}", scheme["scheme"].as_str().unwrap_or("?")),
        (Some(t), _) => t.to_string(),
        (None, _) => "not defined in components.securitySchemes".into(),
    }
}
