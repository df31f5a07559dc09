//! Stages and canaries: two stages serving different plugin chains for the same path under
//! their own base paths, stage variables inside an `http` URL, metrics and access log lines
//! that name the stage, a 10% canary landing within ±3% over 2,000 requests and sticky per
//! caller, and `wicket check` naming stages in its table and its errors.

use reqwest::StatusCode;
use serde_json::Value;
use wicket_e2e::{check, client, Gateway, Upstream};

fn config(upstream: &Upstream, canary: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin = "127.0.0.1:0"

[stages.prod]
base_path = "/prod"
variables = {{ api = "v1" }}
{canary}

[stages.beta]
base_path = "/beta"
variables = {{ api = "v2" }}

[plugins.tag-v1]
builtin = "headers"
config.response.set = {{ "x-chain" = "v1" }}

[plugins.tag-v2]
builtin = "headers"
config.response.set = {{ "x-chain" = "v2" }}

[plugins.backend]
builtin = "http"
config = {{ url = "http://{}/${{stage.api}}/pets/{{id}}" }}

[[routes]]
name = "pets-v1"
path = "/pets/{{id}}"
stages = ["prod"]
plugins = ["tag-v1"]
integration = "backend"

[[routes]]
name = "pets-v2"
path = "/pets/{{id}}"
stages = ["beta"]
plugins = ["tag-v2"]
integration = "backend"
"#,
        upstream.addr
    )
}

async fn get(gw: &Gateway, path: &str, user: Option<&str>) -> (String, String) {
    let mut req = client().get(gw.url(path));
    if let Some(u) = user {
        req = req.header("x-user", u);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let chain = resp.headers()["x-chain"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    (chain, body["path"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn two_stages_serve_different_chains_and_variables_for_the_same_path() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(&upstream, ""));
    assert_eq!(
        get(&gw, "/prod/pets/7", None).await,
        ("v1".to_string(), "/v1/pets/7".to_string())
    );
    assert_eq!(
        get(&gw, "/beta/pets/7", None).await,
        ("v2".to_string(), "/v2/pets/7".to_string())
    );
    // Without a stage's base path nothing matches.
    let resp = client().get(gw.url("/pets/7")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(r#"wicket_requests_total{route="pets-v1",stage="prod",class="2xx"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"wicket_requests_total{route="pets-v2",stage="beta",class="2xx"} 1"#),
        "{metrics}"
    );
    assert!(gw.wait_for_log(std::time::Duration::from_secs(5), |l| {
        l.contains("\"path\":\"/beta/pets/7\"") && l.contains("\"stage\":\"beta\"")
    }));
}

#[tokio::test]
async fn a_ten_percent_canary_lands_within_three_points_and_sticks_per_caller() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(
        &upstream,
        r#"canary = { percent = 10, stage = "beta" }"#,
    ));
    let mut canary = 0;
    let n = 2000;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let url = gw.url(&format!("/prod/pets/{t}"));
        tasks.push(tokio::spawn(async move {
            let http = client();
            let mut hits = 0;
            for _ in 0..n / 8 {
                let resp = http.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                if resp.headers()["x-chain"] == "v2" {
                    hits += 1;
                }
            }
            hits
        }));
    }
    for t in tasks {
        canary += t.await.unwrap();
    }
    let share = canary as f64 / n as f64;
    eprintln!("canary served {canary} of {n} ({:.1}%)", share * 100.0);
    assert!((0.07..=0.13).contains(&share), "canary share {share}");

    // The canary side's metrics carry its own stage.
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(&format!(
            r#"wicket_requests_total{{route="pets-v2",stage="beta",class="2xx"}} {canary}"#
        )),
        "{metrics}"
    );

    // Sticky: each caller always gets the same side.
    std::fs::write(
        gw.config_path(),
        config(
            &upstream,
            r#"canary = { percent = 10, stage = "beta", sticky = "header:x-user" }"#,
        ),
    )
    .unwrap();
    let reload = client()
        .post(gw.admin_url("/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), StatusCode::OK);
    let mut on_canary = 0;
    for u in 0..200 {
        let user = format!("user-{u}");
        let (first, _) = get(&gw, "/prod/pets/1", Some(&user)).await;
        for _ in 0..4 {
            assert_eq!(
                get(&gw, "/prod/pets/1", Some(&user)).await.0,
                first,
                "{user}"
            );
        }
        if first == "v2" {
            on_canary += 1;
        }
    }
    eprintln!("{on_canary} of 200 callers on the canary");
    assert!((6..=40).contains(&on_canary), "{on_canary} of 200 callers");
}

#[test]
fn check_lists_each_stage_and_names_stages_in_its_errors() {
    let upstream = Upstream::start();
    let good = config(&upstream, r#"canary = { percent = 10, stage = "beta" }"#);
    let (ok, out, _) = check("stages.toml", &good);
    assert!(ok, "{out}");
    assert!(out.contains("stage prod (/prod):"), "{out}");
    assert!(
        out.contains(
            "GET /prod/pets/{id} -> route \"pets-v1\" (canary 10% -> stage beta route \"pets-v2\")"
        ) || out.contains(
            "ANY /prod/pets/{id} -> route \"pets-v1\" (canary 10% -> stage beta route \"pets-v2\")"
        ),
        "{out}"
    );

    let bad = good
        .replace(r#"stages = ["beta"]"#, r#"stages = ["gamma"]"#)
        .replace("${stage.api}", "${stage.apl}");
    let (ok, out, _) = check("stages.toml", &bad);
    assert!(!ok);
    assert!(out.contains("stage \"gamma\" is not defined"), "{out}");
    assert!(
        out.contains("stage \"prod\" has no variable \"apl\""),
        "{out}"
    );
    assert!(out.contains("stages.toml:"), "{out}");

    // The same route deployed twice to one stage overlaps: the message names the stage.
    let twice = good.replace(r#"stages = ["beta"]"#, r#"stages = ["prod"]"#);
    let (ok, out, _) = check("stages.toml", &twice);
    assert!(!ok);
    assert!(out.contains("(stage \"prod\")"), "{out}");
}

#[tokio::test]
async fn a_stages_own_filters_run_first_on_each_of_its_routes() {
    let upstream = Upstream::start();
    let text = config(&upstream, "").replace(
        "[stages.beta]\nbase_path = \"/beta\"",
        "[stages.beta]\nbase_path = \"/beta\"\nplugins = [\"throttle\"]",
    ) + r#"
[plugins.throttle]
builtin = "quota"
config = { by = "client_ip", rate = 0.001, burst = 2 }
"#;
    let gw = Gateway::start(&text);
    for _ in 0..2 {
        get(&gw, "/beta/pets/1", None).await;
    }
    let over = client().get(gw.url("/beta/pets/1")).send().await.unwrap();
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    // prod has no such default.
    for _ in 0..4 {
        get(&gw, "/prod/pets/1", None).await;
    }
}
