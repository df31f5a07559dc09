//! Body helpers shared by the plugins that read and rewrite payloads: media types, JSON parsing
//! with the error's position, byte offsets as line and column, and JSON error responses that
//! carry a list of violations.
//!
//! ```ignore
//! use wicket_plugin_sdk::body;
//!
//! let value = body::parse_json(&req.body()).map_err(|e| Error::bad_request(format!("invalid JSON: {e}")))?;
//! if !body::is_json(req.header("content-type").as_deref()) { /* ... */ }
//! ```

use std::fmt;

use serde_json::Value;

use crate::{Context, Request, Response};

/// The media type of a `Content-Type` value, lower case, without parameters
/// (`"Application/JSON; charset=utf-8"` → `"application/json"`).
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether `content_type` names JSON: `application/json` or any `+json` type
/// (`application/problem+json`, ...). `None` is not JSON.
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let mt = media_type(ct);
        mt == "application/json" || mt.ends_with("+json")
    })
}

/// Whether `content_type` names XML: `application/xml`, `text/xml` or any `+xml` type
/// (`application/soap+xml`, ...). `None` is not XML.
pub fn is_xml(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let mt = media_type(ct);
        mt == "application/xml" || mt == "text/xml" || mt.ends_with("+xml")
    })
}

/// The 1-based line and column (in characters) of byte `offset` in `text`. An offset past the
/// end points just after the last character.
pub fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// A body that is not valid JSON, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// 1-based line of the error.
    pub line: usize,
    /// 1-based column of the error.
    pub column: usize,
    /// What is wrong, without the position.
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for JsonError {}

impl JsonError {
    /// Wraps a `serde_json` error, keeping its position apart from its message.
    pub fn from_serde(err: &serde_json::Error) -> Self {
        let text = err.to_string();
        // serde_json appends " at line L column C" to its messages.
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_owned(),
            None => text,
        };
        Self {
            line: err.line().max(1),
            column: err.column().max(1),
            message,
        }
    }
}

/// Parses `bytes` as one JSON value (surrounding whitespace allowed), reporting the position of
/// the first error. `serde_json` refuses nesting deeper than 128 levels.
pub fn parse_json(bytes: &[u8]) -> Result<Value, JsonError> {
    serde_json::from_slice(bytes).map_err(|e| JsonError::from_serde(&e))
}

/// Replaces the request body (and its `Content-Type` when given) and sets `Content-Length` to
/// the new length. Use it rather than `set_body` alone when the length changes: the client's
/// `Content-Length` is otherwise forwarded as it was, and the backend would wait for bytes that
/// never come (or stop short).
pub fn set_request_body(
    req: &Request,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<(), String> {
    req.set_body(body);
    if let Some(ct) = content_type {
        req.set_header("content-type", ct)?;
    }
    if req.header("content-length").is_some() || !body.is_empty() {
        req.set_header("content-length", &body.len().to_string())?;
    }
    Ok(())
}

/// Replaces the response body (and its `Content-Type` when given). The host sets the
/// response's `Content-Length` itself.
pub fn set_response_body(
    resp: &Response,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<(), String> {
    resp.set_body(body);
    if let Some(ct) = content_type {
        resp.set_header("content-type", ct)?;
    }
    Ok(())
}

/// One violation in an [`error_response`]'s `errors` list: where (`in` and `path`) and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Which part of the request: `body`, `query`, `header`, `path`.
    #[serde(rename = "in")]
    pub location: String,
    /// Where in it: a JSON pointer into the body (`/pets/0/name`, `""` for the whole body), a
    /// query parameter or header name.
    pub path: String,
    /// What is wrong, fit for clients.
    pub message: String,
}

impl Violation {
    /// A violation in `location` at `path`.
    pub fn new(
        location: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            location: location.into(),
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The JSON body of an error response with details:
/// `{"message": ..., "errors": [...], "requestId": ...}` (`requestId` left out when `None`),
/// the gateway's own error shape plus the list.
pub fn error_body<T: serde::Serialize>(
    message: &str,
    errors: &[T],
    request_id: Option<&str>,
) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("message".into(), Value::String(message.to_owned()));
    body.insert(
        "errors".into(),
        serde_json::to_value(errors).unwrap_or(Value::Array(Vec::new())),
    );
    if let Some(id) = request_id {
        body.insert("requestId".into(), Value::String(id.to_owned()));
    }
    Value::Object(body)
}

/// A response with `status`, `content-type: application/json` and the body of [`error_body`],
/// carrying the request id from `ctx`. Return it with `Action::Respond` from `on_request` (an
/// `Err(Error)` cannot carry the list).
pub fn error_response<T: serde::Serialize>(
    status: u16,
    message: &str,
    errors: &[T],
    ctx: &Context,
) -> Response {
    let body = error_body(message, errors, ctx.request_id().as_deref());
    Response::json(status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            media_type(" Application/JSON ; charset=utf-8"),
            "application/json"
        );
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("application/problem+json; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
        assert!(is_xml(Some("text/xml; charset=utf-8")));
        assert!(is_xml(Some("application/soap+xml")));
        assert!(is_xml(Some("APPLICATION/XML")));
        assert!(!is_xml(Some("application/json")));
        assert!(!is_xml(None));
    }

    #[test]
    fn line_and_column_of_offsets() {
        let text = "ab\ncdé\nf".as_bytes();
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 3), (2, 1));
        // é is two bytes but one column.
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 100), (3, 2));
    }

    #[test]
    fn json_errors_have_a_position() {
        let err = parse_json(b"{\"a\": 1,\n  \"b\": }").unwrap_err();
        assert_eq!((err.line, err.column), (2, 8));
        assert!(!err.message.contains("line"), "{}", err.message);
        assert!(err.to_string().ends_with("at line 2, column 8"), "{err}");
        let err = parse_json(b"").unwrap_err();
        assert_eq!(err.line, 1);
        assert_eq!(parse_json(b" [1] ").unwrap(), serde_json::json!([1]));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse_json(deep.as_bytes())
            .unwrap_err()
            .message
            .contains("recursion"));
    }

    #[test]
    fn error_bodies() {
        let errors = [Violation::new("query", "limit", "is required")];
        assert_eq!(
            error_body("Invalid request", &errors, Some("r-1")),
            serde_json::json!({
                "message": "Invalid request",
                "errors": [{"in": "query", "path": "limit", "message": "is required"}],
                "requestId": "r-1"
            })
        );
        assert_eq!(
            error_body::<Violation>("x", &[], None),
            serde_json::json!({"message": "x", "errors": []})
        );
    }
}
