//! Building blocks for authentication filters (cargo feature `auth`): SHA-256 and HMAC-SHA256,
//! constant-time comparison, hex and base64 codecs, the caller's identity in the request
//! context, bearer tokens, and refusals shaped as API Gateway answers them.
//!
//! ```ignore
//! use wicket_plugin_sdk::auth::{self, Identity};
//!
//! let presented = auth::sha256(key.as_bytes());
//! if !auth::constant_time_eq(&presented, &expected) {
//!     return Err(Error::forbidden("Forbidden"));
//! }
//! Identity::new("api-key", "alice").usage_plan(Some("gold")).apply(ctx);
//! ```
//!
//! Everything here is pure Rust (RustCrypto `sha2`, `hmac`, `subtle`; `base64`) and runs in the
//! guest; the pure functions are unit-tested natively.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Action, Context, Request, Response};

/// Context key: who the caller is (an IAM-style principal, a JWT `sub`, a key's owner).
pub const PRINCIPAL: &str = "principal";
/// Context key: the caller's OAuth2 scopes, space-separated.
pub const SCOPES: &str = "scopes";
/// Context key: the usage plan of the caller's API key.
pub const USAGE_PLAN: &str = "usage_plan";
/// Context key: which filter authenticated the request (`sigv4`, `jwt`, `introspect`,
/// `api-key`).
pub const METHOD: &str = "auth.method";

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_encode(&sha256(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths (the lengths
/// themselves are not secret: compare digests or signatures of a fixed size).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Lower-case hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The bytes of a hex string (either case); `None` if it is not an even number of hex digits.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Decodes unpadded base64url (RFC 4648 §5), as JOSE uses it. Padding, whitespace, the
/// standard alphabet's `+` and `/`, and non-zero trailing bits are all refused.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Encodes `bytes` as unpadded base64url.
pub fn base64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encodes `bytes` as padded standard base64 (e.g. for HTTP Basic credentials).
pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes padded standard base64; `None` if it is not.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Seconds since the Unix epoch by the gateway's wall clock (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch by the gateway's wall clock (0 if before 1970).
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the `Authorization` header holds, as far as bearer tokens go (RFC 6750 §2.1).
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer {
    /// No `Authorization` header, or one with another scheme (e.g. `Basic`).
    Missing,
    /// `Bearer` with nothing usable after it, or several `Authorization` headers.
    Malformed,
    /// The token.
    Token(String),
}

/// The bearer token of `req`; see [`parse_bearer`].
pub fn bearer_token(req: &Request) -> Bearer {
    parse_bearer(&req.header_values("authorization"))
}

/// The bearer token in the given `Authorization` header values: the scheme is
/// case-insensitive, the token must be one `b64token` (RFC 6750: letters, digits and
/// `-._~+/`, then `=` padding).
pub fn parse_bearer(values: &[String]) -> Bearer {
    let value = match values {
        [] => return Bearer::Missing,
        [one] => one.trim(),
        _ => return Bearer::Malformed,
    };
    let (scheme, rest) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest.trim_start_matches(' ')),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Bearer::Missing;
    }
    let body_end = rest
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
        .unwrap_or(rest.len());
    let valid = body_end > 0 && rest.as_bytes()[body_end..].iter().all(|&b| b == b'=');
    if valid {
        Bearer::Token(rest.to_owned())
    } else {
        Bearer::Malformed
    }
}

/// A `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3): `error` (`invalid_request`,
/// `invalid_token`, `insufficient_scope`), an optional description and the scope needed.
/// Quotes and backslashes in values are escaped; other characters a quoted string cannot hold
/// become `?`.
pub fn bearer_challenge(
    error: Option<&str>,
    description: Option<&str>,
    scope: Option<&str>,
) -> String {
    let mut params = Vec::new();
    if let Some(error) = error {
        params.push(format!("error=\"{}\"", quote(error)));
    }
    if let Some(description) = description {
        params.push(format!("error_description=\"{}\"", quote(description)));
    }
    if let Some(scope) = scope {
        params.push(format!("scope=\"{}\"", quote(scope)));
    }
    if params.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", params.join(", "))
    }
}

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// Why a bearer-token filter refuses a request (RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No token at all: `401` with a bare `WWW-Authenticate: Bearer`.
    Missing,
    /// A token that is malformed, expired, revoked, badly signed...: `401 invalid_token`
    /// with this description.
    InvalidToken(String),
    /// A good token without these required scopes: `403 insufficient_scope`.
    InsufficientScope(Vec<String>),
}

impl BearerError {
    /// Status, client message and `WWW-Authenticate` challenge.
    pub fn parts(&self) -> (u16, &'static str, String) {
        match self {
            BearerError::Missing => (401, "Unauthorized", bearer_challenge(None, None, None)),
            BearerError::InvalidToken(why) => (
                401,
                "Unauthorized",
                bearer_challenge(Some("invalid_token"), Some(why), None),
            ),
            BearerError::InsufficientScope(needed) => (
                403,
                "Forbidden",
                bearer_challenge(
                    Some("insufficient_scope"),
                    Some("the token lacks a required scope"),
                    Some(&needed.join(" ")),
                ),
            ),
        }
    }

    /// The refusal: `{"message": "Unauthorized" | "Forbidden", "requestId"}` with the
    /// challenge in `WWW-Authenticate`.
    pub fn respond(&self, ctx: &Context) -> Action {
        let (status, message, challenge) = self.parts();
        refuse(ctx, status, message, &[("www-authenticate", &challenge)])
    }
}

/// A refusal with extra headers, answered as the host answers errors: `status`,
/// `content-type: application/json` and `{"message": ..., "requestId": ...}`. Use it where an
/// [`Error`](crate::Error) is not enough, e.g. for `WWW-Authenticate`.
pub fn refuse(ctx: &Context, status: u16, message: &str, headers: &[(&str, &str)]) -> Action {
    let body = refusal_body(message, ctx.request_id().as_deref().unwrap_or(""));
    let resp = Response::with_body(status, "application/json", &body);
    for (name, value) in headers {
        if let Err(e) = resp.set_header(name, value) {
            crate::log::warn(&format!("auth: cannot set header `{name}`: {e}"));
        }
    }
    Action::Respond(resp)
}

/// The JSON body of a refusal: `{"message": ..., "requestId": ...}`.
pub fn refusal_body(message: &str, request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "message": message, "requestId": request_id }))
        .unwrap_or_default()
}

/// Who the caller turned out to be, written into the request context for the plugins and the
/// integration after the auth filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `auth.method`.
    pub method: String,
    /// `principal`.
    pub principal: String,
    /// `scopes`, written space-separated when not empty.
    pub scopes: Vec<String>,
    /// `usage_plan`, when the caller has one.
    pub usage_plan: Option<String>,
}

impl Identity {
    /// An identity established by `method` for `principal`, without scopes or plan.
    pub fn new(method: &str, principal: &str) -> Self {
        Self {
            method: method.to_owned(),
            principal: principal.to_owned(),
            scopes: Vec::new(),
            usage_plan: None,
        }
    }

    /// With these scopes.
    pub fn scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    /// With this usage plan.
    pub fn usage_plan(mut self, plan: Option<&str>) -> Self {
        self.usage_plan = plan.map(str::to_owned);
        self
    }

    /// The context entries this identity sets, in order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (PRINCIPAL, self.principal.clone()),
            (METHOD, self.method.clone()),
        ];
        if !self.scopes.is_empty() {
            out.push((SCOPES, self.scopes.join(" ")));
        }
        if let Some(plan) = &self.usage_plan {
            out.push((USAGE_PLAN, plan.clone()));
        }
        out
    }

    /// Writes the identity into `ctx`, removing `scopes` and `usage_plan` when this identity
    /// has none (an earlier filter's values must not be mistaken for this caller's).
    pub fn apply(&self, ctx: &Context) {
        for (key, value) in self.entries() {
            ctx.set(key, &value);
        }
        if self.scopes.is_empty() {
            ctx.remove(SCOPES);
        }
        if self.usage_plan.is_none() {
            ctx.remove(USAGE_PLAN);
        }
    }
}

/// Splits a space-separated scope string (the OAuth2 `scope` claim) into scopes.
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_hmac_match_known_answers() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231, test case 2.
        assert_eq!(
            hex_encode(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn constant_time_eq_compares_bytes_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(hex_encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode(""), Some(vec![]));
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(base64url_decode("-_8"), Some(b"\xfb\xff".to_vec()));
        assert_eq!(base64url_decode("-_8="), None, "padding");
        assert_eq!(base64url_decode("+/8"), None, "standard alphabet");
        assert_eq!(base64url_decode("-_9"), None, "non-zero trailing bits");
        assert_eq!(base64url_decode("a b"), None);
        assert_eq!(base64_encode(b"id:secret"), "aWQ6c2VjcmV0");
    }

    #[test]
    fn parses_bearer_tokens() {
        let one = |v: &str| parse_bearer(&[v.to_owned()]);
        assert_eq!(parse_bearer(&[]), Bearer::Missing);
        assert_eq!(one("Basic Zm9vOmJhcg=="), Bearer::Missing);
        assert_eq!(
            one("Bearer abc.def-_~+/=="),
            Bearer::Token("abc.def-_~+/==".into())
        );
        assert_eq!(one("bearer   abc"), Bearer::Token("abc".into()));
        assert_eq!(one("Bearer"), Bearer::Malformed);
        assert_eq!(one("Bearer "), Bearer::Malformed);
        assert_eq!(one("Bearer a b"), Bearer::Malformed);
        assert_eq!(one("Bearer a=b"), Bearer::Malformed);
        assert_eq!(one("Bearer \"a\""), Bearer::Malformed);
        assert_eq!(
            parse_bearer(&["Bearer a".into(), "Bearer b".into()]),
            Bearer::Malformed
        );
    }

    #[test]
    fn builds_bearer_challenges() {
        assert_eq!(bearer_challenge(None, None, None), "Bearer");
        assert_eq!(
            bearer_challenge(Some("invalid_token"), Some("the \"exp\" is past"), None),
            r#"Bearer error="invalid_token", error_description="the \"exp\" is past""#
        );
        assert_eq!(
            bearer_challenge(Some("insufficient_scope"), None, Some("read write")),
            r#"Bearer error="insufficient_scope", scope="read write""#
        );
        assert_eq!(
            bearer_challenge(Some("invalid_token"), Some("é\n"), None),
            r#"Bearer error="invalid_token", error_description="??""#
        );
    }

    #[test]
    fn bearer_errors() {
        assert_eq!(
            BearerError::Missing.parts(),
            (401, "Unauthorized", "Bearer".to_owned())
        );
        assert_eq!(
            BearerError::InvalidToken("expired".into()).parts(),
            (
                401,
                "Unauthorized",
                r#"Bearer error="invalid_token", error_description="expired""#.to_owned()
            )
        );
        assert_eq!(
            BearerError::InsufficientScope(vec!["a".into(), "b".into()]).parts(),
            (
                403,
                "Forbidden",
                r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="a b""#.to_owned()
            )
        );
    }

    #[test]
    fn identity_entries() {
        let id = Identity::new("jwt", "alice").scopes(split_scopes(" read  write "));
        assert_eq!(
            id.entries(),
            [
                (PRINCIPAL, "alice".to_owned()),
                (METHOD, "jwt".to_owned()),
                (SCOPES, "read write".to_owned())
            ]
        );
        let id = Identity::new("api-key", "bob").usage_plan(Some("gold"));
        assert_eq!(id.entries()[2], (USAGE_PLAN, "gold".to_owned()));
    }

    #[test]
    fn refusal_body_is_the_hosts_shape() {
        let body: serde_json::Value =
            serde_json::from_slice(&refusal_body("Unauthorized", "r-1")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": "Unauthorized", "requestId": "r-1"})
        );
    }
}
