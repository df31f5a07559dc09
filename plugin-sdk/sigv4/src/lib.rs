//! AWS Signature Version 4 (HMAC-SHA256), the one implementation Wicket has: the `sigv4` filter
//! verifies with it (through `wicket-plugin-sdk`), and the gateway signs its outbound calls to
//! AWS with it (the `http` integration's `sign`, the `lambda` integration). Pure functions over
//! what a request holds, with the clock as an argument, so that the AWS test suite
//! (`tests/vectors/sigv4`) checks every step byte for byte, natively and in the guest alike.
//!
//! Signing a request:
//!
//! ```
//! use wicket_sigv4::{sign, Credentials, PathRules, Unsigned};
//!
//! let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
//! let mut headers = vec![("host".to_owned(), "example.amazonaws.com".to_owned())];
//! let signed = sign(
//!     &Unsigned { method: "GET", path: "/", query: None, payload_hash: &wicket_sigv4::sha256_hex(b"") },
//!     &mut headers,
//!     &creds,
//!     "us-east-1",
//!     "service",
//!     PathRules::for_service("service"),
//!     1_440_938_160,
//! );
//! assert!(signed.authorization.ends_with("Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
//! ```

pub mod canonical;
#[cfg(any(test, feature = "suite"))]
pub mod suite;
pub mod time;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm's name, in `Authorization` and presigned URLs.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash that leaves the body out of the signature (S3 accepts it): the body can
/// stream without being read first.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of `data`, lower-case hex (the payload hash of a body).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Whether `name` can be a region or service of a scope this gateway signs for: lower-case
/// letters, digits and `-` (`us-east-1`, `s3`, `execute-api`).
pub fn is_scope_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The credential scope: `20150830/us-east-1/service/aws4_request`.
pub fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The signing key for a secret, date (`yyyymmdd`), region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The string to sign of a canonical request signed at `timestamp` (ISO 8601 basic) in `scope`.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signature (HMAC of the string to sign under the signing key), as raw bytes.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> [u8; 32] {
    hmac_sha256(key, string_to_sign.as_bytes())
}

/// The canonical request from its parts: the canonical URI and query, the canonical headers
/// block (`name:value\n` each), the signed header names, the payload hash.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}")
}

/// How a service's signers canonicalize the path: every service but S3 normalizes it (dot and
/// empty segments) and URI-encodes it once more; S3 signs the path as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    pub normalize: bool,
    pub double_encode: bool,
}

impl PathRules {
    /// What the AWS SDKs do for `service`.
    pub fn for_service(service: &str) -> PathRules {
        let s3 = service == "s3";
        PathRules {
            normalize: !s3,
            double_encode: !s3,
        }
    }
}

/// An AWS key pair, with the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        Credentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            session_token: session_token.map(str::to_owned),
        }
    }
}

/// Never prints the secret or the token, so credentials cannot leak through a log line.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What a signature covers besides the headers.
#[derive(Debug, Clone, Copy)]
pub struct Unsigned<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// The path as it goes on the wire (percent-encoding kept).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The body's hex SHA-256, or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// The outcome of [`sign`]: the `Authorization` value, and the steps for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub authorization: String,
    pub canonical_request: String,
    pub string_to_sign: String,
}

/// Signs a request at `now` (seconds since the epoch). `headers` are the headers to sign
/// (`host` among them); `X-Amz-Date` and, for temporary credentials, `X-Amz-Security-Token`
/// are added to them (replacing any value), so the caller sends every header in `headers`
/// plus `Authorization`. Names are matched without regard to case and signed in lower case;
/// the values of a repeated header are signed in the order given.
pub fn sign(
    req: &Unsigned<'_>,
    headers: &mut Vec<(String, String)>,
    creds: &Credentials,
    region: &str,
    service: &str,
    rules: PathRules,
    now: u64,
) -> Signed {
    let timestamp = time::format_iso_basic(now);
    let mut set = |name: &str, value: &str| {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_owned(), value.to_owned()));
    };
    set("x-amz-date", &timestamp);
    if let Some(token) = &creds.session_token {
        set("x-amz-security-token", token);
    }
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let block = canonical::canonical_headers(&signed, |name| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    })
    .expect("every signed header comes from `headers`");
    let signed_headers = signed.join(";");
    let creq = canonical_request(
        req.method,
        &canonical::canonical_uri(req.path, rules.normalize, rules.double_encode),
        &canonical::canonical_query(req.query, false),
        &block,
        &signed_headers,
        req.payload_hash,
    );
    let date = &timestamp[..8];
    let scope = scope(date, region, service);
    let sts = string_to_sign(&timestamp, &scope, &creq);
    let key = signing_key(&creds.secret_access_key, date, region, service);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        creds.access_key_id,
        hex(&signature(&key, &sts))
    );
    Signed {
        authorization,
        canonical_request: creq,
        string_to_sign: sts,
    }
}

#[cfg(test)]
mod tests;
