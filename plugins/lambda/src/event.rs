//! API Gateway's Lambda proxy event, payload format 1.0 and 2.0, built exactly as AWS documents
//! them ("Working with AWS Lambda proxy integrations for HTTP APIs"): every field of the
//! documented examples, from the request after the route's filters and its context. Pure: the
//! request, context and clock are arguments.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use wicket_plugin_sdk::auth;
use wicket_plugin_sdk::query::Query;
use wicket_plugin_sdk::sigv4::time::format_iso_basic;

/// The request as the integration received it.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub method: String,
    /// The path as received.
    pub path: String,
    pub query: Option<String>,
    /// Lower-case names, every value, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every key of the request context.
    pub context: Vec<(String, String)>,
    /// Milliseconds since the epoch.
    pub now_ms: u64,
}

/// What API Gateway knows about the API that the gateway takes from the config.
#[derive(Debug, Clone)]
pub struct Api {
    pub api_id: String,
    pub account_id: String,
    pub stage: String,
    pub stage_variables: BTreeMap<String, String>,
}

/// Context keys that have a place of their own in the event, not in the authorizer's.
const OWN_PLACE: &[&str] = &["request_id", "route", "client_ip"];

impl Incoming {
    fn ctx(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn path_parameters(&self) -> Option<Map<String, Value>> {
        let params: Map<String, Value> = self
            .context
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("param.")?.to_owned(), json!(v))))
            .collect();
        (!params.is_empty()).then_some(params)
    }

    /// What the filters before learned about the caller: `principal` as `principalId`,
    /// and every other context key but those with a place of their own.
    fn authorizer_context(&self) -> Option<Map<String, Value>> {
        let principal = self.ctx(auth::PRINCIPAL)?;
        let mut out = Map::new();
        out.insert("principalId".into(), json!(principal));
        for (k, v) in &self.context {
            if k != auth::PRINCIPAL && !OWN_PLACE.contains(&k.as_str()) && !k.starts_with("param.")
            {
                out.insert(k.clone(), json!(v));
            }
        }
        Some(out)
    }

    /// The body as the event carries it: text as is, anything else in base64.
    fn body(&self) -> Option<(String, bool)> {
        if self.body.is_empty() {
            return None;
        }
        let textual = self.header("content-type").is_none_or(is_text);
        match std::str::from_utf8(&self.body) {
            Ok(text) if textual => Some((text.to_owned(), false)),
            _ => Some((auth::base64_encode(&self.body), true)),
        }
    }

    fn domain(&self) -> (String, String) {
        let domain = self.header("host").unwrap_or_default().to_owned();
        let prefix = domain
            .split(['.', ':'])
            .next()
            .unwrap_or_default()
            .to_owned();
        (domain, prefix)
    }
}

/// Media types whose bodies travel as text; anything else is base64 (API Gateway's binary
/// handling for HTTP APIs).
fn is_text(content_type: &str) -> bool {
    let media = wicket_plugin_sdk::body::media_type(content_type);
    media.starts_with("text/")
        || matches!(
            media.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
        )
        || media.ends_with("+json")
        || media.ends_with("+xml")
}

/// `12/Mar/2020:19:03:58 +0000`, as API Gateway writes request times.
pub fn request_time(now_ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 20200312T190358Z
    let iso = format_iso_basic(now_ms / 1000);
    let month: usize = iso[4..6].parse().unwrap_or(1);
    format!(
        "{}/{}/{}:{}:{}:{} +0000",
        &iso[6..8],
        MONTHS[month.clamp(1, 12) - 1],
        &iso[0..4],
        &iso[9..11],
        &iso[11..13],
        &iso[13..15]
    )
}

fn or_null(v: Option<Map<String, Value>>) -> Value {
    v.map(Value::Object).unwrap_or(Value::Null)
}

/// Payload format 1.0 (REST APIs' proxy event, and HTTP APIs' `1.0`).
pub fn v1(req: &Incoming, api: &Api) -> Value {
    let mut headers = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    for (n, v) in &req.headers {
        headers.insert(n.clone(), json!(v));
        match multi_headers.get_mut(n) {
            Some(Value::Array(a)) => a.push(json!(v)),
            _ => {
                multi_headers.insert(n.clone(), json!([v]));
            }
        }
    }
    let query = Query::parse(req.query.as_deref().unwrap_or(""));
    let (single, multi) = if query.is_empty() {
        (Value::Null, Value::Null)
    } else {
        let mut single = Map::new();
        let mut multi: Map<String, Value> = Map::new();
        for (n, v) in query.pairs() {
            // The first value, as the documented example has it (headers: the last).
            single.entry(n.to_owned()).or_insert_with(|| json!(v));
            match multi.get_mut(n) {
                Some(Value::Array(a)) => a.push(json!(v)),
                _ => {
                    multi.insert(n.to_owned(), json!([v]));
                }
            }
        }
        (Value::Object(single), Value::Object(multi))
    };
    let request_id = req.ctx("request_id").unwrap_or_default();
    let (domain, prefix) = req.domain();
    let user_agent = req.header("user-agent");
    let sigv4 = req.ctx(auth::METHOD) == Some("sigv4");
    let principal = req.ctx(auth::PRINCIPAL);
    let authorizer = match req.authorizer_context() {
        Some(a) => Value::Object(a),
        None => json!({ "claims": null, "scopes": null }),
    };
    let body = req.body();
    json!({
        "version": "1.0",
        "resource": req.path,
        "path": req.path,
        "httpMethod": req.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "requestContext": {
            "accountId": api.account_id,
            "apiId": api.api_id,
            "authorizer": authorizer,
            "domainName": domain,
            "domainPrefix": prefix,
            "extendedRequestId": request_id,
            "httpMethod": req.method,
            "identity": {
                "accessKey": if sigv4 { req.ctx("auth.access_key") } else { None },
                "accountId": null,
                "caller": if sigv4 { principal } else { None },
                "cognitoAuthenticationProvider": null,
                "cognitoAuthenticationType": null,
                "cognitoIdentityId": null,
                "cognitoIdentityPoolId": null,
                "principalOrgId": null,
                "sourceIp": req.ctx("client_ip").unwrap_or_default(),
                "user": if sigv4 { principal } else { None },
                "userAgent": user_agent,
                "userArn": if sigv4 { principal } else { None },
            },
            "path": req.path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": request_time(req.now_ms),
            "requestTimeEpoch": req.now_ms,
            "resourceId": null,
            "resourcePath": req.path,
            "stage": api.stage,
        },
        "pathParameters": or_null(req.path_parameters()),
        "stageVariables": stage_variables(api).map(Value::Object).unwrap_or(Value::Null),
        "body": body.as_ref().map(|(b, _)| b.as_str()),
        "isBase64Encoded": body.is_some_and(|(_, b64)| b64),
    })
}

fn stage_variables(api: &Api) -> Option<Map<String, Value>> {
    (!api.stage_variables.is_empty()).then(|| {
        api.stage_variables
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect()
    })
}

/// Payload format 2.0 (HTTP APIs).
pub fn v2(req: &Incoming, api: &Api) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<String> = Vec::new();
    for (n, v) in &req.headers {
        if n == "cookie" {
            cookies.extend(
                v.split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        match headers.get_mut(n) {
            Some(Value::String(s)) => {
                s.push(',');
                s.push_str(v);
            }
            _ => {
                headers.insert(n.clone(), json!(v));
            }
        }
    }
    let raw_query = req.query.clone().unwrap_or_default();
    let query = Query::parse(&raw_query);
    let mut params: Map<String, Value> = Map::new();
    for (n, v) in query.pairs() {
        match params.get_mut(n) {
            Some(Value::String(s)) => {
                s.push(',');
                s.push_str(v);
            }
            _ => {
                params.insert(n.to_owned(), json!(v));
            }
        }
    }
    let (domain, prefix) = req.domain();
    let request_id = req.ctx("request_id").unwrap_or_default();
    let mut context = json!({
        "accountId": api.account_id,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": prefix,
        "http": {
            "method": req.method,
            "path": req.path,
            "protocol": "HTTP/1.1",
            "sourceIp": req.ctx("client_ip").unwrap_or_default(),
            "userAgent": req.header("user-agent").unwrap_or_default(),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": api.stage,
        "time": request_time(req.now_ms),
        "timeEpoch": req.now_ms,
    });
    if let Some(lambda) = req.authorizer_context() {
        let mut authorizer = Map::new();
        if req.ctx(auth::METHOD) == Some("jwt") {
            let scopes: Vec<&str> = req
                .ctx(auth::SCOPES)
                .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            authorizer.insert(
                "jwt".into(),
                json!({ "claims": { "sub": lambda["principalId"] }, "scopes": scopes }),
            );
        }
        authorizer.insert("lambda".into(), Value::Object(lambda));
        context["authorizer"] = Value::Object(authorizer);
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !params.is_empty() {
        event["queryStringParameters"] = Value::Object(params);
    }
    if let Some(p) = req.path_parameters() {
        event["pathParameters"] = Value::Object(p);
    }
    if let Some(s) = stage_variables(api) {
        event["stageVariables"] = Value::Object(s);
    }
    if let Some((body, b64)) = req.body() {
        event["body"] = json!(body);
        event["isBase64Encoded"] = json!(b64);
    }
    event
}
