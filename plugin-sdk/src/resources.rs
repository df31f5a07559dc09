//! Conveniences on the host resources.

use serde::Serialize;

use crate::{Context, Response};

impl Context {
    /// The path parameter `name` (context key `param.NAME`; a greedy `{path+}` is `path`).
    pub fn param(&self, name: &str) -> Option<String> {
        self.get(&format!("param.{name}"))
    }

    /// The request id the host assigned (context key `request_id`).
    pub fn request_id(&self) -> Option<String> {
        self.get("request_id")
    }
}

impl Response {
    /// A response with `status`, `content-type: text/plain; charset=utf-8` and `body`.
    pub fn text(status: u16, body: &str) -> Self {
        Self::with_body(status, "text/plain; charset=utf-8", body.as_bytes())
    }

    /// A response with `status`, `content-type: application/json` and `body` serialized.
    pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Self {
        // Serializing plain data to a Vec cannot fail; an impossible failure gives `null`.
        let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
        Self::with_body(status, "application/json", &bytes)
    }

    /// A response with `status`, the given `content-type` and `body`.
    pub fn with_body(status: u16, content_type: &str, body: &[u8]) -> Self {
        let resp = Self::new(status);
        // A well-formed content type never fails; a bad one is left out.
        let _ = resp.set_header("content-type", content_type);
        resp.set_body(body);
        resp
    }
}
