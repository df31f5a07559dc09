//! Outbound HTTP through the gateway's pooled client (grant: `http`).
//!
//! ```ignore
//! use std::time::Duration;
//! use wicket_plugin_sdk::http;
//!
//! let out = http::OutgoingRequest::forward(req, "http://backend:8080/v1/items")
//!     .map_err(|e| e.into_client_error())?;
//! let resp = http::send(out, Duration::from_secs(5)).map_err(|e| e.into_client_error())?;
//! ```

use std::time::Duration;

use crate::{Error, Request, Response};

pub use crate::wit::http::{Error as HttpError, OutgoingRequest};

/// A copy of the client's request aimed at `url` (method, headers and body, hop-by-hop headers
/// dropped, `X-Forwarded-*` set); the body never passes through the plugin.
pub fn forward(req: &Request, url: &str) -> Result<OutgoingRequest, HttpError> {
    OutgoingRequest::forward(req, url)
}

/// Sends `req`, waiting at most `timeout` (saturating at `u32::MAX` milliseconds) for the whole
/// response. The response stays in the host: an integration can return it as is.
pub fn send(req: OutgoingRequest, timeout: Duration) -> Result<Response, HttpError> {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    crate::wit::http::send(req, ms)
}

impl HttpError {
    /// The error a gateway answers its client with: `504 Endpoint request timed out` for a
    /// timeout, `502 Bad Gateway` for everything else.
    pub fn client_error(&self) -> Error {
        match self {
            HttpError::Timeout => Error::gateway_timeout(),
            HttpError::Connect(_) | HttpError::Invalid(_) | HttpError::Protocol(_) => {
                Error::bad_gateway()
            }
        }
    }

    /// A one-line description for the log, e.g. `connect error: connection refused`.
    pub fn describe(&self) -> String {
        match self {
            HttpError::Timeout => "timed out".to_owned(),
            HttpError::Connect(detail) => format!("connect error: {detail}"),
            HttpError::Invalid(detail) => format!("invalid request: {detail}"),
            HttpError::Protocol(detail) => format!("protocol error: {detail}"),
        }
    }

    /// Logs the details at level warn and returns [`HttpError::client_error`].
    pub fn into_client_error(self) -> Error {
        crate::log::warn(&format!("outbound request failed: {}", self.describe()));
        self.client_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_outbound_failures_to_gateway_errors() {
        let timeout = HttpError::Timeout.client_error();
        assert_eq!(
            (timeout.status, timeout.message.as_str()),
            (504, "Endpoint request timed out")
        );
        for e in [
            HttpError::Connect("refused".into()),
            HttpError::Invalid("bad url".into()),
            HttpError::Protocol("too big".into()),
        ] {
            let mapped = e.client_error();
            assert_eq!(
                (mapped.status, mapped.message.as_str()),
                (502, "Bad Gateway")
            );
        }
        assert_eq!(
            HttpError::Connect("refused".into()).describe(),
            "connect error: refused"
        );
    }
}
