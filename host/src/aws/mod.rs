//! Calls to AWS signed by the gateway: the credentials (read from the standard chain, see
//! `credentials.rs`) live here, in the host, and no plugin can read them. A planned forward
//! with a sign spec (the `http` integration's `sign`) and the `aws` capability (the `lambda`
//! integration) both come here; the signing itself is `wicket-sigv4`, the crate the `sigv4`
//! filter verifies with.

pub mod credentials;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderName, HeaderValue};
use wicket_sigv4::{Credentials, PathRules, Unsigned, UNSIGNED_PAYLOAD};

use crate::body::{Body, BodyError};
use crate::capabilities::http::OutgoingRequest;

/// How long resolved credentials are used before the chain is read again: temporary
/// credentials written to the shared files (or a reload's new environment) are picked up
/// within this, without a request ever waiting on a file read longer than once per period.
const REFRESH: Duration = Duration::from_secs(300);

/// The gateway's AWS credentials, resolved from the chain on first use and again every
/// `REFRESH`. One per deployed config.
pub struct Keychain {
    resolve: Box<dyn Fn() -> Result<Credentials, credentials::CredentialsError> + Send + Sync>,
    cached: Mutex<Option<(Instant, Arc<Credentials>)>>,
}

impl Keychain {
    /// The chain of this process (environment, then the shared files).
    pub fn from_process() -> Keychain {
        Keychain {
            resolve: Box::new(credentials::Chain::resolve_process),
            cached: Mutex::new(None),
        }
    }

    /// Fixed credentials (tests).
    pub fn fixed(creds: Credentials) -> Keychain {
        Keychain {
            resolve: Box::new(move || Ok(creds.clone())),
            cached: Mutex::new(None),
        }
    }

    /// The credentials to sign with now. When a refresh fails, the credentials read before
    /// go on being used (and the failure is logged); with none read before, it is an error.
    pub fn get(&self) -> Result<Arc<Credentials>, credentials::CredentialsError> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, creds)) = &*cached {
            if at.elapsed() < REFRESH {
                return Ok(creds.clone());
            }
        }
        match (self.resolve)() {
            Ok(c) => {
                let c = Arc::new(c);
                *cached = Some((Instant::now(), c.clone()));
                Ok(c)
            }
            Err(e) => match &mut *cached {
                Some((at, creds)) => {
                    tracing::warn!("AWS credentials: {e}; going on with the ones read before");
                    *at = Instant::now();
                    Ok(creds.clone())
                }
                None => Err(e),
            },
        }
    }
}

/// What to sign for: a service's signing name and a region, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignSpec {
    pub service: String,
    pub region: String,
    /// For a forward: the client's `X-Amz-*` headers that are kept (and signed).
    pub pass_headers: Vec<HeaderName>,
}

impl SignSpec {
    /// A spec whose names can be scope parts: lower-case letters, digits and `-`.
    pub fn new(service: &str, region: &str) -> Result<SignSpec, String> {
        for (what, v) in [("service", service), ("region", region)] {
            if !wicket_sigv4::is_scope_name(v) {
                return Err(format!(
                    "signing {what} {v:?} must be lower-case letters, digits and '-', like \
                     \"s3\" or \"us-east-1\""
                ));
            }
        }
        Ok(SignSpec {
            service: service.to_owned(),
            region: region.to_owned(),
            pass_headers: Vec::new(),
        })
    }

    /// Whether a streamed body must be read whole to be signed: every service but S3 signs
    /// the body's hash; S3 accepts `UNSIGNED-PAYLOAD`, so the body streams.
    pub fn hashes_streams(&self) -> bool {
        self.service != "s3"
    }
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}")]
    Credentials(#[from] credentials::CredentialsError),
    #[error("the body to sign is over max_body_bytes ({limit} bytes)")]
    TooLarge { limit: usize },
    #[error("reading the body to sign: {0}")]
    Read(String),
    #[error("{0}")]
    Invalid(String),
}

/// Headers a client may send that would speak for the gateway's signature, or be signed with
/// it and act with the gateway's rights (`x-amz-acl: public-read`): `Authorization` and every
/// `X-Amz-*` header but those in `pass`, dropped from a forwarded request before it is signed.
pub fn strip_client_auth(headers: &mut http::HeaderMap, pass: &[HeaderName]) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| {
            *n == header::AUTHORIZATION || (n.as_str().starts_with("x-amz-") && !pass.contains(n))
        })
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

/// Sign `out` for `spec` with `keychain`'s credentials at the current time. Replaces the
/// signature's own headers (`Authorization`, `X-Amz-Date`, `X-Amz-Security-Token`,
/// `X-Amz-Content-Sha256`) and sets `Host`; signs `host`, `content-type`, `content-md5` and
/// every `x-amz-*` header. A streamed body is read whole (within `max_body`) unless the
/// service is S3, which gets `UNSIGNED-PAYLOAD`.
pub async fn sign(
    out: &mut OutgoingRequest,
    spec: &SignSpec,
    keychain: &Keychain,
    max_body: usize,
) -> Result<(), SignError> {
    let creds = keychain.get()?;
    let payload_hash = match &mut out.body {
        Body::Full(b) => wicket_sigv4::sha256_hex(b),
        Body::Stream(_) if !spec.hashes_streams() => UNSIGNED_PAYLOAD.to_owned(),
        body @ Body::Stream(_) => match body.buffer(max_body).await {
            Ok(b) => wicket_sigv4::sha256_hex(b),
            Err(BodyError::TooLarge { limit }) => return Err(SignError::TooLarge { limit }),
            Err(BodyError::Read(e)) => return Err(SignError::Read(e.to_string())),
        },
    };
    let Some(authority) = out.uri.authority() else {
        return Err(SignError::Invalid(format!(
            "URL {} has no host to sign",
            out.uri
        )));
    };
    let default_port = match out.uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let host = match authority.port_u16() {
        Some(p) if p != default_port => format!("{}:{p}", authority.host()),
        _ => authority.host().to_owned(),
    };
    for name in [
        header::AUTHORIZATION.as_str(),
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ] {
        out.headers.remove(name);
    }
    if !spec.hashes_streams() {
        out.headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_str(&payload_hash).expect("hex or UNSIGNED-PAYLOAD"),
        );
    }
    let mut signed: Vec<(String, String)> = vec![("host".to_owned(), host.clone())];
    for (name, value) in &out.headers {
        let n = name.as_str();
        if n == "content-type" || n == "content-md5" || n.starts_with("x-amz-") {
            let value = value.to_str().map_err(|_| {
                SignError::Invalid(format!("header {n} is not text and cannot be signed"))
            })?;
            signed.push((n.to_owned(), value.to_owned()));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let path = out.uri.path().to_owned();
    let query = out.uri.query().map(str::to_owned);
    let method = out.method.as_str().to_owned();
    let result = wicket_sigv4::sign(
        &Unsigned {
            method: &method,
            path: &path,
            query: query.as_deref(),
            payload_hash: &payload_hash,
        },
        &mut signed,
        &creds,
        &spec.region,
        &spec.service,
        PathRules::for_service(&spec.service),
        now,
    );
    let value = |v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| SignError::Invalid(format!("{v:?} is not a header value")))
    };
    out.headers.insert(header::HOST, value(&host)?);
    for (name, v) in &signed {
        if name.starts_with("x-amz-") {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SignError::Invalid(format!("{name:?} is not a header name")))?;
            out.headers.insert(name, value(v)?);
        }
    }
    out.headers
        .insert(header::AUTHORIZATION, value(&result.authorization)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    fn request(method: Method, url: &str, body: Body) -> OutgoingRequest {
        OutgoingRequest {
            method,
            uri: url.parse().unwrap(),
            headers: HeaderMap::new(),
            body,
            sign: None,
        }
    }

    fn keychain() -> Keychain {
        Keychain::fixed(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("tok"),
        ))
    }

    #[tokio::test]
    async fn signs_with_the_body_hash_and_replaces_forged_headers() {
        let mut out = request(
            Method::POST,
            "http://127.0.0.1:9000/2015-03-31/functions/f/invocations",
            Body::Full(bytes::Bytes::from_static(b"{}")),
        );
        out.headers
            .insert(header::AUTHORIZATION, HeaderValue::from_static("forged"));
        out.headers
            .insert("x-amz-date", HeaderValue::from_static("19990101T000000Z"));
        out.headers.insert(
            "x-amz-invocation-type",
            HeaderValue::from_static("RequestResponse"),
        );
        let spec = SignSpec::new("lambda", "us-east-1").unwrap();
        sign(&mut out, &spec, &keychain(), 1024).await.unwrap();
        let auth = out.headers[header::AUTHORIZATION].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(
            auth.contains("/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date;x-amz-invocation-type;x-amz-security-token, Signature="),
            "{auth}"
        );
        assert_eq!(out.headers[header::HOST], "127.0.0.1:9000");
        assert_eq!(out.headers["x-amz-security-token"], "tok");
        assert_ne!(out.headers["x-amz-date"], "19990101T000000Z");
        assert!(out.headers.get("x-amz-content-sha256").is_none());
    }

    #[tokio::test]
    async fn s3_streams_unsigned_payloads_and_others_read_the_body_within_the_limit() {
        let stream = || {
            use http_body_util::BodyExt;
            let body = http_body_util::Full::new(bytes::Bytes::from_static(b"0123456789"))
                .map_err(|e| match e {});
            Body::Stream(body.boxed_unsync())
        };
        let mut out = request(Method::PUT, "https://s3.amazonaws.com:443/b/k", stream());
        let s3 = SignSpec::new("s3", "us-east-1").unwrap();
        sign(&mut out, &s3, &keychain(), 4).await.unwrap();
        assert_eq!(out.headers["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
        assert_eq!(out.headers[header::HOST], "s3.amazonaws.com");
        assert!(
            matches!(out.body, Body::Stream(_)),
            "the body still streams"
        );

        let sqs = SignSpec::new("sqs", "eu-west-1").unwrap();
        let mut out = request(
            Method::POST,
            "https://sqs.eu-west-1.amazonaws.com/",
            stream(),
        );
        assert!(matches!(
            sign(&mut out, &sqs, &keychain(), 4).await,
            Err(SignError::TooLarge { limit: 4 })
        ));
        let mut out = request(
            Method::POST,
            "https://sqs.eu-west-1.amazonaws.com/",
            stream(),
        );
        sign(&mut out, &sqs, &keychain(), 64).await.unwrap();
        assert_eq!(out.body.as_full().unwrap().as_ref(), b"0123456789");
    }

    #[test]
    fn strips_what_a_client_sent_for_aws() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic x"));
        h.insert("x-amz-security-token", HeaderValue::from_static("t"));
        h.insert("x-amz-meta-owner", HeaderValue::from_static("m"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.ListTables"),
        );
        let mut kept = h.clone();
        strip_client_auth(&mut h, &[]);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::ACCEPT));
        strip_client_auth(&mut kept, &[HeaderName::from_static("x-amz-target")]);
        assert_eq!(kept.len(), 2);
        assert!(kept.contains_key("x-amz-target"));
    }

    #[test]
    fn spec_names_must_be_scope_parts() {
        assert!(SignSpec::new("s3", "us-east-1").is_ok());
        assert!(SignSpec::new("S3", "us-east-1").is_err());
        assert!(SignSpec::new("s3", "us-east-1/x").is_err());
        assert!(SignSpec::new("", "us-east-1").is_err());
    }

    #[test]
    fn a_failed_refresh_keeps_the_credentials_read_before() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let calls = Arc::new(calls);
        let seen = calls.clone();
        let k = Keychain {
            resolve: Box::new(move || {
                if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    Ok(Credentials::new("A", "s", None))
                } else {
                    Err(credentials::CredentialsError::HalfEnvironment("a", "b"))
                }
            }),
            cached: Mutex::new(None),
        };
        assert_eq!(k.get().unwrap().access_key_id, "A");
        assert_eq!(k.get().unwrap().access_key_id, "A");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Past the refresh period the chain is read again; its failure keeps the old keys.
        k.cached.lock().unwrap().as_mut().unwrap().0 = Instant::now().checked_sub(REFRESH).unwrap();
        assert_eq!(k.get().unwrap().access_key_id, "A");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
