//! Integrations beyond `http` and `mock`, in the real binary: a standard `wasi:http` handler
//! built with the upstream `wasip2` crate (no Wicket code) behind a route with filters, its
//! bodies streaming both ways, its outgoing calls limited to `allowed_hosts`, and the plugin
//! limits (CPU, memory) holding for it.

use reqwest::StatusCode;
use std::time::{Duration, Instant};
use wicket_e2e::{client, test_plugin, Gateway, Upstream};

fn wasi_http_gateway(upstream: &Upstream, isolation: &str) -> Gateway {
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[plugins.stamp]
builtin = "headers"
config = {{ request = {{ set = {{ "x-probe" = "route {{route}} id {{param.id}}" }} }}, response = {{ set = {{ "x-stamp" = "out" }} }} }}

[plugins.app]
wasm = {wasm:?}
isolation = "{isolation}"
cpu_ms = 200
memory_mb = 32
allowed_hosts = ["http://{allowed}"]

[[routes]]
path = "/app/{{id}}/{{proxy+}}"
plugins = ["stamp"]
integration = "app"
"#,
        wasm = test_plugin("wasi_http_echo").display().to_string(),
        allowed = upstream.addr,
    );
    Gateway::start(&config)
}

#[tokio::test]
async fn a_wasi_http_component_serves_a_route_through_the_filters() {
    let upstream = Upstream::start();
    for isolation in ["request", "pooled"] {
        let gw = wasi_http_gateway(&upstream, isolation);
        for _ in 0..3 {
            let resp = client()
                .put(gw.url("/app/7/echo/a%20b?x=1&y=2"))
                .body("hello component")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{isolation}");
            let h = resp.headers().clone();
            assert_eq!(h["x-echo-method"], "PUT");
            assert_eq!(h["x-echo-path"], "/app/7/echo/a%20b?x=1&y=2");
            assert_eq!(
                h["x-echo-authority"],
                gw.url("")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
            );
            // The filter's request edit reached the component; its response edit ran after it.
            assert_eq!(h["x-echo-probe"], "route /app/{id}/{proxy+} id 7");
            assert_eq!(h["x-stamp"], "out");
            assert!(h.contains_key("x-request-id"));
            assert_eq!(resp.text().await.unwrap(), "hello component");
        }
    }
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let upstream = Upstream::start();
    let gw = wasi_http_gateway(&upstream, "request");
    // The response: the first chunk reaches the client while the component still runs.
    let started = Instant::now();
    let mut resp = client().get(gw.url("/app/1/slow")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let first = resp.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"first\n");
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    let end_at = started.elapsed();
    assert_eq!(rest, b"second\n");
    assert!(
        end_at - first_at >= Duration::from_millis(300),
        "first chunk at {first_at:?}, end at {end_at:?}: the body was held back"
    );

    // The request: a large upload is echoed as it arrives, and the response starts before the
    // upload ends (the client holds the last part back until it has seen the first echo).
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let sending = tokio::spawn(client().post(gw.url("/app/1/echo")).body(body).send());
    tx.send(Ok(vec![b'a'; 100_000])).await.unwrap();
    let mut resp = tokio::time::timeout(Duration::from_secs(5), sending)
        .await
        .expect("the response head came before the upload ended")
        .unwrap()
        .unwrap();
    let mut got = 0;
    while got < 100_000 {
        got += resp.chunk().await.unwrap().unwrap().len();
    }
    assert_eq!(
        got, 100_000,
        "the first part was echoed while the upload was still open"
    );
    tx.send(Ok(vec![b'b'; 50_000])).await.unwrap();
    drop(tx);
    let mut tail = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        tail.extend_from_slice(&c);
    }
    assert_eq!(tail, vec![b'b'; 50_000]);
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn outgoing_calls_reach_only_allowed_hosts() {
    let upstream = Upstream::start();
    let other = Upstream::start();
    let gw = wasi_http_gateway(&upstream, "request");
    let url = |u: &Upstream| gw.url(&format!("/app/1/fetch?url=http://{}/hello", u.addr));
    let resp = client().get(url(&upstream)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-upstream-status"], "200");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["path"], "/hello");

    // Another port on the same host is another origin: refused before connecting.
    let resp = client().get(url(&other)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.text().await.unwrap().contains("HttpRequestDenied"));
    assert!(gw.wait_for_log(Duration::from_secs(2), |l| l
        .contains("not in allowed_hosts")));
}

#[tokio::test]
async fn limits_hold_for_wasi_http_components() {
    let upstream = Upstream::start();
    let gw = wasi_http_gateway(&upstream, "pooled");
    for (path, needle) in [
        ("/app/1/spin", "CPU time limit"),
        ("/app/1/oom", "memory limit"),
        ("/app/1/noanswer", "without setting a response"),
    ] {
        let resp = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        let id = body["requestId"].as_str().unwrap().to_string();
        assert!(
            gw.wait_for_log(Duration::from_secs(2), |l| l.contains(&id)
                && l.contains(needle)),
            "{path}: {:?}",
            gw.logs()
        );
        // The gateway and the component still serve.
        let resp = client().get(gw.url("/app/1/echo")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_component_failing_mid_body_cuts_the_stream() {
    let upstream = Upstream::start();
    let gw = wasi_http_gateway(&upstream, "request");
    // The head may or may not have left before the trap; either way the client must see a
    // broken response, never a short body that looks complete.
    let outcome = match client().get(gw.url("/app/1/halfway")).send().await {
        Err(e) => Err(e),
        Ok(resp) => resp.bytes().await,
    };
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(gw.wait_for_log(Duration::from_secs(2), |l| l
        .contains("after its response head")
        && l.contains("trapped")));
}
