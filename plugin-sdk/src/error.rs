//! Constructors for the client-facing [`Error`].

use crate::Error;

impl Error {
    /// An error answered to the client with `status` (400..=599; the host turns anything else
    /// into 500) and `message` (fit for clients: internals belong in the log).
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// `400` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// `401` with `message`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// `403` with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// `404` with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// `429 Too Many Requests`.
    pub fn too_many_requests() -> Self {
        Self::new(429, "Too Many Requests")
    }

    /// `500 Internal Server Error`.
    pub fn internal() -> Self {
        Self::new(500, "Internal Server Error")
    }

    /// `500 plugin configuration error`: what every hook answers when the plugin's `new`
    /// rejected its configuration.
    pub fn configuration() -> Self {
        Self::new(500, "plugin configuration error")
    }

    /// `502 Bad Gateway`.
    pub fn bad_gateway() -> Self {
        Self::new(502, "Bad Gateway")
    }

    /// `504 Endpoint request timed out`.
    pub fn gateway_timeout() -> Self {
        Self::new(504, "Endpoint request timed out")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_status_and_message() {
        let e = Error::new(418, String::from("teapot"));
        assert_eq!((e.status, e.message.as_str()), (418, "teapot"));
        assert_eq!(Error::forbidden("no").status, 403);
        assert_eq!(Error::configuration().message, "plugin configuration error");
        assert_eq!(Error::configuration().status, 500);
        assert_eq!(Error::gateway_timeout().status, 504);
        assert_eq!(Error::bad_gateway().message, "Bad Gateway");
    }
}
