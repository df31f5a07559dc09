//! The AWS SigV4 test suite (`tests/vectors/sigv4/`) against the verifier, byte for byte:
//! every `v4` case in header and query form (the raw-space and folded-header cases included,
//! which no HTTP server would accept), the S3-flavoured cases, and a change to each signed part.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use wicket_plugin_sdk::sigv4::canonical::canonical_uri;
use wicket_plugin_sdk::sigv4::signing_key;
use wicket_plugin_sdk::sigv4::suite::Raw;
use wicket_plugin_sdk::sigv4::time::parse_rfc3339_utc;

use crate::verify::{parse_claim, string_to_sign, SIGNATURE_MISMATCH, UNKNOWN_KEY};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/sigv4")
}

impl Message for Raw {
    fn method(&self) -> String {
        self.method.clone()
    }
    fn path(&self) -> String {
        self.path.clone()
    }
    fn query(&self) -> Option<String> {
        self.query.clone()
    }
    fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn body(&self) -> Vec<u8> {
        self.body.clone()
    }
}

struct Case {
    name: String,
    dir: PathBuf,
    context: Value,
    verifier: Verifier,
    now: u64,
}

impl Case {
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    fn request(&self, form: &str) -> Raw {
        Raw::parse(&self.file(&format!("{form}-signed-request.txt")))
    }

    /// The case whose session token is added after signing: the token is not signed, which
    /// this gateway refuses.
    fn token_unsigned(&self) -> bool {
        self.context["omit_session_token"] == true
    }
}

fn verifier(context: &Value) -> Verifier {
    let creds = &context["credentials"];
    Verifier {
        credentials: vec![Credential {
            access_key: creds["access_key_id"].as_str().unwrap().to_owned(),
            secret_key: creds["secret_access_key"].as_str().unwrap().to_owned(),
            principal: "suite".to_owned(),
        }],
        region: context["region"].as_str().unwrap().to_owned(),
        service: context["service"].as_str().unwrap().to_owned(),
        max_skew_s: 300,
        allow_unsigned_payload: false,
        normalize_path: context["normalize"] != false,
        double_encode_path: true,
    }
}

fn cases() -> Vec<Case> {
    let dir = vectors().join("v4");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|dir| {
            let context: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap())
                    .unwrap();
            let now = parse_rfc3339_utc(context["timestamp"].as_str().unwrap()).unwrap();
            Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                verifier: verifier(&context),
                dir,
                context,
                now,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(cases.len(), 38, "the v4 suite has 38 cases");
    cases
}

/// The signature `verifier` computes for `req` with the payload hash of its body, whatever
/// the policy checks say.
fn computed_signature(verifier: &Verifier, req: &Raw) -> (String, String) {
    let claim = parse_claim(req).unwrap();
    let creq = verifier
        .canonical_request(req, &claim, &auth::sha256_hex(&req.body))
        .unwrap();
    let cred = &verifier.credentials[0];
    let key = signing_key(
        &cred.secret_key,
        &claim.scope_date,
        &claim.scope_region,
        &claim.scope_service,
    );
    let sts = string_to_sign(&claim, &creq);
    (
        creq,
        auth::hex_encode(&auth::hmac_sha256(&key, sts.as_bytes())),
    )
}

#[test]
fn every_v4_case_builds_the_suites_canonical_request_and_signature() {
    for case in cases() {
        for form in ["header", "query"] {
            let mut req = case.request(form);
            if case.token_unsigned() && form == "query" {
                // The token was appended to the presigned URL after signing: without it, the
                // request is the one the suite signed.
                let query = req.query.take().unwrap();
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|p| !p.starts_with("X-Amz-Security-Token="))
                    .collect();
                req.query = Some(kept.join("&"));
            }
            let (creq, signature) = computed_signature(&case.verifier, &req);
            assert_eq!(
                creq,
                case.file(&format!("{form}-canonical-request.txt")),
                "{} {form}: canonical request",
                case.name
            );
            assert_eq!(
                signature,
                case.file(&format!("{form}-signature.txt")).trim(),
                "{} {form}: signature",
                case.name
            );
            let claim = parse_claim(&req).unwrap();
            assert_eq!(
                string_to_sign(&claim, &creq),
                case.file(&format!("{form}-string-to-sign.txt")),
                "{} {form}: string to sign",
                case.name
            );
        }
    }
}

#[test]
fn every_v4_case_verifies_in_header_and_query_form_at_its_timestamp() {
    let mut verified = 0;
    for case in cases() {
        for form in ["header", "query"] {
            let req = case.request(form);
            let outcome = case.verifier.verify(&req, case.now);
            if case.token_unsigned() {
                // A token added after signing is refused: in the header form because it is
                // not among SignedHeaders, in the query form because every query parameter
                // is signed, so the signature no longer matches.
                let reason = if form == "header" {
                    "X-Amz-Security-Token must be a signed header."
                } else {
                    SIGNATURE_MISMATCH
                };
                assert_eq!(
                    outcome,
                    Err(Refusal::Forbidden(reason.into())),
                    "{} {form}",
                    case.name
                );
            } else {
                assert_eq!(
                    outcome.map(|c| c.principal.as_str()),
                    Ok("suite"),
                    "{} {form}",
                    case.name
                );
                verified += 1;
            }
        }
    }
    assert_eq!(verified, 37 * 2);
}

#[test]
fn raw_space_and_multiline_cases_canonicalize_as_the_suite_says() {
    // hyper refuses a raw space in the path and folded header lines, so these cases are
    // checked here rather than over the wire.
    let all = cases();
    for name in [
        "get-space-normalized",
        "get-space-unnormalized",
        "get-header-value-multiline",
    ] {
        let case = all.iter().find(|c| c.name == name).unwrap();
        for form in ["header", "query"] {
            let req = case.request(form);
            assert!(req.path.contains(' ') || req.headers.iter().any(|(_, v)| v.contains('\n')));
            assert!(
                case.verifier.verify(&req, case.now).is_ok(),
                "{name} {form}"
            );
        }
    }
    assert_eq!(
        canonical_uri("/example space/", true, true),
        "/example%20space/"
    );
    assert_eq!(
        canonical_uri("/example space/", false, true),
        "/example%20space/"
    );
}

/// Every way of changing a signed part of `req`, each named.
fn mutations(req: &Raw) -> Vec<(&'static str, Raw)> {
    let mut out = Vec::new();
    let mut m = req.clone();
    m.method = if req.method == "GET" { "POST" } else { "GET" }.into();
    out.push(("method", m));
    let mut m = req.clone();
    m.path = format!("{}x", req.path);
    out.push(("path", m));
    let mut m = req.clone();
    m.path = format!("/extra{}", req.path);
    out.push(("path prefix", m));
    let mut m = req.clone();
    m.set_header("Host", "example.amazonaws.org");
    out.push(("host header", m));
    let mut m = req.clone();
    m.query = Some(match &req.query {
        Some(q) => format!("{q}&Param9=value9"),
        None => "Param9=value9".to_owned(),
    });
    out.push(("query added", m));
    if let Some(q) = &req.query {
        // Change the value of the first parameter that is not part of the signature itself.
        if let Some((i, _)) = q
            .split('&')
            .enumerate()
            .find(|(_, p)| !p.starts_with("X-Amz-Signature") && !p.starts_with("X-Amz-Algorithm"))
        {
            let mut parts: Vec<String> = q.split('&').map(str::to_owned).collect();
            parts[i].push('1');
            let mut m = req.clone();
            m.query = Some(parts.join("&"));
            out.push(("query value", m));
        }
    }
    let mut m = req.clone();
    m.body.extend_from_slice(b"x");
    out.push(("body", m));
    // Every other signed header the request carries.
    let claim = parse_claim(req).unwrap();
    for name in &claim.signed_headers {
        if matches!(
            name.as_str(),
            "host" | "x-amz-date" | "x-amz-content-sha256"
        ) {
            continue;
        }
        let mut m = req.clone();
        let value = m
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap();
        value.1.push('z');
        out.push(("signed header", m));
    }
    out
}

#[test]
fn every_v4_case_fails_once_a_signed_part_changes() {
    let mut checked = 0;
    for case in cases().iter().filter(|c| !c.token_unsigned()) {
        for form in ["header", "query"] {
            for (what, changed) in mutations(&case.request(form)) {
                let outcome = case.verifier.verify(&changed, case.now);
                assert!(
                    matches!(&outcome, Err(Refusal::Forbidden(_))),
                    "{} {form}: changing the {what} must fail, got {outcome:?}",
                    case.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 37 * 2 * 6, "{checked}");
}

#[test]
fn s3_flavoured_cases_verify() {
    let suite: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors().join("generated-s3-flavour.json")).unwrap(),
    )
    .unwrap();
    let mut verifier = verifier(&suite);
    verifier.normalize_path = false;
    verifier.double_encode_path = false;
    verifier.allow_unsigned_payload = true;
    let now = parse_rfc3339_utc(suite["timestamp"].as_str().unwrap()).unwrap();
    let cases = suite["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 15);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let target = case["target"].as_str().unwrap();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers = vec![("Host".to_owned(), case["host"].as_str().unwrap().to_owned())];
        for (n, v) in case["headers"].as_object().unwrap() {
            headers.push((n.clone(), v.as_str().unwrap().to_owned()));
        }
        headers.push((
            "Authorization".to_owned(),
            case["authorization"].as_str().unwrap().to_owned(),
        ));
        let req = Raw {
            method: case["method"].as_str().unwrap().to_owned(),
            path,
            query,
            headers,
            body: case["body_utf8"].as_str().unwrap().as_bytes().to_vec(),
        };
        let claim = parse_claim(&req).unwrap();
        let payload = req.header_values("x-amz-content-sha256").remove(0);
        assert_eq!(
            verifier.canonical_request(&req, &claim, &payload).unwrap(),
            case["canonical_request"].as_str().unwrap(),
            "{name}"
        );
        assert!(verifier.verify(&req, now).is_ok(), "{name}");
        for (what, changed) in mutations(&req) {
            if name == "unsigned-payload" && what == "body" {
                // The point of UNSIGNED-PAYLOAD: the body is not signed.
                continue;
            }
            assert!(
                verifier.verify(&changed, now).is_err(),
                "{name}: changing the {what} must fail"
            );
        }
        if name == "unsigned-payload" {
            let mut strict = verifier.clone();
            strict.allow_unsigned_payload = false;
            assert_eq!(
                strict.verify(&req, now),
                Err(Refusal::Forbidden("UNSIGNED-PAYLOAD is not allowed: sign the body's SHA-256 in X-Amz-Content-Sha256.".into()))
            );
        }
    }
}

#[test]
fn s3_put_with_a_date_header_verifies_as_either_signer_signs_it() {
    // The recorded disagreement: botocore signs `Date` and drops `X-Amz-Date`; awscrt keeps
    // both (the S3 documentation's PUT example). The SignedHeaders list decides.
    let suite: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors().join("generated-s3-flavour.json")).unwrap(),
    )
    .unwrap();
    let d = &suite["disagreements"][0];
    let mut verifier = verifier(&suite);
    verifier.normalize_path = false;
    verifier.double_encode_path = false;
    let now = parse_rfc3339_utc(suite["timestamp"].as_str().unwrap()).unwrap();
    let body = b"Welcome to Amazon S3.";
    let base = |signed: &str, sig: &str, amz_date: bool| {
        // botocore rewrites `Date` with Python's `formatdate`: a `-0000` zone.
        let date = if amz_date {
            "Fri, 24 May 2013 00:00:00 GMT"
        } else {
            "Fri, 24 May 2013 00:00:00 -0000"
        };
        let mut headers = vec![
            (
                "Host".to_owned(),
                "examplebucket.s3.amazonaws.com".to_owned(),
            ),
            ("Date".to_owned(), date.to_owned()),
            (
                "x-amz-storage-class".to_owned(),
                "REDUCED_REDUNDANCY".to_owned(),
            ),
            ("x-amz-content-sha256".to_owned(), auth::sha256_hex(body)),
        ];
        if amz_date {
            headers.push(("x-amz-date".to_owned(), "20130524T000000Z".to_owned()));
        }
        headers.push(("Authorization".to_owned(), format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={sig}"
        )));
        Raw {
            method: "PUT".into(),
            path: d["target"].as_str().unwrap().into(),
            query: None,
            headers,
            body: body.to_vec(),
        }
    };
    let botocore = base(
        d["botocore_signed_headers"].as_str().unwrap(),
        d["botocore_signature"].as_str().unwrap(),
        false,
    );
    assert!(verifier.verify(&botocore, now).is_ok());
    let awscrt = base(
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        d["awscrt_signature"].as_str().unwrap(),
        true,
    );
    assert!(verifier.verify(&awscrt, now).is_ok());
}

#[test]
fn a_literal_plus_in_the_query_is_a_plus() {
    let dir = vectors().join("smithy-extra/v4/get-query-plus");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let context: Value = serde_json::from_str(&read("context.json")).unwrap();
    let verifier = verifier(&context);
    let now = parse_rfc3339_utc(context["timestamp"].as_str().unwrap()).unwrap();
    let mut req = Raw::parse(&read("request.txt"));
    req.set_header("X-Amz-Date", "20150830T123600Z");
    req.set_header(
        "Authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            read("header-signature.txt").trim()
        ),
    );
    let (creq, _) = computed_signature(&verifier, &req);
    assert_eq!(creq, read("header-canonical-request.txt").trim_end());
    assert!(verifier.verify(&req, now).is_ok());
    let mut spaced = req.clone();
    spaced.query = Some("c%20d".into());
    assert_eq!(
        verifier.verify(&spaced, now),
        Err(Refusal::Forbidden(SIGNATURE_MISMATCH.into()))
    );
}

/// `get-vanilla`, header form, and its verifier.
fn vanilla(form: &str) -> (Case, Raw) {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "get-vanilla")
        .unwrap();
    let req = case.request(form);
    (case, req)
}

fn forbidden(outcome: Result<&Credential, Refusal>) -> String {
    match outcome {
        Err(Refusal::Forbidden(reason)) => reason,
        other => panic!("expected a refusal with a reason, got {other:?}"),
    }
}

#[test]
fn refusals_name_their_reason() {
    let (case, req) = vanilla("header");
    let v = &case.verifier;
    let t = case.now;

    let mut bare = req.clone();
    bare.headers.retain(|(n, _)| n != "Authorization");
    assert_eq!(v.verify(&bare, t), Err(Refusal::Missing));
    assert_eq!(Refusal::Missing.message(), "Missing Authentication Token");

    assert!(v.verify(&req, t + 300).is_ok());
    assert!(v.verify(&req, t - 300).is_ok());
    let late = forbidden(v.verify(&req, t + 301));
    assert!(
        late.starts_with(
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z"
        ),
        "{late}"
    );
    let early = forbidden(v.verify(&req, t - 301));
    assert!(early.starts_with("Signature not yet current"), "{early}");

    let mut other = v.clone();
    other.credentials[0].access_key = "AKIDOTHER".into();
    assert_eq!(forbidden(other.verify(&req, t)), UNKNOWN_KEY);
    let mut other = v.clone();
    other.credentials[0].secret_key.push('x');
    assert_eq!(forbidden(other.verify(&req, t)), SIGNATURE_MISMATCH);
    let mut other = v.clone();
    other.region = "eu-west-1".into();
    assert_eq!(
        forbidden(other.verify(&req, t)),
        "Wrong credential scope: region 'us-east-1' should be 'eu-west-1'."
    );
    let mut other = v.clone();
    other.service = "execute-api".into();
    assert!(
        forbidden(other.verify(&req, t)).starts_with("Wrong credential scope: service 'service'")
    );

    let mut m = req.clone();
    m.set_header("X-Amz-Date", "20150831T123600Z");
    assert!(
        forbidden(v.verify(&m, t + 86_400)).starts_with("Wrong credential scope: date '20150830'")
    );

    let mut m = req.clone();
    m.set_header("X-Amz-Security-Token", "token");
    assert_eq!(
        forbidden(v.verify(&m, t)),
        "X-Amz-Security-Token must be a signed header."
    );

    let mut m = req.clone();
    m.set_header("Authorization", "Bearer abc");
    assert!(forbidden(v.verify(&m, t)).starts_with("Unsupported Authorization type"));
    let mut m = req.clone();
    m.set_header(
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
    );
    assert_eq!(
        forbidden(v.verify(&m, t)),
        "Authorization header requires 'SignedHeaders' parameter. Authorization header requires 'Signature' parameter."
    );
    let mut m = req.clone();
    let auth_value = m.header_values("authorization").remove(0);
    m.set_header(
        "Authorization",
        &auth_value.replace("aws4_request", "aws5_request"),
    );
    assert!(forbidden(v.verify(&m, t)).contains("must end with 'aws4_request'"));
    let mut m = req.clone();
    m.set_header(
        "Authorization",
        &auth_value.replace("host;x-amz-date", "x-amz-date"),
    );
    assert_eq!(
        forbidden(v.verify(&m, t)),
        "SignedHeaders must include 'host'."
    );
    let mut m = req.clone();
    m.set_header(
        "Authorization",
        &auth_value.replace("host;x-amz-date", "host;x-amz-date;x-missing"),
    );
    assert_eq!(
        forbidden(v.verify(&m, t)),
        "Signed header 'x-missing' is missing from the request."
    );
    let mut m = req.clone();
    m.set_header(
        "Authorization",
        &auth_value.replace("Signature=5f", "Signature=zz"),
    );
    assert_eq!(forbidden(v.verify(&m, t)), SIGNATURE_MISMATCH);
    let mut m = req.clone();
    m.headers.retain(|(n, _)| n != "X-Amz-Date");
    assert!(forbidden(v.verify(&m, t)).contains("'X-Amz-Date' or a 'Date' header"));
    let mut m = req.clone();
    m.query = Some("X-Amz-Signature=abc".into());
    assert!(forbidden(v.verify(&m, t)).starts_with("Only one auth mechanism allowed"));

    // The body's hash, when declared, must be the body's.
    let mut m = req.clone();
    m.set_header("X-Amz-Content-Sha256", &auth::sha256_hex(b"other"));
    assert_eq!(
        forbidden(v.verify(&m, t)),
        "X-Amz-Content-Sha256 does not match the SHA-256 of the body received."
    );
    let mut m = req.clone();
    m.set_header("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
    m.body = b"data".to_vec();
    assert!(forbidden(v.verify(&m, t)).starts_with("UNSIGNED-PAYLOAD is not allowed"));
    let mut m = req.clone();
    m.set_header("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert!(forbidden(v.verify(&m, t)).contains("streaming payloads are not supported"));
}

#[test]
fn presigned_urls_expire() {
    let (case, req) = vanilla("query");
    let v = &case.verifier;
    assert!(v.verify(&req, case.now + 3600).is_ok());
    let late = forbidden(v.verify(&req, case.now + 3601));
    assert!(
        late.starts_with("Signature expired: the presigned request expired at 20150830T133600Z"),
        "{late}"
    );
    assert!(forbidden(v.verify(&req, case.now - 301)).starts_with("Signature not yet current"));
    let mut m = req.clone();
    m.query = Some(
        req.query
            .clone()
            .unwrap()
            .replace("X-Amz-Expires=3600", "X-Amz-Expires=604801"),
    );
    assert!(forbidden(v.verify(&m, case.now)).starts_with("X-Amz-Expires must be"));
    let mut m = req.clone();
    m.query = Some(req.query.clone().unwrap().replace(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256",
    ));
    assert!(forbidden(v.verify(&m, case.now)).starts_with("Unsupported X-Amz-Algorithm"));
    let mut m = req.clone();
    m.query = Some(
        req.query
            .clone()
            .unwrap()
            .replace("&X-Amz-Date=20150830T123600Z", ""),
    );
    assert!(forbidden(v.verify(&m, case.now)).contains("requires the 'X-Amz-Date' parameter"));
}

fn plugin(json: &str) -> Result<SigV4, String> {
    SigV4::from_config(&Config::from_json(json).unwrap())
}

#[test]
fn config_defaults_and_s3_flavour() {
    let p = plugin(
        r#"{"region": "us-east-1", "credentials": [{"access_key": "AK", "secret_key": "s", "principal": "p"}]}"#,
    )
    .unwrap();
    assert_eq!(p.verifier.service, "execute-api");
    assert_eq!(p.verifier.max_skew_s, 300);
    assert!(!p.verifier.allow_unsigned_payload);
    assert!(p.verifier.normalize_path && p.verifier.double_encode_path);
    assert_eq!(p.fixed_time, None);
    let p = plugin(
        r#"{"region": "us-east-1", "service": "s3", "fixed_time": "2013-05-24T00:00:00Z",
            "credentials": [{"access_key": "AK", "secret_key": "s", "principal": "p"}]}"#,
    )
    .unwrap();
    assert!(!p.verifier.normalize_path && !p.verifier.double_encode_path);
    assert_eq!(p.now(), 1_369_353_600);
}

#[test]
fn rejects_bad_config() {
    let cred = r#"[{"access_key": "AK", "secret_key": "s", "principal": "p"}]"#;
    for (json, needle) in [
        (format!(r#"{{"credentials": {cred}}}"#), "missing field `region`"),
        (r#"{"region": "r", "credentials": []}"#.to_owned(), "`credentials` is empty"),
        (format!(r#"{{"region": "r", "credentials": {cred}, "max_skew": 1}}"#), "unknown field `max_skew`"),
        (format!(r#"{{"region": "a/b", "credentials": {cred}}}"#), "`region` must be"),
        (format!(r#"{{"region": "r", "service": "", "credentials": {cred}}}"#), "`service` must be"),
        (format!(r#"{{"region": "r", "max_skew_s": 100000, "credentials": {cred}}}"#), "`max_skew_s` must be at most"),
        (format!(r#"{{"region": "r", "fixed_time": "yesterday", "credentials": {cred}}}"#), "`fixed_time` must be"),
        (r#"{"region": "r", "credentials": [{"access_key": "A/K", "secret_key": "s", "principal": "p"}]}"#.to_owned(), "credentials[0].access_key"),
        (r#"{"region": "r", "credentials": [{"access_key": "AK", "secret_key": "", "principal": "p"}]}"#.to_owned(), "secret_key` is empty"),
        (r#"{"region": "r", "credentials": [{"access_key": "AK", "secret_key": "s", "principal": ""}]}"#.to_owned(), "principal` is empty"),
        (r#"{"region": "r", "credentials": [{"access_key": "AK", "secret_key": "s", "principal": "p"}, {"access_key": "AK", "secret_key": "t", "principal": "q"}]}"#.to_owned(), "repeats"),
        (r#"{"region": "r", "credentials": [{"access_key": "AK", "secret": "s", "principal": "p"}]}"#.to_owned(), "unknown field `secret`"),
    ] {
        let err = plugin(&json).err().unwrap_or_else(|| panic!("{json} was accepted"));
        assert!(err.contains(needle), "{json}: {err}");
    }
}
