//! Plugins with shared state: `quota` (token buckets and period quotas in `counters`) and
//! `cache` (responses in `kv`), on the memory backend and on real `redis-server` processes:
//! exact admission counts, two gateways sharing one Redis, and Redis going away mid-test
//! (killed, and frozen with SIGSTOP) and coming back.
//!
//! Every loop here is bounded in count and time; rates and windows leave margins for a loaded
//! machine (a request through the debug binary takes a few milliseconds, a token here takes
//! hundreds).

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wicket_e2e::{client, sha256_hex, Gateway, RedisServer};

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// How long the gateway waits for Redis in these tests (`[state] redis_timeout_ms`).
const REDIS_TIMEOUT_MS: u64 = 200;

/// The `[state]` section for the memory backend, or for `redis`.
fn state(redis: Option<&RedisServer>) -> String {
    match redis {
        None => "[state]\nbackend = \"memory\"\n".to_owned(),
        Some(r) => format!(
            "[state]\nbackend = \"redis\"\nredis_url = \"{}\"\nredis_timeout_ms = {REDIS_TIMEOUT_MS}\n",
            r.url()
        ),
    }
}

/// A gateway serving `body` (plugins and routes) with the given state backend.
fn gateway(redis: Option<&RedisServer>, body: &str) -> Gateway {
    Gateway::start(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n{}\n{body}",
        state(redis)
    ))
}

/// One answer: status, headers, body, and how long it took.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    took: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .parse()
            .unwrap()
    }
}

async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let started = Instant::now();
    let mut req = client.request(method.parse().unwrap(), url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    Answer {
        status,
        headers,
        body,
        took: started.elapsed(),
    }
}

async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    send(client, "GET", url, headers).await
}

/// Send `n` GETs at once, the i-th to `urls[i % urls.len()]`; answers in sending order.
async fn concurrent(urls: &[String], n: usize, headers: &[(&str, &str)]) -> Vec<Answer> {
    let c = client();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let c = c.clone();
            let url = urls[i % urls.len()].clone();
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            tokio::spawn(async move {
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                get(&c, &url, &h).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(answers: &[Answer], status: StatusCode) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// Assert the gateway's JSON refusal: `{"message", "requestId"}` with the response's request id.
fn assert_refusal(a: &Answer, status: StatusCode, message: &str) {
    assert_eq!(a.status, status, "body: {}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        body,
        json!({"message": message, "requestId": a.header("x-request-id").unwrap()})
    );
}

/// The value of a Prometheus sample `name{...labels...}` (labels in any order) on the admin
/// listener, or 0 when absent.
async fn metric(gw: &Gateway, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = client()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !rest.starts_with('{') {
            continue;
        }
        let (label_text, value) = rest.rsplit_once(' ').unwrap();
        if labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
        {
            return value.parse().unwrap();
        }
    }
    0.0
}

/// The pid of the `redis-server` listening on `port` (it renames itself
/// `redis-server 127.0.0.1:PORT`), to freeze it with SIGSTOP.
fn redis_pid(port: u16) -> u32 {
    let needle = format!(":{port}");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with("redis-server") && cmdline.trim_end().ends_with(&needle) {
            return pid;
        }
    }
    panic!("no redis-server process for port {port}");
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// A client name unique to this run, so tests sharing a gateway never share a bucket.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{nanos}")
}

// ---------------------------------------------------------------------------------------------
// quota

const OK: &str = r#"
[plugins.ok]
builtin = "mock"
config = { body = "ok" }
"#;

/// Burst then steady rate: `burst` requests at once are admitted, then `rate` per second.
async fn burst_then_rate(redis: Option<&RedisServer>) {
    const RATE: f64 = 2.0;
    const BURST: usize = 5;
    let gw = gateway(
        redis,
        &format!(
            r#"
[plugins.limit]
builtin = "quota"
config = {{ by = "header:x-client", rate = {RATE}, burst = {BURST} }}
{OK}
[[routes]]
path = "/q"
plugins = ["limit"]
integration = "ok"
"#
        ),
    );
    let url = gw.url("/q");
    let client_name = unique("burst");
    let h = [("x-client", client_name.as_str())];

    // The burst: 12 at once. Tokens come back every 500 ms, so if the burst takes less than
    // that, exactly BURST are admitted; if the machine is slow, the refill is accounted for.
    let started = Instant::now();
    let answers = concurrent(std::slice::from_ref(&url), 12, &h).await;
    let burst_took = started.elapsed().as_secs_f64();
    let admitted = count(&answers, StatusCode::OK);
    let refilled = (RATE * burst_took).floor() as usize;
    assert!(
        (BURST..=BURST + refilled).contains(&admitted),
        "burst: {admitted} admitted of 12 in {burst_took:.3}s (burst {BURST}, rate {RATE})"
    );
    if burst_took < 0.5 {
        assert_eq!(admitted, BURST);
    }
    assert_eq!(
        admitted + count(&answers, StatusCode::TOO_MANY_REQUESTS),
        12
    );
    for a in answers.iter().filter(|a| a.status == StatusCode::OK) {
        assert_eq!(a.header_u64("ratelimit-limit"), BURST as u64);
    }

    // The steady rate: one request every 100 ms for 3 s. Over the whole test the bucket can
    // have handed out BURST + RATE * elapsed tokens; polling every 100 ms leaves at most one
    // unused at the end.
    let c = client();
    let mut total = admitted;
    let mut steady = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let a = get(&c, &url, &h).await;
        match a.status {
            StatusCode::OK => {
                total += 1;
                steady += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let retry = a.header_u64("retry-after");
                assert!((1..=1).contains(&retry), "Retry-After {retry} at rate 2/s");
            }
            other => panic!("unexpected {other}: {}", a.body),
        }
        if started.elapsed() > Duration::from_secs(20) {
            panic!("the steady phase is far too slow");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let most = BURST + (RATE * elapsed).floor() as usize;
    assert!(
        total <= most && total + 2 >= most,
        "{total} admitted in {elapsed:.2}s, expected {most} (at most) with burst {BURST} and rate {RATE}; {steady} in the steady phase"
    );
}

#[tokio::test]
async fn quota_burst_then_steady_rate_memory() {
    burst_then_rate(None).await;
}

#[tokio::test]
async fn quota_burst_then_steady_rate_redis() {
    let redis = RedisServer::start();
    burst_then_rate(Some(&redis)).await;
}

#[tokio::test]
async fn quota_refusal_and_ratelimit_headers() {
    let gw = gateway(
        None,
        &format!(
            r#"
[plugins.limit]
builtin = "quota"
config = {{ by = "client_ip", rate = 0.1, burst = 2 }}
{OK}
[[routes]]
path = "/q"
plugins = ["limit"]
integration = "ok"
"#
        ),
    );
    let c = client();
    let url = gw.url("/q");
    let first = get(&c, &url, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "ok");
    assert_eq!(first.header("ratelimit-limit"), Some("2"));
    assert_eq!(first.header("ratelimit-remaining"), Some("1"));
    // One token missing at 0.1/s: full again in 10 s.
    assert_eq!(first.header("ratelimit-reset"), Some("10"));
    assert_eq!(first.header("retry-after"), None);
    let second = get(&c, &url, &[]).await;
    assert_eq!(second.header("ratelimit-remaining"), Some("0"));
    let reset = second.header_u64("ratelimit-reset");
    assert!((19..=20).contains(&reset), "reset {reset}");

    let refused = get(&c, &url, &[]).await;
    assert_refusal(&refused, StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    assert_eq!(refused.header("ratelimit-limit"), Some("2"));
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    let retry = refused.header_u64("retry-after");
    assert!((9..=10).contains(&retry), "Retry-After {retry}");
    let reset = refused.header_u64("ratelimit-reset");
    assert!((19..=20).contains(&reset), "reset {reset}");
}

const ALICE_KEY: &str = "alice-quota-test-key";
const BOB_KEY: &str = "bob-quota-test-key";
const CAROL_KEY: &str = "carol-quota-test-key";
const OPS_KEY: &str = "ops-quota-test-key";

/// An `api-key` filter named `keys`: alice on plan gold, bob on silver, carol and ops on none.
fn api_keys() -> String {
    format!(
        r#"
[plugins.keys]
builtin = "api-key"
config.keys = [
  {{ key_sha256 = "{}", principal = "alice", plan = "gold" }},
  {{ key_sha256 = "{}", principal = "bob", plan = "silver" }},
  {{ key_sha256 = "{}", principal = "carol" }},
  {{ key_sha256 = "{}", principal = "ops" }},
]
"#,
        sha256_hex(ALICE_KEY.as_bytes()),
        sha256_hex(BOB_KEY.as_bytes()),
        sha256_hex(CAROL_KEY.as_bytes()),
        sha256_hex(OPS_KEY.as_bytes()),
    )
}

#[tokio::test]
async fn quota_per_plan_limits() {
    let gw = gateway(
        None,
        &format!(
            r#"{keys}
[plugins.limit]
builtin = "quota"
config = {{ by = "principal", rate = 0.01, burst = 1, plans = {{ gold = {{ rate = 0.01, burst = 4 }}, silver = {{ rate = 0.01, burst = 2 }} }} }}
{OK}
[[routes]]
path = "/q"
plugins = ["keys", "limit"]
integration = "ok"
"#,
            keys = api_keys()
        ),
    );
    let c = client();
    let url = gw.url("/q");
    for (key, expected) in [(ALICE_KEY, 4), (BOB_KEY, 2), (CAROL_KEY, 1)] {
        let mut admitted = 0;
        for _ in 0..6 {
            let a = get(&c, &url, &[("x-api-key", key)]).await;
            match a.status {
                StatusCode::OK => {
                    admitted += 1;
                    assert_eq!(a.header_u64("ratelimit-limit"), expected);
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(a.header_u64("ratelimit-limit"), expected)
                }
                other => panic!("{other}: {}", a.body),
            }
        }
        assert_eq!(admitted, expected, "key {key}");
    }
    // Unknown callers never reach the quota.
    assert_eq!(get(&c, &url, &[]).await.status, StatusCode::FORBIDDEN);
}

/// Seconds from now to the next 00:00 UTC.
fn seconds_to_utc_midnight() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    86_400 - now % 86_400
}

/// A daily quota per client and an hourly quota for the whole route, on one filter.
async fn period_quotas(redis: Option<&RedisServer>) {
    let gw = gateway(
        redis,
        &format!(
            r#"
[plugins.limit]
builtin = "quota"
config = {{ by = "header:x-client", quota = {{ limit = 3, period = "day" }}, limits = [{{ name = "route", by = "route", quota = {{ limit = 5, period = "hour" }} }}] }}
{OK}
[[routes]]
name = "quota-route"
path = "/q"
plugins = ["limit"]
integration = "ok"
"#
        ),
    );
    let c = client();
    let url = gw.url("/q");
    let a = unique("a");
    let b = unique("b");
    for i in 0..3 {
        let ok = get(&c, &url, &[("x-client", &a)]).await;
        assert_eq!(ok.status, StatusCode::OK, "request {i}: {}", ok.body);
        // The tightest of (daily: 3 - (i+1) left, hourly: 5 - (i+1) left) is the daily one.
        assert_eq!(ok.header_u64("ratelimit-limit"), 3);
        assert_eq!(ok.header_u64("ratelimit-remaining"), 2 - i);
        let reset = ok.header_u64("ratelimit-reset");
        let midnight = seconds_to_utc_midnight();
        assert!(
            reset.abs_diff(midnight) <= 5,
            "reset {reset}, midnight in {midnight}"
        );
    }
    let refused = get(&c, &url, &[("x-client", &a)]).await;
    assert_refusal(&refused, StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    assert_eq!(refused.header("ratelimit-limit"), Some("3"));
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    let retry = refused.header_u64("retry-after");
    let midnight = seconds_to_utc_midnight();
    assert!(
        retry.abs_diff(midnight) <= 5,
        "Retry-After {retry}, midnight in {midnight}"
    );

    // b has a daily quota of its own, but the route's hourly 5 are 3 used: a's refused request
    // stopped at the daily quota and was not counted by the hourly one.
    let ok = get(&c, &url, &[("x-client", &b)]).await;
    assert_eq!(ok.status, StatusCode::OK);
    let ok = get(&c, &url, &[("x-client", &b)]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header_u64("ratelimit-limit"), 5);
    assert_eq!(ok.header_u64("ratelimit-remaining"), 0);
    let refused = get(&c, &url, &[("x-client", &b)]).await;
    assert_refusal(&refused, StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    assert_eq!(refused.header("ratelimit-limit"), Some("5"));
    let retry = refused.header_u64("retry-after");
    assert!(retry <= 3600, "Retry-After {retry} for an hourly quota");
}

#[tokio::test]
async fn quota_period_quotas_memory() {
    period_quotas(None).await;
}

#[tokio::test]
async fn quota_period_quotas_redis() {
    let redis = RedisServer::start();
    period_quotas(Some(&redis)).await;
}

#[tokio::test]
async fn quota_two_gateways_share_one_redis_limit() {
    const BURST: usize = 20;
    let redis = RedisServer::start();
    // A token every 100 s: nothing refills during the test.
    let body = format!(
        r#"
[plugins.limit]
builtin = "quota"
config = {{ by = "header:x-client", rate = 0.01, burst = {BURST}, on_backend_error = "deny" }}
{OK}
[[routes]]
path = "/q"
plugins = ["limit"]
integration = "ok"
"#
    );
    let gw1 = gateway(Some(&redis), &body);
    let gw2 = gateway(Some(&redis), &body);
    let urls = [gw1.url("/q"), gw2.url("/q")];
    let client_name = unique("shared");
    let answers = concurrent(&urls, 60, &[("x-client", &client_name)]).await;
    let admitted = count(&answers, StatusCode::OK);
    let refused = count(&answers, StatusCode::TOO_MANY_REQUESTS);
    let per_gateway: Vec<usize> = (0..2)
        .map(|g| {
            answers
                .iter()
                .enumerate()
                .filter(|(i, a)| i % 2 == g && a.status == StatusCode::OK)
                .count()
        })
        .collect();
    assert_eq!(
        (admitted, refused),
        (BURST, 60 - BURST),
        "admitted per gateway: {per_gateway:?}"
    );
}

/// A quota route per `on_backend_error` mode, on Redis: burst 2, nothing refills.
fn outage_gateway(redis: &RedisServer) -> Gateway {
    let mut body = String::from(OK);
    for mode in ["allow", "deny", "local"] {
        body.push_str(&format!(
            r#"
[plugins.limit-{mode}]
builtin = "quota"
pool_size = 1
config = {{ by = "header:x-client", rate = 0.01, burst = 2, on_backend_error = "{mode}" }}

[[routes]]
path = "/{mode}"
plugins = ["limit-{mode}"]
integration = "ok"
"#
        ));
    }
    gateway(Some(redis), &body)
}

/// The statuses of `n` sequential requests to `url`, asserting that none took longer than
/// the Redis timeout plus a margin for a loaded machine. Returns them and the slowest time.
async fn sequential(url: &str, n: usize, h: &[(&str, &str)]) -> (Vec<u16>, Duration) {
    let c = client();
    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let a = get(&c, url, h).await;
        assert!(
            a.took < Duration::from_millis(REDIS_TIMEOUT_MS + 1300),
            "a request took {:?} with redis_timeout_ms = {REDIS_TIMEOUT_MS}",
            a.took
        );
        if a.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_refusal(&a, StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            assert_eq!(a.header("retry-after"), Some("1"));
        }
        slowest = slowest.max(a.took);
        statuses.push(a.status.as_u16());
    }
    (statuses, slowest)
}

/// Before an outage every mode enforces the shared limit.
async fn assert_limited_by_redis(gw: &Gateway, client_name: &str) {
    for mode in ["allow", "deny", "local"] {
        let (statuses, _) = sequential(
            &gw.url(&format!("/{mode}")),
            3,
            &[("x-client", client_name)],
        )
        .await;
        assert_eq!(statuses, [200, 200, 429], "{mode}");
    }
}

/// During an outage: allow admits all, deny refuses all with 503, local enforces burst 2 in
/// the instance (pool_size = 1 and sequential requests: one instance).
async fn assert_outage_behaviour(gw: &Gateway, client_name: &str) -> Duration {
    let h = [("x-client", client_name)];
    let (allow, t1) = sequential(&gw.url("/allow"), 5, &h).await;
    assert_eq!(allow, [200; 5]);
    let (deny, t2) = sequential(&gw.url("/deny"), 5, &h).await;
    assert_eq!(deny, [503; 5]);
    let (local, t3) = sequential(&gw.url("/local"), 5, &h).await;
    assert_eq!(local, [200, 200, 429, 429, 429]);
    t1.max(t2).max(t3)
}

/// After Redis is back (empty): poll the deny route until it admits again, then every mode
/// enforces the shared limit again.
async fn assert_recovery(gw: &Gateway) {
    let c = client();
    let client_name = unique("after");
    let h = [("x-client", client_name.as_str())];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut recovered = false;
    for _ in 0..150 {
        let a = get(&c, &gw.url("/deny"), &h).await;
        if a.status == StatusCode::OK {
            recovered = true;
            break;
        }
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the gateway did not use Redis again within 15 s");
    let (deny, _) = sequential(&gw.url("/deny"), 2, &h).await;
    assert_eq!(deny, [200, 429], "deny after recovery");
    for mode in ["allow", "local"] {
        let (statuses, _) = sequential(&gw.url(&format!("/{mode}")), 3, &h).await;
        assert_eq!(statuses, [200, 200, 429], "{mode} after recovery");
    }
}

#[tokio::test]
async fn quota_redis_killed_then_restarted() {
    let mut redis = RedisServer::start();
    let gw = outage_gateway(&redis);
    assert_limited_by_redis(&gw, &unique("before")).await;

    redis.stop();
    let slowest = assert_outage_behaviour(&gw, &unique("during")).await;
    eprintln!("slowest request while Redis was down: {slowest:?}");

    redis.restart();
    assert_recovery(&gw).await;
}

#[tokio::test]
async fn quota_redis_frozen_times_out_then_thaws() {
    let redis = RedisServer::start();
    let gw = outage_gateway(&redis);
    assert_limited_by_redis(&gw, &unique("before")).await;

    // SIGSTOP: connections stay open but nothing answers, so every call runs into the
    // timeout instead of failing fast.
    let thaw = Thaw(redis_pid(redis.port));
    signal(thaw.0, "-STOP");
    let slowest = assert_outage_behaviour(&gw, &unique("during")).await;
    drop(thaw);
    eprintln!("slowest request while Redis was frozen: {slowest:?}");
    assert!(
        slowest >= Duration::from_millis(REDIS_TIMEOUT_MS / 2),
        "requests did not wait for the frozen Redis at all ({slowest:?})"
    );

    // Redis thawed with its data: the limits of before still hold, and new clients are
    // limited by Redis again.
    assert_recovery(&gw).await;
}

/// Resumes a frozen process when dropped, also when the test fails.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

// ---------------------------------------------------------------------------------------------
// cache

/// An upstream that counts the requests it serves, so tests see what reached it. Every
/// answer's JSON body carries `n` (the how-many-th request to this upstream), the path, the
/// query and the `accept-language` header. Behaviour by path:
///
/// * `/nostore...`, `/private...`, `/nocache...`: `Cache-Control: no-store`, `private`, `no-cache`;
/// * `/short...`: `Cache-Control: s-maxage=1`;
/// * `/cookie...`: a `Set-Cookie`; `/vary...`: `Vary: Accept-Encoding`;
/// * `/missing...`: 404; `/big...`: a 5000-byte body;
/// * `/slow...`: answers after 300 ms.
struct Counting {
    upstream: wicket_e2e::Upstream,
    served: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Counting {
    fn start() -> Counting {
        use http_body_util::Full;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        let service = hyper::service::service_fn(
            move |req: hyper::Request<hyper::body::Incoming>| {
                let counter = counter.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let path = req.uri().path().to_owned();
                    if path.starts_with("/slow") {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    let body = json!({
                        "n": n,
                        "path": path,
                        "query": req.uri().query(),
                        "language": req.headers().get("accept-language").map(|v| v.to_str().unwrap()),
                    });
                    let mut body = body.to_string().into_bytes();
                    if path.starts_with("/big") {
                        body.resize(5000, b' ');
                    }
                    let mut resp = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                    let h = resp.headers_mut();
                    h.insert("content-type", "application/json".parse().unwrap());
                    let extra = [
                        ("/nostore", "cache-control", "no-store"),
                        ("/private", "cache-control", "private, max-age=60"),
                        ("/nocache", "cache-control", "no-cache"),
                        ("/short", "cache-control", "public, s-maxage=1"),
                        ("/cookie", "set-cookie", "session=abc"),
                        ("/vary", "vary", "Accept-Encoding"),
                    ];
                    for (prefix, name, value) in extra {
                        if path.starts_with(prefix) {
                            h.insert(name, value.parse().unwrap());
                        }
                    }
                    h.insert("x-origin", "counting".parse().unwrap());
                    if path.starts_with("/missing") {
                        *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                }
            },
        );
        Counting {
            upstream: wicket_e2e::serve_on_thread(service),
            served,
        }
    }

    fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A gateway with a `cache` filter configured by `cache_config` in front of the counting
/// upstream on the route `cached` (`/c/{rest+}` -> `/{rest}`), and `extra` plugins before it.
fn cache_gateway(
    redis: Option<&RedisServer>,
    up: &Counting,
    cache_config: &str,
    extra: &str,
    chain: &str,
) -> Gateway {
    gateway(
        redis,
        &format!(
            r#"{extra}
[plugins.cache]
builtin = "cache"
cpu_ms = 3000
config = {{ {cache_config} }}

[plugins.upstream]
builtin = "http"
config = {{ url = "http://{addr}/{{rest+}}", timeout_ms = 5000 }}

[[routes]]
name = "cached"
methods = ["GET", "HEAD", "POST"]
path = "/c/{{rest+}}"
plugins = [{chain}]
integration = "upstream"
"#,
            addr = up.upstream.addr
        ),
    )
}

fn n_of(a: &Answer) -> u64 {
    let v: Value = serde_json::from_str(&a.body).unwrap_or_else(|_| panic!("not JSON: {}", a.body));
    v["n"].as_u64().unwrap()
}

#[tokio::test]
async fn cache_hits_misses_head_and_metrics() {
    let up = Counting::start();
    let gw = cache_gateway(None, &up, "ttl_s = 60", "", r#""cache""#);
    let c = client();
    let url = gw.url("/c/pets/1");

    let miss = get(&c, &url, &[]).await;
    assert_eq!(miss.status, StatusCode::OK);
    assert_eq!(miss.header("x-cache"), Some("Miss"));
    assert_eq!(n_of(&miss), 1);
    let hit = get(&c, &url, &[]).await;
    assert_eq!(hit.header("x-cache"), Some("Hit"));
    assert_eq!(hit.body, miss.body);
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(hit.header("x-origin"), Some("counting"));
    assert!(hit.header_u64("age") <= 2);
    assert_ne!(hit.header("x-request-id"), miss.header("x-request-id"));
    assert_eq!(up.served(), 1);

    // HEAD has entries of its own, which keep the length of the body they do not carry.
    let head = send(&c, "HEAD", &url, &[]).await;
    assert_eq!(head.header("x-cache"), Some("Miss"));
    let head_hit = send(&c, "HEAD", &url, &[]).await;
    assert_eq!(head_hit.header("x-cache"), Some("Hit"));
    assert_eq!(head_hit.body, "");
    assert_eq!(
        head_hit.header("content-length"),
        Some(miss.body.len().to_string().as_str())
    );
    assert_eq!(up.served(), 2);

    // POST is not cached: no X-Cache, every request reaches the upstream.
    for _ in 0..2 {
        let post = send(&c, "POST", &url, &[]).await;
        assert_eq!(post.status, StatusCode::OK);
        assert_eq!(post.header("x-cache"), None);
    }
    assert_eq!(up.served(), 4);

    // A different path is a different entry.
    assert_eq!(
        get(&c, &gw.url("/c/pets/2"), &[]).await.header("x-cache"),
        Some("Miss")
    );

    let labels = [("plugin", "cache"), ("route", "cached")];
    assert_eq!(
        metric(&gw, "wicket_plugin_cache_hits_total", &labels).await,
        2.0
    );
    assert_eq!(
        metric(&gw, "wicket_plugin_cache_misses_total", &labels).await,
        3.0
    );
}

/// A response fetched with one Host is never a hit for another (cache poisoning through a
/// route that accepts any host); the same host in another spelling (case, trailing dot) is.
#[tokio::test]
async fn cache_key_includes_the_host() {
    let up = Counting::start();
    let gw = cache_gateway(None, &up, "ttl_s = 60", "", r#""cache""#);
    let c = client();
    let url = gw.url("/c/pets/1");
    let x = |a: &Answer| a.header("x-cache").unwrap().to_owned();
    assert_eq!(x(&get(&c, &url, &[("host", "evil.example")]).await), "Miss");
    assert_eq!(x(&get(&c, &url, &[("host", "evil.example")]).await), "Hit");
    assert_eq!(
        x(&get(&c, &url, &[("host", "victim.example")]).await),
        "Miss"
    );
    assert_eq!(
        x(&get(&c, &url, &[("host", "Victim.Example.")]).await),
        "Hit"
    );
    assert_eq!(up.served(), 2);
}

#[tokio::test]
async fn cache_key_by_query_and_header() {
    let up = Counting::start();
    let gw = cache_gateway(
        None,
        &up,
        r#"key_query = ["page"], key_headers = ["Accept-Language"]"#,
        "",
        r#""cache""#,
    );
    let c = client();
    let x = |a: &Answer| a.header("x-cache").unwrap().to_owned();
    let fr = [("accept-language", "fr")];

    assert_eq!(
        x(&get(&c, &gw.url("/c/list?page=1&junk=1"), &[]).await),
        "Miss"
    );
    // Parameters not in key_query do not make another entry.
    let hit = get(&c, &gw.url("/c/list?junk=2&page=1"), &[]).await;
    assert_eq!(x(&hit), "Hit");
    assert_eq!(n_of(&hit), 1);
    assert_eq!(x(&get(&c, &gw.url("/c/list?page=2"), &[]).await), "Miss");
    // No page and an empty page are different keys.
    assert_eq!(x(&get(&c, &gw.url("/c/list"), &[]).await), "Miss");
    assert_eq!(x(&get(&c, &gw.url("/c/list?page="), &[]).await), "Miss");
    assert_eq!(x(&get(&c, &gw.url("/c/list"), &[]).await), "Hit");
    // The header is part of the key.
    let french = get(&c, &gw.url("/c/list?page=1"), &fr).await;
    assert_eq!(x(&french), "Miss");
    let french_hit = get(&c, &gw.url("/c/list?page=1"), &fr).await;
    assert_eq!(x(&french_hit), "Hit");
    let body: Value = serde_json::from_str(&french_hit.body).unwrap();
    assert_eq!(body["language"], "fr");
    assert_eq!(x(&get(&c, &gw.url("/c/list?page=1"), &[]).await), "Hit");
    assert_eq!(up.served(), 5);
}

#[tokio::test]
async fn cache_stores_only_what_it_may() {
    let up = Counting::start();
    let gw = cache_gateway(None, &up, "max_entry_bytes = 4096", "", r#""cache""#);
    let c = client();
    for path in [
        "/c/nostore",
        "/c/private",
        "/c/nocache",
        "/c/cookie",
        "/c/vary",
        "/c/missing",
        "/c/big",
    ] {
        let before = up.served();
        for _ in 0..2 {
            let a = get(&c, &gw.url(path), &[]).await;
            assert_eq!(a.header("x-cache"), Some("Miss"), "{path}");
        }
        assert_eq!(up.served(), before + 2, "{path} reached the upstream twice");
    }
    // The same response under the size limit is stored.
    let small = cache_gateway(None, &up, "max_entry_bytes = 8192", "", r#""cache""#);
    assert_eq!(
        get(&c, &small.url("/c/big"), &[]).await.header("x-cache"),
        Some("Miss")
    );
    assert_eq!(
        get(&c, &small.url("/c/big"), &[]).await.header("x-cache"),
        Some("Hit")
    );

    // s-maxage=1 shortens the entry's life below ttl_s.
    assert_eq!(
        get(&c, &gw.url("/c/short"), &[]).await.header("x-cache"),
        Some("Miss")
    );
    assert_eq!(
        get(&c, &gw.url("/c/short"), &[]).await.header("x-cache"),
        Some("Hit")
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        get(&c, &gw.url("/c/short"), &[]).await.header("x-cache"),
        Some("Miss")
    );
}

#[tokio::test]
async fn cache_max_age_zero_refreshes_only_for_allowed_callers() {
    let up = Counting::start();
    let gw = cache_gateway(
        None,
        &up,
        r#"invalidation = { principals = ["ops"] }"#,
        &api_keys(),
        r#""keys", "cache""#,
    );
    let c = client();
    let url = gw.url("/c/report");
    let carol = ("x-api-key", CAROL_KEY);
    let ops = ("x-api-key", OPS_KEY);
    let fresh = ("cache-control", "max-age=0");

    let first = get(&c, &url, &[carol]).await;
    assert_eq!((first.header("x-cache"), n_of(&first)), (Some("Miss"), 1));
    // carol may not refresh: her max-age=0 is ignored.
    let ignored = get(&c, &url, &[carol, fresh]).await;
    assert_eq!(
        (ignored.header("x-cache"), n_of(&ignored)),
        (Some("Hit"), 1)
    );
    // ops may: the entry is fetched again and replaced.
    let refreshed = get(&c, &url, &[ops, fresh]).await;
    assert_eq!(
        (refreshed.header("x-cache"), n_of(&refreshed)),
        (Some("Miss"), 2)
    );
    let after = get(&c, &url, &[carol]).await;
    assert_eq!((after.header("x-cache"), n_of(&after)), (Some("Hit"), 2));
    // Without max-age=0, ops gets the entry like everyone.
    let ops_hit = get(&c, &url, &[ops]).await;
    assert_eq!(
        (ops_hit.header("x-cache"), n_of(&ops_hit)),
        (Some("Hit"), 2)
    );
    assert_eq!(up.served(), 2);
}

#[tokio::test]
async fn cache_key_by_principal() {
    let up = Counting::start();
    let gw = cache_gateway(
        None,
        &up,
        "key_principal = true",
        &api_keys(),
        r#""keys", "cache""#,
    );
    let c = client();
    let url = gw.url("/c/me");
    let a1 = get(&c, &url, &[("x-api-key", ALICE_KEY)]).await;
    let b1 = get(&c, &url, &[("x-api-key", BOB_KEY)]).await;
    let a2 = get(&c, &url, &[("x-api-key", ALICE_KEY)]).await;
    assert_eq!(
        [
            a1.header("x-cache"),
            b1.header("x-cache"),
            a2.header("x-cache")
        ],
        [Some("Miss"), Some("Miss"), Some("Hit")]
    );
    assert_eq!((n_of(&a1), n_of(&b1), n_of(&a2)), (1, 2, 1));
}

#[tokio::test]
async fn cache_shared_by_two_gateways_through_redis() {
    let redis = RedisServer::start();
    let up = Counting::start();
    let gw1 = cache_gateway(Some(&redis), &up, "ttl_s = 60", "", r#""cache""#);
    let gw2 = cache_gateway(Some(&redis), &up, "ttl_s = 60", "", r#""cache""#);
    let c = client();
    let miss = get(&c, &gw1.url("/c/shared?x=1"), &[]).await;
    assert_eq!(miss.header("x-cache"), Some("Miss"));
    let hit = get(&c, &gw2.url("/c/shared?x=1"), &[]).await;
    assert_eq!(hit.header("x-cache"), Some("Hit"));
    assert_eq!(hit.body, miss.body);
    assert_eq!(hit.header("content-type"), Some("application/json"));
    let hit_again = get(&c, &gw1.url("/c/shared?x=1"), &[]).await;
    assert_eq!(hit_again.header("x-cache"), Some("Hit"));
    assert_eq!(up.served(), 1);
    let labels = [("plugin", "cache"), ("route", "cached")];
    assert_eq!(
        metric(&gw2, "wicket_plugin_cache_hits_total", &labels).await,
        1.0
    );
}

/// Ten requests at once for one uncached key, spread over `gateways`, behind a slow upstream:
/// one reaches it, the others wait and answer from the entry it stored.
async fn concurrent_misses(redis: Option<&RedisServer>, gateways: usize) {
    let up = Counting::start();
    let config = "coalesce = { wait_ms = 2000, settle_ms = 20 }";
    let gws: Vec<Gateway> = (0..gateways)
        .map(|_| cache_gateway(redis, &up, config, "", r#""cache""#))
        .collect();
    let urls: Vec<String> = gws.iter().map(|g| g.url("/c/slow/report")).collect();
    let started = Instant::now();
    let answers = concurrent(&urls, 10, &[]).await;
    let took = started.elapsed();
    assert_eq!(count(&answers, StatusCode::OK), 10);
    let misses = answers
        .iter()
        .filter(|a| a.header("x-cache") == Some("Miss"))
        .count();
    assert_eq!(
        (up.served(), misses),
        (1, 1),
        "the upstream was reached {} times in {took:?}",
        up.served()
    );
    assert!(answers.iter().all(|a| n_of(a) == 1));
}

#[tokio::test]
async fn cache_concurrent_misses_reach_the_upstream_once_memory() {
    concurrent_misses(None, 1).await;
}

#[tokio::test]
async fn cache_concurrent_misses_reach_the_upstream_once_two_gateways_redis() {
    let redis = RedisServer::start();
    concurrent_misses(Some(&redis), 2).await;
}

#[tokio::test]
async fn cache_redis_outage_serves_from_upstream_then_recovers() {
    let mut redis = RedisServer::start();
    let up = Counting::start();
    let gw = cache_gateway(Some(&redis), &up, "", "", r#""cache""#);
    let c = client();
    let url = gw.url("/c/outage");
    assert_eq!(get(&c, &url, &[]).await.header("x-cache"), Some("Miss"));
    assert_eq!(get(&c, &url, &[]).await.header("x-cache"), Some("Hit"));

    redis.stop();
    for _ in 0..3 {
        let a = get(&c, &url, &[]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("x-cache"), Some("Miss"));
        // A lookup and a store, each bounded by the timeout.
        assert!(
            a.took < Duration::from_millis(2 * REDIS_TIMEOUT_MS + 1300),
            "a request took {:?} while Redis was down",
            a.took
        );
    }
    assert_eq!(up.served(), 4);
    let labels = [("plugin", "cache"), ("route", "cached")];
    assert!(metric(&gw, "wicket_plugin_cache_errors_total", &labels).await >= 3.0);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut hit = false;
    for _ in 0..150 {
        if get(&c, &url, &[]).await.header("x-cache") == Some("Hit") {
            hit = true;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hit, "no cache hit within 15 s of Redis coming back");
}

/// HMAC-SHA256, for minting HS256 tokens below.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn base64url(bytes: &[u8]) -> String {
    wicket_e2e::base64(bytes, true)
}

const HS_SECRET: &str = "state-test-secret-0123456789abcdef";

/// An HS256 JWT for `sub` with the space-separated `scope`, valid for ten minutes.
fn token(sub: &str, scope: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = base64url(
        json!({"sub": sub, "scope": scope, "exp": exp})
            .to_string()
            .as_bytes(),
    );
    let signing_input = format!("{header}.{claims}");
    let signature = base64url(&hmac_sha256(HS_SECRET.as_bytes(), signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

#[tokio::test]
async fn cache_max_age_zero_needs_the_invalidation_scope() {
    let up = Counting::start();
    let jwt = format!(
        "\n[plugins.oauth]\nbuiltin = \"jwt\"\nconfig = {{ hs_secret = \"{HS_SECRET}\" }}\n"
    );
    let gw = cache_gateway(
        None,
        &up,
        r#"invalidation = { scopes = ["cache:invalidate"] }"#,
        &jwt,
        r#""oauth", "cache""#,
    );
    let c = client();
    let url = gw.url("/c/scoped");
    let reader = format!("Bearer {}", token("reader", "pets:read"));
    let admin = format!("Bearer {}", token("admin", "pets:read cache:invalidate"));
    let fresh = ("cache-control", "max-age=0");

    let first = get(&c, &url, &[("authorization", &reader)]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!((first.header("x-cache"), n_of(&first)), (Some("Miss"), 1));
    let ignored = get(&c, &url, &[("authorization", &reader), fresh]).await;
    assert_eq!(
        (ignored.header("x-cache"), n_of(&ignored)),
        (Some("Hit"), 1)
    );
    let refreshed = get(&c, &url, &[("authorization", &admin), fresh]).await;
    assert_eq!(
        (refreshed.header("x-cache"), n_of(&refreshed)),
        (Some("Miss"), 2)
    );
    let after = get(&c, &url, &[("authorization", &reader)]).await;
    assert_eq!((after.header("x-cache"), n_of(&after)), (Some("Hit"), 2));
}
