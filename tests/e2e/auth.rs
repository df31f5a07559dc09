//! The auth filters in the real binary: `api-key`, `sigv4` (the AWS test suite over the wire and
//! requests signed by botocore), `jwt` (tokens minted by PyJWT against a JWKS served here, key
//! rotation) and `introspect` (a local RFC 7662 endpoint), every refusal with its status, body
//! and headers, and the added latency of each filter (`added_latency_per_auth_filter`,
//! ignored by default).

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wicket_e2e::{
    base64, check, client, root, run_python, serve_on_thread, sha256_hex, Gateway, Upstream,
};

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Assert a JSON error as the gateway gives them: status, `{"message", "requestId"}` with the
/// request id of the `x-request-id` header. Returns the headers for further checks.
async fn json_error(
    resp: reqwest::Response,
    status: StatusCode,
    message: &str,
) -> reqwest::header::HeaderMap {
    assert_eq!(resp.status(), status);
    let headers = resp.headers().clone();
    let request_id = headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"message": message, "requestId": request_id}));
    headers
}

/// A mock integration showing what the auth filter put in the context.
const WHOAMI: &str = r#"builtin = "mock"
config = { body = { principal = "{principal}", method = "{auth.method}", plan = "{usage_plan}", scopes = "{scopes}" } }
"#;

// ---------------------------------------------------------------------------------------------
// api-key

const ALICE_KEY: &str = "alice-7f3a9c2e-key";
const BOB_KEY: &str = "bob-0c81d6b4-key";

fn api_key_gateway() -> Gateway {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.keys]
builtin = "api-key"
config.keys = [
  {{ key_sha256 = "{alice}", principal = "alice", plan = "gold" }},
  {{ key_sha256 = "{bob}", principal = "bob" }},
]

[plugins.partner-keys]
builtin = "api-key"
config = {{ header = "X-Partner-Key", keys = [{{ key_sha256 = "{alice}", principal = "partner-alice", plan = "partner" }}] }}

[plugins.whoami]
{WHOAMI}

[[routes]]
path = "/keyed/{{rest+}}"
plugins = ["keys"]
integration = "whoami"

[[routes]]
path = "/partner"
plugins = ["partner-keys"]
integration = "whoami"
"#,
        alice = sha256_hex(ALICE_KEY.as_bytes()),
        bob = sha256_hex(BOB_KEY.as_bytes()).to_uppercase(),
    );
    Gateway::start(&config)
}

#[tokio::test]
async fn api_key_admits_known_keys_and_names_the_caller() {
    let gw = api_key_gateway();
    let resp = client()
        .get(gw.url("/keyed/a/b"))
        .header("x-api-key", ALICE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(
        seen,
        json!({"principal": "alice", "method": "api-key", "plan": "gold", "scopes": ""})
    );

    let resp = client()
        .post(gw.url("/keyed/x"))
        .header("X-API-Key", BOB_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["principal"], "bob");
    assert_eq!(seen["plan"], "", "bob's key has no plan");

    // The header name is configurable.
    let resp = client()
        .get(gw.url("/partner"))
        .header("x-partner-key", ALICE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["principal"], "partner-alice");
    assert_eq!(seen["plan"], "partner");
}

#[tokio::test]
async fn api_key_refuses_missing_unknown_and_repeated_keys_with_403_forbidden() {
    let gw = api_key_gateway();
    let c = client();
    // Missing.
    let resp = c.get(gw.url("/keyed/a")).send().await.unwrap();
    json_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
    // Unknown.
    let resp = c
        .get(gw.url("/keyed/a"))
        .header("x-api-key", "guess")
        .send()
        .await
        .unwrap();
    json_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
    // The stored hash is not itself a key.
    let resp = c
        .get(gw.url("/keyed/a"))
        .header("x-api-key", sha256_hex(ALICE_KEY.as_bytes()))
        .send()
        .await
        .unwrap();
    json_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
    // A near miss.
    let resp = c
        .get(gw.url("/keyed/a"))
        .header("x-api-key", &ALICE_KEY[..ALICE_KEY.len() - 1])
        .send()
        .await
        .unwrap();
    json_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
    // Two keys at once.
    let resp = c
        .get(gw.url("/keyed/a"))
        .header("x-api-key", ALICE_KEY)
        .header("x-api-key", BOB_KEY)
        .send()
        .await
        .unwrap();
    json_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
    // The right key in the wrong header.
    let resp = c
        .get(gw.url("/partner"))
        .header("x-api-key", ALICE_KEY)
        .send()
        .await
        .unwrap();
    json_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
}

#[test]
fn api_key_config_errors_stop_wicket_check_with_the_line() {
    let config = r#"[server]
listen = "127.0.0.1:0"

[plugins.keys]
builtin = "api-key"
config = { keys = [{ key_sha256 = "not-hex", principal = "alice" }] }

[plugins.hello]
builtin = "mock"

[[routes]]
path = "/x"
plugins = ["keys"]
integration = "hello"
"#;
    let (ok, out, path) = check("api-key.toml", config);
    assert!(!ok, "{out}");
    let prefix = format!("{}:6:", path.display());
    assert!(
        out.lines().any(|l| l.starts_with(&prefix)
            && l.contains("plugins.keys.config")
            && l.contains("keys[0].key_sha256")),
        "{out}"
    );
    // A key the builtin does not take is caught before the plugin runs.
    let (ok, out, _) = check(
        "api-key-typo.toml",
        &config.replace(
            "config = { keys",
            "config = { header = \"x-key\", key = 1, keys",
        ),
    );
    assert!(!ok);
    assert!(
        out.contains("plugins.keys.config.key: unknown key \"key\"; it takes header, keys"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// sigv4

/// The AWS SigV4 test suite, in the repository (`tests/vectors/sigv4`, see its `SOURCE.md`).
fn sigv4_vectors() -> PathBuf {
    root().join("tests/vectors/sigv4")
}

/// A response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Assert a JSON error: status, content type, `{"message", "requestId"}`.
    fn assert_error(&self, status: u16, message: &str, what: &str) {
        assert_eq!(
            self.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        let request_id = self.header("x-request-id").expect("x-request-id");
        assert_eq!(
            self.json(),
            json!({"message": message, "requestId": request_id}),
            "{what}"
        );
    }
}

/// Send `bytes` as they are (no client normalizes the path or the headers) and read the
/// response until the gateway closes the connection.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).unwrap();
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    RawResponse {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    }
}

/// A request as the suite writes it.
#[derive(Debug, Clone)]
struct SuiteRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Folded header lines: hyper refuses them (unit-tested in the plugin instead).
    folded: bool,
}

impl SuiteRequest {
    fn parse(text: &str) -> SuiteRequest {
        let (head, body) = text
            .split_once("\n\n")
            .unwrap_or((text.trim_end_matches('\n'), ""));
        let mut lines = head.split('\n');
        let line = lines.next().unwrap();
        let (method, rest) = line.split_once(' ').unwrap();
        let (target, _) = rest.rsplit_once(' ').unwrap();
        let mut headers = Vec::new();
        let mut folded = false;
        for line in lines {
            if line.starts_with([' ', '\t']) {
                folded = true;
                continue;
            }
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.to_owned(), v.to_owned()));
        }
        SuiteRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body: body.as_bytes().to_vec(),
            folded,
        }
    }

    /// The request as it can go over the wire, if it can: hyper refuses folded header lines
    /// and raw spaces or non-ASCII bytes in the request target. Non-ASCII bytes of the query
    /// are sent percent-encoded, which signs the same (query values are decoded first); a
    /// path cannot be, as it is signed encoded once more.
    fn sendable(&self) -> Option<SuiteRequest> {
        let (path, query) = self.target.split_once('?').unwrap_or((&self.target, ""));
        if self.folded || !path.bytes().all(|b| b.is_ascii_graphic()) || query.contains(' ') {
            return None;
        }
        let mut out = self.clone();
        if !query.is_empty() {
            let mut encoded = String::new();
            for b in query.bytes() {
                if b.is_ascii() {
                    encoded.push(b as char);
                } else {
                    encoded.push_str(&format!("%{b:02X}"));
                }
            }
            out.target = format!("{path}?{encoded}");
        }
        Some(out)
    }

    fn wire(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
        }
        let has_length = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if !has_length && !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn signed_headers(&self) -> Vec<String> {
        let from_auth = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.split("SignedHeaders=").nth(1))
            .map(|s| s.split(',').next().unwrap().to_owned());
        let from_query = self
            .target
            .split_once("X-Amz-SignedHeaders=")
            .map(|(_, s)| s.split('&').next().unwrap().replace("%3B", ";"));
        from_auth
            .or(from_query)
            .unwrap()
            .split(';')
            .map(str::to_owned)
            .collect()
    }
}

/// Every way of changing a signed part of `req`, each with the message the gateway must give.
fn suite_mutations(req: &SuiteRequest) -> Vec<(String, SuiteRequest, &'static str)> {
    let mut out = Vec::new();
    let mut m = req.clone();
    m.method = if req.method == "GET" { "POST" } else { "GET" }.into();
    out.push(("method".to_owned(), m, SIGV4_MISMATCH));
    let mut m = req.clone();
    m.target = match req.target.split_once('?') {
        Some((p, q)) => format!("{p}x?{q}"),
        None => format!("{}x", req.target),
    };
    out.push(("path".to_owned(), m, SIGV4_MISMATCH));
    let mut m = req.clone();
    m.target = if req.target.contains('?') {
        format!("{}&Param9=value9", req.target)
    } else {
        format!("{}?Param9=value9", req.target)
    };
    out.push(("query".to_owned(), m, SIGV4_MISMATCH));
    let mut m = req.clone();
    m.body.extend_from_slice(b"&tampered=1");
    m.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
    let declared = req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"));
    out.push((
        "body".to_owned(),
        m,
        if declared {
            SIGV4_BODY_HASH
        } else {
            SIGV4_MISMATCH
        },
    ));
    for name in req.signed_headers() {
        if matches!(
            name.as_str(),
            "x-amz-date" | "x-amz-content-sha256" | "content-length"
        ) {
            continue;
        }
        let mut m = req.clone();
        let header = m
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .unwrap();
        header.1 = format!("{}z", header.1.trim());
        out.push((format!("signed header {name}"), m, SIGV4_MISMATCH));
    }
    out
}

const SIGV4_MISMATCH: &str = "Signature mismatch: the request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.";
const SIGV4_BODY_HASH: &str =
    "X-Amz-Content-Sha256 does not match the SHA-256 of the body received.";
const SIGV4_MISSING: &str = "Missing Authentication Token";

/// A gateway verifying the suite's credentials at the suite's timestamp, every path and method
/// routed to a mock that shows the principal.
fn suite_gateway(
    region: &str,
    service: &str,
    access_key: &str,
    secret: &str,
    extra: &str,
    at: &str,
) -> Gateway {
    Gateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:0"
# The suites sign paths with "//" (S3 keys, unnormalized cases): kept, not merged.
merge_slashes = false

[plugins.iam]
builtin = "sigv4"
config = {{ region = "{region}", service = "{service}", fixed_time = "{at}", credentials = [{{ access_key = "{access_key}", secret_key = "{secret}", principal = "suite" }}]{extra} }}

[plugins.whoami]
{WHOAMI}

[[routes]]
path = "/"
plugins = ["iam"]
integration = "whoami"

[[routes]]
path = "/{{proxy+}}"
plugins = ["iam"]
integration = "whoami"
"#
    ))
}

/// Unnormalized cases signed over a path with dot segments, which the gateway resolves
/// before plugins run (docs/security-model.md): they cannot verify.
const DOTS_RESOLVED_BEFORE_PLUGINS: &[&str] = &[
    "get-relative-relative-unnormalized",
    "get-relative-unnormalized",
    "get-slash-dot-slash-unnormalized",
    "get-slash-pointless-dot-unnormalized",
];

#[test]
fn sigv4_every_suite_case_verifies_over_the_wire_and_fails_once_changed() {
    let dir = sigv4_vectors().join("v4");
    let normalized = suite_gateway(
        "us-east-1",
        "service",
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "",
        "2015-08-30T12:36:00Z",
    );
    let unnormalized = suite_gateway(
        "us-east-1",
        "service",
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ", normalize_path = false",
        "2015-08-30T12:36:00Z",
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 38);
    let (mut verified, mut refused, mut unit_only) = (0, 0, Vec::new());
    for name in &names {
        let context: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(name).join("context.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(context["timestamp"], "2015-08-30T12:36:00Z", "{name}");
        let gw = if context["normalize"] == false {
            &unnormalized
        } else {
            &normalized
        };
        for form in ["header", "query"] {
            let text =
                std::fs::read_to_string(dir.join(name).join(format!("{form}-signed-request.txt")))
                    .unwrap();
            let Some(req) = SuiteRequest::parse(&text).sendable() else {
                unit_only.push(format!("{name} {form}"));
                continue;
            };
            let what = format!("{name} {form}");
            let resp = raw_exchange(gw.addr, &req.wire());
            if DOTS_RESOLVED_BEFORE_PLUGINS.contains(&name.as_str()) {
                // Signed over the raw `/example/..`; the gateway resolves dot segments before
                // any plugin sees the path, so that signature no longer matches.
                resp.assert_error(403, SIGV4_MISMATCH, &what);
                continue;
            }
            if context["omit_session_token"] == true {
                // The session token was added after signing: refused (the token must be signed).
                let reason = if form == "header" {
                    "X-Amz-Security-Token must be a signed header."
                } else {
                    SIGV4_MISMATCH
                };
                resp.assert_error(403, reason, &what);
                continue;
            }
            assert_eq!(
                resp.status,
                200,
                "{what}: {}",
                String::from_utf8_lossy(&resp.body)
            );
            assert_eq!(resp.json()["principal"], "suite", "{what}");
            assert_eq!(resp.json()["method"], "sigv4", "{what}");
            verified += 1;
            for (change, changed, message) in suite_mutations(&req) {
                let resp = raw_exchange(gw.addr, &changed.wire());
                resp.assert_error(403, message, &format!("{what}, changed {change}"));
                refused += 1;
            }
        }
    }
    // The raw-space, raw-UTF-8-path and folded-header cases are unit tests of the
    // canonicalizer (plugins/sigv4/src/tests.rs).
    assert_eq!(
        unit_only,
        [
            "get-header-value-multiline header",
            "get-header-value-multiline query",
            "get-space-normalized header",
            "get-space-normalized query",
            "get-space-unnormalized header",
            "get-space-unnormalized query",
            "get-utf8 header",
            "get-utf8 query",
        ]
    );
    assert_eq!(
        verified,
        (38 - 4 - 1 - DOTS_RESOLVED_BEFORE_PLUGINS.len()) * 2
    );
    assert!(refused > verified * 4, "{refused}");
}

#[test]
fn sigv4_s3_flavoured_cases_verify_over_the_wire() {
    let suite: Value = serde_json::from_str(
        &std::fs::read_to_string(sigv4_vectors().join("generated-s3-flavour.json")).unwrap(),
    )
    .unwrap();
    let gw = suite_gateway(
        "us-east-1",
        "s3",
        suite["credentials"]["access_key_id"].as_str().unwrap(),
        suite["credentials"]["secret_access_key"].as_str().unwrap(),
        ", allow_unsigned_payload = true",
        suite["timestamp"].as_str().unwrap(),
    );
    for case in suite["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut req = SuiteRequest {
            method: case["method"].as_str().unwrap().to_owned(),
            target: case["target"].as_str().unwrap().to_owned(),
            headers: vec![("Host".to_owned(), case["host"].as_str().unwrap().to_owned())],
            body: case["body_utf8"].as_str().unwrap().as_bytes().to_vec(),
            folded: false,
        };
        for (n, v) in case["headers"].as_object().unwrap() {
            req.headers
                .push((n.clone(), v.as_str().unwrap().to_owned()));
        }
        req.set_header("Authorization", case["authorization"].as_str().unwrap());
        let resp = raw_exchange(gw.addr, &req.wire());
        // S3 keys with dot segments or an encoded '/' are not passed by the gateway: dot
        // segments are resolved before plugins run (the signature no longer matches) and
        // `%2F` is refused (docs/security-model.md).
        match name {
            "dot-segments-kept" => {
                resp.assert_error(403, SIGV4_MISMATCH, name);
                continue;
            }
            "encoded-slash" => {
                resp.assert_error(400, "Bad Request", name);
                continue;
            }
            _ => {}
        }
        assert_eq!(
            resp.status,
            200,
            "{name}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert_eq!(resp.json()["principal"], "suite", "{name}");
        let mut changed = req.clone();
        changed.target = format!("{}x", req.target.split('?').next().unwrap());
        raw_exchange(gw.addr, &changed.wire()).assert_error(403, SIGV4_MISMATCH, name);
    }
}

/// Sign a request with botocore (`SigV4Auth`, or `SigV4QueryAuth` when `presign_expires` is
/// set), as an AWS SDK would. `at` is a Unix time to sign at (default now). Returns the URL
/// and the headers to send.
fn botocore_sign(spec: Value) -> (String, Vec<(String, String)>) {
    const SCRIPT: &str = r#"
import datetime, json, sys
import botocore.auth as auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

spec = json.load(sys.stdin)
if spec.get("at") is not None:
    moment = datetime.datetime.fromtimestamp(spec["at"], datetime.timezone.utc).replace(tzinfo=None)
    auth.get_current_datetime = lambda *a, **k: moment
creds = Credentials(spec["access_key"], spec["secret_key"], spec.get("token"))
req = AWSRequest(method=spec["method"], url=spec["url"], data=spec.get("body", "").encode(), headers=spec.get("headers", {}))
if spec.get("presign_expires"):
    auth.SigV4QueryAuth(creds, spec["service"], spec["region"], expires=spec["presign_expires"]).add_auth(req)
else:
    auth.SigV4Auth(creds, spec["service"], spec["region"]).add_auth(req)
print(json.dumps({"url": req.url, "headers": list(req.headers.items())}))
"#;
    let stdout = run_python("botocore", SCRIPT, spec.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    let headers = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (v["url"].as_str().unwrap().to_owned(), headers)
}

const BOTO_KEY: &str = "AKIAWICKETTEST000001";
const BOTO_SECRET: &str = "k3y/Secret+For/Wicket/Tests/0123456789abcd";
const BOTO_PRINCIPAL: &str = "arn:aws:iam::123456789012:user/boto";

fn botocore_gateway() -> Gateway {
    Gateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.iam]
builtin = "sigv4"
config.region = "eu-west-1"
config.credentials = [
  {{ access_key = "{BOTO_KEY}", secret_key = "{BOTO_SECRET}", principal = "{BOTO_PRINCIPAL}" }},
  {{ access_key = "AKIAOTHER", secret_key = "other", principal = "other" }},
]

[plugins.iam-unsigned]
builtin = "sigv4"
config = {{ region = "eu-west-1", allow_unsigned_payload = true, credentials = [{{ access_key = "{BOTO_KEY}", secret_key = "{BOTO_SECRET}", principal = "{BOTO_PRINCIPAL}" }}] }}

[plugins.whoami]
{WHOAMI}

[[routes]]
path = "/iam/{{proxy+}}"
plugins = ["iam"]
integration = "whoami"

[[routes]]
path = "/unsigned/{{proxy+}}"
plugins = ["iam-unsigned"]
integration = "whoami"
"#
    ))
}

/// Sign `spec` (completed with the test credentials and `gw`'s URL for `path`) with
/// botocore, then send it — with `body` instead of the signed body when given.
async fn send_signed(
    gw: &Gateway,
    path: &str,
    mut spec: Value,
    body: Option<&str>,
) -> reqwest::Response {
    let obj = spec.as_object_mut().unwrap();
    obj.insert("url".into(), gw.url(path).into());
    obj.entry("access_key").or_insert(BOTO_KEY.into());
    obj.entry("secret_key").or_insert(BOTO_SECRET.into());
    obj.entry("region").or_insert("eu-west-1".into());
    obj.entry("service").or_insert("execute-api".into());
    obj.entry("method").or_insert("GET".into());
    let method = spec["method"].as_str().unwrap().to_owned();
    let signed_body = spec
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (url, headers) = botocore_sign(spec);
    let mut req = client().request(method.parse().unwrap(), url);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    req.body(body.unwrap_or(&signed_body).to_owned())
        .send()
        .await
        .unwrap()
}

async fn assert_whoami(resp: reqwest::Response, principal: &str) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(seen["principal"], principal);
    assert_eq!(seen["method"], "sigv4");
}

#[tokio::test]
async fn sigv4_accepts_requests_signed_by_botocore() {
    let gw = botocore_gateway();
    // Header form: a query string with encoded characters, a custom header.
    let resp = send_signed(
        &gw,
        "/iam/pets/7?limit=2&name=two%20words&tag=a%2Bb&empty=",
        json!({"headers": {"x-custom": "  spaced   value "}}),
        None,
    )
    .await;
    assert_whoami(resp, BOTO_PRINCIPAL).await;
    // A JSON body, signed by its hash.
    let resp = send_signed(
        &gw,
        "/iam/pets",
        json!({"method": "POST", "body": "{\"name\": \"rex\"}", "headers": {"content-type": "application/json"}}),
        None,
    )
    .await;
    assert_whoami(resp, BOTO_PRINCIPAL).await;
    // Temporary credentials: the session token is signed.
    let resp = send_signed(
        &gw,
        "/iam/session",
        json!({"method": "PUT", "body": "x", "token": "FwoGZXIvYXdzE//session+token="}),
        None,
    )
    .await;
    assert_whoami(resp, BOTO_PRINCIPAL).await;
    // Presigned URL (botocore signs the payload as UNSIGNED-PAYLOAD; there is no body).
    let resp = send_signed(
        &gw,
        "/iam/download/file.txt?versionId=3",
        json!({"presign_expires": 300}),
        None,
    )
    .await;
    assert_whoami(resp, BOTO_PRINCIPAL).await;
    // Presigned with a session token.
    let resp = send_signed(
        &gw,
        "/iam/download",
        json!({"presign_expires": 60, "token": "tok/en+=="}),
        None,
    )
    .await;
    assert_whoami(resp, BOTO_PRINCIPAL).await;
    // The second credential has its own principal.
    let resp = send_signed(
        &gw,
        "/iam/x",
        json!({"access_key": "AKIAOTHER", "secret_key": "other"}),
        None,
    )
    .await;
    assert_whoami(resp, "other").await;
    // The body's hash declared in X-Amz-Content-Sha256, as S3 clients send it.
    let body = "payload bytes";
    let resp = send_signed(
        &gw,
        "/iam/put",
        json!({"method": "PUT", "body": body, "headers": {"X-Amz-Content-SHA256": sha256_hex(body.as_bytes())}}),
        None,
    )
    .await;
    assert_whoami(resp, BOTO_PRINCIPAL).await;
}

#[tokio::test]
async fn sigv4_refusals_are_403_with_the_reason() {
    let gw = botocore_gateway();
    let c = client();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // No credentials at all.
    let resp = c.get(gw.url("/iam/x")).send().await.unwrap();
    json_error(resp, StatusCode::FORBIDDEN, SIGV4_MISSING).await;

    // Tampered after signing: body, path (via a different route parameter), query.
    let resp = send_signed(
        &gw,
        "/iam/pets",
        json!({"method": "POST", "body": "{\"a\": 1}"}),
        Some("{\"a\": 2}"),
    )
    .await;
    json_error(resp, StatusCode::FORBIDDEN, SIGV4_MISMATCH).await;
    let (url, headers) = botocore_sign(json!({
        "method": "GET", "url": gw.url("/iam/pets/1?a=1"), "access_key": BOTO_KEY,
        "secret_key": BOTO_SECRET, "region": "eu-west-1", "service": "execute-api"
    }));
    for tampered in [
        url.replace("/pets/1", "/pets/2"),
        url.replace("a=1", "a=2"),
        format!("{url}&b=1"),
    ] {
        let mut req = c.get(tampered);
        for (n, v) in &headers {
            req = req.header(n, v);
        }
        json_error(
            req.send().await.unwrap(),
            StatusCode::FORBIDDEN,
            SIGV4_MISMATCH,
        )
        .await;
    }
    // A signed header changed.
    let mut req = c.get(url.clone());
    for (n, v) in &headers {
        req = req.header(n, v);
    }
    let resp = req.header("host", "evil.example").send().await.unwrap();
    json_error(resp, StatusCode::FORBIDDEN, SIGV4_MISMATCH).await;

    // Wrong secret.
    let resp = send_signed(&gw, "/iam/x", json!({"secret_key": "not-the-secret"}), None).await;
    json_error(resp, StatusCode::FORBIDDEN, SIGV4_MISMATCH).await;
    // Unknown access key.
    let resp = send_signed(&gw, "/iam/x", json!({"access_key": "AKIAUNKNOWN"}), None).await;
    json_error(
        resp,
        StatusCode::FORBIDDEN,
        "Unknown access key: the security token included in the request is invalid.",
    )
    .await;
    // Wrong scope: region and service.
    let resp = send_signed(&gw, "/iam/x", json!({"region": "us-east-1"}), None).await;
    json_error(
        resp,
        StatusCode::FORBIDDEN,
        "Wrong credential scope: region 'us-east-1' should be 'eu-west-1'.",
    )
    .await;
    let resp = send_signed(&gw, "/iam/x", json!({"service": "s3"}), None).await;
    json_error(
        resp,
        StatusCode::FORBIDDEN,
        "Wrong credential scope: service 's3' should be 'execute-api'.",
    )
    .await;

    // Signed 10 minutes ago: past the 5-minute skew. And 10 minutes ahead.
    let resp = send_signed(&gw, "/iam/x", json!({"at": now - 600}), None).await;
    let body: Value = {
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        resp.json().await.unwrap()
    };
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Signature expired: ") && message.contains("is now earlier than"),
        "{message}"
    );
    let resp = send_signed(&gw, "/iam/x", json!({"at": now + 600}), None).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature not yet current: "),
        "{body}"
    );
    // A presigned URL past its X-Amz-Expires (signed 2 minutes ago for 60 s).
    let resp = send_signed(
        &gw,
        "/iam/x",
        json!({"presign_expires": 60, "at": now - 120}),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired: the presigned request expired at "),
        "{body}"
    );

    // A session token added after signing.
    let (url, headers) = botocore_sign(json!({
        "method": "GET", "url": gw.url("/iam/x"), "access_key": BOTO_KEY,
        "secret_key": BOTO_SECRET, "region": "eu-west-1", "service": "execute-api"
    }));
    let mut req = c.get(url);
    for (n, v) in &headers {
        req = req.header(n, v);
    }
    let resp = req
        .header("x-amz-security-token", "added-later")
        .send()
        .await
        .unwrap();
    json_error(
        resp,
        StatusCode::FORBIDDEN,
        "X-Amz-Security-Token must be a signed header.",
    )
    .await;

    // X-Amz-Content-Sha256 that is not the body's.
    let resp = send_signed(
        &gw,
        "/iam/put",
        json!({"method": "PUT", "body": "original", "headers": {"X-Amz-Content-SHA256": sha256_hex(b"original")}}),
        Some("replaced"),
    )
    .await;
    json_error(resp, StatusCode::FORBIDDEN, SIGV4_BODY_HASH).await;

    // UNSIGNED-PAYLOAD with a body: refused unless allowed.
    let unsigned = json!({"method": "PUT", "body": "streamed", "headers": {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}});
    let resp = send_signed(&gw, "/iam/put", unsigned.clone(), None).await;
    json_error(
        resp,
        StatusCode::FORBIDDEN,
        "UNSIGNED-PAYLOAD is not allowed: sign the body's SHA-256 in X-Amz-Content-Sha256.",
    )
    .await;
    let resp = send_signed(&gw, "/unsigned/put", unsigned, Some("any body at all")).await;
    assert_whoami(resp, BOTO_PRINCIPAL).await;

    // Not SigV4 at all.
    let resp = c
        .get(gw.url("/iam/x"))
        .header("authorization", "Bearer abc")
        .send()
        .await
        .unwrap();
    json_error(
        resp,
        StatusCode::FORBIDDEN,
        "Unsupported Authorization type: the Authorization header must use AWS4-HMAC-SHA256.",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// A local identity provider: a JWKS endpoint (with rotation) and an RFC 7662 introspection
// endpoint, counting the calls it gets.

#[derive(Default)]
struct IdpState {
    /// Key sets by path (`/jwks`, `/jwks-short-ttl`, ...).
    jwks: HashMap<String, Value>,
    /// Fetches by path.
    fetches: HashMap<String, usize>,
    /// Introspection answers by token; unknown tokens are inactive.
    introspection: HashMap<String, Value>,
    introspect_calls: usize,
    /// The `Authorization` header introspection requires.
    client_basic: String,
    /// The last introspection request body.
    last_form: String,
}

struct Idp {
    addr: SocketAddr,
    state: Arc<Mutex<IdpState>>,
    _server: Upstream,
}

impl Idp {
    fn start() -> Idp {
        let state = Arc::new(Mutex::new(IdpState::default()));
        let shared = state.clone();
        let server = serve_on_thread(hyper::service::service_fn(move |req| {
            idp_answer(shared.clone(), req)
        }));
        Idp {
            addr: server.addr,
            state,
            _server: server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn set_jwks(&self, path: &str, jwks: Value) {
        self.state
            .lock()
            .unwrap()
            .jwks
            .insert(path.to_owned(), jwks);
    }

    fn fetches(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .fetches
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

async fn idp_answer(
    state: Arc<Mutex<IdpState>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let json_response = |status: u16, value: &Value| {
        let mut resp = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(
            value.to_string(),
        )));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        resp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        resp
    };
    let mut s = state.lock().unwrap();
    if path.starts_with("/jwks") {
        *s.fetches.entry(path.clone()).or_default() += 1;
        return Ok(match s.jwks.get(&path) {
            Some(jwks) => json_response(200, jwks),
            None => json_response(404, &json!({"error": "no such key set"})),
        });
    }
    if path == "/introspect" {
        s.introspect_calls += 1;
        s.last_form = String::from_utf8_lossy(&body).into_owned();
        let authorized = parts.method == hyper::Method::POST
            && parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                == Some(s.client_basic.as_str())
            && parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                == Some("application/x-www-form-urlencoded");
        if !authorized {
            return Ok(json_response(401, &json!({"error": "invalid_client"})));
        }
        let token = s
            .last_form
            .split('&')
            .find_map(|p| p.strip_prefix("token="))
            .map(|t| {
                t.replace("%2B", "+")
                    .replace("%2F", "/")
                    .replace("%3D", "=")
            })
            .unwrap_or_default();
        let answer = s
            .introspection
            .get(&token)
            .cloned()
            .unwrap_or(json!({"active": false}));
        return Ok(json_response(200, &answer));
    }
    if path == "/introspect-broken" {
        s.introspect_calls += 1;
        return Ok(json_response(500, &json!({"error": "server_error"})));
    }
    Ok(json_response(404, &json!({"error": "not found"})))
}

// ---------------------------------------------------------------------------------------------
// jwt

/// Key generation and token minting with PyJWT (and `cryptography`), a JOSE library no one
/// here wrote. `spec`: `{"keys": [{"kid", "type": RSA|P-256|P-384|Ed25519, "pem"?}],
/// "tokens": [{"key": kid | "secret": s | "raw_hs256_secret": s | "none": true, "alg",
/// "headers", "claims", "relabel"?}]}`. Returns `{"jwks": {"keys": [...]}, "pems": {kid: pem}, "tokens": [...]}`.
fn pyjwt(spec: Value) -> Value {
    const SCRIPT: &str = r#"
import base64, hashlib, hmac, json, sys
import jwt
from jwt.algorithms import RSAAlgorithm, ECAlgorithm, OKPAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519

spec = json.load(sys.stdin)
private, public, pems = {}, [], {}
for k in spec.get("keys", []):
    if k.get("pem"):
        key = serialization.load_pem_private_key(k["pem"].encode(), password=None)
    elif k["type"] == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif k["type"] == "P-256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif k["type"] == "P-384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    private[k["kid"]] = key
    pems[k["kid"]] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    algo = {"RSA": RSAAlgorithm, "P-256": ECAlgorithm, "P-384": ECAlgorithm, "Ed25519": OKPAlgorithm}[k["type"]]
    jwk = algo.to_jwk(key.public_key(), as_dict=True)
    jwk["kid"] = k["kid"]
    jwk["use"] = "sig"
    jwk.update(k.get("extra", {}))
    public.append(jwk)

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

tokens = []
for t in spec.get("tokens", []):
    headers = t.get("headers", {})
    if "raw_hs256_secret" in t:
        # What an attacker does with a public key: HMAC with it, by hand (PyJWT refuses).
        head = b64(json.dumps(dict({"alg": "HS256", "typ": "JWT"}, **headers)).encode())
        body = b64(json.dumps(t["claims"]).encode())
        mac = hmac.new(t["raw_hs256_secret"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        tokens.append(f"{head}.{body}.{b64(mac)}")
    elif t.get("none"):
        tokens.append(jwt.encode(t["claims"], None, algorithm="none", headers=headers))
    elif "secret" in t:
        tokens.append(jwt.encode(t["claims"], t["secret"], algorithm=t["alg"], headers=headers))
    else:
        headers = dict({"kid": t["key"]}, **headers)
        token = jwt.encode(t["claims"], private[t["key"]], algorithm=t["alg"], headers=headers)
        if t.get("relabel"):
            # The header then names another algorithm than the one that signed.
            head = b64(json.dumps({"alg": t["relabel"], "kid": headers["kid"], "typ": "JWT"}).encode())
            token = head + token[token.index("."):]
        tokens.append(token)
print(json.dumps({"jwks": {"keys": public}, "pems": pems, "tokens": tokens,
                  "public_pems": {kid: k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode() for kid, k in private.items()}}))
"#;
    let stdout = run_python("PyJWT", SCRIPT, spec.to_string().as_bytes());
    serde_json::from_slice(&stdout).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    base64(bytes, true)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const ISSUER: &str = "https://issuer.wicket.test";

/// Claims that pass the `oauth` plugin, changed by `changes` (`null` removes a claim).
fn jwt_claims(changes: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "aud": "pets-api", "sub": "alice", "tenant": "acme",
        "iat": unix_now(), "exp": unix_now() + 300, "scope": "pets:read pets:write",
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

const HS_SECRET: &str = "an-hs256-secret-for-the-e2e-tests-0123456789";

fn jwt_gateway(idp: &Idp, upstream: &Upstream, extra: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.oauth]
builtin = "jwt"
config.jwks_url = "{jwks}"
config.issuer = "{ISSUER}"
config.audience = ["pets-api", "other-api"]
config.required_scopes = ["pets:read"]
config.min_refresh_s = 3
config.claims_to_headers = {{ sub = "x-user", tenant = "x-tenant" }}

[plugins.oauth-short-ttl]
builtin = "jwt"
config = {{ jwks_url = "{jwks_short}", jwks_cache_ttl_s = 1, min_refresh_s = 30 }}

[plugins.oauth-hs]
builtin = "jwt"
config = {{ hs_secret = "{HS_SECRET}", audience = "pets-api" }}

[plugins.oauth-down]
builtin = "jwt"
config = {{ jwks_url = "http://127.0.0.1:{closed}/jwks", jwks_timeout_ms = 500 }}

{extra}

[plugins.show]
builtin = "headers"
config.request.set = {{ "x-principal" = "{{principal}}", "x-scopes" = "{{scopes}}", "x-auth-method" = "{{auth.method}}" }}

[plugins.backend]
builtin = "http"
config = {{ url = "http://{upstream}/seen/{{rest+}}" }}

[[routes]]
path = "/jwt/{{rest+}}"
plugins = ["oauth", "show"]
integration = "backend"

[[routes]]
path = "/short/{{rest+}}"
plugins = ["oauth-short-ttl", "show"]
integration = "backend"

[[routes]]
path = "/hs/{{rest+}}"
plugins = ["oauth-hs", "show"]
integration = "backend"

[[routes]]
path = "/down/{{rest+}}"
plugins = ["oauth-down", "show"]
integration = "backend"
"#,
        jwks = idp.url("/jwks"),
        jwks_short = idp.url("/jwks-short-ttl"),
        closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        upstream = upstream.addr,
    ))
}

async fn bearer(gw: &Gateway, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(gw.url(path))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
}

/// The upstream's view of an admitted request: its headers.
async fn admitted(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let seen: Value = serde_json::from_str(&text).unwrap();
    seen["headers"].clone()
}

/// Assert a 401 with `WWW-Authenticate: <challenge>` and `{"message": "Unauthorized"}`.
async fn assert_unauthorized(resp: reqwest::Response, challenge: &str) {
    let headers = json_error(resp, StatusCode::UNAUTHORIZED, "Unauthorized").await;
    assert_eq!(headers["www-authenticate"], challenge);
}

fn invalid_token(description: &str) -> String {
    format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
}

#[tokio::test]
async fn jwt_accepts_pyjwt_tokens_of_every_algorithm_and_passes_claims_on() {
    let idp = Idp::start();
    let upstream = Upstream::start();
    let algs = [
        ("rsa-1", "RS256"),
        ("rsa-1", "RS384"),
        ("rsa-1", "RS512"),
        ("rsa-1", "PS256"),
        ("rsa-1", "PS384"),
        ("rsa-1", "PS512"),
        ("ec-256", "ES256"),
        ("ec-384", "ES384"),
        ("ed-1", "EdDSA"),
    ];
    let minted = pyjwt(json!({
        "keys": [
            {"kid": "rsa-1", "type": "RSA"}, {"kid": "ec-256", "type": "P-256"},
            {"kid": "ec-384", "type": "P-384"}, {"kid": "ed-1", "type": "Ed25519"},
        ],
        "tokens": algs.iter().map(|(key, alg)| json!({"key": key, "alg": alg, "claims": jwt_claims(json!({"sub": format!("user-{alg}")}))})).collect::<Vec<_>>(),
    }));
    idp.set_jwks("/jwks", minted["jwks"].clone());
    let gw = jwt_gateway(&idp, &upstream, "");
    for ((_, alg), token) in algs.iter().zip(minted["tokens"].as_array().unwrap()) {
        let resp = client()
            .get(gw.url("/jwt/pets"))
            .header(
                "authorization",
                format!("Bearer {}", token.as_str().unwrap()),
            )
            .header("x-user", "spoofed-by-the-client")
            .send()
            .await
            .unwrap();
        let h = admitted(resp).await;
        let sub = format!("user-{alg}");
        assert_eq!(h["x-principal"], json!([sub]), "{alg}");
        assert_eq!(h["x-scopes"], json!(["pets:read pets:write"]), "{alg}");
        assert_eq!(h["x-auth-method"], json!(["jwt"]), "{alg}");
        assert_eq!(
            h["x-user"],
            json!([sub]),
            "{alg}: the client's x-user is replaced"
        );
        assert_eq!(h["x-tenant"], json!(["acme"]), "{alg}");
    }
    assert_eq!(idp.fetches("/jwks"), 1, "one fetch serves every token");

    // A client's x-tenant is removed even when the token has no tenant claim.
    let token = pyjwt(json!({
        "keys": [{"kid": "rsa-1", "type": "RSA", "pem": minted["pems"]["rsa-1"]}],
        "tokens": [{"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"tenant": null}))}],
    }))["tokens"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = client()
        .get(gw.url("/jwt/pets"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-tenant", "evil")
        .send()
        .await
        .unwrap();
    let h = admitted(resp).await;
    assert!(h.get("x-tenant").is_none(), "{h}");
}

#[tokio::test]
async fn jwt_refusals_follow_rfc_6750() {
    let idp = Idp::start();
    let upstream = Upstream::start();
    let now = unix_now();
    let keys = pyjwt(
        json!({"keys": [{"kid": "rsa-1", "type": "RSA"}, {"kid": "ec-1", "type": "P-256"}, {"kid": "outsider", "type": "RSA"}]}),
    );
    let jwks = json!({"keys": [keys["jwks"]["keys"][0], keys["jwks"]["keys"][1]]});
    idp.set_jwks("/jwks", jwks);
    let pem = |kid: &str| keys["pems"][kid].clone();
    let rsa_public_pem = keys["public_pems"]["rsa-1"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "alg none",
            json!({"none": true, "claims": jwt_claims(json!({}))}),
            invalid_token("unsigned tokens (alg none) are not accepted"),
        ),
        (
            "HS256 signed with the RSA public key",
            json!({"raw_hs256_secret": rsa_public_pem, "headers": {"kid": "rsa-1"}, "claims": jwt_claims(json!({}))}),
            invalid_token("algorithm HS256 is not allowed"),
        ),
        (
            "expired",
            json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"exp": now - 120}))}),
            invalid_token("the token expired"),
        ),
        (
            "not yet valid",
            json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"nbf": now + 600}))}),
            invalid_token("the token is not valid yet (nbf)"),
        ),
        (
            "exp as a string",
            json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"exp": (now + 300).to_string()}))}),
            invalid_token("the exp claim is not a number"),
        ),
        (
            "no exp",
            json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"exp": null}))}),
            invalid_token("the token has no exp claim"),
        ),
        (
            "wrong issuer",
            json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"iss": "https://evil.test"}))}),
            invalid_token("wrong issuer"),
        ),
        (
            "wrong audience",
            json!({"key": "ec-1", "alg": "ES256", "claims": jwt_claims(json!({"aud": ["billing-api"]}))}),
            invalid_token("wrong audience"),
        ),
        (
            "no audience",
            json!({"key": "ec-1", "alg": "ES256", "claims": jwt_claims(json!({"aud": null}))}),
            invalid_token("the token has no aud claim"),
        ),
        (
            "signed by a key not in the set, under a known kid",
            json!({"key": "outsider", "alg": "RS256", "headers": {"kid": "rsa-1"}, "claims": jwt_claims(json!({}))}),
            invalid_token("invalid signature"),
        ),
        (
            "an EC key named for an RSA algorithm",
            json!({"key": "ec-1", "alg": "ES256", "relabel": "RS256", "claims": jwt_claims(json!({}))}),
            invalid_token("no key for algorithm RS256"),
        ),
    ];
    let mut specs: Vec<Value> = cases.iter().map(|(_, spec, _)| spec.clone()).collect();
    // The unknown kid, and a good token to tamper with.
    specs.push(json!({"key": "outsider", "alg": "RS256", "claims": jwt_claims(json!({}))}));
    specs.push(json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({}))}));
    specs.push(json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"scope": "pets:write"}))}));
    specs.push(json!({"key": "rsa-1", "alg": "RS256", "claims": jwt_claims(json!({"scope": null, "scp": ["pets:read", "admin"]}))}));
    let minted = pyjwt(json!({
        "keys": [{"kid": "rsa-1", "type": "RSA", "pem": pem("rsa-1")}, {"kid": "ec-1", "type": "P-256", "pem": pem("ec-1")}, {"kid": "outsider", "type": "RSA", "pem": pem("outsider")}],
        "tokens": specs,
    }));
    let tokens: Vec<String> = minted["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let gw = jwt_gateway(&idp, &upstream, "");

    // No token: a bare challenge (RFC 6750 §3.1: no error code without credentials).
    let resp = client().get(gw.url("/jwt/pets")).send().await.unwrap();
    assert_unauthorized(resp, "Bearer").await;
    let resp = client()
        .get(gw.url("/jwt/pets"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_unauthorized(resp, "Bearer").await;

    for (i, (what, _, challenge)) in cases.iter().enumerate() {
        let resp = bearer(&gw, "/jwt/pets", &tokens[i]).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_unauthorized(resp, challenge).await;
    }
    let n = cases.len();
    // Unknown kid (after one refresh, which finds nothing new).
    let resp = bearer(&gw, "/jwt/pets", &tokens[n]).await;
    assert_unauthorized(resp, &invalid_token("unknown key id outsider")).await;
    // Tampered: the claims of a good token changed.
    let good = &tokens[n + 1];
    let parts: Vec<&str> = good.split('.').collect();
    let admin_claims = b64url(jwt_claims(json!({"sub": "admin"})).to_string().as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], admin_claims, parts[2]);
    assert_unauthorized(
        bearer(&gw, "/jwt/pets", &tampered).await,
        &invalid_token("invalid signature"),
    )
    .await;
    // Malformed tokens and headers.
    for (token, description) in [
        (
            "not-a-jwt",
            "malformed token: a JWS has three dot-separated parts",
        ),
        ("a.b.c", "malformed token: header is not base64url"),
        (
            &format!("{}.{}", parts[0], parts[1]),
            "malformed token: a JWS has three dot-separated parts",
        ),
    ] {
        assert_unauthorized(
            bearer(&gw, "/jwt/pets", token).await,
            &invalid_token(description),
        )
        .await;
    }
    let resp = client()
        .get(gw.url("/jwt/pets"))
        .header("authorization", "Bearer two tokens")
        .send()
        .await
        .unwrap();
    assert_unauthorized(resp, &invalid_token("malformed Authorization header")).await;
    // Missing scope: 403 insufficient_scope naming the scope.
    let resp = bearer(&gw, "/jwt/pets", &tokens[n + 2]).await;
    let headers = json_error(resp, StatusCode::FORBIDDEN, "Forbidden").await;
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"insufficient_scope\", error_description=\"the token lacks a required scope\", scope=\"pets:read\""
    );
    // scp as a list counts, and the good token passes.
    admitted(bearer(&gw, "/jwt/pets", &tokens[n + 3]).await).await;
    admitted(bearer(&gw, "/jwt/pets", good).await).await;

    // HS256: only with the configured secret.
    let hs = pyjwt(json!({"tokens": [
        {"secret": HS_SECRET, "alg": "HS256", "claims": jwt_claims(json!({}))},
        {"secret": "some-other-secret-of-the-same-length-0123456", "alg": "HS256", "claims": jwt_claims(json!({}))},
    ]}));
    let h = admitted(bearer(&gw, "/hs/x", hs["tokens"][0].as_str().unwrap()).await).await;
    assert_eq!(h["x-principal"], json!(["alice"]));
    assert_unauthorized(
        bearer(&gw, "/hs/x", hs["tokens"][1].as_str().unwrap()).await,
        &invalid_token("invalid signature"),
    )
    .await;
    // ... and the HS256 route takes no RSA token.
    assert_unauthorized(
        bearer(&gw, "/hs/x", good).await,
        &invalid_token("algorithm RS256 is not allowed"),
    )
    .await;

    // No keys to be had: 503, not a pass.
    let resp = bearer(&gw, "/down/x", good).await;
    json_error(resp, StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").await;
}

#[tokio::test]
async fn jwt_key_rotation_refetches_at_most_once_per_min_refresh() {
    let idp = Idp::start();
    let upstream = Upstream::start();
    let keys = pyjwt(
        json!({"keys": [{"kid": "k1", "type": "RSA"}, {"kid": "k2", "type": "P-256"}, {"kid": "k3", "type": "Ed25519"}]}),
    );
    let jwk = |i: usize| keys["jwks"]["keys"][i].clone();
    let minted = pyjwt(json!({
        "keys": [
            {"kid": "k1", "type": "RSA", "pem": keys["pems"]["k1"]},
            {"kid": "k2", "type": "P-256", "pem": keys["pems"]["k2"]},
            {"kid": "k3", "type": "Ed25519", "pem": keys["pems"]["k3"]},
        ],
        "tokens": [
            {"key": "k1", "alg": "RS256", "claims": jwt_claims(json!({}))},
            {"key": "k2", "alg": "ES256", "claims": jwt_claims(json!({}))},
            {"key": "k3", "alg": "EdDSA", "claims": jwt_claims(json!({}))},
        ],
    }));
    let token = |i: usize| minted["tokens"][i].as_str().unwrap().to_owned();
    idp.set_jwks("/jwks", json!({"keys": [jwk(0)]}));
    let gw = jwt_gateway(&idp, &upstream, "");

    admitted(bearer(&gw, "/jwt/a", &token(0)).await).await;
    admitted(bearer(&gw, "/jwt/a", &token(0)).await).await;
    assert_eq!(idp.fetches("/jwks"), 1);

    // The issuer rotates to k2: the first k2 token makes the gateway fetch again, at once.
    idp.set_jwks("/jwks", json!({"keys": [jwk(1)]}));
    let sent_at = std::time::Instant::now();
    admitted(bearer(&gw, "/jwt/a", &token(1)).await).await;
    // The refresh window (min_refresh_s) opened between these two instants.
    let refreshed_at = std::time::Instant::now();
    assert_eq!(idp.fetches("/jwks"), 2);
    // k1 is gone from the set now.
    assert_unauthorized(
        bearer(&gw, "/jwt/a", &token(0)).await,
        &invalid_token("unknown key id k1"),
    )
    .await;
    // k3 is not published yet: refused, and within min_refresh_s no fetch however many ask.
    for _ in 0..10 {
        assert_unauthorized(
            bearer(&gw, "/jwt/a", &token(2)).await,
            &invalid_token("unknown key id k3"),
        )
        .await;
    }
    assert_eq!(
        idp.fetches("/jwks"),
        2,
        "unknown kids within min_refresh_s cost no fetch"
    );
    // Published, but the gate is closed until min_refresh_s (3 s) has passed.
    idp.set_jwks("/jwks", json!({"keys": [jwk(1), jwk(2)]}));
    assert_unauthorized(
        bearer(&gw, "/jwt/a", &token(2)).await,
        &invalid_token("unknown key id k3"),
    )
    .await;
    assert!(
        sent_at.elapsed() < Duration::from_millis(2900),
        "too slow to check the gate"
    );
    assert_eq!(idp.fetches("/jwks"), 2);
    tokio::time::sleep(
        (refreshed_at + Duration::from_millis(3100))
            .saturating_duration_since(std::time::Instant::now()),
    )
    .await;
    let h = admitted(bearer(&gw, "/jwt/a", &token(2)).await).await;
    assert_eq!(h["x-principal"], json!(["alice"]));
    assert_eq!(idp.fetches("/jwks"), 3);
    admitted(bearer(&gw, "/jwt/a", &token(1)).await).await;
    assert_eq!(idp.fetches("/jwks"), 3);

    // The cache TTL: with jwks_cache_ttl_s = 1 the set is fetched again once it is stale.
    idp.set_jwks("/jwks-short-ttl", json!({"keys": [jwk(0)]}));
    admitted(bearer(&gw, "/short/a", &token(0)).await).await;
    admitted(bearer(&gw, "/short/a", &token(0)).await).await;
    assert_eq!(idp.fetches("/jwks-short-ttl"), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    admitted(bearer(&gw, "/short/a", &token(0)).await).await;
    assert_eq!(idp.fetches("/jwks-short-ttl"), 2);
}

// ---------------------------------------------------------------------------------------------
// introspect

const CLIENT_ID: &str = "wicket-gw";
const CLIENT_SECRET: &str = "s3cret:with/odd=chars";

fn introspect_gateway(idp: &Idp, upstream: &Upstream) -> Gateway {
    // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
    idp.state.lock().unwrap().client_basic = format!(
        "Basic {}",
        base64(
            format!(
                "{CLIENT_ID}:{}",
                CLIENT_SECRET
                    .replace(':', "%3A")
                    .replace('/', "%2F")
                    .replace('=', "%3D")
            )
            .as_bytes(),
            false
        )
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Gateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.opaque]
builtin = "introspect"
config = {{ introspection_url = "{url}", client_id = "{CLIENT_ID}", client_secret = "{CLIENT_SECRET}", cache_ttl_s = 4, required_scopes = ["pets:read"] }}

[plugins.opaque-wrong-secret]
builtin = "introspect"
config = {{ introspection_url = "{url}", client_id = "{CLIENT_ID}", client_secret = "guess" }}

[plugins.opaque-broken]
builtin = "introspect"
config = {{ introspection_url = "{broken}", client_id = "{CLIENT_ID}", client_secret = "{CLIENT_SECRET}" }}

[plugins.opaque-down]
builtin = "introspect"
config = {{ introspection_url = "http://127.0.0.1:{closed}/introspect", client_id = "{CLIENT_ID}", client_secret = "{CLIENT_SECRET}", timeout_ms = 500 }}

[plugins.show]
builtin = "headers"
config.request.set = {{ "x-principal" = "{{principal}}", "x-scopes" = "{{scopes}}", "x-auth-method" = "{{auth.method}}" }}

[plugins.backend]
builtin = "http"
config = {{ url = "http://{upstream}/seen/{{rest+}}" }}

[[routes]]
path = "/opaque/{{rest+}}"
plugins = ["opaque", "show"]
integration = "backend"

[[routes]]
path = "/wrong-secret/{{rest+}}"
plugins = ["opaque-wrong-secret", "show"]
integration = "backend"

[[routes]]
path = "/broken/{{rest+}}"
plugins = ["opaque-broken", "show"]
integration = "backend"

[[routes]]
path = "/down/{{rest+}}"
plugins = ["opaque-down", "show"]
integration = "backend"
"#,
        url = idp.url("/introspect"),
        broken = idp.url("/introspect-broken"),
        upstream = upstream.addr,
    ))
}

fn introspect_calls(idp: &Idp) -> usize {
    idp.state.lock().unwrap().introspect_calls
}

#[tokio::test]
async fn introspect_admits_active_tokens_and_caches_until_exp_or_ttl() {
    let idp = Idp::start();
    let upstream = Upstream::start();
    let now = unix_now();
    {
        let mut s = idp.state.lock().unwrap();
        s.introspection.insert(
            "tok-alice".into(),
            json!({"active": true, "sub": "alice", "client_id": "app", "scope": "pets:read pets:write", "exp": now + 300, "token_type": "Bearer"}),
        );
        s.introspection.insert(
            "tok+bob/=".into(),
            json!({"active": true, "username": "bob", "scope": "pets:read"}),
        );
    }
    let gw = introspect_gateway(&idp, &upstream);

    let sent_at = std::time::Instant::now();
    let h = admitted(bearer(&gw, "/opaque/a", "tok-alice").await).await;
    // The verdict was cached between these two instants.
    let cached_at = std::time::Instant::now();
    assert_eq!(h["x-principal"], json!(["alice"]));
    assert_eq!(h["x-scopes"], json!(["pets:read pets:write"]));
    assert_eq!(h["x-auth-method"], json!(["introspect"]));
    assert_eq!(introspect_calls(&idp), 1);
    assert_eq!(
        idp.state.lock().unwrap().last_form,
        "token=tok-alice&token_type_hint=access_token"
    );
    // Cached per token: no more calls for the same token...
    for _ in 0..5 {
        admitted(bearer(&gw, "/opaque/a", "tok-alice").await).await;
    }
    assert_eq!(introspect_calls(&idp), 1);
    // ... one for another (form-encoded).
    let h = admitted(bearer(&gw, "/opaque/b", "tok+bob/=").await).await;
    assert_eq!(h["x-principal"], json!(["bob"]));
    assert_eq!(introspect_calls(&idp), 2);
    assert_eq!(
        idp.state.lock().unwrap().last_form,
        "token=tok%2Bbob%2F%3D&token_type_hint=access_token"
    );

    // A token expiring in 2 s is kept until then, not for cache_ttl_s (4 s): past its exp it is
    // asked about again, and is no longer active.
    let exp = unix_now() + 2;
    idp.state.lock().unwrap().introspection.insert(
        "tok-short".into(),
        json!({"active": true, "sub": "carol", "scope": "pets:read", "exp": exp}),
    );
    admitted(bearer(&gw, "/opaque/c", "tok-short").await).await;
    admitted(bearer(&gw, "/opaque/c", "tok-short").await).await;
    assert_eq!(introspect_calls(&idp), 3);
    let until_exp = std::time::UNIX_EPOCH + Duration::from_secs(exp) + Duration::from_millis(100);
    tokio::time::sleep(
        until_exp
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
    .await;
    assert_unauthorized(
        bearer(&gw, "/opaque/c", "tok-short").await,
        &invalid_token("the token is not active"),
    )
    .await;
    assert_eq!(introspect_calls(&idp), 4);

    // tok-alice (exp in 5 minutes) is kept cache_ttl_s: then the server is asked again, and
    // its answer counts: revoked.
    idp.state
        .lock()
        .unwrap()
        .introspection
        .insert("tok-alice".into(), json!({"active": false}));
    admitted(bearer(&gw, "/opaque/a", "tok-alice").await).await;
    assert!(
        sent_at.elapsed() < Duration::from_secs(4),
        "the test ran too slowly to check the TTL"
    );
    assert_eq!(introspect_calls(&idp), 4, "still cached");
    tokio::time::sleep(
        (cached_at + Duration::from_millis(4100))
            .saturating_duration_since(std::time::Instant::now()),
    )
    .await;
    assert_unauthorized(
        bearer(&gw, "/opaque/a", "tok-alice").await,
        &invalid_token("the token is not active"),
    )
    .await;
    assert_eq!(introspect_calls(&idp), 5);
}

#[tokio::test]
async fn introspect_refuses_inactive_tokens_and_failed_calls_with_401() {
    let idp = Idp::start();
    let upstream = Upstream::start();
    let now = unix_now();
    {
        let mut s = idp.state.lock().unwrap();
        s.introspection.insert(
            "tok-narrow".into(),
            json!({"active": true, "sub": "dave", "scope": "pets:write"}),
        );
        s.introspection.insert(
            "tok-expired".into(),
            json!({"active": true, "sub": "erin", "scope": "pets:read", "exp": now - 5}),
        );
        s.introspection.insert(
            "tok-nobody".into(),
            json!({"active": true, "scope": "pets:read"}),
        );
        s.introspection.insert(
            "tok-good".into(),
            json!({"active": true, "sub": "frank", "scope": "pets:read"}),
        );
    }
    let gw = introspect_gateway(&idp, &upstream);

    // No token.
    let resp = client().get(gw.url("/opaque/a")).send().await.unwrap();
    assert_unauthorized(resp, "Bearer").await;
    assert_eq!(introspect_calls(&idp), 0);
    let resp = client()
        .get(gw.url("/opaque/a"))
        .header("authorization", "Bearer a b")
        .send()
        .await
        .unwrap();
    assert_unauthorized(resp, &invalid_token("malformed Authorization header")).await;

    // Unknown to the server (active: false); the verdict is cached too.
    for _ in 0..3 {
        assert_unauthorized(
            bearer(&gw, "/opaque/a", "tok-unknown").await,
            &invalid_token("the token is not active"),
        )
        .await;
    }
    assert_eq!(introspect_calls(&idp), 1);
    // Active but past its exp, or naming nobody.
    assert_unauthorized(
        bearer(&gw, "/opaque/a", "tok-expired").await,
        &invalid_token("the token is not active"),
    )
    .await;
    assert_unauthorized(
        bearer(&gw, "/opaque/a", "tok-nobody").await,
        &invalid_token("the token is not active"),
    )
    .await;
    // Missing scope.
    let headers = json_error(
        bearer(&gw, "/opaque/a", "tok-narrow").await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    )
    .await;
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"insufficient_scope\", error_description=\"the token lacks a required scope\", scope=\"pets:read\""
    );

    // The call fails: the server refuses our credentials, answers 500, or is not there.
    let failed = invalid_token("the token could not be introspected");
    let calls = introspect_calls(&idp);
    assert_unauthorized(bearer(&gw, "/wrong-secret/a", "tok-good").await, &failed).await;
    assert_unauthorized(bearer(&gw, "/broken/a", "tok-good").await, &failed).await;
    assert_eq!(introspect_calls(&idp), calls + 2);
    // Failures are not cached.
    assert_unauthorized(bearer(&gw, "/broken/a", "tok-good").await, &failed).await;
    assert_eq!(introspect_calls(&idp), calls + 3);
    assert_unauthorized(bearer(&gw, "/down/a", "tok-good").await, &failed).await;

    // And the good token passes where the call works.
    let h = admitted(bearer(&gw, "/opaque/a", "tok-good").await).await;
    assert_eq!(h["x-principal"], json!(["frank"]));
}

// ---------------------------------------------------------------------------------------------
// Latency

/// The added latency of each auth filter: 2000 sequential requests per route on one
/// keep-alive connection, the routes interleaved so drift hits all alike, against a mock
/// integration; the same route without a filter is the baseline. Timing-sensitive, so not run
/// by default: `cargo test -p wicket-e2e --test auth -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn added_latency_per_auth_filter() {
    const ROUNDS: usize = 2000;
    let idp = Idp::start();
    let keys = pyjwt(json!({
        "keys": [{"kid": "rsa", "type": "RSA"}, {"kid": "ec", "type": "P-256"}, {"kid": "ed", "type": "Ed25519"}],
        "tokens": [
            {"key": "rsa", "alg": "RS256", "claims": jwt_claims(json!({"exp": unix_now() + 3600}))},
            {"key": "ec", "alg": "ES256", "claims": jwt_claims(json!({"exp": unix_now() + 3600}))},
            {"key": "ed", "alg": "EdDSA", "claims": jwt_claims(json!({"exp": unix_now() + 3600}))},
        ],
    }));
    idp.set_jwks("/jwks", keys["jwks"].clone());
    idp.state.lock().unwrap().client_basic = format!("Basic {}", base64(b"gw:secret", false));
    idp.state.lock().unwrap().introspection.insert(
        "opaque-token".into(),
        json!({"active": true, "sub": "alice", "scope": "pets:read"}),
    );
    let gw = Gateway::start(&format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin = "127.0.0.1:0"
access_log = false

[plugins.keys]
builtin = "api-key"
config = {{ keys = [{{ key_sha256 = "{key_hash}", principal = "alice", plan = "gold" }}] }}

[plugins.iam]
builtin = "sigv4"
# Hashing a 1 MiB body takes the guest ~12 ms; on a busy machine the (wall-clock) CPU budget
# of 100 ms is not a safe margin for that.
cpu_ms = 2000
config = {{ region = "eu-west-1", credentials = [{{ access_key = "{BOTO_KEY}", secret_key = "{BOTO_SECRET}", principal = "boto" }}] }}

[plugins.oauth-rs]
builtin = "jwt"
config = {{ jwks_url = "{jwks}", issuer = "{ISSUER}", audience = "pets-api", required_scopes = ["pets:read"], jwks_cache_ttl_s = 3600 }}

[plugins.oauth-es]
builtin = "jwt"
config = {{ jwks_url = "{jwks}", issuer = "{ISSUER}", audience = "pets-api", required_scopes = ["pets:read"], jwks_cache_ttl_s = 3600 }}

[plugins.oauth-ed]
builtin = "jwt"
config = {{ jwks_url = "{jwks}", issuer = "{ISSUER}", audience = "pets-api", required_scopes = ["pets:read"], jwks_cache_ttl_s = 3600 }}

[plugins.opaque]
builtin = "introspect"
config = {{ introspection_url = "{introspect}", client_id = "gw", client_secret = "secret", cache_ttl_s = 3600 }}

[plugins.ok]
builtin = "mock"
config = {{ body = "ok" }}

[[routes]]
path = "/none/{{rest+}}"
integration = "ok"

[[routes]]
path = "/api-key/{{rest+}}"
plugins = ["keys"]
integration = "ok"

[[routes]]
path = "/sigv4/{{rest+}}"
plugins = ["iam"]
integration = "ok"

[[routes]]
path = "/jwt-rs/{{rest+}}"
plugins = ["oauth-rs"]
integration = "ok"

[[routes]]
path = "/jwt-es/{{rest+}}"
plugins = ["oauth-es"]
integration = "ok"

[[routes]]
path = "/jwt-ed/{{rest+}}"
plugins = ["oauth-ed"]
integration = "ok"

[[routes]]
path = "/introspect/{{rest+}}"
plugins = ["opaque"]
integration = "ok"
"#,
        key_hash = sha256_hex(ALICE_KEY.as_bytes()),
        jwks = idp.url("/jwks"),
        introspect = idp.url("/introspect"),
    ));
    let big = "x".repeat(1 << 20);
    let sign = |path: &str, method: &str, body: &str| {
        botocore_sign(json!({
            "method": method, "url": gw.url(path), "body": body, "access_key": BOTO_KEY,
            "secret_key": BOTO_SECRET, "region": "eu-west-1", "service": "execute-api",
        }))
    };
    let (sig_url, sig_headers) = sign("/sigv4/pets", "GET", "");
    let (big_url, big_headers) = sign("/sigv4/upload", "POST", &big);
    let token = |i: usize| format!("Bearer {}", keys["tokens"][i].as_str().unwrap());
    type Build = Box<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder>;
    let with_headers = |mut r: reqwest::RequestBuilder, headers: &[(String, String)]| {
        for (n, v) in headers {
            r = r.header(n, v);
        }
        r
    };
    let u = gw.url("/none/pets");
    let cases: Vec<(&str, Build)> = vec![
        ("no filter", Box::new(move |c| c.get(&u))),
        ("api-key", {
            let u = gw.url("/api-key/pets");
            Box::new(move |c| c.get(&u).header("x-api-key", ALICE_KEY))
        }),
        ("sigv4", {
            let (u, h) = (sig_url.clone(), sig_headers.clone());
            Box::new(move |c| with_headers(c.get(&u), &h))
        }),
        ("jwt RS256", {
            let (u, t) = (gw.url("/jwt-rs/pets"), token(0));
            Box::new(move |c| c.get(&u).header("authorization", &t))
        }),
        ("jwt ES256", {
            let (u, t) = (gw.url("/jwt-es/pets"), token(1));
            Box::new(move |c| c.get(&u).header("authorization", &t))
        }),
        ("jwt EdDSA", {
            let (u, t) = (gw.url("/jwt-ed/pets"), token(2));
            Box::new(move |c| c.get(&u).header("authorization", &t))
        }),
        ("introspect (cached)", {
            let u = gw.url("/introspect/pets");
            Box::new(move |c| c.get(&u).header("authorization", "Bearer opaque-token"))
        }),
        ("no filter, 1 MiB POST", {
            let (u, b) = (gw.url("/none/upload"), big.clone());
            Box::new(move |c| c.post(&u).body(b.clone()))
        }),
        ("sigv4, 1 MiB POST", {
            let (u, h, b) = (big_url.clone(), big_headers.clone(), big.clone());
            Box::new(move |c| with_headers(c.post(&u), &h).body(b.clone()))
        }),
    ];
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    for round in 0..(ROUNDS + 100) {
        assert!(
            std::time::Instant::now() < deadline,
            "the measurement is bounded to 5 minutes"
        );
        for (i, (name, build)) in cases.iter().enumerate() {
            let started = std::time::Instant::now();
            let resp = build(&c).send().await.unwrap();
            let status = resp.status();
            let body = resp.bytes().await.unwrap();
            let micros = started.elapsed().as_secs_f64() * 1e6;
            if status != StatusCode::OK {
                let text = String::from_utf8_lossy(&body).into_owned();
                let id = serde_json::from_str::<Value>(&text).ok();
                let id = id
                    .as_ref()
                    .and_then(|v| v["requestId"].as_str())
                    .unwrap_or("-");
                let log: Vec<String> = gw
                    .logs()
                    .into_iter()
                    .filter(|l| l.contains(id) || l.contains("\"ERROR\"") || l.contains("\"WARN\""))
                    .collect();
                panic!("{name}: {status} {text}\n{}", log.join("\n"));
            }
            if round >= 100 {
                samples[i].push(micros);
            }
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    let summary: Vec<(f64, f64)> = samples.iter_mut().map(stats).collect();
    let metrics = c
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let guest = |plugin: &str| {
        let find = |suffix: &str| {
            metrics
                .lines()
                .find(|l| {
                    l.starts_with(&format!("wicket_plugin_seconds_{suffix}"))
                        && l.contains(&format!("plugin=\"{plugin}\""))
                        && l.contains("phase=\"on_request\"")
                })
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        match (find("sum"), find("count")) {
            (Some(sum), Some(count)) if count > 0.0 => format!("{:.1}", sum / count * 1e6),
            _ => "-".to_owned(),
        }
    };
    println!("\n{ROUNDS} sequential requests per route, loopback, debug wicket (dependencies optimized), plugins release wasm");
    println!(
        "{:<24} {:>10} {:>10} {:>12} {:>12} {:>16}",
        "route", "median us", "p99 us", "+median us", "+p99 us", "on_request us"
    );
    for (i, (name, _)) in cases.iter().enumerate() {
        let base = if name.contains("1 MiB") {
            summary[7]
        } else {
            summary[0]
        };
        let plugin = match *name {
            "api-key" => "keys",
            n if n.starts_with("sigv4") => "iam",
            "jwt RS256" => "oauth-rs",
            "jwt ES256" => "oauth-es",
            "jwt EdDSA" => "oauth-ed",
            n if n.starts_with("introspect") => "opaque",
            _ => "",
        };
        println!(
            "{:<24} {:>10.0} {:>10.0} {:>12.0} {:>12.0} {:>16}",
            name,
            summary[i].0,
            summary[i].1,
            summary[i].0 - base.0,
            summary[i].1 - base.1,
            if plugin.is_empty() {
                "-".to_owned()
            } else {
                guest(plugin)
            }
        );
    }
    assert_eq!(idp.fetches("/jwks"), 3, "one per jwt plugin");
    assert_eq!(introspect_calls(&idp), 1);
}
