//! The config's OpenAPI and portal sections: `[openapi]` (what the exported document says about
//! the API as a whole), `[portal]`, and each plugin's `[plugins.NAME.openapi]` fragment.

use super::raw::{RawOpenApi, RawPluginOpenApi, RawPortal};
use super::Validator;
use serde_json::Value;
use toml::Spanned;

/// `[openapi]`, with defaults filled in.
#[derive(Debug, Clone, Default)]
pub struct ApiInfo {
    pub title: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    /// Server URLs for the exported document; empty: the gateway's own listen address.
    pub servers: Vec<String>,
}

/// `[portal]`: the page at `path` (with its script and style beside it) and `/openapi.json`.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub path: String,
}

/// What a plugin adds to the exported document, written by its operator (or by
/// `wicket openapi import`): an Operation Object fragment merged into every operation of the
/// routes it is on, the security scheme it stands for when the exporter cannot derive one, and
/// the schemas the fragment refers to.
#[derive(Debug, Clone, Default)]
pub struct PluginOpenApi {
    pub operation: Option<Value>,
    pub security_scheme: Option<Value>,
    /// Schemas the fragment refers to as `#/components/schemas/NAME`.
    pub schemas: Option<Value>,
}

/// The path `/openapi.json` is served at when the portal is enabled.
pub const OPENAPI_JSON_PATH: &str = "/openapi.json";

impl Validator<'_> {
    pub(super) fn api_info(&mut self, raw: Option<Spanned<RawOpenApi>>) -> ApiInfo {
        let Some(raw) = raw else {
            return ApiInfo::default();
        };
        let raw = raw.into_inner();
        let mut servers = Vec::new();
        for s in raw.servers.into_iter().flatten() {
            let url = s.get_ref();
            if url.starts_with("http://") || url.starts_with("https://") || url.starts_with('/') {
                servers.push(url.clone());
            } else {
                let msg = format!("{url:?} is not an http(s) URL or an absolute path");
                self.issue(&s.span(), "openapi.servers", msg);
            }
        }
        ApiInfo {
            title: raw.title,
            version: raw.version,
            description: raw.description,
            servers,
        }
    }

    pub(super) fn portal(&mut self, raw: Option<Spanned<RawPortal>>) -> Option<PortalConfig> {
        let raw = raw?.into_inner();
        let path = raw.path.get_ref();
        let plain = path.len() > 1
            && path.starts_with('/')
            && !path.ends_with('/')
            && path.split('/').skip(1).all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            });
        if !plain {
            let msg = format!(
                "{path:?} must be an absolute path of plain segments (letters, digits, '-', '.', \
                 '_', '~') without a trailing slash, e.g. \"/portal\""
            );
            self.issue(&raw.path.span(), "portal.path", msg);
            return None;
        }
        if path == OPENAPI_JSON_PATH {
            let msg = format!("{OPENAPI_JSON_PATH} is where the portal serves the document");
            self.issue(&raw.path.span(), "portal.path", msg);
            return None;
        }
        Some(PortalConfig { path: path.clone() })
    }

    pub(super) fn plugin_openapi(
        &mut self,
        raw: Option<Spanned<RawPluginOpenApi>>,
    ) -> PluginOpenApi {
        let Some(raw) = raw else {
            return PluginOpenApi::default();
        };
        let raw = raw.into_inner();
        let json = |t: toml::Table| serde_json::to_value(t).expect("a TOML table is valid JSON");
        PluginOpenApi {
            operation: raw.operation.map(json),
            security_scheme: raw.security_scheme.map(json),
            schemas: raw.schemas.map(json),
        }
    }
}
