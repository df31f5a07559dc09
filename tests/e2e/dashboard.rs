//! What a person looks at: the dashboard on the admin listener (`GET /`, polling
//! `GET /admin/stats`) in headless Chromium while the gateway serves traffic, the numbers
//! behind it against the requests sent, the Grafana dashboard's queries against the metric
//! families `/metrics` exports, and usage per API key (`GET /admin/usage`) on the memory
//! backend and shared by two gateways through one real Redis.
//!
//! Every load loop is bounded in count and time.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wicket_e2e::{client, root, run_python, sha256_hex, wicket_bin, Gateway, RedisServer};

const ALICE: &str = "alice-key-0123456789";
const BOB: &str = "bob-key-0123456789";
const MALLORY: &str = "mallory-key-0123456789";
/// A principal that is markup: the dashboard must show it as text.
const MARKUP_PRINCIPAL: &str = "<img src=x onerror=window.pwned=1>";

/// `[state]` for the memory backend, or for a Redis.
fn state(redis: Option<&RedisServer>) -> String {
    match redis {
        None => "[state]\nbackend = \"memory\"\n".to_string(),
        Some(r) => format!(
            "[state]\nbackend = \"redis\"\nredis_url = \"{}\"\nredis_timeout_ms = 1000\n",
            r.url()
        ),
    }
}

/// Route `pets`: api-key -> quota (bob's plan allows 3) -> cache -> mock; route `status`
/// answers 503; nothing else matches (404).
fn config(redis: Option<&RedisServer>) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin = "127.0.0.1:0"

{state}
[plugins.keys]
builtin = "api-key"
config.keys = [
  {{ key_sha256 = "{alice}", principal = "alice", plan = "gold" }},
  {{ key_sha256 = "{bob}", principal = "bob", plan = "free" }},
  {{ key_sha256 = "{mallory}", principal = "{markup}" }},
]

[plugins.limit]
builtin = "quota"
config = {{ by = "principal", rate = 1000, burst = 1000, plans = {{ free = {{ rate = 0.001, burst = 3 }} }} }}

[plugins.edge]
builtin = "cache"
config = {{ ttl_s = 60 }}

[plugins.answer]
builtin = "mock"
config = {{ status = 200, body = {{ id = "{{param.id}}" }} }}

[plugins.broken]
builtin = "mock"
config = {{ status = 503, body = "down" }}

[[routes]]
name = "pets"
methods = ["GET"]
path = "/v1/pets/{{id}}"
plugins = ["keys", "limit", "edge"]
integration = "answer"

[[routes]]
name = "status"
path = "/v1/status"
integration = "broken"
"#,
        state = state(redis),
        alice = sha256_hex(ALICE.as_bytes()),
        bob = sha256_hex(BOB.as_bytes()),
        mallory = sha256_hex(MALLORY.as_bytes()),
        markup = MARKUP_PRINCIPAL,
    )
}

/// Send `n` GETs of `path` with `key` (if any); returns the statuses.
async fn send(gw: &Gateway, path: &str, key: Option<&str>, n: usize) -> Vec<u16> {
    let http = client();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut req = http.get(gw.url(path));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        out.push(req.send().await.unwrap().status().as_u16());
    }
    out
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// The UTC day `days_ago` days before now, as YYYY-MM-DD (civil-from-days).
fn utc_day(days_ago: i64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let z = secs.div_euclid(86_400) - days_ago + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn route<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {stats}"))
}

fn plugin<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == name)
        .unwrap_or_else(|| panic!("no plugin {name} in {stats}"))
}

/// `/admin/stats` counts exactly what was sent: per route the requests, 4xx, 5xx and 429s,
/// latency quantiles, the cache's hits; per plugin its calls and time, and its own metrics.
#[tokio::test]
async fn stats_count_what_was_sent() {
    let gw = Gateway::start(&config(None));
    let alice = send(&gw, "/v1/pets/1", Some(ALICE), 10).await;
    assert!(alice.iter().all(|s| *s == 200), "{alice:?}");
    let bob = send(&gw, "/v1/pets/2", Some(BOB), 6).await;
    assert_eq!(bob, [200, 200, 200, 429, 429, 429]);
    assert_eq!(send(&gw, "/v1/pets/3", Some("wrong"), 2).await, [403, 403]);
    assert_eq!(send(&gw, "/v1/status", None, 4).await, [503; 4]);
    assert_eq!(send(&gw, "/nowhere", None, 2).await, [404, 404]);

    let (status, stats) = get_json(&gw.admin_url("/admin/stats")).await;
    assert_eq!(status, 200);
    assert_eq!(stats["bucket_seconds"], 10);
    assert_eq!(stats["window_seconds"], 900);
    let n = stats["times"].as_array().unwrap().len();
    assert!(n >= 1, "{stats}");
    let pets = route(&stats, "pets");
    let t = &pets["total"];
    assert_eq!(t["requests"], 18.0, "{pets}");
    assert_eq!(t["errors_4xx"], 5.0, "{pets}");
    assert_eq!(t["errors_5xx"], 0.0, "{pets}");
    assert_eq!(t["throttled"], 3.0, "{pets}");
    // alice: 1 miss then 9 hits; bob: 1 miss then 2 hits (the 429s never reach the cache).
    assert_eq!(t["cache_hits"], 11.0, "{pets}");
    assert_eq!(t["cache_misses"], 2.0, "{pets}");
    for q in ["p50_ms", "p90_ms", "p99_ms", "integration_p50_ms"] {
        assert!(t[q].as_f64().unwrap() > 0.0, "{q}: {pets}");
    }
    assert!(t["p50_ms"].as_f64() <= t["p99_ms"].as_f64());
    for series in [
        "requests_per_s",
        "p99_ms",
        "throttled_per_s",
        "cache_hit_ratio",
    ] {
        assert_eq!(pets[series].as_array().unwrap().len(), n, "{series}");
    }
    assert!(pets["requests_per_s"][n - 1].as_f64().unwrap() > 0.0);
    assert_eq!(route(&stats, "status")["total"]["errors_5xx"], 4.0);
    assert_eq!(route(&stats, "(none)")["total"]["errors_4xx"], 2.0);

    // api-key ran for all 18 pets requests; the mock integration answered alice's and bob's
    // misses, and the four 503s.
    let keys = plugin(&stats, "keys");
    assert_eq!(keys["total"]["calls"], 18.0, "{keys}");
    assert!(keys["total"]["ms_per_call"].as_f64().unwrap() > 0.0);
    assert_eq!(plugin(&stats, "answer")["total"]["calls"], 2.0);
    assert_eq!(plugin(&stats, "broken")["total"]["calls"], 4.0);
    // The cache's own metrics, under its name.
    let edge = plugin(&stats, "edge");
    let hits = edge["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "cache_hits_total{route=\"pets\"}")
        .unwrap_or_else(|| panic!("{edge}"));
    assert_eq!(hits["kind"], "counter");
    assert_eq!(hits["total"]["count"], 11.0);

    let r = client()
        .post(gw.admin_url("/admin/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

/// `GET /admin/usage` on the memory backend: counts per principal and day, the plans, the
/// filters, and a clear 400 for every malformed query.
#[tokio::test]
async fn usage_per_key_and_plan_with_checked_queries() {
    let gw = Gateway::start(&config(None));
    send(&gw, "/v1/pets/1", Some(ALICE), 5).await;
    send(&gw, "/v1/pets/1", Some(BOB), 4).await; // the 4th is a 429: still a request made
    send(&gw, "/v1/pets/1", Some("wrong"), 3).await; // no principal: not counted
    let (today, yesterday) = (utc_day(0), utc_day(1));
    let url = gw.admin_url(&format!("/admin/usage?from={yesterday}&to={today}"));
    let (status, usage) = get_json(&url).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["startDate"], *yesterday);
    assert_eq!(usage["endDate"], *today);
    assert_eq!(usage["days"], json!([yesterday, today]));
    assert_eq!(
        usage["items"],
        json!({"alice": [[0, null], [5, null]], "bob": [[0, null], [4, null]]})
    );
    assert_eq!(
        usage["usagePlans"],
        json!({"alice": ["gold"], "bob": ["free"]})
    );
    assert_eq!(usage["planTotals"], json!({"gold": [0, 5], "free": [0, 4]}));

    let only = gw.admin_url(&format!("/admin/usage?from={today}&to={today}&plan=gold"));
    let (_, gold) = get_json(&only).await;
    assert_eq!(gold["usagePlanId"], "gold");
    assert_eq!(gold["items"], json!({"alice": [[5, null]]}));
    let key = gw.admin_url(&format!("/admin/usage?from={today}&to={today}&key=bob"));
    assert_eq!(get_json(&key).await.1["items"], json!({"bob": [[4, null]]}));

    for (query, says) in [
        ("", "`from` and `to` are required"),
        (&*format!("from={today}"), "`from` and `to` are required"),
        (
            &*format!("from={today}&to=tomorrow"),
            "`to` is \"tomorrow\"",
        ),
        ("from=2026-02-30&to=2026-03-01", "`from` is \"2026-02-30\""),
        ("from=2026-12-02&to=2026-12-01", "is before"),
        ("from=2025-01-01&to=2026-12-31", "at most 90"),
        (
            &*format!("from={today}&to={today}&limit=5"),
            "unknown parameter",
        ),
        (
            &*format!("from={today}&from={today}&to={today}"),
            "more than once",
        ),
    ] {
        let (status, body) = get_json(&gw.admin_url(&format!("/admin/usage?{query}"))).await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
}

/// Two gateways on one real Redis, each serving part of two keys' traffic: both answers
/// are the sum of what was sent to both.
#[tokio::test]
async fn two_gateways_on_one_redis_agree_on_usage() {
    let redis = RedisServer::start();
    let a = Gateway::start(&config(Some(&redis)));
    let b = Gateway::start(&config(Some(&redis)));
    send(&a, "/v1/pets/1", Some(ALICE), 7).await;
    send(&a, "/v1/pets/2", Some(BOB), 2).await;
    send(&b, "/v1/pets/1", Some(ALICE), 5).await;
    send(&b, "/v1/pets/2", Some(BOB), 4).await; // bob's plan admits 3 in all: 3 are 429s
    let today = utc_day(0);
    let want = json!({"alice": [[12, null]], "bob": [[6, null]]});
    let deadline = Instant::now() + Duration::from_secs(20);
    for gw in [&a, &b] {
        let url = gw.admin_url(&format!("/admin/usage?from={today}&to={today}"));
        loop {
            let (status, usage) = get_json(&url).await;
            assert_eq!(status, 200, "{usage}");
            if usage["items"] == want {
                assert_eq!(usage["planTotals"], json!({"gold": [12], "free": [6]}));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the gateways do not agree: {usage}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Every metric family a PromQL expression of `contrib/grafana/wicket.json` names is one a
/// running gateway exports once it has served traffic (and reloaded once).
#[tokio::test]
async fn the_grafana_dashboard_queries_exported_families() {
    let text = std::fs::read_to_string(root().join("contrib/grafana/wicket.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    collect_queries(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "only {} queries found", exprs.len());

    let gw = Gateway::start(&config(None));
    send(&gw, "/v1/pets/1", Some(ALICE), 3).await;
    send(&gw, "/v1/pets/1", Some(BOB), 5).await;
    send(&gw, "/v1/status", None, 1).await;
    let r = client()
        .post(gw.admin_url("/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let metrics = gw.metrics().await;
    let mut families = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split_whitespace();
            let (name, kind) = (w.next().unwrap(), w.next().unwrap());
            families.insert(name.to_string());
            if kind == "histogram" {
                histograms.insert(name.to_string());
            }
        }
    }
    let mut named = BTreeSet::new();
    for expr in &exprs {
        for word in metric_names(expr) {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s).filter(|b| histograms.contains(*b)))
                .unwrap_or(&word)
                .to_string();
            assert!(
                families.contains(&family),
                "{expr:?} names {word}, which /metrics does not export:\n{families:?}"
            );
            named.insert(family);
        }
    }
    for core in [
        "wicket_requests_total",
        "wicket_requests_throttled_total",
        "wicket_request_seconds",
        "wicket_integration_seconds",
        "wicket_plugin_seconds",
        "wicket_plugin_cache_hits_total",
    ] {
        assert!(named.contains(core), "no panel uses {core}");
    }
}

/// The `expr` of every target and the `query` of every templating variable.
fn collect_queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains("wicket_") => out.push(s.clone()),
                    ("query", Value::Object(q)) => {
                        if let Some(Value::String(s)) = q.get("query") {
                            out.push(s.clone());
                        }
                    }
                    _ => collect_queries(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_queries(v, out)),
        _ => {}
    }
}

/// The identifiers of `expr` that name a Wicket metric (outside strings and label matchers).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.char_indices().peekable();
    let mut in_labels = 0;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '{' => in_labels += 1,
            '}' => in_labels -= 1,
            c if (c.is_ascii_alphabetic() || c == '_') && in_labels == 0 => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &expr[i..end];
                if word.starts_with("wicket_") {
                    out.push(word.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn metric_names_skip_labels_and_strings() {
    assert_eq!(
        metric_names(
            r#"sum by (le) (rate(wicket_request_seconds_bucket{route=~"wicket_x"}[5m])) / on() wicket_a_total"#
        ),
        ["wicket_request_seconds_bucket", "wicket_a_total"]
    );
}

/// Headless Chromium (Debian's, through chromedriver) opens the dashboard while traffic flows
/// (for one closed 10 s bucket and the one in progress, so that lines are drawn) and reports
/// what it shows: the charts have non-zero data, the tables the routes, plugins,
/// the cache's own metrics and the usage per key; a principal that is markup stays text.
#[test]
fn the_dashboard_in_a_browser_shows_live_traffic() {
    let gw = Gateway::start(&config(None));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Headers and page first: self-contained, under a CSP that allows this origin only.
    rt.block_on(async {
        let page = client().get(gw.admin_url("/")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        let html = page.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
        let script = client().get(gw.admin_url("/dashboard.js")).send().await;
        let script = script.unwrap().text().await.unwrap();
        assert!(!script.contains("innerHTML") && !script.contains("eval("));
    });
    // Traffic for the whole browser session: bounded in count and time.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        let base = gw.url("");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let http = client();
                let started = Instant::now();
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed)
                    && sent < 3000
                    && started.elapsed() < Duration::from_secs(90)
                {
                    let (path, key) = match sent % 10 {
                        0 => ("/v1/status", None),
                        1 => ("/v1/pets/2", Some(BOB)),
                        2 => ("/v1/pets/3", Some(MALLORY)),
                        3 => ("/nowhere", None),
                        _ => ("/v1/pets/1", Some(ALICE)),
                    };
                    let mut req = http.get(format!("{base}{path}"));
                    if let Some(k) = key {
                        req = req.header("x-api-key", k);
                    }
                    let _ = req.send().await;
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let target = wicket_bin()
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_path_buf();
    let screenshot = target.join("dashboard.png");
    let input = json!({"url": gw.admin_url("/"), "screenshot": screenshot}).to_string();
    let out = run_python("selenium", BROWSER_SCRIPT, input.as_bytes());
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    let seen: Value = serde_json::from_slice(&out).unwrap();

    assert!(seen["polls"].as_u64().unwrap() >= 2, "{seen}");
    assert_eq!(seen["pwned"], Value::Null, "markup from a principal ran");
    let charts = seen["charts"].as_object().unwrap();
    for title in [
        "Requests / s by route",
        "Errors and throttled / s (all routes)",
        "p99 latency by route",
        "Cache hit ratio by route",
        "pets · requests / s",
        "pets · latency",
    ] {
        let c = &charts[title];
        assert!(c["max"].as_f64().unwrap() > 0.0, "{title}: {c}");
        assert!(c["paths"].as_u64().unwrap() > 0, "{title}: {c}");
    }
    for title in [
        "Requests / s by route",
        "pets · requests / s",
        "pets · latency",
    ] {
        assert!(
            charts[title]["lines"].as_u64().unwrap() > 0,
            "{title}: no line drawn"
        );
    }
    let pets = &seen["routes"]["pets"];
    let num = |v: &Value| {
        v.as_str()
            .unwrap()
            .replace([',', ' ', '%'], "")
            .parse::<f64>()
    };
    assert!(num(&pets[3]).unwrap() > 0.0, "requests: {pets}");
    assert!(num(&pets[6]).unwrap() > 0.0, "throttled: {pets}");
    assert!(num(&pets[9]).unwrap() > 0.0, "p99: {pets}");
    assert!(num(&pets[12]).unwrap() > 0.0, "cache hits: {pets}");
    assert!(num(&seen["routes"]["status"][5]).unwrap() > 0.0, "5xx");
    assert!(num(&seen["plugins"]["keys"][2]).unwrap() > 0.0, "{seen}");
    let own = seen["own"].as_array().unwrap();
    assert!(
        own.iter()
            .any(|m| m[0] == "edge" && m[1].as_str().unwrap().starts_with("cache_hits_total")),
        "{own:?}"
    );
    let usage = &seen["usage"];
    assert!(num(&usage["alice"][2]).unwrap() > 0.0, "{usage}");
    assert_eq!(usage["alice"][1], "gold");
    assert!(num(&usage["bob"][2]).unwrap() > 0.0, "{usage}");
    assert!(num(&usage[MARKUP_PRINCIPAL][2]).unwrap() > 0.0, "{usage}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 20_000);
}

/// Opens the dashboard, waits for two polls that show traffic, and reports the charts' data
/// (the SVG's data attributes and drawn paths), the tables' cells, and a screenshot.
const BROWSER_SCRIPT: &str = r##"
import json, shutil, sys, tempfile
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

args = json.load(sys.stdin)
options = webdriver.ChromeOptions()
options.binary_location = shutil.which("chromium")
profile = tempfile.mkdtemp()
for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1400,2600", "--user-data-dir=" + profile]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)

# Read in one script: the page redraws every 2 s, so elements found in one call may be gone
# by the next.
COLLECT = """
const cells = (sel, key) => {
  const out = {};
  for (const tr of document.querySelectorAll(sel)) {
    out[tr.getAttribute(key)] = [...tr.querySelectorAll("td")].map(td => td.textContent);
  }
  return out;
};
const charts = {};
for (const svg of document.querySelectorAll("svg.plot")) {
  const paths = [...svg.querySelectorAll("path.series")];
  charts[svg.dataset.title] = {
    max: Number(svg.dataset.max), points: Number(svg.dataset.points), paths: paths.length,
    lines: paths.filter(p => (p.getAttribute("d") || "").includes("L")).length,
  };
}
return {
  polls: Number(document.body.dataset.polls || 0),
  pwned: window.pwned === undefined ? null : window.pwned,
  charts: charts,
  routes: cells("#routes tbody tr", "data-route"),
  plugins: cells("#plugins tbody tr:not(.own)", "data-plugin"),
  own: [...document.querySelectorAll("#plugins tr.own")].map(tr => [tr.dataset.plugin, tr.dataset.metric]),
  usage: cells("#usage tbody tr", "data-principal"),
};
"""

try:
    driver.set_page_load_timeout(30)
    driver.get(args["url"])
    wait = WebDriverWait(driver, 40)
    def ready(d):
        r = d.execute_script(COLLECT)
        c = r["charts"]
        # A line needs two points: a bucket closed (10 s) and the one in progress. Wait for
        # everything the test then asserts: each chart's series arrive with their own polls.
        drawn = ["Requests / s by route", "pets · requests / s", "pets · latency"]
        filled = ["Errors and throttled / s (all routes)", "p99 latency by route",
                  "Cache hit ratio by route"] + drawn
        done = (r["polls"] >= 3 and "bob" in r["usage"]
                and all(c.get(t, {}).get("paths", 0) > 0 and (c.get(t, {}).get("max") or 0) > 0
                        for t in filled)
                and all(c.get(t, {}).get("lines", 0) > 0 for t in drawn))
        return r if done else False
    report = wait.until(ready)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(args["screenshot"])
    print(json.dumps(report))
finally:
    driver.quit()
"##;
