//! Misbehaving plugins: a trap, an endless loop, a runaway allocation and a plugin error each
//! cost only their own request a JSON error, within the plugin's limits, while other
//! requests through the same plugin, at the same time, keep succeeding.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};
use wicket_e2e::{client, test_plugin, Gateway};

fn config(isolation: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.misbehave]
wasm = {wasm:?}
isolation = "{isolation}"
cpu_ms = 200
memory_mb = 32

[plugins.ok]
builtin = "mock"
config = {{ body = "fine" }}

[[routes]]
path = "/x"
plugins = ["misbehave"]
integration = "ok"
"#,
        wasm = test_plugin("misbehave").display().to_string(),
    )
}

async fn misbehave(gw: &Gateway, mode: &str) -> (StatusCode, Value, String, Duration) {
    let started = Instant::now();
    let resp = client()
        .get(gw.url("/x"))
        .header("x-misbehave", mode)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let status = resp.status();
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["requestId"], request_id.as_str());
    (status, body, request_id, took)
}

async fn normal(gw: &Gateway) {
    let resp = client().get(gw.url("/x")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-misbehave"], "ok");
    assert_eq!(resp.text().await.unwrap(), "fine");
}

/// Fire `mode` while 20 ordinary requests go through the same plugin.
async fn under_load(gw: &Gateway, mode: &'static str) -> (StatusCode, Value, String, Duration) {
    let normals: Vec<_> = (0..20)
        .map(|_| {
            let url = gw.url("/x");
            tokio::spawn(async move {
                let resp = client().get(url).send().await.unwrap();
                (resp.status(), resp.headers().get("x-misbehave").cloned())
            })
        })
        .collect();
    let bad = misbehave(gw, mode).await;
    for n in normals {
        let (status, header) = n.await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "an ordinary request failed while {mode} ran"
        );
        assert_eq!(header.unwrap(), "ok");
    }
    bad
}

/// Whether a log line names both (waiting for it: the log may trail the response).
fn logged(gw: &Gateway, request_id: &str, needle: &str) -> bool {
    gw.wait_for_log(Duration::from_secs(5), |l| {
        l.contains(request_id) && l.contains(needle)
    })
}

async fn every_failure_is_contained(isolation: &str) {
    let mut gw = Gateway::start(&config(isolation));
    normal(&gw).await;

    let (status, body, id, took) = under_load(&gw, "trap").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["message"], "Internal server error");
    assert!(
        logged(&gw, &id, "trapped"),
        "no log line for the trap:\n{:#?}",
        gw.logs()
    );
    assert!(took < Duration::from_secs(2));

    let (status, body, id, took) = under_load(&gw, "loop").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["message"], "Internal server error");
    assert!(
        logged(&gw, &id, "CPU time limit"),
        "no log line for the loop:\n{:#?}",
        gw.logs()
    );
    assert!(
        took >= Duration::from_millis(200),
        "stopped before its 200 ms budget: {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "took {took:?} to stop a 200 ms plugin"
    );

    let (status, body, id, _) = under_load(&gw, "oom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["message"], "Internal server error");
    assert!(
        logged(&gw, &id, "memory limit"),
        "no log line for the allocation:\n{:#?}",
        gw.logs()
    );

    let (status, body, _, _) = under_load(&gw, "error").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["message"], "misbehave error");

    // Several at once, mixed with ordinary requests, then the gateway is still healthy.
    let bad: Vec<_> = ["trap", "loop", "oom", "trap", "loop"]
        .into_iter()
        .map(|mode| {
            let url = gw.url("/x");
            tokio::spawn(async move {
                client()
                    .get(url)
                    .header("x-misbehave", mode)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for _ in 0..10 {
        normal(&gw).await;
    }
    for b in bad {
        assert_eq!(b.await.unwrap(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    normal(&gw).await;
    assert!(gw.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_contained_with_fresh_instances() {
    every_failure_is_contained("request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_contained_with_pooled_instances() {
    every_failure_is_contained("pooled").await;
}

/// What a plugin prints goes to the log, one line per line, tagged with the plugin, the request
/// and the stream; a plugin printing a thousand lines in one request logs at most the rate
/// limit's worth, and the drop is reported.
#[tokio::test]
async fn plugin_output_becomes_rate_limited_log_lines() {
    let gw = Gateway::start(&config("request"));
    let resp = client()
        .get(gw.url("/x"))
        .header("x-misbehave", "print")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    for (stream, text) in [
        ("stdout", "misbehave says hello"),
        ("stderr", "to stderr"),
        // The partial last line is logged when the fresh instance is dropped.
        ("stderr", "and a partial line"),
    ] {
        assert!(
            gw.wait_for_log(Duration::from_secs(5), |l| l.contains(&id)
                && l.contains("\"plugin\":\"misbehave\"")
                && l.contains(&format!("\"stream\":\"{stream}\""))
                && l.contains(&format!("\"message\":\"{text}\""))),
            "{stream}: {text}: {:?}",
            gw.logs()
        );
    }

    let resp = client()
        .get(gw.url("/x"))
        .header("x-misbehave", "chatter")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let chatter = gw.logs().iter().filter(|l| l.contains("chatter ")).count();
    assert!(
        (1..=200).contains(&chatter),
        "1000 lines printed, {chatter} logged"
    );
    // The next second's first line reports what was dropped.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client()
        .get(gw.url("/x"))
        .header("x-misbehave", "print")
        .send()
        .await
        .unwrap();
    assert!(
        gw.wait_for_log(Duration::from_secs(5), |l| l.contains("lines dropped")),
        "{:?}",
        gw.logs()
    );
}
