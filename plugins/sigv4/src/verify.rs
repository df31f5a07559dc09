//! Verifying a request signed with AWS Signature Version 4 (HMAC-SHA256), in the
//! `Authorization` header or as a presigned URL. Pure: the request is read through
//! [`Message`], the clock is an argument.

use wicket_plugin_sdk::auth;
use wicket_plugin_sdk::sigv4::canonical::{
    canonical_headers, canonical_query, canonical_uri, percent_decode,
};
use wicket_plugin_sdk::sigv4::time::{format_iso_basic, parse_http_date, parse_iso_basic};
use wicket_plugin_sdk::sigv4::{self, ALGORITHM, UNSIGNED_PAYLOAD};
/// Presigned URLs live at most 7 days, as AWS allows.
const MAX_EXPIRES_S: u64 = 604_800;

/// The parts of a request a signature covers.
pub trait Message {
    /// Upper-case method.
    fn method(&self) -> String;
    /// The path as received, percent-encoding kept.
    fn path(&self) -> String;
    /// The raw query string, without `?`.
    fn query(&self) -> Option<String>;
    /// Every value of the header `name` (lower case), in order.
    fn header_values(&self, name: &str) -> Vec<String>;
    /// The body.
    fn body(&self) -> Vec<u8>;
}

/// A key pair the gateway accepts, and who signs with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
    pub principal: String,
}

/// Why a request is refused: both are 403s, as API Gateway gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No signature at all.
    Missing,
    /// A signature that does not hold, and why.
    Forbidden(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::Missing => "Missing Authentication Token",
            Refusal::Forbidden(reason) => reason,
        }
    }
}

fn forbid<T>(reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Forbidden(reason.into()))
}

pub const SIGNATURE_MISMATCH: &str = "Signature mismatch: the request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.";
pub const UNKNOWN_KEY: &str =
    "Unknown access key: the security token included in the request is invalid.";

/// How the gateway verifies.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub credentials: Vec<Credential>,
    pub region: String,
    pub service: String,
    pub max_skew_s: u64,
    pub allow_unsigned_payload: bool,
    pub normalize_path: bool,
    pub double_encode_path: bool,
}

/// What the request claims: the parsed `Authorization` header or presigned query.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub presigned: bool,
    pub access_key: String,
    pub scope_date: String,
    pub scope_region: String,
    pub scope_service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date` (or the `Date` header, converted), ISO 8601 basic.
    pub timestamp: String,
    pub expires_s: Option<u64>,
}

impl Claim {
    pub fn scope(&self) -> String {
        sigv4::scope(&self.scope_date, &self.scope_region, &self.scope_service)
    }
}

/// The decoded `X-Amz-*` parameters of a query string that matter for presigning.
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = String::from_utf8_lossy(&percent_decode(name)).into_owned();
            name.starts_with("X-Amz-").then(|| {
                (
                    name,
                    String::from_utf8_lossy(&percent_decode(value)).into_owned(),
                )
            })
        })
        .collect()
}

/// The one value of `name` among `params`; an error when it is missing or repeated.
fn one_param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, Refusal> {
    let mut found = params.iter().filter(|(n, _)| n == name);
    match (found.next(), found.next()) {
        (Some((_, v)), None) => Ok(v),
        (None, _) => forbid(format!(
            "Malformed presigned URL: the query string requires the '{name}' parameter."
        )),
        (Some(_), Some(_)) => forbid(format!(
            "Malformed presigned URL: the '{name}' parameter appears more than once."
        )),
    }
}

/// `AK/20150830/us-east-1/service/aws4_request` into its parts, with the terminator checked.
fn parse_credential(value: &str) -> Result<[String; 4], Refusal> {
    let parts: Vec<&str> = value.split('/').collect();
    let [key, date, region, service, terminator] = parts[..] else {
        return forbid(format!(
            "Malformed credential: expected <access key>/<date>/<region>/<service>/aws4_request, got '{value}'."
        ));
    };
    if key.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return forbid(format!(
            "Malformed credential: expected <access key>/<yyyymmdd>/<region>/<service>/aws4_request, got '{value}'."
        ));
    }
    if terminator != "aws4_request" {
        return forbid(format!(
            "Wrong credential scope: the scope must end with 'aws4_request', not '{terminator}'."
        ));
    }
    Ok([key.into(), date.into(), region.into(), service.into()])
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, Refusal> {
    let names: Vec<String> = value.split(';').map(str::to_owned).collect();
    if names
        .iter()
        .any(|n| n.is_empty() || n.bytes().any(|b| b.is_ascii_uppercase() || b <= b' '))
    {
        return forbid(format!(
            "Malformed SignedHeaders '{value}': expected lower-case header names separated by ';'."
        ));
    }
    Ok(names)
}

/// The timestamp of a header-signed request: `X-Amz-Date`, else `Date` (as ISO 8601 basic).
fn header_timestamp<M: Message>(msg: &M) -> Result<String, Refusal> {
    let amz = msg.header_values("x-amz-date");
    match amz.as_slice() {
        [one] => return Ok(one.trim().to_owned()),
        [] => {}
        _ => return forbid("Malformed request: more than one X-Amz-Date header."),
    }
    match msg.header_values("date").as_slice() {
        [one] => match parse_http_date(one.trim()) {
            Some(secs) => Ok(format_iso_basic(secs)),
            None => forbid(format!("Invalid Date header '{one}'.")),
        },
        [] => forbid(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ),
        _ => forbid("Malformed request: more than one Date header."),
    }
}

/// Parses the signature claim of `msg`: its form, credential, signed headers, timestamp.
pub fn parse_claim<M: Message>(msg: &M) -> Result<Claim, Refusal> {
    let authorization = msg.header_values("authorization");
    let params = msg.query().map(|q| query_params(&q)).unwrap_or_default();
    let presigned = params.iter().any(|(n, _)| {
        matches!(
            n.as_str(),
            "X-Amz-Algorithm" | "X-Amz-Signature" | "X-Amz-Credential"
        )
    });
    match (authorization.as_slice(), presigned) {
        ([], false) => Err(Refusal::Missing),
        ([_, ..], true) => forbid(
            "Only one auth mechanism allowed: send either the Authorization header or a presigned query string.",
        ),
        ([], true) => parse_presigned(&params),
        ([one], false) => parse_authorization(msg, one),
        (_, false) => forbid("Malformed request: more than one Authorization header."),
    }
}

fn parse_authorization<M: Message>(msg: &M, value: &str) -> Result<Claim, Refusal> {
    let value = value.trim();
    let rest = match value.split_once(' ') {
        Some((scheme, rest)) if scheme == ALGORITHM => rest,
        _ if value == ALGORITHM => "",
        _ => {
            return forbid(format!(
                "Unsupported Authorization type: the Authorization header must use {ALGORITHM}."
            ))
        }
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, v)) = part.split_once('=') else {
            return forbid(format!(
                "Malformed Authorization header: '{part}' is not key=value."
            ));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return forbid(format!(
                "Malformed Authorization header: '{name}' appears twice."
            ));
        }
    }
    let mut missing = Vec::new();
    for (name, slot) in [
        ("Credential", &credential),
        ("SignedHeaders", &signed_headers),
        ("Signature", &signature),
    ] {
        if slot.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return forbid(missing.join(" "));
    }
    let [access_key, scope_date, scope_region, scope_service] =
        parse_credential(credential.unwrap_or_default())?;
    Ok(Claim {
        presigned: false,
        access_key,
        scope_date,
        scope_region,
        scope_service,
        signed_headers: parse_signed_headers(signed_headers.unwrap_or_default())?,
        signature: signature.unwrap_or_default().to_owned(),
        timestamp: header_timestamp(msg)?,
        expires_s: None,
    })
}

fn parse_presigned(params: &[(String, String)]) -> Result<Claim, Refusal> {
    let algorithm = one_param(params, "X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return forbid(format!(
            "Unsupported X-Amz-Algorithm '{algorithm}': only {ALGORITHM} is supported."
        ));
    }
    let [access_key, scope_date, scope_region, scope_service] =
        parse_credential(one_param(params, "X-Amz-Credential")?)?;
    let expires = one_param(params, "X-Amz-Expires")?;
    let expires_s = expires
        .parse::<u64>()
        .ok()
        .filter(|e| (1..=MAX_EXPIRES_S).contains(e))
        .ok_or_else(|| {
            Refusal::Forbidden(format!(
                "X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_S}, got '{expires}'."
            ))
        })?;
    Ok(Claim {
        presigned: true,
        access_key,
        scope_date,
        scope_region,
        scope_service,
        signed_headers: parse_signed_headers(one_param(params, "X-Amz-SignedHeaders")?)?,
        signature: one_param(params, "X-Amz-Signature")?.to_owned(),
        timestamp: one_param(params, "X-Amz-Date")?.to_owned(),
        expires_s: Some(expires_s),
    })
}

/// The string to sign for a canonical request, as `claim` dates and scopes it.
pub fn string_to_sign(claim: &Claim, canonical_request: &str) -> String {
    sigv4::string_to_sign(&claim.timestamp, &claim.scope(), canonical_request)
}

impl Verifier {
    /// Who signed `msg`, if the signature holds at time `now` (seconds since the epoch).
    pub fn verify<M: Message>(&self, msg: &M, now: u64) -> Result<&Credential, Refusal> {
        let claim = parse_claim(msg)?;
        let Some(signed_at) = parse_iso_basic(&claim.timestamp) else {
            return forbid(format!(
                "Invalid X-Amz-Date '{}': expected yyyyMMdd'T'HHmmss'Z'.",
                claim.timestamp
            ));
        };
        self.check_scope(&claim)?;
        self.check_time(&claim, signed_at, now)?;
        let Some(credential) = self
            .credentials
            .iter()
            .find(|c| c.access_key == claim.access_key)
        else {
            return forbid(UNKNOWN_KEY);
        };
        if !claim.signed_headers.iter().any(|h| h == "host") {
            return forbid("SignedHeaders must include 'host'.");
        }
        if !msg.header_values("x-amz-security-token").is_empty()
            && !claim
                .signed_headers
                .iter()
                .any(|h| h == "x-amz-security-token")
        {
            return forbid("X-Amz-Security-Token must be a signed header.");
        }
        let key = sigv4::signing_key(
            &credential.secret_key,
            &claim.scope_date,
            &claim.scope_region,
            &claim.scope_service,
        );
        let provided = auth::hex_decode(&claim.signature).filter(|s| s.len() == 32);
        let mut matched = false;
        for payload_hash in self.payload_hashes(msg, &claim)? {
            let creq = self.canonical_request(msg, &claim, &payload_hash)?;
            let expected = sigv4::signature(&key, &string_to_sign(&claim, &creq));
            if let Some(provided) = &provided {
                matched |= auth::constant_time_eq(&expected, provided);
            }
        }
        if matched {
            Ok(credential)
        } else {
            forbid(SIGNATURE_MISMATCH)
        }
    }

    fn check_scope(&self, claim: &Claim) -> Result<(), Refusal> {
        if claim.scope_date != claim.timestamp[..8] {
            return forbid(format!(
                "Wrong credential scope: date '{}' does not match the request date '{}'.",
                claim.scope_date, claim.timestamp
            ));
        }
        if claim.scope_region != self.region {
            return forbid(format!(
                "Wrong credential scope: region '{}' should be '{}'.",
                claim.scope_region, self.region
            ));
        }
        if claim.scope_service != self.service {
            return forbid(format!(
                "Wrong credential scope: service '{}' should be '{}'.",
                claim.scope_service, self.service
            ));
        }
        Ok(())
    }

    fn check_time(&self, claim: &Claim, signed_at: u64, now: u64) -> Result<(), Refusal> {
        let skew = self.max_skew_s;
        if signed_at > now.saturating_add(skew) {
            return forbid(format!(
                "Signature not yet current: {} is still later than {} ({} + {skew} s).",
                claim.timestamp,
                format_iso_basic(now + skew),
                format_iso_basic(now)
            ));
        }
        match claim.expires_s {
            None if signed_at.saturating_add(skew) < now => forbid(format!(
                "Signature expired: {} is now earlier than {} ({} - {skew} s).",
                claim.timestamp,
                format_iso_basic(now - skew),
                format_iso_basic(now)
            )),
            Some(expires) if signed_at.saturating_add(expires) < now => forbid(format!(
                "Signature expired: the presigned request expired at {} (signed at {} for {expires} s).",
                format_iso_basic(signed_at + expires),
                claim.timestamp
            )),
            _ => Ok(()),
        }
    }

    /// The payload hashes the signature may cover: the one the client declared in
    /// `X-Amz-Content-Sha256` (checked against the body), else the body's SHA-256 and, for
    /// presigned URLs when unsigned payloads are acceptable, `UNSIGNED-PAYLOAD`.
    fn payload_hashes<M: Message>(&self, msg: &M, claim: &Claim) -> Result<Vec<String>, Refusal> {
        let declared = msg.header_values("x-amz-content-sha256");
        let declared = match declared.as_slice() {
            [] => None,
            [one] => Some(one.trim().to_owned()),
            _ => return forbid("Malformed request: more than one X-Amz-Content-Sha256 header."),
        };
        match declared {
            Some(d) if d == UNSIGNED_PAYLOAD => {
                if self.allow_unsigned_payload || msg.body().is_empty() {
                    Ok(vec![d])
                } else {
                    forbid("UNSIGNED-PAYLOAD is not allowed: sign the body's SHA-256 in X-Amz-Content-Sha256.")
                }
            }
            Some(d) if d.starts_with("STREAMING-") => forbid(format!(
                "Unsupported X-Amz-Content-Sha256 '{d}': streaming payloads are not supported."
            )),
            Some(d) => {
                let Some(bytes) = auth::hex_decode(&d).filter(|b| b.len() == 32) else {
                    return forbid(format!(
                        "Invalid X-Amz-Content-Sha256 '{d}': expected the hex SHA-256 of the body or UNSIGNED-PAYLOAD."
                    ));
                };
                if !auth::constant_time_eq(&bytes, &auth::sha256(&msg.body())) {
                    return forbid(
                        "X-Amz-Content-Sha256 does not match the SHA-256 of the body received.",
                    );
                }
                Ok(vec![d])
            }
            None => {
                let body = msg.body();
                let mut hashes = vec![auth::sha256_hex(&body)];
                if claim.presigned && (self.allow_unsigned_payload || body.is_empty()) {
                    hashes.push(UNSIGNED_PAYLOAD.to_owned());
                }
                Ok(hashes)
            }
        }
    }

    /// The canonical request of `msg` as `claim` signed it, with `payload_hash` last.
    pub fn canonical_request<M: Message>(
        &self,
        msg: &M,
        claim: &Claim,
        payload_hash: &str,
    ) -> Result<String, Refusal> {
        let signed: Vec<&str> = claim.signed_headers.iter().map(String::as_str).collect();
        let headers =
            canonical_headers(&signed, |name| msg.header_values(name)).or_else(|name| {
                forbid(format!(
                    "Signed header '{name}' is missing from the request."
                ))
            })?;
        Ok(sigv4::canonical_request(
            &msg.method(),
            &canonical_uri(&msg.path(), self.normalize_path, self.double_encode_path),
            &canonical_query(msg.query().as_deref(), claim.presigned),
            &headers,
            &signed.join(";"),
            payload_hash,
        ))
    }
}
