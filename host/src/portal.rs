//! The developer portal: a page at `[portal] path` that lists the API's operations (from the
//! same OpenAPI document `GET /openapi.json` serves) with their parameters, schemas, auth and
//! limits, a "try it" form and code samples. Everything is in the binary; the page loads
//! nothing from elsewhere.
//!
//! What an attacker could want from it, and why they do not get it:
//! - secrets: the document is built from what plugins contribute (`openapi::contributions`),
//!   which copies only named non-secret fields (header names, issuers, scopes, limits, schemas,
//!   mock answers): never keys, key hashes, JWT secrets, client secrets, upstream URLs;
//! - script injection: the page builds its DOM with `textContent` only (no `innerHTML`), and a
//!   Content-Security-Policy allows scripts, styles and fetches from this origin only;
//! - an open proxy: "try it" calls the gateway's own routes from the browser, same origin, with
//!   no cookies; the portal itself forwards nothing.

use crate::capabilities::types::ResponseData;
use crate::config::{GatewayConfig, PortalConfig, OPENAPI_JSON_PATH};
use crate::openapi::export::Document;
use crate::openapi::ExportOptions;
use crate::runtime::Plugin;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use std::sync::Arc;

const PAGE: &str = include_str!("portal/index.html");
const SCRIPT: &str = include_str!("portal/portal.js");
const STYLE: &str = include_str!("portal/portal.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The portal's pages, rendered once when the gateway is built.
pub struct Portal {
    path: String,
    script_path: String,
    style_path: String,
    page: Bytes,
    document: Bytes,
}

impl Portal {
    /// The portal of a gateway whose config enables it; its document lists every route, with
    /// the configured servers or else this origin.
    pub fn for_gateway(config: &GatewayConfig, plugins: &[Arc<Plugin>]) -> Option<Portal> {
        let portal = config.portal.as_ref()?;
        let servers = if config.openapi.servers.is_empty() {
            Some(vec!["/".to_string()])
        } else {
            None
        };
        let options = ExportOptions {
            select: &|_| true,
            servers,
        };
        let (document, _) = crate::openapi::document(config, plugins, &options);
        Some(Portal::new(portal, &document))
    }

    /// The portal at `config.path`, listing `document` (an OpenAPI document).
    pub fn new(config: &PortalConfig, document: &Document) -> Portal {
        let script_path = format!("{}/portal.js", config.path);
        let style_path = format!("{}/portal.css", config.path);
        let page = PAGE
            .replace("{{script}}", &escape_html(&script_path))
            .replace("{{style}}", &escape_html(&style_path))
            .replace("{{document}}", &escape_html(OPENAPI_JSON_PATH));
        Portal {
            path: config.path.clone(),
            script_path,
            style_path,
            page: Bytes::from(page),
            document: Bytes::from(document.to_json()),
        }
    }

    /// The paths the portal answers, which no route may also claim.
    pub fn paths(&self) -> [&str; 4] {
        [
            &self.path,
            &self.script_path,
            &self.style_path,
            OPENAPI_JSON_PATH,
        ]
    }

    /// The answer for `GET`/`HEAD` of one of the portal's paths; `None` for anything else
    /// (which goes on to the routes).
    pub fn answer(&self, method: &Method, path: &str) -> Option<ResponseData> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let (body, content_type) = if path == self.path {
            (self.page.clone(), "text/html; charset=utf-8")
        } else if path == self.script_path {
            (
                Bytes::from_static(SCRIPT.as_bytes()),
                "text/javascript; charset=utf-8",
            )
        } else if path == self.style_path {
            (
                Bytes::from_static(STYLE.as_bytes()),
                "text/css; charset=utf-8",
            )
        } else if path == OPENAPI_JSON_PATH {
            (self.document.clone(), "application/json")
        } else {
            return None;
        };
        let mut resp = ResponseData::new(StatusCode::OK);
        let h = &mut resp.headers;
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp.body = crate::body::Body::Full(body);
        Some(resp)
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
