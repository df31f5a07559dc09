//! The signer against the AWS test suite: every `v4` case's unsigned request, signed with
//! all of its headers at the case's time, must give the suite's canonical request, string to
//! sign and `Authorization` header, byte for byte.

use std::path::{Path, PathBuf};

use super::*;
use crate::suite::Raw;

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/sigv4/v4")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[test]
fn signs_every_v4_case_as_the_suite_does() {
    let mut signed_cases = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 38, "the v4 suite has 38 cases");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let context: serde_json::Value = serde_json::from_str(&read(&dir, "context.json")).unwrap();
        if context["omit_session_token"] == true {
            // The token is added after signing there; this signer always signs it.
            continue;
        }
        let c = &context["credentials"];
        let creds = Credentials::new(
            c["access_key_id"].as_str().unwrap(),
            c["secret_access_key"].as_str().unwrap(),
            c["token"].as_str(),
        );
        let now = time::parse_rfc3339_utc(context["timestamp"].as_str().unwrap()).unwrap();
        let req = Raw::parse(&read(&dir, "request.txt"));
        let mut headers = req.headers.clone();
        let payload_hash = sha256_hex(&req.body);
        if context["sign_body"] == true {
            // As S3 does: the payload hash is a signed header too.
            headers.push(("X-Amz-Content-Sha256".to_owned(), payload_hash.clone()));
        }
        let rules = PathRules {
            normalize: context["normalize"] != false,
            double_encode: true,
        };
        let signed = sign(
            &Unsigned {
                method: &req.method,
                path: &req.path,
                query: req.query.as_deref(),
                payload_hash: &payload_hash,
            },
            &mut headers,
            &creds,
            context["region"].as_str().unwrap(),
            context["service"].as_str().unwrap(),
            rules,
            now,
        );
        assert_eq!(
            signed.canonical_request,
            read(&dir, "header-canonical-request.txt"),
            "{name}: canonical request"
        );
        assert_eq!(
            signed.string_to_sign,
            read(&dir, "header-string-to-sign.txt"),
            "{name}: string to sign"
        );
        let expected = Raw::parse(&read(&dir, "header-signed-request.txt"));
        assert_eq!(
            vec![signed.authorization.clone()],
            expected.header_values("authorization"),
            "{name}: Authorization"
        );
        // What the caller sends: its headers plus the date (and token) the signer added.
        for (n, v) in &headers {
            assert!(
                expected.header_values(n).contains(v),
                "{name}: {n}: {v} is not in the signed request"
            );
        }
        signed_cases += 1;
    }
    assert_eq!(signed_cases, 37);
}

#[test]
fn s3_signs_the_path_as_sent() {
    let creds = Credentials::new("AKIDEXAMPLE", "secret", None);
    let mut headers = vec![("Host".to_owned(), "bucket.s3.amazonaws.com".to_owned())];
    let signed = sign(
        &Unsigned {
            method: "PUT",
            path: "/a//b/../c%20d",
            query: Some("x=1"),
            payload_hash: UNSIGNED_PAYLOAD,
        },
        &mut headers,
        &creds,
        "us-east-1",
        "s3",
        PathRules::for_service("s3"),
        1_440_938_160,
    );
    let lines: Vec<&str> = signed.canonical_request.lines().collect();
    assert_eq!(lines[1], "/a//b/../c%20d");
    assert_eq!(lines[2], "x=1");
    assert_eq!(lines.last(), Some(&UNSIGNED_PAYLOAD));
    assert!(signed
        .authorization
        .contains("Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="));
}

#[test]
fn debug_never_shows_the_secret() {
    let creds = Credentials::new("AKID", "very-secret", Some("token-secret"));
    let shown = format!("{creds:?}");
    assert!(shown.contains("AKID"));
    assert!(!shown.contains("very-secret") && !shown.contains("token-secret"));
}
