//! Calls to AWS signed by the gateway, with credentials from the AWS chain that no plugin sees:
//! an `http` route fronting moto's S3 and DynamoDB (moto checks every signature: a wrongly
//! signed request fails), and the `lambda` integration against a local Invoke API that checks
//! each call's signature with botocore, its events compared field by field with API Gateway's
//! documented examples (`tests/data/lambda-event-v*.json`).

use reqwest::StatusCode;
use serde_json::{json, Value};
use wicket_e2e::{client, sha256_hex, Gateway, PythonServer};

const AKID: &str = "AKIDWICKETTEST";
const SECRET: &str = "wicket/secret+key";
const ALICE: &str = "alice-lambda-key";

fn moto() -> PythonServer {
    PythonServer::start("moto_server.py", &[])
}

fn moto_env(moto: &PythonServer) -> Vec<(&str, &str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", moto.get("access_key_id")),
        ("AWS_SECRET_ACCESS_KEY", moto.get("secret_access_key")),
    ]
}

fn s3_config(moto: &PythonServer) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.s3]
builtin = "http"
config = {{ url = "{origin}/{bucket}/{{key+}}", sign = {{ service = "s3", region = "us-east-1" }} }}

[plugins.dynamodb]
builtin = "http"
config = {{ url = "{origin}/", sign = {{ service = "dynamodb", region = "us-east-1", pass_headers = ["x-amz-target"] }} }}

[[routes]]
path = "/files/{{key+}}"
methods = ["GET", "PUT"]
integration = "s3"

[[routes]]
path = "/tables"
methods = ["POST"]
integration = "dynamodb"
"#,
        origin = moto.origin(),
        bucket = moto.get("bucket"),
    )
}

#[tokio::test]
async fn a_route_fronts_s3_signed_by_the_gateway() {
    let moto = moto();
    let gw = Gateway::start_aws(&s3_config(&moto), &moto_env(&moto));
    let c = client();
    // The client sends no AWS credentials of its own; what it sends in their place (a
    // forged signature, a token, an ACL) is dropped, not signed.
    let put = c
        .put(gw.url("/files/notes/hello.txt"))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=FORGED/x")
        .header("x-amz-security-token", "forged")
        .header("x-amz-acl", "public-read-write")
        .header("content-type", "text/plain")
        .body("hello through the gateway")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        StatusCode::OK,
        "{}",
        put.text().await.unwrap()
    );
    let get = c
        .get(gw.url("/files/notes/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.text().await.unwrap(), "hello through the gateway");

    // A streamed upload (UNSIGNED-PAYLOAD: the body is not read before it is sent).
    let big: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
    let put = c
        .put(gw.url("/files/big.bin"))
        .header("content-length", big.len())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        StatusCode::OK,
        "{}",
        put.text().await.unwrap()
    );
    let got = c.get(gw.url("/files/big.bin")).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&got.bytes().await.unwrap()), sha256_hex(&big));

    // The same request without the gateway's signature is refused by moto.
    let direct = c
        .get(format!(
            "{}/{}/notes/hello.txt",
            moto.origin(),
            moto.get("bucket")
        ))
        .send()
        .await
        .unwrap();
    assert!(
        !direct.status().is_success(),
        "moto served an unsigned request"
    );
}

#[tokio::test]
async fn a_route_fronts_dynamodb_with_the_body_hash_signed() {
    let moto = moto();
    let gw = Gateway::start_aws(&s3_config(&moto), &moto_env(&moto));
    let resp = client()
        .post(gw.url("/tables"))
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header("x-amz-date", "20000101T000000Z")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "TableNames": [] }));
}

#[tokio::test]
async fn a_wrong_key_is_refused_by_the_service_and_no_key_by_the_gateway() {
    let moto = moto();
    let wrong = Gateway::start_aws(
        &s3_config(&moto),
        &[
            ("AWS_ACCESS_KEY_ID", moto.get("access_key_id")),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ],
    );
    let resp = client()
        .put(wrong.url("/files/x"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("SignatureDoesNotMatch"));

    // Without credentials anywhere in the chain, the config does not load.
    let logs = Gateway::try_start_aws(&s3_config(&moto), &[("AWS_PROFILE", "nobody")])
        .err()
        .expect("a signing route without credentials must not start");
    assert!(
        logs.contains("signs requests for AWS, but no AWS credentials"),
        "{logs}"
    );
}

fn lambda_server() -> PythonServer {
    PythonServer::start("lambda_server.py", &[AKID, SECRET, "us-east-1"])
}

fn lambda_config(server: &PythonServer) -> String {
    let endpoint = server.origin();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.keys]
builtin = "api-key"
config.keys = [{{ key_sha256 = "{alice}", principal = "alice", plan = "gold" }}]

[plugins.echo-v2]
builtin = "lambda"
config = {{ function = "echo", region = "us-east-1", endpoint = "{endpoint}", api_id = "api-id", account_id = "123456789012", stage_variables = {{ stageVariable1 = "value1", stageVariable2 = "value2" }} }}

[plugins.echo-v1]
builtin = "lambda"
config = {{ function = "arn:aws:lambda:us-east-1:123456789012:function:echo", region = "us-east-1", endpoint = "{endpoint}", payload_format = "1.0", api_id = "id" }}

[plugins.binary]
builtin = "lambda"
config = {{ function = "binary", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.plain]
builtin = "lambda"
config = {{ function = "plain", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.cookies]
builtin = "lambda"
config = {{ function = "cookies", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.cookies-v1]
builtin = "lambda"
config = {{ function = "cookies", region = "us-east-1", endpoint = "{endpoint}", payload_format = "1.0" }}

[plugins.fails]
builtin = "lambda"
config = {{ function = "fails", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.malformed]
builtin = "lambda"
config = {{ function = "malformed", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.missing]
builtin = "lambda"
config = {{ function = "missing", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.slow]
builtin = "lambda"
config = {{ function = "slow", region = "us-east-1", endpoint = "{endpoint}", timeout_ms = 500 }}

[[routes]]
path = "/my/{{parameter1}}"
plugins = ["keys"]
integration = "echo-v2"

[[routes]]
path = "/my/path"
integration = "echo-v1"

[[routes]]
path = "/binary"
integration = "binary"

[[routes]]
path = "/plain"
integration = "plain"

[[routes]]
path = "/cookies"
integration = "cookies"

[[routes]]
path = "/cookies-v1"
integration = "cookies-v1"

[[routes]]
path = "/fails"
integration = "fails"

[[routes]]
path = "/malformed"
integration = "malformed"

[[routes]]
path = "/missing"
integration = "missing"

[[routes]]
path = "/slow"
integration = "slow"
"#,
        alice = sha256_hex(ALICE.as_bytes()),
    )
}

fn lambda_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", AKID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ]
}

/// What the markers of the expected events stand for.
struct Dynamic {
    request_id: String,
    host: String,
}

/// `actual` against the documented event `expected`, field by field: the same keys at every
/// level (more only where `expected` has a `...` key), equal values, markers checked by shape.
fn compare(expected: &Value, actual: &Value, at: &str, d: &Dynamic, problems: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let open = e.contains_key("...");
            for (k, ev) in e {
                if k == "..." || k == "$comment" {
                    continue;
                }
                match a.get(k) {
                    Some(av) => compare(ev, av, &format!("{at}.{k}"), d, problems),
                    None => problems.push(format!("{at}.{k} is missing")),
                }
            }
            if !open {
                for k in a.keys().filter(|k| !e.contains_key(*k)) {
                    problems.push(format!("{at}.{k} is not in the documented event"));
                }
            }
        }
        (Value::String(marker), a) if marker.starts_with('<') && marker.ends_with('>') => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let ok = match marker.as_str() {
                "<request-id>" => a.as_str() == Some(d.request_id.as_str()),
                "<host>" => a.as_str() == Some(d.host.as_str()),
                "<prefix>" => a.as_str() == d.host.split(['.', ':']).next(),
                "<client-ip>" => a.as_str() == Some("127.0.0.1"),
                "<epoch-ms>" => a
                    .as_u64()
                    .is_some_and(|t| t <= now_ms && now_ms - t < 60_000),
                "<clf-time>" => a.as_str().is_some_and(|t| {
                    // 12/Mar/2020:19:03:58 +0000
                    let b = t.as_bytes();
                    t.len() == 26
                        && b[2] == b'/'
                        && b[6] == b'/'
                        && b[11] == b':'
                        && t.ends_with(" +0000")
                }),
                other => panic!("unknown marker {other}"),
            };
            if !ok {
                problems.push(format!("{at}: {a} is not {marker}"));
            }
        }
        (e, a) if e == a => {}
        (e, a) => problems.push(format!("{at}: expected {e}, got {a}")),
    }
}

fn expected_event(name: &str) -> Value {
    let path = wicket_e2e::root().join("tests/data").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn lambda_events_are_api_gateways_documented_events() {
    let server = lambda_server();
    let gw = Gateway::start_aws(&lambda_config(&server), &lambda_env());
    let c = client();

    let resp = c
        .post(gw.url("/my/value1?parameter1=value1&parameter1=value2&parameter2=value"))
        .header("x-api-key", ALICE)
        .header("cookie", "cookie1; cookie2")
        .header("header1", "value1")
        .header("header2", "value1")
        .header("header2", "value2")
        .header("user-agent", "agent")
        .header("content-type", "text/plain")
        .body("Hello from Lambda")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let d = Dynamic {
        request_id: resp.headers()["x-request-id"].to_str().unwrap().to_owned(),
        host: gw.addr.to_string(),
    };
    let event: Value = resp.json().await.unwrap();
    let mut problems = Vec::new();
    compare(
        &expected_event("lambda-event-v2.json"),
        &event,
        "v2",
        &d,
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}\n{event:#}");
    assert!(
        event["headers"].get("cookie").is_none(),
        "cookies move out of headers"
    );

    let resp = c
        .get(gw.url("/my/path?parameter1=value1&parameter1=value2&parameter2=value"))
        .header("header1", "value1")
        .header("header2", "value1")
        .header("header2", "value2")
        .header("user-agent", "user-agent")
        .header("content-type", "text/plain")
        .body("Hello from Lambda!")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let d = Dynamic {
        request_id: resp.headers()["x-request-id"].to_str().unwrap().to_owned(),
        host: gw.addr.to_string(),
    };
    let event: Value = resp.json().await.unwrap();
    let mut problems = Vec::new();
    compare(
        &expected_event("lambda-event-v1.json"),
        &event,
        "v1",
        &d,
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}\n{event:#}");

    // Every call carried a signature botocore accepts.
    let calls: Value = c
        .get(format!("{}/calls", server.origin()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls, json!({ "verified": 2, "refused": 0 }));
}

#[tokio::test]
async fn lambda_results_map_back_as_api_gateway_maps_them() {
    let server = lambda_server();
    let gw = Gateway::start_aws(&lambda_config(&server), &lambda_env());
    let c = client();

    // Binary in, binary out: base64 both ways, the bytes unchanged.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let resp = c
        .post(gw.url("/binary"))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // 2.0's shortcut: a result without statusCode is a 200 JSON body.
    let resp = c.get(gw.url("/plain")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "hello": "world" })
    );

    // statusCode, headers, multiValueHeaders and (2.0) cookies.
    for (path, cookies) in [("/cookies", 2), ("/cookies-v1", 0)] {
        let resp = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{path}");
        assert_eq!(resp.headers()["x-single"], "one");
        let multi: Vec<_> = resp.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"], "{path}");
        let set: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
        assert_eq!(set.len(), cookies, "{path}");
        assert_eq!(resp.text().await.unwrap(), "made");
    }

    // A function error, a malformed result, an Invoke error, a timeout: API Gateway's answers.
    for (path, status, message) in [
        ("/fails", 502, "Internal server error"),
        ("/malformed", 502, "Internal server error"),
        ("/missing", 500, "Internal server error"),
        ("/slow", 504, "Endpoint request timed out"),
    ] {
        let resp = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], message, "{path}: {body}");
        assert!(
            !body.to_string().contains("boom"),
            "{path}: the detail stays in the log"
        );
    }
    assert!(gw.wait_for_log(std::time::Duration::from_secs(5), |l| l
        .contains("function error (Unhandled)")));
}

#[tokio::test]
async fn lambda_signs_with_the_shared_credentials_file_profile() {
    let server = lambda_server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n\
             [ci]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n"
        ),
    )
    .unwrap();
    let config = lambda_config(&server);
    let gw = Gateway::start_aws(
        &config,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "ci"),
        ],
    );
    let resp = client().get(gw.url("/plain")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(gw);
    // The default profile's key is not the server's: refused there, a 500 here.
    let gw = Gateway::start_aws(
        &config,
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    );
    let resp = client().get(gw.url("/plain")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// A Lambda Invoke API that answers at once (no signature check, no Python): what the
/// gateway itself costs per `lambda` call, against `http` to a local upstream.
fn instant_lambda() -> wicket_e2e::Upstream {
    use http_body_util::{BodyExt, Full};
    wicket_e2e::serve_on_thread(hyper::service::service_fn(
        |req: hyper::Request<hyper::body::Incoming>| async move {
            let _ = req.into_body().collect().await;
            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                bytes::Bytes::from_static(br#"{"statusCode": 200, "body": "hi"}"#),
            )))
        },
    ))
}

/// Cold (a fresh instance per request) and warm (pooled) latency of `lambda` against `http`
/// to a local upstream: sequential requests on one connection, client round trip. A
/// measurement, not a check: `cargo test --release -p wicket-e2e --test aws -- --ignored
/// --nocapture lambda_latency`.
#[tokio::test]
#[ignore]
async fn lambda_latency() {
    let upstream = wicket_e2e::Upstream::start();
    let fake = instant_lambda();
    let endpoint = format!("http://{}", fake.addr);
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
access_log = false

[plugins.http]
builtin = "http"
config = {{ url = "{upstream}" }}

[plugins.http-signed]
builtin = "http"
config = {{ url = "{upstream}", sign = {{ service = "execute-api", region = "us-east-1" }} }}

[plugins.lambda-cold]
builtin = "lambda"
isolation = "request"
config = {{ function = "f", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.lambda-warm]
builtin = "lambda"
config = {{ function = "f", region = "us-east-1", endpoint = "{endpoint}" }}

[plugins.lambda-v1-warm]
builtin = "lambda"
config = {{ function = "f", region = "us-east-1", endpoint = "{endpoint}", payload_format = "1.0" }}

[[routes]]
path = "/http"
integration = "http"

[[routes]]
path = "/http-signed"
integration = "http-signed"

[[routes]]
path = "/lambda-cold"
integration = "lambda-cold"

[[routes]]
path = "/lambda-warm"
integration = "lambda-warm"

[[routes]]
path = "/lambda-v1-warm"
integration = "lambda-v1-warm"
"#,
        upstream = upstream.url("/x"),
    );
    let gw = Gateway::start_aws(&config, &lambda_env());
    let c = client();
    println!("{:<40} {:>10} {:>10}", "integration", "median µs", "p90 µs");
    for (path, label) in [
        ("/http", "http -> local upstream (pooled)"),
        ("/http-signed", "http, SigV4-signed (pooled)"),
        ("/lambda-cold", "lambda 2.0 (cold: fresh instance)"),
        ("/lambda-warm", "lambda 2.0 (warm: pooled)"),
        ("/lambda-v1-warm", "lambda 1.0 (warm: pooled)"),
    ] {
        let mut times = Vec::new();
        for i in 0..320 {
            let started = std::time::Instant::now();
            let resp = c.get(gw.url(path)).send().await.unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            resp.bytes().await.unwrap();
            if i >= 20 {
                times.push(started.elapsed().as_micros());
            }
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64) * q) as usize];
        println!("{label:<40} {:>10} {:>10}", at(0.5), at(0.9));
    }
}
