//! JSON Web Keys and compact JSON Web Signatures: parsing a key set, parsing a token, and
//! checking its signature with a key chosen by the configuration, never by the token (the
//! algorithm must fit the key; `jku`, `x5u` and embedded `jwk` headers are never followed).

use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use wicket_plugin_sdk::auth;

/// A signature algorithm this filter verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
}

impl Alg {
    pub const ALL: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
        }
    }

    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The public part of a signing key.
#[derive(Debug, Clone)]
pub enum Material {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A verification key from a JWKS.
#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's `alg`, when the JWKS pins one.
    pub alg: Option<Alg>,
    pub material: Material,
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`: the key type must fit, and a
    /// key that names its algorithm allows that one only.
    pub fn allows(&self, alg: Alg) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        matches!(
            (&self.material, alg),
            (
                Material::Rsa(_),
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
            ) | (Material::P256(_), Alg::ES256)
                | (Material::P384(_), Alg::ES384)
                | (Material::Ed25519(_), Alg::EdDSA)
        )
    }
}

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

fn b64_field(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{name}` is missing or not a string"))?;
    auth::base64url_decode(text).ok_or_else(|| format!("`{name}` is not base64url"))
}

/// One key of a JWKS. `Ok(None)` for keys that are not for verifying signatures (`use` other
/// than `sig`, `key_ops` without `verify`, symmetric `oct` keys, unknown types): they are
/// skipped, not errors.
pub fn parse_jwk(value: &Value) -> Result<Option<Jwk>, String> {
    let jwk = value.as_object().ok_or("a key is not a JSON object")?;
    if jwk.get("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array().ok_or("`key_ops` is not a list")?;
        if !ops.iter().any(|o| o == "verify") {
            return Ok(None);
        }
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err("`kid` is not a string".into()),
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(a)) => match Alg::from_name(a) {
            Some(Alg::HS256) => return Ok(None),
            Some(a) => Some(a),
            None => return Ok(None),
        },
        Some(_) => return Err("`alg` is not a string".into()),
    };
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("`kty` is missing")?;
    let material = match kty {
        "RSA" => {
            let n = BigUint::from_bytes_be(&b64_field(jwk, "n")?);
            let e = BigUint::from_bytes_be(&b64_field(jwk, "e")?);
            let key = RsaPublicKey::new(n, e).map_err(|e| format!("bad RSA key: {e}"))?;
            let bits = rsa::traits::PublicKeyParts::n(&key).bits();
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits; at least {MIN_RSA_BITS} are needed"
                ));
            }
            Material::Rsa(key)
        }
        "EC" => {
            let crv = jwk
                .get("crv")
                .and_then(Value::as_str)
                .ok_or("`crv` is missing")?;
            let mut point = vec![0x04];
            let (x, y) = (b64_field(jwk, "x")?, b64_field(jwk, "y")?);
            let size = match crv {
                "P-256" => 32,
                "P-384" => 48,
                _ => return Ok(None),
            };
            if x.len() != size || y.len() != size {
                return Err(format!("{crv} coordinates must be {size} bytes"));
            }
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            match crv {
                "P-256" => Material::P256(
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                        .map_err(|_| "the P-256 point is not on the curve")?,
                ),
                _ => Material::P384(
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                        .map_err(|_| "the P-384 point is not on the curve")?,
                ),
            }
        }
        "OKP" => {
            if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                return Ok(None);
            }
            let x: [u8; 32] = b64_field(jwk, "x")?
                .try_into()
                .map_err(|_| "an Ed25519 `x` must be 32 bytes")?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| "the Ed25519 key is invalid")?;
            if key.is_weak() {
                return Err("the Ed25519 key is a weak (small-order) key".into());
            }
            Material::Ed25519(key)
        }
        _ => return Ok(None),
    };
    Ok(Some(Jwk { kid, alg, material }))
}

/// The signature keys of a JWKS document (`{"keys": [...]}`). Keys that cannot be used are
/// reported in the second list (for the log) and left out.
pub fn parse_jwks(value: &Value) -> Result<(Vec<Jwk>, Vec<String>), String> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWKS must be an object with a `keys` list")?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match parse_jwk(key) {
            Ok(Some(k)) => out.push(k),
            Ok(None) => {}
            Err(e) => problems.push(format!("keys[{i}]: {e}")),
        }
    }
    Ok((out, problems))
}

/// A compact JWS, decoded but not yet verified.
#[derive(Debug)]
pub struct Token<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    pub payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Why a token is refused before its claims are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwsError {
    Malformed(&'static str),
    AlgNone,
    UnsupportedAlg(String),
    AlgNotAllowed(Alg),
    UnknownKid(String),
    NoKey(Alg),
    BadSignature,
}

impl JwsError {
    pub fn describe(&self) -> String {
        match self {
            JwsError::Malformed(why) => format!("malformed token: {why}"),
            JwsError::AlgNone => "unsigned tokens (alg none) are not accepted".into(),
            JwsError::UnsupportedAlg(a) => format!("unsupported algorithm {a}"),
            JwsError::AlgNotAllowed(a) => format!("algorithm {} is not allowed", a.name()),
            JwsError::UnknownKid(k) => format!("unknown key id {k}"),
            JwsError::NoKey(a) => format!("no key for algorithm {}", a.name()),
            JwsError::BadSignature => "invalid signature".into(),
        }
    }
}

/// Decodes a compact JWS: three base64url parts, a JSON object header with a known `alg`,
/// no `crit` extensions (none is understood here).
pub fn parse_token(token: &str) -> Result<Token<'_>, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("a JWS has three dot-separated parts"));
    };
    let header = auth::base64url_decode(h).ok_or(JwsError::Malformed("header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&header).map_err(|_| JwsError::Malformed("header is not JSON"))?;
    let header = header
        .as_object()
        .ok_or(JwsError::Malformed("header is not a JSON object"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwsError::Malformed("header has no alg"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(JwsError::AlgNone);
    }
    let alg = Alg::from_name(alg)
        .ok_or_else(|| JwsError::UnsupportedAlg(alg.chars().take(16).collect()))?;
    if header.contains_key("crit") {
        return Err(JwsError::Malformed(
            "unsupported critical header parameters",
        ));
    }
    if header.get("b64").is_some_and(|b| b != true) {
        return Err(JwsError::Malformed("unencoded payloads are not supported"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(JwsError::Malformed("kid is not a string")),
    };
    let payload =
        auth::base64url_decode(p).ok_or(JwsError::Malformed("payload is not base64url"))?;
    let signature =
        auth::base64url_decode(s).ok_or(JwsError::Malformed("signature is not base64url"))?;
    Ok(Token {
        alg,
        kid,
        payload,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature,
    })
}

/// Whether `sig` is a valid signature by `key` with `alg` over `input`.
fn verify_with(material: &Material, alg: Alg, input: &[u8], sig: &[u8]) -> bool {
    match (material, alg) {
        (
            Material::Rsa(key),
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512,
        ) => {
            // A signature is exactly as long as the modulus.
            if sig.len() != rsa::traits::PublicKeyParts::size(key) {
                return false;
            }
            let Ok(s) = rsa::pkcs1v15::Signature::try_from(sig) else {
                return false;
            };
            let Ok(p) = rsa::pss::Signature::try_from(sig) else {
                return false;
            };
            let key = key.clone();
            match alg {
                Alg::RS256 => rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                    .verify(input, &s)
                    .is_ok(),
                Alg::RS384 => rsa::pkcs1v15::VerifyingKey::<Sha384>::new(key)
                    .verify(input, &s)
                    .is_ok(),
                Alg::RS512 => rsa::pkcs1v15::VerifyingKey::<Sha512>::new(key)
                    .verify(input, &s)
                    .is_ok(),
                Alg::PS256 => rsa::pss::VerifyingKey::<Sha256>::new(key)
                    .verify(input, &p)
                    .is_ok(),
                Alg::PS384 => rsa::pss::VerifyingKey::<Sha384>::new(key)
                    .verify(input, &p)
                    .is_ok(),
                _ => rsa::pss::VerifyingKey::<Sha512>::new(key)
                    .verify(input, &p)
                    .is_ok(),
            }
        }
        (Material::P256(key), Alg::ES256) => p256::ecdsa::Signature::from_slice(sig)
            .is_ok_and(|s| sig.len() == 64 && key.verify(input, &s).is_ok()),
        (Material::P384(key), Alg::ES384) => p384::ecdsa::Signature::from_slice(sig)
            .is_ok_and(|s| sig.len() == 96 && key.verify(input, &s).is_ok()),
        (Material::Ed25519(key), Alg::EdDSA) => <[u8; 64]>::try_from(sig).is_ok_and(|s| {
            key.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&s))
                .is_ok()
        }),
        _ => false,
    }
}

/// What may verify a token.
pub struct Keys<'a> {
    pub jwks: &'a [Jwk],
    pub hs_secret: Option<&'a [u8]>,
    pub allowed: &'a [Alg],
}

impl Token<'_> {
    /// Checks the signature: HS256 only with the configured secret (never with a public
    /// key), any other algorithm only with a JWKS key of a fitting type, chosen by `kid` when
    /// the token names one.
    pub fn verify(&self, keys: &Keys<'_>) -> Result<(), JwsError> {
        if !keys.allowed.contains(&self.alg) {
            return Err(JwsError::AlgNotAllowed(self.alg));
        }
        let input = self.signing_input.as_bytes();
        if self.alg == Alg::HS256 {
            let Some(secret) = keys.hs_secret else {
                return Err(JwsError::AlgNotAllowed(Alg::HS256));
            };
            let mac = auth::hmac_sha256(secret, input);
            return if auth::constant_time_eq(&mac, &self.signature) {
                Ok(())
            } else {
                Err(JwsError::BadSignature)
            };
        }
        let named: Vec<&Jwk> = match &self.kid {
            Some(kid) => {
                let named: Vec<&Jwk> = keys
                    .jwks
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect();
                if named.is_empty() {
                    return Err(JwsError::UnknownKid(kid.chars().take(64).collect()));
                }
                named
            }
            None => keys.jwks.iter().collect(),
        };
        let fitting: Vec<&Jwk> = named.into_iter().filter(|k| k.allows(self.alg)).collect();
        if fitting.is_empty() {
            return Err(JwsError::NoKey(self.alg));
        }
        if fitting
            .iter()
            .any(|k| verify_with(&k.material, self.alg, input, &self.signature))
        {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}
