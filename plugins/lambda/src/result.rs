//! A function's result mapped back to an HTTP response, as API Gateway maps it: `statusCode`,
//! `headers`, `multiValueHeaders`, `cookies` (2.0), `body` and `isBase64Encoded`; with payload
//! format 2.0, a result without `statusCode` is the body itself (200, JSON). Anything else is
//! malformed, which the client sees as 502 `Internal server error`. Pure.

use serde_json::{Map, Value};
use wicket_plugin_sdk::auth;

/// The response a result stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Names as the function wrote them; repeated names are separate values.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a result cannot be a response (logged, never shown to the client).
pub type Malformed = String;

/// Payload format 1.0: an object with `statusCode` is required.
pub fn v1(payload: &[u8]) -> Result<Answer, Malformed> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the result is not JSON: {e}"))?;
    let Value::Object(result) = value else {
        return Err("the result is not a JSON object".into());
    };
    structured(&result, false)
}

/// Payload format 2.0: an object with `statusCode` is a response; any other JSON is the body
/// of a 200 `application/json` response.
pub fn v2(payload: &[u8]) -> Result<Answer, Malformed> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the result is not JSON: {e}"))?;
    match &value {
        Value::Object(result) if result.contains_key("statusCode") => structured(result, true),
        _ => Ok(Answer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: payload.to_vec(),
        }),
    }
}

fn text<'a>(v: &'a Value, what: &str) -> Result<&'a str, Malformed> {
    v.as_str()
        .ok_or_else(|| format!("{what} must be a string, got {v}"))
}

/// A header value as API Gateway takes it: strings, and numbers and booleans as written.
fn header_value(v: &Value, what: &str) -> Result<String, Malformed> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("{what} must be a string, got {other}")),
    }
}

fn structured(result: &Map<String, Value>, cookies_allowed: bool) -> Result<Answer, Malformed> {
    let status = match result.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        // Functions written in some languages send the code as a string.
        Some(Value::String(s)) => s.parse().ok(),
        None => return Err("the result has no statusCode".into()),
        Some(_) => None,
    }
    .and_then(|n| u16::try_from(n).ok())
    .filter(|n| (100..=599).contains(n))
    .ok_or_else(|| format!("statusCode {} is not an HTTP status", result["statusCode"]))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    match result.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, values) in m {
                let Value::Array(values) = values else {
                    return Err(format!("multiValueHeaders.{name} must be a list"));
                };
                for v in values {
                    headers.push((
                        name.clone(),
                        header_value(v, &format!("multiValueHeaders.{name}"))?,
                    ));
                }
            }
        }
        Some(_) => return Err("multiValueHeaders must be an object".into()),
    }
    match result.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, v) in m {
                let v = header_value(v, &format!("headers.{name}"))?;
                // `headers` wins over `multiValueHeaders` for the same name.
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                headers.push((name.clone(), v));
            }
        }
        Some(_) => return Err("headers must be an object".into()),
    }
    match result.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) if cookies_allowed => {
            for c in cookies {
                headers.push(("set-cookie".into(), text(c, "cookies[]")?.to_owned()));
            }
        }
        Some(_) if cookies_allowed => return Err("cookies must be a list of strings".into()),
        Some(_) => return Err("cookies is a payload format 2.0 field".into()),
    }
    let base64 = match result.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("isBase64Encoded must be a boolean, got {other}")),
    };
    let body = match result.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => {
            let s = text(v, "body")?;
            if base64 {
                auth::base64_decode(s).ok_or("the body is not valid base64")?
            } else {
                s.as_bytes().to_vec()
            }
        }
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}
