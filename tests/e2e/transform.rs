//! Payload plugins in the real binary: `cors`, `validate`, `xml-json` and `json-map`, alone and
//! chained in front of an XML upstream that the test starts.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wicket_e2e::{client, Gateway};

/// The `access-control-*` headers of a response.
fn cors_headers(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

const CORS: &str = r#"
[server]
listen = "127.0.0.1:0"

[plugins.cors]
builtin = "cors"
config = { allow_origins = ["https://app.example.com", "https://*.example.org"], allow_methods = ["GET", "POST", "PUT"], allow_headers = ["content-type", "x-api-key"], expose_headers = ["x-request-id", "x-total"], allow_credentials = true, max_age = 600 }

[plugins.open]
builtin = "cors"
config = { allow_origins = ["*"] }

[plugins.backend]
builtin = "mock"
config = { status = 200, headers = { "x-total" = "3", "access-control-allow-origin" = "*", "vary" = "Accept-Encoding" }, body = { ok = true } }

[[routes]]
path = "/api/{p+}"
plugins = ["cors"]
integration = "backend"

[[routes]]
path = "/open"
plugins = ["open"]
integration = "backend"
"#;

#[tokio::test]
async fn cors_preflight_is_answered_by_the_gateway() {
    let gw = Gateway::start(CORS);
    let resp = client()
        .request(Method::OPTIONS, gw.url("/api/pets"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "Content-Type, X-API-Key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "the mock integration (200) never ran"
    );
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&resp, "access-control-allow-methods"),
        Some("GET, POST, PUT")
    );
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        Some("content-type, x-api-key")
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&resp, "access-control-max-age"), Some("600"));
    assert_eq!(header(&resp, "vary"), Some("Origin"));
    assert!(resp.bytes().await.unwrap().is_empty());

    // A wildcard subdomain, at any depth.
    let resp = client()
        .request(Method::OPTIONS, gw.url("/api/pets"))
        .header("origin", "https://a.b.example.org")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://a.b.example.org")
    );
}

#[tokio::test]
async fn cors_refused_preflights_get_no_cors_headers() {
    let gw = Gateway::start(CORS);
    let cases = [
        ("https://evil.test", "GET", None),
        ("https://example.org", "GET", None),
        ("https://app.example.com.evil.test", "GET", None),
        ("http://app.example.com", "GET", None),
        ("https://app.example.com", "DELETE", None),
        ("https://app.example.com", "POST", Some("x-secret")),
    ];
    for (origin, method, headers) in cases {
        let mut req = client()
            .request(Method::OPTIONS, gw.url("/api/pets"))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if let Some(h) = headers {
            req = req.header("access-control-request-headers", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "{origin} {method} {headers:?}"
        );
        assert!(
            cors_headers(&resp).is_empty(),
            "{origin}: {:?}",
            cors_headers(&resp)
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], "CORS preflight refused");
    }
}

#[tokio::test]
async fn cors_headers_on_responses_only_for_allowed_origins() {
    let gw = Gateway::start(CORS);
    let resp = client()
        .get(gw.url("/api/pets"))
        .header("origin", "https://shop.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example.org")
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&resp, "access-control-expose-headers"),
        Some("x-request-id, x-total")
    );
    let vary: Vec<_> = resp
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);

    // A disallowed origin: no CORS header at all, even the one the backend set.
    let resp = client()
        .get(gw.url("/api/pets"))
        .header("origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(cors_headers(&resp).is_empty(), "{:?}", cors_headers(&resp));
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"ok": true}));

    // No Origin (not a browser's cross-origin call): no CORS headers either.
    let resp = client().get(gw.url("/api/pets")).send().await.unwrap();
    assert!(cors_headers(&resp).is_empty());

    // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight: the backend answers.
    let resp = client()
        .request(Method::OPTIONS, gw.url("/api/pets"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://app.example.com")
    );

    // Every origin, without credentials: `*`, no Vary on Origin needed.
    let resp = client()
        .get(gw.url("/open"))
        .header("origin", "https://anyone.test")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&resp, "access-control-allow-credentials"), None);
}

#[test]
fn cors_config_errors_are_reported_by_check() {
    let config = CORS.replace(
        "config = { allow_origins = [\"*\"] }",
        "config = { allow_origins = [\"*\"], allow_credentials = true }",
    );
    let (ok, out, path) = wicket_e2e::check("cors.toml", &config);
    assert!(!ok, "{out}");
    let line = config
        .lines()
        .position(|l| l.contains("allow_credentials = true }"))
        .unwrap()
        + 1;
    let prefix = format!("{}:{line}:", path.display());
    assert!(
        out.lines().any(|l| l.starts_with(&prefix)
            && l.contains("plugins.open.config")
            && l.contains("cannot be combined")),
        "{out}"
    );
}

const VALIDATE: &str = r##"
[server]
listen = "127.0.0.1:0"

[plugins.check-pet]
builtin = "validate"
config.required_query = ["version"]
config.required_headers = ["x-api-key"]
config.schema = { type = "object", required = ["name", "age"], properties = { name = { type = "string", minLength = 1 }, age = { type = "integer", minimum = 0 }, tags = { type = "array", items = { "$ref" = "#/$defs/tag" } } }, additionalProperties = false, "$defs" = { tag = { type = "string", maxLength = 8 } } }

[plugins.backend]
builtin = "http"
config = { url = "http://UPSTREAM/pets" }

[[routes]]
path = "/pets"
methods = ["GET", "POST"]
plugins = ["check-pet"]
integration = "backend"
"##;

fn start_validate() -> (wicket_e2e::Upstream, Gateway) {
    let upstream = wicket_e2e::Upstream::start();
    let gw = Gateway::start(&VALIDATE.replace("UPSTREAM", &upstream.addr.to_string()));
    (upstream, gw)
}

/// A 400 from `validate`: the message, and the `errors` as (in, path, message) triples.
async fn refusal(resp: reqwest::Response) -> (String, Vec<(String, String, String)>) {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.headers().get("x-upstream").is_none(),
        "the request reached the upstream"
    );
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let request_id = header(&resp, "x-request-id").unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list: {body}"))
        .iter()
        .map(|e| {
            (
                e["in"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (body["message"].as_str().unwrap().to_string(), errors)
}

#[tokio::test]
async fn validate_lets_good_requests_through() {
    let (_up, gw) = start_validate();
    let body = r#"{"name": "Rex", "age": 3, "tags": ["good"]}"#;
    let resp = client()
        .post(gw.url("/pets?version=2"))
        .header("x-api-key", "k")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(
        seen["body_sha256"],
        wicket_e2e::sha256_hex(body.as_bytes()),
        "the body is forwarded untouched"
    );
    // GET bodies are not validated; parameters are.
    let resp = client()
        .get(gw.url("/pets?version"))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn validate_lists_every_body_violation_with_its_path() {
    let (_up, gw) = start_validate();
    let resp = client()
        .post(gw.url("/pets?version=2"))
        .header("x-api-key", "k")
        .header("content-type", "application/json")
        .body(r#"{"name": "", "age": -1, "tags": ["ok", "much-too-long"], "colour": "red"}"#)
        .send()
        .await
        .unwrap();
    let (message, errors) = refusal(resp).await;
    assert_eq!(message, "Invalid request body");
    let paths: Vec<&str> = errors.iter().map(|(_, p, _)| p.as_str()).collect();
    for path in ["/name", "/age", "/tags/1", ""] {
        assert!(
            paths.contains(&path),
            "no violation at {path:?}: {errors:?}"
        );
    }
    assert!(errors.iter().all(|(i, _, _)| i == "body"));
    let age = errors.iter().find(|(_, p, _)| p == "/age").unwrap();
    assert!(age.2.contains("minimum of 0"), "{age:?}");
    let extra = errors.iter().find(|(_, p, _)| p.is_empty()).unwrap();
    assert!(extra.2.contains("colour"), "{extra:?}");
}

#[tokio::test]
async fn validate_requires_query_parameters_and_headers() {
    let (_up, gw) = start_validate();
    let resp = client().get(gw.url("/pets?other=1")).send().await.unwrap();
    let (message, errors) = refusal(resp).await;
    assert_eq!(message, "Missing required request parameters");
    assert_eq!(
        errors,
        [
            (
                "query".into(),
                "version".into(),
                "required query parameter is missing".into()
            ),
            (
                "header".into(),
                "x-api-key".into(),
                "required header is missing".into()
            ),
        ]
    );

    // Missing parameters and a bad body are reported together.
    let resp = client()
        .post(gw.url("/pets"))
        .header("x-api-key", "k")
        .body("{\"name\": \"Rex\",\n \"age\": }")
        .send()
        .await
        .unwrap();
    let (message, errors) = refusal(resp).await;
    assert_eq!(message, "Invalid request body");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].1, "version");
    assert_eq!((errors[1].0.as_str(), errors[1].1.as_str()), ("body", ""));
    assert!(
        errors[1].2.contains("not valid JSON") && errors[1].2.contains("line 2, column 9"),
        "{errors:?}"
    );

    let resp = client()
        .post(gw.url("/pets?version=1"))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap();
    let (_, errors) = refusal(resp).await;
    assert_eq!(errors[0].2, "a JSON body is required");
}

#[test]
fn validate_bad_schema_is_reported_by_check_with_the_line() {
    let config = VALIDATE.replace("minimum = 0", "minimum = \"zero\"");
    let (ok, out, path) = wicket_e2e::check("validate.toml", &config);
    assert!(!ok, "{out}");
    // Dotted keys: the plugin's config table starts at its first `config.` line.
    let line = config
        .lines()
        .position(|l| l.starts_with("config.required_query"))
        .unwrap()
        + 1;
    let prefix = format!("{}:", path.display());
    assert!(
        out.lines().any(|l| l.starts_with(&prefix)
            && l.contains("plugins.check-pet.config")
            && l.contains("not a usable JSON Schema")),
        "line {line} expected:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// An XML upstream, and the gateway's pid (for its memory).

/// What the XML upstream received: (path, content-type, body).
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A small XML backend on 127.0.0.1:
/// - `POST /orders` takes an `application/xml` order (415 otherwise) and answers an XML receipt
///   naming the order id and counting its `<item>` elements;
/// - `/echo` answers the body it got, as `application/xml`;
/// - `/malformed` answers broken XML; `/hostile` answers a billion-laughs document.
struct XmlUpstream {
    addr: std::net::SocketAddr,
    seen: Seen,
    /// Dropping it stops the server (whose runtime lives on a thread of its own, so that tests
    /// running inside a runtime can start and drop it).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl XmlUpstream {
    fn start() -> XmlUpstream {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let seen: Seen = Default::default();
        let log = seen.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let server = async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = &mut stopped => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let ct = req
                                    .headers()
                                    .get("content-type")
                                    .map(|v| v.to_str().unwrap_or("").to_string())
                                    .unwrap_or_default();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let body = String::from_utf8_lossy(&body).into_owned();
                                log.lock()
                                    .unwrap()
                                    .push((path.clone(), ct.clone(), body.clone()));
                                let (status, answer) = match path.as_str() {
                                    "/orders"
                                        if ct.starts_with("application/xml")
                                            && body.starts_with("<?xml") =>
                                    {
                                        let id = body
                                            .split("<order id=\"")
                                            .nth(1)
                                            .and_then(|r| r.split('"').next())
                                            .unwrap_or("?")
                                            .to_string();
                                        let items = body.matches("<item>").count()
                                            + body.matches("<item ").count();
                                        (200, format!(
                                        "<?xml version=\"1.0\"?>\n<receipt order=\"{id}\">\n  <status>accepted</status>\n  <items>{items}</items>\n  <total currency=\"EUR\">19.90</total>\n  <note>thanks &amp; goodbye</note>\n</receipt>"
                                    ))
                                    }
                                    "/orders" => {
                                        (415, "<error>send application/xml</error>".to_string())
                                    }
                                    "/echo" => (200, body),
                                    "/malformed" => {
                                        (200, "<receipt>\n  <status>oops</receipt>".to_string())
                                    }
                                    "/hostile" => (200, BILLION_LAUGHS.to_string()),
                                    _ => (404, "<error>no such path</error>".to_string()),
                                };
                                let mut resp = hyper::Response::new(Full::new(Bytes::from(answer)));
                                *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                                resp.headers_mut()
                                    .insert("content-type", "application/xml".parse().unwrap());
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(server);
        });
        XmlUpstream {
            addr,
            seen,
            _stop: stop,
        }
    }

    fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// The pid of the process (a child of this test process) listening on `addr`: the socket's
/// inode from /proc/net/tcp, then the child holding it. Bounded: one pass over each list.
fn pid_listening_on(addr: std::net::SocketAddr) -> Option<u32> {
    let port = format!("{:04X}", addr.port());
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = tcp.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let local = cols.get(1)?;
        (local.ends_with(&format!(":{port}")) && cols.get(3) == Some(&"0A"))
            .then(|| cols[9].to_string())
    })?;
    let needle = format!("socket:[{inode}]");
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children.into_iter().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == needle)
                })
            })
            .unwrap_or(false)
    })
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

// ---------------------------------------------------------------------------------------------
// xml-json

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ELEMENT lolz (#PCDATA)>
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"#;

const ORDER_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a customer's order -->
<order id="A-17" rush="true">
  <customer><name>Ada &amp; Co</name><email>ada@example.com</email></customer>
  <item sku="X1"><qty>2</qty><price>9.95</price></item>
  <item sku="Y2"><qty>1</qty><price>100</price></item>
  <note><![CDATA[fragile <glass>]]></note>
  <zip>007</zip>
</order>"#;

fn order_json() -> Value {
    json!({"order": {
        "@id": "A-17", "@rush": true,
        "customer": {"name": "Ada & Co", "email": "ada@example.com"},
        "item": [
            {"@sku": "X1", "qty": 2, "price": 9.95},
            {"@sku": "Y2", "qty": 1, "price": 100}
        ],
        "note": "fragile <glass>",
        "zip": "007"
    }})
}

const XML_JSON: &str = r#"
[server]
listen = "127.0.0.1:0"

[plugins.to-json]
builtin = "xml-json"
config = { request = "xml-to-json" }

[plugins.both]
builtin = "xml-json"
config = { request = "xml-to-json", response = "json-to-xml" }

[plugins.from-xml]
builtin = "xml-json"
config = { response = "xml-to-json", strip_root = true, always_array = ["receipt/status"], namespaces = "strip" }

[plugins.small]
builtin = "xml-json"
config = { request = "xml-to-json", max_bytes = 4096 }

[plugins.describe]
builtin = "http"
config = { url = "http://UPSTREAM/describe" }

[plugins.echo]
builtin = "http"
config = { url = "http://UPSTREAM/echo" }

[plugins.xml-backend]
builtin = "http"
config = { url = "http://XMLUP/{path+}" }

[[routes]]
path = "/to-json/describe"
plugins = ["to-json"]
integration = "describe"

[[routes]]
path = "/to-json/echo"
plugins = ["to-json"]
integration = "echo"

[[routes]]
path = "/both/echo"
plugins = ["both"]
integration = "echo"

[[routes]]
path = "/small/echo"
plugins = ["small"]
integration = "echo"

[[routes]]
path = "/xml/{path+}"
plugins = ["from-xml"]
integration = "xml-backend"
"#;

fn start_xml_json() -> (wicket_e2e::Upstream, XmlUpstream, Gateway) {
    let upstream = wicket_e2e::Upstream::start();
    let xml = XmlUpstream::start();
    let config = XML_JSON
        .replace("UPSTREAM", &upstream.addr.to_string())
        .replace("XMLUP", &xml.addr.to_string());
    let gw = Gateway::start(&config);
    (upstream, xml, gw)
}

async fn post_xml(gw: &Gateway, path: &str, body: &str) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .header("content-type", "application/xml")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn xml_json_converts_request_bodies_to_json() {
    let (_up, _xml, gw) = start_xml_json();
    // The upstream echoes the body and its content type: what it got is JSON.
    let resp = post_xml(&gw, "/to-json/echo", ORDER_XML).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let text = resp.text().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), order_json());
    // Element order is kept in the JSON text.
    let order: Vec<usize> = ["\"customer\"", "\"item\"", "\"note\"", "\"zip\""]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");

    // A body that is not XML (by its content type) is left alone.
    let resp = client()
        .post(gw.url("/to-json/echo"))
        .header("content-type", "text/plain")
        .body("<not>converted</not>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "<not>converted</not>");
}

#[tokio::test]
async fn xml_json_round_trips_are_stable() {
    let (_up, _xml, gw) = start_xml_json();
    // XML in, JSON to the upstream (echoed), XML back out.
    let resp = post_xml(&gw, "/both/echo", ORDER_XML).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some("application/xml"));
    let once = resp.text().await.unwrap();
    assert!(
        once.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><order id=\"A-17\" rush=\"true\">"
        ),
        "{once}"
    );
    assert!(
        once.contains("<name>Ada &amp; Co</name>") && once.contains("<zip>007</zip>"),
        "{once}"
    );
    // And again: the output is a fixed point.
    let twice = post_xml(&gw, "/both/echo", &once)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(once, twice);
    // Its JSON form is the original's.
    let resp = post_xml(&gw, "/to-json/echo", &twice).await;
    assert_eq!(resp.json::<Value>().await.unwrap(), order_json());
}

#[tokio::test]
async fn xml_json_converts_an_xml_upstream_response() {
    let (_up, xml, gw) = start_xml_json();
    let resp = client()
        .post(gw.url("/xml/orders"))
        .header("content-type", "application/xml")
        .body(r#"<?xml version="1.0"?><order id="B-2"><item>a</item></order>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"@order": "B-2", "status": ["accepted"], "items": 1, "total": {"@currency": "EUR", "#text": "19.90"}, "note": "thanks & goodbye"})
    );
    assert_eq!(xml.seen().len(), 1);

    // A malformed upstream document is a 502 that says where.
    let resp = client().get(gw.url("/xml/malformed")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body: Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid XML in the upstream response"),
        "{message}"
    );
    assert!(message.contains("line 2"), "{message}");
    // So is a hostile one.
    let resp = client().get(gw.url("/xml/hostile")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("DOCTYPE is not allowed"));
}

#[tokio::test]
async fn xml_json_malformed_bodies_get_400_with_the_position() {
    let (_up, _xml, gw) = start_xml_json();
    let cases = [
        ("<order>\n  <item>1</itm>\n</order>", "line 2, column 10"),
        ("<order>\n  <item>1</item>", "<order> is not closed"),
        ("<order a=\"1\" a=\"2\"/>", "duplicate"),
        ("<a>1</a><b>2</b>", "more than one root"),
        (
            "<order>\n\n   &nbsp;</order>",
            "undefined entity &nbsp; (DTDs are not supported) at line 3, column 4",
        ),
        ("<order>AT&T</order>", "line 1"),
    ];
    for (body, needle) in cases {
        let resp = post_xml(&gw, "/to-json/describe", body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(resp.headers().get("x-upstream").is_none());
        let message = resp.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.starts_with("Invalid XML body: "), "{message}");
        assert!(message.contains(needle), "{body:?}: {message}");
    }
    // Depth: 10,000 levels are refused at the 65th.
    let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
    let resp = post_xml(&gw, "/to-json/describe", &deep).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("nested deeper than 64 levels at line 1, column 193"));
    // Size: over the instance's max_bytes.
    let big = format!("<a>{}</a>", "x".repeat(5000));
    let resp = post_xml(&gw, "/small/echo", &big).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn xml_json_external_entities_never_read_a_file() {
    let (_up, _xml, gw) = start_xml_json();
    let secret = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let xxe = [
        r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/hostname">]><foo>&xxe;</foo>"#,
        r#"<?xml version="1.0"?><!DOCTYPE foo SYSTEM "file:///etc/hostname"><foo>x</foo>"#,
        r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]><foo/>"#,
        r#"<foo>&xxe;</foo>"#,
        r#"<foo a="&xxe;"/>"#,
    ];
    for doc in xxe {
        let resp = post_xml(&gw, "/to-json/echo", doc).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{doc}");
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("DOCTYPE is not allowed")
                || text.contains("undefined entity &xxe;")
                || text.contains("unrecognized entity `xxe`"),
            "{doc}: {text}"
        );
        if !secret.trim().is_empty() {
            assert!(
                !text.contains(secret.trim()),
                "{doc} leaked /etc/hostname: {text}"
            );
        }
    }
}

#[tokio::test]
async fn xml_json_billion_laughs_is_refused_fast_with_memory_bounded() {
    let (_up, _xml, gw) = start_xml_json();
    let pid = pid_listening_on(gw.addr).expect("the gateway's pid");
    // Warm up (the pooled instance is created), then measure.
    let resp = post_xml(&gw, "/to-json/echo", "<ok/>").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rss_before = vm_kib(pid, "VmRSS");

    let started = std::time::Instant::now();
    let resp = post_xml(&gw, "/to-json/echo", BILLION_LAUGHS).await;
    let first = started.elapsed();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let message = resp.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("DOCTYPE is not allowed") && message.contains("line 2, column 1"),
        "{message}"
    );
    assert!(
        first < std::time::Duration::from_millis(500),
        "took {first:?}"
    );

    // 200 more, 4 at a time: all refused, quickly, and the gateway's memory stays put.
    let started = std::time::Instant::now();
    for _ in 0..50 {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                let req = client()
                    .post(gw.url("/to-json/echo"))
                    .header("content-type", "application/xml")
                    .body(BILLION_LAUGHS);
                tokio::spawn(async move { req.send().await.unwrap().status() })
            })
            .collect();
        for status in batch {
            assert_eq!(status.await.unwrap(), StatusCode::BAD_REQUEST);
        }
    }
    let many = started.elapsed();
    assert!(
        many < std::time::Duration::from_secs(10),
        "200 refusals took {many:?}"
    );
    let rss_after = vm_kib(pid, "VmRSS");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "VmRSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!("billion laughs: first {first:?}, 200 more in {many:?}; VmRSS {rss_before} -> {rss_after} KiB, VmHWM {} KiB", vm_kib(pid, "VmHWM"));

    // And the gateway goes on serving.
    let mut gw = gw;
    assert!(gw.is_running());
    let resp = post_xml(&gw, "/to-json/echo", "<still><ok>1</ok></still>").await;
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"still": {"ok": 1}})
    );
}

#[test]
fn xml_json_config_errors_are_reported_by_check() {
    let config = XML_JSON.replace(
        "config = { request = \"xml-to-json\", max_bytes = 4096 }",
        "config = { request = \"xml-to-json\", root = \"1st\" }",
    );
    let (ok, out, path) = wicket_e2e::check("xml.toml", &config);
    assert!(!ok, "{out}");
    let line = config
        .lines()
        .position(|l| l.contains("root = \"1st\""))
        .unwrap()
        + 1;
    let prefix = format!("{}:{line}:", path.display());
    assert!(
        out.lines().any(|l| l.starts_with(&prefix)
            && l.contains("plugins.small.config")
            && l.contains("not an XML name")),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// json-map

const JSON_MAP: &str = r#"
[server]
listen = "127.0.0.1:0"

[plugins.reshape]
builtin = "json-map"
config.request.body = '{pet: {name: .name, id: ($params.id | tonumber)}, route: $ctx.route, limit: ($query.limit // "10" | tonumber), agent: $headers["x-agent"], method: $method}'
config.request.headers = { set = { "x-pet-name" = ".name", "x-tag-count" = ".tags | length", "x-none" = "null" }, rename = { "x-old" = "x-new" }, remove = ["x-secret"] }
config.request.query = { set = { "limit" = '$query.limit // "10"' }, rename = { "q" = "search" }, remove = ["debug"] }
config.response.body = '{data: ., status: $status, upstream: $response_headers["x-upstream"]}'
config.response.headers = { set = { "x-mapped" = '"yes"' }, remove = ["x-upstream"] }

[plugins.failing]
builtin = "json-map"
config.request.body = '.a.b'

[plugins.many]
builtin = "json-map"
config.request.body = '.[]'

[plugins.bad-header]
builtin = "json-map"
config.request.headers = { set = { "x-obj" = '{a: 1}' } }

[plugins.describe]
builtin = "http"
config = { url = "http://UPSTREAM/pets/{id}" }

[plugins.echo]
builtin = "http"
config = { url = "http://UPSTREAM/echo/{id}" }

[[routes]]
name = "pets"
path = "/pets/{id}"
plugins = ["reshape"]
integration = "describe"

[[routes]]
name = "echo"
path = "/echo/{id}"
plugins = ["reshape"]
integration = "echo"

[[routes]]
path = "/failing/{id}"
plugins = ["failing"]
integration = "echo"

[[routes]]
path = "/many/{id}"
plugins = ["many"]
integration = "echo"

[[routes]]
path = "/bad-header/{id}"
plugins = ["bad-header"]
integration = "echo"
"#;

fn start_json_map() -> (wicket_e2e::Upstream, Gateway) {
    let upstream = wicket_e2e::Upstream::start();
    let gw = Gateway::start(&JSON_MAP.replace("UPSTREAM", &upstream.addr.to_string()));
    (upstream, gw)
}

#[tokio::test]
async fn json_map_reshapes_request_and_response_bodies() {
    let (_up, gw) = start_json_map();
    let resp = client()
        .post(gw.url("/echo/42?limit=5"))
        .header("content-type", "application/json")
        .header("x-agent", "tests/1")
        .body(r#"{"name": "Rex", "tags": ["a", "b"], "ignored": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "x-mapped"), Some("yes"));
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    // The upstream echoed the mapped request body; the response program wrapped it.
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({
            "data": {"pet": {"name": "Rex", "id": 42}, "route": "echo", "limit": 5, "agent": "tests/1", "method": "POST"},
            "status": 200,
            "upstream": null
        })
    );
}

#[tokio::test]
async fn json_map_maps_headers_and_query_parameters() {
    let (_up, gw) = start_json_map();
    let resp = client()
        .post(gw.url("/pets/7?q=two%20words&debug=1&keep=yes"))
        .header("content-type", "application/json")
        .header("x-old", "moved")
        .header("x-secret", "s3cr3t")
        .body(r#"{"name": "Rex", "tags": ["a", "b", "c"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("x-upstream").is_none(),
        "response.headers.remove"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["upstream"], "1",
        "$response_headers saw it before the removal"
    );
    let seen = &body["data"];
    let h = &seen["headers"];
    assert_eq!(h["x-pet-name"][0], "Rex");
    assert_eq!(h["x-tag-count"][0], "3");
    assert_eq!(h["x-new"][0], "moved");
    assert!(
        h.get("x-old").is_none() && h.get("x-secret").is_none() && h.get("x-none").is_none(),
        "{h}"
    );
    assert_eq!(seen["query"], "search=two%20words&keep=yes&limit=10");
    // The body the upstream got is the mapped one, with a Content-Length that matches.
    let mapped =
        r#"{"pet":{"name":"Rex","id":7},"route":"pets","limit":10,"agent":null,"method":"POST"}"#;
    assert_eq!(
        seen["body_sha256"],
        wicket_e2e::sha256_hex(mapped.as_bytes()),
        "{seen}"
    );
    assert_eq!(h["content-length"][0], mapped.len().to_string().as_str());
}

#[tokio::test]
async fn json_map_program_errors_are_500s_naming_the_plugin() {
    let (_up, gw) = start_json_map();
    for (path, body) in [
        ("/failing/1", r#"{"a": [1]}"#),
        ("/many/1", "[1, 2]"),
        ("/bad-header/1", "{}"),
    ] {
        let resp = client()
            .post(gw.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let request_id = header(&resp, "x-request-id").unwrap().to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["message"], "json-map: request mapping failed",
            "{path}"
        );
        // The detail, with the plugin instance's name, is in the log line of that request.
        let plugin = path.split('/').nth(1).unwrap();
        let logged = gw.wait_for_log(std::time::Duration::from_secs(5), |l| {
            l.contains(&request_id)
                && l.contains(&format!("\"plugin\":\"{plugin}\""))
                && l.contains("mapping failed")
        });
        assert!(
            logged,
            "{path}: no log line naming {plugin}:\n{}",
            gw.logs().join("\n")
        );
    }
    // A body that is not JSON is the client's mistake: 400 with where.
    let resp = client()
        .post(gw.url("/echo/1"))
        .header("content-type", "application/json")
        .body("{\"name\": \n  nope}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let message = resp.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("Invalid JSON body:") && message.contains("at line 2, column"),
        "{message}"
    );
    let resp = client()
        .post(gw.url("/echo/1"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[test]
fn json_map_syntax_errors_are_reported_by_check_with_the_line() {
    // A TOML basic string: `\n` is a newline inside the program.
    let config = JSON_MAP.replace(
        "config.request.body = '.a.b'",
        "config.request.body = \"{a: .b,\\n c: (.d | }\"",
    );
    let (ok, out, path) = wicket_e2e::check("map.toml", &config);
    assert!(!ok, "{out}");
    let line = config
        .lines()
        .position(|l| l.contains("c: (.d | }"))
        .unwrap()
        + 1;
    let prefix = format!("{}:{line}:", path.display());
    assert!(
        out.lines().any(|l| l.starts_with(&prefix)
            && l.contains("plugins.failing.config")
            && l.contains("`request.body`: jq syntax error at line 2, column")),
        "{out}"
    );
    let config = JSON_MAP.replace("\"x-none\" = \"null\"", "\"x-none\" = \"$nope\"");
    let (ok, out, _) = wicket_e2e::check("map2.toml", &config);
    assert!(!ok);
    assert!(
        out.contains(
            "`request.headers.set.x-none`: jq error at line 1, column 1: undefined variable"
        ),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// validate -> json-map -> xml-json, in front of an XML backend

const CHAIN: &str = r##"
[server]
listen = "127.0.0.1:0"

[plugins.order-check]
builtin = "validate"
config.required_headers = ["x-client"]
config.schema = { type = "object", required = ["customer", "items"], additionalProperties = false, properties = { customer = { type = "string", minLength = 1 }, items = { type = "array", minItems = 1, items = { "$ref" = "#/$defs/item" } } }, "$defs" = { item = { type = "object", required = ["sku", "qty"], properties = { sku = { type = "string", pattern = "^[A-Z][0-9]+$" }, qty = { type = "integer", minimum = 1 } } } } }

[plugins.order-map]
builtin = "json-map"
config.request.body = '{order: {"@id": $params.id, customer: {name: .customer}, item: [.items[] | {"@sku": .sku, qty: .qty}]}}'
config.response.body = '{orderId: .receipt["@order"], status: .receipt.status, itemCount: .receipt.items, total: (.receipt.total["#text"] | tonumber), currency: .receipt.total["@currency"], note: .receipt.note}'

[plugins.order-xml]
builtin = "xml-json"
config = { request = "json-to-xml", response = "xml-to-json" }

[plugins.backend]
builtin = "http"
config = { url = "http://XMLUP/orders" }

[[routes]]
methods = ["POST"]
path = "/v2/orders/{id}"
plugins = ["order-check", "order-map", "order-xml"]
integration = "backend"
"##;

#[tokio::test]
async fn chain_validate_map_and_convert_in_front_of_an_xml_backend() {
    let xml = XmlUpstream::start();
    let gw = Gateway::start(&CHAIN.replace("XMLUP", &xml.addr.to_string()));
    let resp = client()
        .post(gw.url("/v2/orders/7"))
        .header("content-type", "application/json")
        .header("x-client", "shop")
        .body(r#"{"customer": "Ada & Co", "items": [{"sku": "X1", "qty": 2}, {"sku": "Y2", "qty": 1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"orderId": 7, "status": "accepted", "itemCount": 2, "total": 19.9, "currency": "EUR", "note": "thanks & goodbye"})
    );
    let seen = xml.seen();
    assert_eq!(seen.len(), 1);
    let (path, ct, body) = &seen[0];
    assert_eq!(path, "/orders");
    assert_eq!(ct, "application/xml");
    assert_eq!(
        body,
        r#"<?xml version="1.0" encoding="UTF-8"?><order id="7"><customer><name>Ada &amp; Co</name></customer><item sku="X1"><qty>2</qty></item><item sku="Y2"><qty>1</qty></item></order>"#
    );

    // A bad order never reaches the backend.
    let resp = client()
        .post(gw.url("/v2/orders/8"))
        .header("content-type", "application/json")
        .header("x-client", "shop")
        .body(r#"{"customer": "", "items": [{"sku": "x1", "qty": 0}]}"#)
        .send()
        .await
        .unwrap();
    let (message, errors) = refusal(resp).await;
    assert_eq!(message, "Invalid request body");
    let paths: Vec<&str> = errors.iter().map(|(_, p, _)| p.as_str()).collect();
    for p in ["/customer", "/items/0/sku", "/items/0/qty"] {
        assert!(paths.contains(&p), "{p} missing from {errors:?}");
    }
    let resp = client()
        .post(gw.url("/v2/orders/9"))
        .header("content-type", "application/json")
        .body(r#"{"customer": "Ada", "items": [{"sku": "X1", "qty": 1}]}"#)
        .send()
        .await
        .unwrap();
    let (_, errors) = refusal(resp).await;
    assert_eq!(errors[0].0, "header");
    assert_eq!(xml.seen().len(), 1, "refused requests reached the backend");
}

// ---------------------------------------------------------------------------------------------
// Latency (not run by default: `cargo test -p wicket-e2e --test transform -- --ignored
// --nocapture added_latency`).

const BENCH: &str = r##"
[server]
listen = "127.0.0.1:0"
access_log = false

[plugins.cors]
builtin = "cors"
config = { allow_origins = ["https://*.example.com"], expose_headers = ["x-request-id"] }

[plugins.validate]
builtin = "validate"
config.schema = { type = "object", required = ["items"], properties = { items = { type = "array", items = { type = "object", required = ["id", "name"], properties = { id = { type = "integer", minimum = 0 }, name = { type = "string", maxLength = 64 }, tags = { type = "array", items = { type = "string" } } } } } } }

[plugins.xml-json]
builtin = "xml-json"
config = { request = "xml-to-json" }

[plugins.json-map]
builtin = "json-map"
# This program takes ~60-100 ms of guest time on 100 KiB (2,300 items): past the default 100 ms
# on a loaded machine.
cpu_ms = 1000
config.request.body = '{count: (.items | length), items: [.items[] | {key: .id, label: (.name | ascii_upcase), tags: (.tags | join(","))}]}'

[plugins.echo]
builtin = "http"
config = { url = "http://UPSTREAM/echo/{p+}" }

[[routes]]
path = "/base/{p+}"
integration = "echo"

[[routes]]
path = "/cors/{p+}"
plugins = ["cors"]
integration = "echo"

[[routes]]
path = "/validate/{p+}"
plugins = ["validate"]
integration = "echo"

[[routes]]
path = "/xml-json/{p+}"
plugins = ["xml-json"]
integration = "echo"

[[routes]]
path = "/json-map/{p+}"
plugins = ["json-map"]
integration = "echo"
"##;

/// A JSON body of about `size` bytes: `{"items": [{"id", "name", "tags"}, ...]}`.
fn json_body(size: usize) -> String {
    let mut items = Vec::new();
    let mut len = 12;
    let mut i = 0;
    while len < size {
        let item = format!(r#"{{"id":{i},"name":"item-{i}","tags":["a","b"]}}"#);
        len += item.len() + 1;
        items.push(item);
        i += 1;
    }
    format!(r#"{{"items":[{}]}}"#, items.join(","))
}

/// An XML body of about `size` bytes with the same shape.
fn xml_body(size: usize) -> String {
    let mut out = String::from("<order>");
    let mut i = 0;
    while out.len() + 8 < size {
        out.push_str(&format!(
            r#"<item id="{i}"><name>item-{i}</name><tag>a</tag><tag>b</tag></item>"#
        ));
        i += 1;
    }
    out.push_str("</order>");
    out
}

fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test]
#[ignore]
async fn added_latency() {
    use std::time::{Duration, Instant};
    let upstream = wicket_e2e::Upstream::start();
    let gw = Gateway::start(&BENCH.replace("UPSTREAM", &upstream.addr.to_string()));
    let http = client();
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let deadline = Duration::from_secs(120);
    println!("plugin     body     n     base p50  plugin p50  added p50 | base p99  plugin p99  added p99");
    for size in [1024usize, 100 * 1024] {
        for plugin in ["cors", "validate", "xml-json", "json-map"] {
            let (body, ct) = if plugin == "xml-json" {
                (xml_body(size), "application/xml")
            } else {
                (json_body(size), "application/json")
            };
            let send = |path: String| {
                http.post(gw.url(&path))
                    .header("content-type", ct)
                    .header("origin", "https://app.example.com")
                    .body(body.clone())
                    .send()
            };
            // Warm up both routes (instances, connections).
            for _ in 0..50 {
                assert_eq!(
                    send("/base/x".into()).await.unwrap().status(),
                    StatusCode::OK
                );
                let resp = send(format!("/{plugin}/x")).await.unwrap();
                assert_eq!(
                    resp.status(),
                    StatusCode::OK,
                    "{plugin}: {}",
                    gw.logs()
                        .iter()
                        .rev()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            let (mut base, mut with) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let started = Instant::now();
            for _ in 0..n {
                if started.elapsed() > deadline {
                    break;
                }
                // Interleaved, so that drift hits both series alike.
                let t = Instant::now();
                let r = send("/base/x".into()).await.unwrap();
                let _ = r.bytes().await.unwrap();
                base.push(t.elapsed());
                let t = Instant::now();
                let r = send(format!("/{plugin}/x")).await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                let _ = r.bytes().await.unwrap();
                with.push(t.elapsed());
            }
            base.sort();
            with.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let (b50, w50, b99, w99) = (
                percentile(&base, 0.5),
                percentile(&with, 0.5),
                percentile(&base, 0.99),
                percentile(&with, 0.99),
            );
            println!(
                "{plugin:<10} {:>4} KiB {:>5}  {:>7.3}ms  {:>8.3}ms  {:>+7.3}ms | {:>7.3}ms  {:>8.3}ms  {:>+7.3}ms",
                body.len() / 1024,
                base.len(),
                ms(b50),
                ms(w50),
                ms(w50) - ms(b50),
                ms(b99),
                ms(w99),
                ms(w99) - ms(b99),
            );
        }
    }
}
