//! Calls to AWS signed by the gateway (grant: `aws`). The plugin builds the request; the host
//! signs it with the gateway's AWS credentials when it is sent. The plugin never sees the keys.
//!
//! ```ignore
//! use std::time::Duration;
//! use wicket_plugin_sdk::{aws, http};
//!
//! let out = http::OutgoingRequest::new("POST", "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f/invocations");
//! out.set_body(b"{}");
//! aws::sign(&out, "lambda", "us-east-1").map_err(|e| Error::internal(&e))?;
//! let resp = http::send(out, Duration::from_secs(29)).map_err(|e| e.into_client_error())?;
//! ```

use crate::http::OutgoingRequest;

/// Have `req` signed for `service` in `region` when it is sent. Fails when the gateway has no
/// AWS credentials or the names are not valid (lower-case letters, digits, `-`).
pub fn sign(req: &OutgoingRequest, service: &str, region: &str) -> Result<(), String> {
    crate::wit::aws::sign(req, service, region)
}
