//! Everything that can stop a request, and `rescue`: the one place where such an error
//! becomes what the client sees. Clients get a status and a JSON body
//! `{"message": ..., "requestId": ...}` as API Gateway gives them; the detail (which plugin,
//! which trap) goes to the log under the same request id and never to the client.

use crate::canonical::{HostError, PathError};
use crate::capabilities::types::ResponseData;
use crate::runtime::PluginError;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no route for this path")]
    NotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed { allow: Vec<Method> },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("response body larger than {limit} bytes")]
    ResponseTooLarge { limit: usize },
    #[error("reading the upstream response: {0}")]
    BadResponse(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("bad request: {0}")]
    BadPath(#[from] PathError),
    #[error("bad request: {0}")]
    BadHost(#[from] HostError),
    #[error("request line and headers larger than {limit} bytes or more than {max_count} headers")]
    HeadersTooLarge { limit: usize, max_count: usize },
    #[error("request took longer than {0:?}")]
    Timeout(std::time::Duration),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ResponseTooLarge { .. } | GatewayError::BadResponse(_) => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::BadRequest(_) | GatewayError::BadPath(_) | GatewayError::BadHost(_) => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Plugin(PluginError::Failed { status, .. }) => {
                StatusCode::from_u16(*status)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            GatewayError::Plugin(PluginError::BodyTooLarge { request: true, .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            GatewayError::Plugin(PluginError::BodyTooLarge { request: false, .. }) => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::Plugin(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client reads. Internal failures all read the same.
    fn client_message(&self) -> &str {
        match self {
            GatewayError::NotFound => "Not Found",
            GatewayError::MethodNotAllowed { .. } => "Method Not Allowed",
            GatewayError::PayloadTooLarge { .. } => "Request Entity Too Large",
            GatewayError::ResponseTooLarge { .. } | GatewayError::BadResponse(_) => "Bad Gateway",
            GatewayError::BadRequest(_) | GatewayError::BadPath(_) | GatewayError::BadHost(_) => {
                "Bad Request"
            }
            GatewayError::HeadersTooLarge { .. } => "Request Header Fields Too Large",
            GatewayError::Timeout(_) => "Endpoint request timed out",
            GatewayError::Plugin(PluginError::Failed { message, .. }) => message,
            GatewayError::Plugin(PluginError::BodyTooLarge { request: true, .. }) => {
                "Request Entity Too Large"
            }
            GatewayError::Plugin(PluginError::BodyTooLarge { request: false, .. }) => "Bad Gateway",
            GatewayError::Plugin(_) => "Internal server error",
        }
    }

    /// Errors that mean something is wrong with the gateway or a plugin, rather than with
    /// the request: these are logged at error level.
    pub fn is_internal(&self) -> bool {
        matches!(self, GatewayError::Plugin(e)
            if !matches!(e, PluginError::Failed { .. } | PluginError::BodyTooLarge { .. }))
    }
}

/// The client's response for `err`.
pub fn rescue(err: &GatewayError, request_id: &str) -> ResponseData {
    json_error(err.status(), err.client_message(), request_id, err)
}

fn json_error(
    status: StatusCode,
    message: &str,
    request_id: &str,
    err: &GatewayError,
) -> ResponseData {
    let body = serde_json::json!({ "message": message, "requestId": request_id });
    let mut resp = ResponseData::new(status);
    resp.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let GatewayError::MethodNotAllowed { allow } = err {
        let list: Vec<&str> = allow.iter().map(Method::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
            resp.headers.insert(header::ALLOW, v);
        }
    }
    resp.body = crate::body::Body::Full(Bytes::from(body.to_string()));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let err = GatewayError::Plugin(PluginError::Trap {
            plugin: "secret-plugin".into(),
            detail: "wasm backtrace at /home/build/src/lib.rs".into(),
        });
        let resp = rescue(&err, "req-1");
        assert_eq!(resp.status, StatusCode::INTERNAL_SERVER_ERROR);
        let body: serde_json::Value = serde_json::from_slice(resp.body.as_full().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": "Internal server error", "requestId": "req-1"})
        );
    }

    #[test]
    fn plugin_chosen_status_is_kept_only_when_it_is_an_error() {
        let failed = |status| {
            GatewayError::Plugin(PluginError::Failed {
                plugin: "p".into(),
                status,
                message: "nope".into(),
            })
        };
        assert_eq!(failed(403).status(), StatusCode::FORBIDDEN);
        assert_eq!(failed(200).status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed(1000).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn method_not_allowed_lists_allow() {
        let err = GatewayError::MethodNotAllowed {
            allow: vec![Method::GET, Method::POST],
        };
        let resp = rescue(&err, "r");
        assert_eq!(resp.headers[header::ALLOW], "GET, POST");
    }
}
