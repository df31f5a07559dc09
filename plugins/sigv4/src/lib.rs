//! `sigv4` filter: admits requests signed with AWS Signature Version 4 by a configured key, as
//! API Gateway's IAM authorization does: in the `Authorization: AWS4-HMAC-SHA256 ...` header
//! or as a presigned URL (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//! `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`).
//!
//! ```toml
//! [plugins.iam]
//! builtin = "sigv4"
//! config.region = "eu-west-1"
//! config.credentials = [
//!   { access_key = "AKIDEXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", principal = "arn:aws:iam::123456789012:user/ci" },
//! ]
//! ```
//!
//! * `credentials` (required): the key pairs accepted and the `principal` each stands for.
//! * `region` (required), `service` (default `execute-api`): the credential scope must name
//!   them, and its date must be the request's.
//! * `max_skew_s` (default 300): how far `X-Amz-Date` may be from the gateway's clock. A
//!   presigned URL is good from its date (less the skew) until `X-Amz-Expires` seconds after it.
//! * `allow_unsigned_payload` (default false): accept `X-Amz-Content-Sha256: UNSIGNED-PAYLOAD`
//!   with a body (without a body there is nothing to protect, so it is always accepted).
//!   Otherwise `X-Amz-Content-Sha256`, when sent, must be the SHA-256 of the body received,
//!   and the body's hash is what the signature must cover.
//! * `normalize_path`, `double_encode_path` (default true, false for `service = "s3"`): how
//!   the signer canonicalized the path, as in the AWS SDKs.
//! * `fixed_time` (RFC 3339, e.g. `2015-08-30T12:36:00Z`): verify as if the clock read this
//!   time. For replaying recorded requests and test suites only: never in production.
//!
//! The body's SHA-256 is computed here, in the guest, at about 12 ms per MiB (measured on the
//! CI machine): with the default `cpu_ms = 100`, signed bodies over ~6 MiB run out of CPU time
//! (a 500, never a pass). Raise `cpu_ms` for routes that take large signed bodies.
//!
//! `X-Amz-Security-Token`, when sent, must be signed. Refusals are API Gateway's: 403
//! `{"message": "Missing Authentication Token"}` without a signature, otherwise 403 with a
//! message naming the reason (signature mismatch, expired, unknown access key, wrong
//! credential scope, ...). Signatures are compared in constant time. An accepted request gets
//! the context keys `principal`, `auth.method` = `sigv4` and `auth.access_key`.

mod verify;

use serde::Deserialize;
use wicket_plugin_sdk::auth::{self, Identity};
use wicket_plugin_sdk::sigv4::time;
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request};

use verify::{Credential, Message, Refusal, Verifier};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// [{ access_key = "...", secret_key = "...", principal = "..." }]: the key pairs accepted
    credentials: Vec<CredentialSettings>,
    /// region the credential scope must name
    region: String,
    /// service the credential scope must name, default execute-api
    #[serde(default = "default_service")]
    service: String,
    /// how far X-Amz-Date may be from the clock, default 300
    #[serde(default = "default_max_skew_s")]
    max_skew_s: u64,
    /// accept X-Amz-Content-Sha256: UNSIGNED-PAYLOAD with a body, default false
    #[serde(default)]
    allow_unsigned_payload: bool,
    /// the signer normalized the path (dot segments, empty segments), default true (false for s3)
    #[serde(default)]
    normalize_path: Option<bool>,
    /// the signer URI-encoded the path once more, default true (false for s3)
    #[serde(default)]
    double_encode_path: Option<bool>,
    /// RFC 3339 time to verify at instead of the clock; for replaying test suites only
    #[serde(default)]
    fixed_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialSettings {
    access_key: String,
    secret_key: String,
    principal: String,
}

fn default_service() -> String {
    "execute-api".to_owned()
}

fn default_max_skew_s() -> u64 {
    300
}

fn invalid(message: String) -> String {
    format!("invalid plugin configuration: {message}")
}

/// A scope part: non-empty, no `/`, no whitespace.
fn check_scope_part(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.bytes().any(|b| b == b'/' || b <= b' ' || b >= 0x7f) {
        return Err(invalid(format!(
            "`{key}` must be a non-empty name without '/' or spaces, got `{value}`"
        )));
    }
    Ok(())
}

struct SigV4 {
    verifier: Verifier,
    fixed_time: Option<u64>,
}

impl SigV4 {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        if s.credentials.is_empty() {
            return Err(invalid(
                "`credentials` is empty: no request could pass".to_owned(),
            ));
        }
        let mut credentials: Vec<Credential> = Vec::with_capacity(s.credentials.len());
        for (i, c) in s.credentials.into_iter().enumerate() {
            check_scope_part(&format!("credentials[{i}].access_key"), &c.access_key)?;
            if c.secret_key.is_empty() {
                return Err(invalid(format!("`credentials[{i}].secret_key` is empty")));
            }
            if c.principal.trim().is_empty() {
                return Err(invalid(format!("`credentials[{i}].principal` is empty")));
            }
            if let Some(j) = credentials
                .iter()
                .position(|o| o.access_key == c.access_key)
            {
                return Err(invalid(format!(
                    "`credentials[{i}].access_key` repeats `credentials[{j}].access_key` ({})",
                    c.access_key
                )));
            }
            credentials.push(Credential {
                access_key: c.access_key,
                secret_key: c.secret_key,
                principal: c.principal,
            });
        }
        check_scope_part("region", &s.region)?;
        check_scope_part("service", &s.service)?;
        if s.max_skew_s > 86_400 {
            return Err(invalid(format!(
                "`max_skew_s` must be at most 86400 (a day), got {}",
                s.max_skew_s
            )));
        }
        let fixed_time = match &s.fixed_time {
            None => None,
            Some(t) => Some(time::parse_rfc3339_utc(t).ok_or_else(|| {
                invalid(format!(
                    "`fixed_time` must be an RFC 3339 UTC time like 2015-08-30T12:36:00Z, got `{t}`"
                ))
            })?),
        };
        let s3 = s.service == "s3";
        Ok(Self {
            verifier: Verifier {
                credentials,
                normalize_path: s.normalize_path.unwrap_or(!s3),
                double_encode_path: s.double_encode_path.unwrap_or(!s3),
                region: s.region,
                service: s.service,
                max_skew_s: s.max_skew_s,
                allow_unsigned_payload: s.allow_unsigned_payload,
            },
            fixed_time,
        })
    }

    fn now(&self) -> u64 {
        self.fixed_time.unwrap_or_else(auth::now_unix)
    }
}

/// The client's request, as the verifier reads it.
struct Incoming<'a>(&'a Request);

impl Message for Incoming<'_> {
    fn method(&self) -> String {
        self.0.method()
    }
    fn path(&self) -> String {
        self.0.path()
    }
    fn query(&self) -> Option<String> {
        self.0.query()
    }
    fn header_values(&self, name: &str) -> Vec<String> {
        self.0.header_values(name)
    }
    fn body(&self) -> Vec<u8> {
        self.0.body()
    }
}

impl Filter for SigV4 {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("admits requests signed with AWS Signature Version 4 (header or presigned URL); sets principal")
            .config::<Settings>().auth()
    }

    /// The payload hash covers the body; nothing happens on the way out.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        wicket_plugin_sdk::Plan::default()
            .on_response(false)
            .request_body(wicket_plugin_sdk::BodyUse::Whole)
    }

    fn new(config: Config) -> Result<Self, String> {
        let plugin = SigV4::from_config(&config)?;
        if let Some(t) = &plugin.fixed_time {
            wicket_plugin_sdk::warn!(
                "sigv4: `fixed_time` is set: signatures are checked as of {}, not by the clock",
                time::format_iso_basic(*t)
            );
        }
        Ok(plugin)
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        match self.verifier.verify(&Incoming(req), self.now()) {
            Ok(credential) => {
                Identity::new("sigv4", &credential.principal).apply(ctx);
                ctx.set("auth.access_key", &credential.access_key);
                Ok(Action::Continue)
            }
            Err(refusal) => {
                if let Refusal::Forbidden(reason) = &refusal {
                    wicket_plugin_sdk::debug!("sigv4: refused: {reason}");
                }
                Err(Error::forbidden(refusal.message()))
            }
        }
    }
}

export_filter!(SigV4);

#[cfg(test)]
mod tests;
