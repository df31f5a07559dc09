//! Request hardening in the real binary (issue 9): a protected `/v1/admin` (api-key) and a
//! public greedy `/v1/{proxy+}` in front of upstreams that normalize paths (Debian's nginx,
//! and a lenient Tomcat-like server). Every path trick either gets 400 or reaches the
//! protected route (403 without the key, the admin page with it); none reaches the admin
//! page through the public route. Then the host rules, forwarding headers from trusted and
//! untrusted peers, `CONNECT`, JSON 431, and overlapping routes in `wicket check`.

use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use wicket_e2e::normalizing::{get, raw_request, LenientUpstream, Nginx, SECRET};
use wicket_e2e::{check, client, sha256_hex, Gateway, Upstream};

const ADMIN_KEY: &str = "admin-4b1f0e77-key";

fn config(upstream: SocketAddr, server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[plugins.keys]
builtin = "api-key"
config.keys = [{{ key_sha256 = "{key}", principal = "admin" }}]

[plugins.admin]
builtin = "http"
config = {{ url = "http://{upstream}/v1/admin" }}

[plugins.public]
builtin = "http"
config = {{ url = "http://{upstream}/v1/{{proxy+}}" }}

[plugins.pet]
builtin = "http"
config = {{ url = "http://{upstream}/v1/pets/{{id}}" }}

[plugins.whoami]
builtin = "mock"
config = {{ body = {{ client = "{{client_ip}}" }} }}

[[routes]]
name = "admin"
path = "/v1/admin"
plugins = ["keys"]
integration = "admin"

[[routes]]
name = "public"
path = "/v1/{{proxy+}}"
integration = "public"

[[routes]]
name = "pet"
methods = ["GET"]
path = "/v1/pets/{{id}}"
integration = "pet"

[[routes]]
name = "pinned"
host = "api.example.com"
path = "/pinned"
integration = "public"

[[routes]]
name = "whoami"
path = "/whoami"
integration = "whoami"
"#,
        key = sha256_hex(ADMIN_KEY.as_bytes()),
    )
}

/// What the gateway must do with a trick.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 400: it cannot be made unambiguous.
    Refused,
    /// It is `/v1/admin`: the protected route, 403 without the key.
    Protected,
}

use Expect::*;

/// Path tricks that normalizing upstreams read as `/v1/admin`, and what the gateway does.
const TRICKS: &[(&str, Expect)] = &[
    ("/v1/pets/../admin", Protected),
    ("/v1/./admin", Protected),
    ("/v1/pets/%2e%2e/admin", Protected),
    ("/v1/pets/%2E%2E/admin", Protected),
    ("/v1/pets/%2e%2E/admin", Protected),
    ("/v1/pets/.%2e/admin", Protected),
    ("/v1/pets/%2e./admin", Protected),
    ("/v1/%2e/admin", Protected),
    ("/v1/adm%69n", Protected),
    ("/v1/ADM%69N/../admin", Protected),
    ("/%76%31/%61%64%6d%69%6e", Protected),
    ("/v1//admin", Protected),
    ("//v1///admin", Protected),
    ("/v1/admin/", Protected),
    ("/v1/admin//", Protected),
    ("/v1/admin/.", Protected),
    ("/v1/admin/x/..", Protected),
    ("/v1/x/../../v1/admin", Protected),
    ("/v1/pets/1/../../admin", Protected),
    ("/v1/pets/..%2Fadmin", Refused),
    ("/v1/pets/..%2fadmin", Refused),
    ("/v1%2Fadmin", Refused),
    ("/v1/pets/%2e%2e%2fadmin", Refused),
    ("/v1/pets/..%5Cadmin", Refused),
    ("/v1/pets/..%5cadmin", Refused),
    ("/v1/admin;x=1", Refused),
    ("/v1/admin;", Refused),
    ("/v1/pets;x/../admin", Refused),
    ("/v1/pets/%252e%252e/admin", Refused),
    ("/v1/pets/..%252Fadmin", Refused),
    ("/v1/pets/%25%32%65%25%32%65/admin", Refused),
    ("/v1/admin%00", Refused),
    ("/v1/admin%09", Refused),
    ("/v1/admin%0a", Refused),
    ("/v1/../../v1/admin", Refused),
    ("/v1/pets/%", Refused),
];

/// Tricks with a raw backslash: hyper may refuse them before the pipeline does (a bare 400).
const BACKSLASH_TRICKS: &[&str] = &["/v1/pets/..\\admin", "/v1\\admin", "/v1/pets/..\\/admin"];

fn gw_host(gw: &Gateway) -> String {
    gw.addr.to_string()
}

fn key_header() -> String {
    format!("x-api-key: {ADMIN_KEY}\r\n")
}

/// Every trick against one upstream: the upstream alone serves the admin page for it (the
/// attack is real), the gateway never does without the key, and with the key the
/// protected ones are the admin route.
fn tricks_against(upstream: SocketAddr, name: &str, upstream_reads_it: impl Fn(&str) -> bool) {
    let gw = Gateway::start(&config(upstream, ""));
    let host = gw_host(&gw);
    let mut report = Vec::new();
    for (trick, expect) in TRICKS {
        let direct = get(upstream, trick, "up", "");
        if upstream_reads_it(trick) {
            assert!(
                direct.1.contains(SECRET),
                "{name} does not serve the admin page for {trick}: {direct:?}"
            );
        }
        let (status, body) = get(gw.addr, trick, &host, "");
        assert!(
            !body.contains(SECRET),
            "{trick} reached the admin page: {body}"
        );
        let want = match expect {
            Refused => 400,
            Protected => 403,
        };
        assert_eq!(status, want, "{trick} via {name}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{trick}: {body}"));
        assert!(v["requestId"].is_string(), "{trick}: {body}");
        if *expect == Protected {
            let (status, body) = get(gw.addr, trick, &host, &key_header());
            assert_eq!((status, body.trim()), (200, SECRET), "{trick} with the key");
        }
        let alone = if direct.1.contains(SECRET) {
            "admin page".to_string()
        } else {
            direct.0.to_string()
        };
        report.push(format!(
            "{trick:40} upstream alone: {alone:10}  gateway: {status}"
        ));
    }
    for trick in BACKSLASH_TRICKS {
        let (status, body) = get(gw.addr, trick, &host, "");
        assert_eq!(status, 400, "{trick}: {body}");
        assert!(!body.contains(SECRET));
    }
    println!("{name}:\n{}", report.join("\n"));
}

#[test]
fn path_tricks_against_nginx_are_refused_or_protected() {
    let nginx = Nginx::start();
    // nginx reads all but `;` (a literal character to it) and backslashes as `/v1/admin`;
    // it refuses `%00` itself and climbing above the root.
    tricks_against(nginx.addr, "nginx", |t| {
        !t.contains(';')
            && !t.contains("%25")
            && !t.contains("%00")
            && !t.contains("%09")
            && !t.contains("%0a")
            && !t.starts_with("/v1/../..")
            && !t.ends_with('%')
            && !t.contains("%5")
    });
}

#[test]
fn path_tricks_against_a_lenient_upstream_are_refused_or_protected() {
    let upstream = LenientUpstream::start();
    tricks_against(upstream.addr, "lenient", |t| {
        !t.contains("%25")
            && !t.contains("%00")
            && !t.contains("%09")
            && !t.contains("%0a")
            && !t.starts_with("/v1/../..")
            && !t.ends_with('%')
    });
}

#[test]
fn absolute_form_is_canonical_too_and_must_agree_with_host() {
    let nginx = Nginx::start();
    let gw = Gateway::start(&config(nginx.addr, ""));
    let host = gw_host(&gw);
    let (status, body) = get(
        gw.addr,
        &format!("http://{host}/v1/pets/../admin"),
        &host,
        "",
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = get(gw.addr, "http://a/v1/pets/../admin", &host, "");
    assert_eq!(status, 400, "authority and Host disagree: {body}");
}

#[test]
fn a_parameter_never_takes_a_dot_segment() {
    let nginx = Nginx::start();
    let gw = Gateway::start(&config(nginx.addr, ""));
    let host = gw_host(&gw);
    // `/v1/pets/{id}` with id `..` was `/v1/` at the upstream; now it is the path `/v1/`,
    // which no route has.
    for trick in ["/v1/pets/..", "/v1/pets/%2e%2e", "/v1/pets/.%2E/"] {
        let (status, body) = get(gw.addr, trick, &host, "");
        assert_eq!(status, 404, "{trick}: {body}");
    }
    // `/v1/pets/.` is `/v1/pets/`: not a pet, a path under the public route.
    let (status, body) = get(gw.addr, "/v1/pets/.", &host, "");
    assert_eq!((status, body.trim()), (200, "public /v1/pets/"));
    let (status, body) = get(gw.addr, "/v1/pets/7", &host, "");
    assert_eq!((status, body.trim()), (200, "public /v1/pets/7"));
}

#[test]
fn the_upstream_and_plugins_get_the_canonical_path() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, ""));
    let host = gw_host(&gw);
    let (status, body) = get(gw.addr, "/v1/a/./b/../c/%7e%7A/%e2%82%ac/x%3by/", &host, "");
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/v1/a/c/~z/%E2%82%AC/x%3By/");
    // Upper case is another path (matching is case-sensitive, as in API Gateway).
    let (status, body) = get(gw.addr, "/V1/ADMIN", &host, "");
    assert_eq!(status, 404, "{body}");
    let (_, body) = get(gw.addr, "/v1/ADMIN", &host, "");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/v1/ADMIN");
}

#[test]
fn semicolons_and_slashes_can_be_configured() {
    // Both settings say the upstreams read `//` and `;` literally (an S3-like store): the
    // gateway then matches and forwards them as they are. Against an upstream that merges
    // slashes or strips `;params` they would reopen the bypass, hence the defaults.
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        up.addr,
        "merge_slashes = false\npath_semicolons = \"literal\"",
    ));
    let host = gw_host(&gw);
    let (status, body) = get(gw.addr, "/v1/a//b/./c", &host, "");
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/v1/a//b/c");
    let (status, body) = get(gw.addr, "/v1/pets/7;v=2", &host, "");
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/v1/pets/7;v=2");
    // Dot segments are resolved and `%2F` refused whatever the settings.
    assert_eq!(get(gw.addr, "/v1//../admin", &host, "").0, 403);
    assert_eq!(get(gw.addr, "/v1/a%2Fb", &host, "").0, 400);
}

#[test]
fn invalid_repeated_missing_or_conflicting_hosts_get_400() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, ""));
    for host in [
        "a:1:2",
        "a b",
        "evil.example/x?y",
        "u@a",
        "[::1",
        "a,b",
        "a..b",
        "a:99999",
    ] {
        let (status, body) = get(gw.addr, "/v1/x", host, "");
        assert_eq!(status, 400, "Host {host:?}: {body}");
        assert!(body.contains("requestId"), "{body}");
    }
    let (status, _) = get(gw.addr, "/v1/x", "a.example", "Host: b.example\r\n");
    assert_eq!(status, 400, "two Host headers");
    let (status, _) = get(gw.addr, "/v1/x", "a.example", "Host: a.example\r\n");
    assert_eq!(status, 400, "two equal Host headers");
    let (status, _) = raw_request(gw.addr, b"GET /v1/x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 400, "HTTP/1.1 without Host");
    let (status, _) = raw_request(gw.addr, b"GET /v1/x HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200, "HTTP/1.0 without Host");

    // A host pinned route matches whatever the case, trailing dot and port.
    for host in [
        "api.example.com",
        "API.Example.COM.",
        "api.example.com:8080",
    ] {
        let (status, body) = get(gw.addr, "/pinned", host, "");
        assert_eq!(status, 200, "{host}: {body}");
        let seen: Value = serde_json::from_str(&body).unwrap();
        let want = host.to_ascii_lowercase().replace(".:", ":");
        let want = want.trim_end_matches('.');
        assert_eq!(seen["headers"]["x-forwarded-host"][0], want, "{host}");
    }
    let (status, _) = get(gw.addr, "/pinned", "other.example.com", "");
    assert_eq!(status, 404);
}

#[tokio::test]
async fn h2_authority_must_agree_with_host() {
    use http_body_util::{BodyExt, Empty};
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, ""));
    let send = |authority: String, host: Option<&'static str>| async move {
        let stream = tokio::net::TcpStream::connect(gw_addr(&authority))
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::get(format!("http://{authority}/v1/x"));
        if let Some(h) = host {
            req = req.header("host", h);
        }
        let resp = sender
            .send_request(req.body(Empty::<bytes::Bytes>::new()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let authority = gw.addr.to_string();
    let (status, body) = send(authority.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-host"][0], authority.as_str());
    let (status, _) = send(authority.clone(), Some("evil.example")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn gw_addr(authority: &str) -> SocketAddr {
    authority.parse().unwrap()
}

const SPOOFING: &str = "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\n\
X-Forwarded-Proto: https\r\nX-Forwarded-Prefix: /admin\r\nForwarded: for=6.6.6.6\r\n\
X-Real-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\n";

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_replaced() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, "trusted_proxies = [\"10.0.0.0/8\"]"));
    let host = gw_host(&gw);
    let (status, body) = get(gw.addr, "/v1/x", &host, SPOOFING);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(h["x-forwarded-host"], serde_json::json!([host]));
    assert_eq!(h["x-forwarded-proto"], serde_json::json!(["http"]));
    assert_eq!(h["x-real-ip"], serde_json::json!(["127.0.0.1"]));
    for gone in [
        "x-forwarded-prefix",
        "forwarded",
        "x-client-ip",
        "true-client-ip",
    ] {
        assert!(h[gone].is_null(), "{gone} reached the upstream: {h}");
    }
    let (_, body) = get(gw.addr, "/whoami", &host, SPOOFING);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["client"], "127.0.0.1");
}

#[test]
fn a_trusted_proxy_is_appended_to_and_names_the_client() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        up.addr,
        "trusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\"]",
    ));
    let host = gw_host(&gw);
    let chain = "X-Forwarded-For: 6.6.6.6, 198.51.100.7\r\nX-Forwarded-For: 10.1.1.1\r\n\
                 X-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.com\r\n";
    let (status, body) = get(gw.addr, "/v1/x", &host, chain);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let h = &seen["headers"];
    assert_eq!(
        h["x-forwarded-for"],
        serde_json::json!(["6.6.6.6, 198.51.100.7, 10.1.1.1, 127.0.0.1"])
    );
    assert_eq!(h["x-forwarded-proto"], serde_json::json!(["https"]));
    assert_eq!(
        h["x-forwarded-host"],
        serde_json::json!(["api.example.com"])
    );
    assert_eq!(h["x-real-ip"], serde_json::json!(["198.51.100.7"]));
    let (_, body) = get(gw.addr, "/whoami", &host, chain);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["client"], "198.51.100.7");
}

#[test]
fn connect_gets_a_json_405_and_is_logged() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, ""));
    let (status, body) = raw_request(
        gw.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "Method Not Allowed");
    let id = v["requestId"].as_str().unwrap().to_string();
    assert!(
        gw.wait_for_log(std::time::Duration::from_secs(5), |l| {
            l.contains(&id) && l.contains("\"method\":\"CONNECT\"") && l.contains("\"status\":405")
        }),
        "no access log line for the CONNECT"
    );
}

#[tokio::test]
async fn oversized_heads_get_a_json_431() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, "max_header_bytes = 8192"));
    let resp = client()
        .get(gw.url("/v1/x"))
        .header("x-big", "a".repeat(9000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"message": "Request Header Fields Too Large", "requestId": id})
    );
    let mut many = client().get(gw.url("/v1/x"));
    for i in 0..120 {
        many = many.header(format!("x-h{i}"), "1");
    }
    let resp = many.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(resp.json::<Value>().await.unwrap()["requestId"].is_string());
    // Far past the limit hyper answers itself (a bare 431), and the gateway still serves.
    let resp = client()
        .get(gw.url("/v1/x"))
        .header("x-big", "a".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let resp = client().get(gw.url("/v1/x")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn overlapping_routes_fail_check_naming_both_lines() {
    let text = r#"[server]
listen = "127.0.0.1:0"

[plugins.m]
builtin = "mock"

[[routes]]
methods = ["GET", "POST"]
path = "/pets/{id}"
integration = "m"

[[routes]]
name = "again"
methods = ["POST"]
path = "/pets/{petId}"
integration = "m"
"#;
    let (ok, out, path) = check("gateway.toml", text);
    assert!(!ok, "{out}");
    let first = format!("{}:7:", path.display());
    let second = format!("{}:12:", path.display());
    assert!(out.contains(&second), "{out}");
    assert!(out.contains(&first), "{out}");
    assert!(out.contains("POST /pets/{petId}"), "{out}");
}
