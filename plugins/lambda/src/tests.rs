use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn lambda(json: &str) -> Result<Lambda, String> {
    Lambda::from_config(&Config::from_json(json).unwrap())
}

#[test]
fn config_builds_the_invoke_url() {
    let l = lambda(r#"{"function": "orders", "region": "eu-west-1"}"#).unwrap();
    assert_eq!(
        l.url,
        "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/orders/invocations"
    );
    assert_eq!(l.format, Format::V2);
    assert_eq!(l.api.account_id, "000000000000");
    let l = lambda(
        r#"{"function": "arn:aws:lambda:us-east-1:123456789012:function:f:live", "region": "us-east-1", "endpoint": "http://127.0.0.1:9/", "payload_format": "1.0"}"#,
    )
    .unwrap();
    assert_eq!(
        l.url,
        "http://127.0.0.1:9/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af%3Alive/invocations"
    );
    assert_eq!(l.api.account_id, "123456789012");
    assert_eq!(l.format, Format::V1);
}

#[test]
fn config_refuses_what_cannot_work() {
    for (bad, says) in [
        (r#"{"function": "f"}"#, "missing field `region`"),
        (
            r#"{"function": "a/b", "region": "us-east-1"}"#,
            "`function`",
        ),
        (r#"{"function": "f", "region": "US"}"#, "`region`"),
        (
            r#"{"function": "f", "region": "us-east-1", "payload_format": "3"}"#,
            "`payload_format`",
        ),
        (
            r#"{"function": "f", "region": "us-east-1", "endpoint": "ftp://x"}"#,
            "`endpoint`",
        ),
        (
            r#"{"function": "f", "region": "us-east-1", "timeout_ms": 0}"#,
            "`timeout_ms`",
        ),
        (
            r#"{"function": "arn:aws:lambda", "region": "us-east-1"}"#,
            "no account",
        ),
        (
            r#"{"function": "f", "region": "us-east-1", "role": "x"}"#,
            "unknown field",
        ),
    ] {
        let err = lambda(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn request_times_are_written_as_api_gateway_writes_them() {
    assert_eq!(
        event::request_time(1_583_348_638_390),
        "04/Mar/2020:19:03:58 +0000"
    );
    assert_eq!(event::request_time(0), "01/Jan/1970:00:00:00 +0000");
}

#[test]
fn v2_results_without_status_are_the_body() {
    let a = result::v2(br#"{"hello": "world"}"#).unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(
        a.headers,
        vec![("content-type".into(), "application/json".into())]
    );
    assert_eq!(a.body, br#"{"hello": "world"}"#);
    assert_eq!(result::v2(b"\"text\"").unwrap().body, b"\"text\"");
    assert!(result::v2(b"not json").is_err());
}

#[test]
fn structured_results_map_every_field() {
    let a = result::v2(
        json!({
            "statusCode": 201,
            "headers": {"content-type": "image/png", "x-n": 1},
            "multiValueHeaders": {"x-multi": ["a", "b"], "content-type": ["lost"]},
            "cookies": ["a=1", "b=2; Secure"],
            "body": "AAEC/w==",
            "isBase64Encoded": true
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(a.status, 201);
    assert_eq!(a.body, vec![0, 1, 2, 255]);
    assert_eq!(
        a.headers,
        vec![
            ("x-multi".into(), "a".into()),
            ("x-multi".into(), "b".into()),
            ("content-type".into(), "image/png".into()),
            ("x-n".into(), "1".into()),
            ("set-cookie".into(), "a=1".into()),
            ("set-cookie".into(), "b=2; Secure".into()),
        ]
    );
    let a = result::v1(br#"{"statusCode": "404", "body": null}"#).unwrap();
    assert_eq!((a.status, a.body.len()), (404, 0));
}

#[test]
fn malformed_results_are_refused() {
    for bad in [
        r#"{"body": "no status"}"#,
        r#"[1, 2]"#,
        r#"{"statusCode": 1000}"#,
        r#"{"statusCode": 200, "headers": {"a": ["x"]}}"#,
        r#"{"statusCode": 200, "body": 5}"#,
        r#"{"statusCode": 200, "body": "%%%", "isBase64Encoded": true}"#,
        r#"{"statusCode": 200, "cookies": ["a=1"]}"#,
    ] {
        assert!(result::v1(bad.as_bytes()).is_err(), "v1 took {bad}");
    }
    assert!(result::v2(br#"{"statusCode": 200, "cookies": [1]}"#).is_err());
    assert!(result::v2(br#"{"statusCode": 200, "cookies": ["a=1"]}"#).is_ok());
}

#[test]
fn events_carry_binary_bodies_in_base64_and_text_as_is() {
    let api = event::Api {
        api_id: "wicket".into(),
        account_id: "000000000000".into(),
        stage: "$default".into(),
        stage_variables: BTreeMap::new(),
    };
    let mut req = event::Incoming {
        method: "POST".into(),
        path: "/p".into(),
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body: b"abc".to_vec(),
        ..Default::default()
    };
    let e = event::v2(&req, &api);
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some("YWJj"), Some(true))
    );
    req.headers = vec![(
        "content-type".into(),
        "application/json; charset=utf-8".into(),
    )];
    let e = event::v1(&req, &api);
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some("abc"), Some(false))
    );
    req.body = vec![0xff, 0xfe];
    let e = event::v1(&req, &api);
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some("//4="), Some(true))
    );
    req.body.clear();
    assert_eq!(event::v1(&req, &api)["body"], serde_json::Value::Null);
    assert!(event::v2(&req, &api).get("body").is_none());
}
