//! The dashboard: one page on the admin listener (`GET /`) that polls `GET /admin/stats` and
//! `GET /admin/usage` and draws the last 15 minutes as SVG charts. Everything is in the
//! binary; the page loads nothing from elsewhere.
//!
//! Route names, plugin names, metric labels and principals (which a token's subject may
//! choose) reach the page as data: it builds its DOM with `textContent` and SVG attributes
//! only, never `innerHTML`, under a Content-Security-Policy that allows this origin alone.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page (`/`), its script or its style.
pub fn asset(path: &str) -> Response<Full<Bytes>> {
    let (body, content_type) = match path {
        "/dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        _ => (PAGE, "text/html; charset=utf-8"),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
