//! `lambda` integration: invokes an AWS Lambda function with API Gateway's proxy event and maps
//! its result back, as API Gateway's Lambda proxy integration does, so a function written for
//! API Gateway runs behind Wicket unchanged.
//!
//! ```toml
//! [plugins.orders]
//! builtin = "lambda"
//! config = { function = "orders-api", region = "eu-west-1", payload_format = "2.0" }
//! ```
//!
//! * `function` (required): the function's name, or its ARN (with a version or alias
//!   qualifier if wanted: `arn:aws:lambda:eu-west-1:123456789012:function:orders-api:live`).
//! * `region` (required): the function's region; the call is signed for it.
//! * `endpoint` (default `https://lambda.{region}.amazonaws.com`): where the Invoke API is,
//!   for a local emulator or a test server.
//! * `payload_format` (`"2.0"` default, or `"1.0"`): the event and result formats.
//! * `timeout_ms` (default 29000): how long to wait for the function.
//! * `stage` (default `$default`), `stage_variables`: what the event says of the stage
//!   (`stage_variables = { table = "${stage.table}" }` under `[stages]`).
//! * `api_id` (default `wicket`), `account_id` (default: the ARN's, else `000000000000`).
//!
//! The call (`POST /2015-03-31/functions/{function}/invocations`) is signed by the gateway
//! with its own AWS credentials (the `aws` capability): the plugin never sees them.
//! A function error (`X-Amz-Function-Error`) or a malformed result answers 502
//! `Internal server error`; an Invoke API error (the function missing, no permission,
//! throttled) 500 `Internal server error`; no answer within `timeout_ms` 504
//! `Endpoint request timed out`; an endpoint that cannot be reached 502. The detail goes to
//! the log, never to the client.

mod event;
mod result;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use wicket_plugin_sdk::{
    auth, aws, export_integration, http, sigv4, BodyUse, Config, Context, Error, Integration,
    Request, Response,
};

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// function name or ARN
    function: String,
    /// the function's region; the call is signed for it
    region: String,
    /// Invoke API origin, default https://lambda.{region}.amazonaws.com
    #[serde(default)]
    endpoint: Option<String>,
    /// "2.0" (default) or "1.0": API Gateway's event and result format
    #[serde(default = "default_format")]
    payload_format: String,
    /// time for the function's answer, default 29000; past it the client gets 504
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u32,
    /// the event's requestContext.stage, default $default
    #[serde(default = "default_stage")]
    stage: String,
    /// the event's stageVariables
    #[serde(default)]
    stage_variables: BTreeMap<String, String>,
    /// the event's requestContext.apiId, default wicket
    #[serde(default = "default_api_id")]
    api_id: String,
    /// the event's requestContext.accountId, default the ARN's account or 000000000000
    #[serde(default)]
    account_id: Option<String>,
}

fn default_format() -> String {
    "2.0".into()
}
fn default_timeout_ms() -> u32 {
    29_000
}
fn default_stage() -> String {
    "$default".into()
}
fn default_api_id() -> String {
    "wicket".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V1,
    V2,
}

struct Lambda {
    url: String,
    region: String,
    format: Format,
    timeout: Duration,
    api: event::Api,
}

fn invalid(message: String) -> String {
    format!("invalid plugin configuration: {message}")
}

/// The function name as the Invoke API's path segment: every byte but unreserved ones
/// percent-encoded (an ARN's `:` becomes `%3A`, as the AWS SDKs send it).
fn path_segment(name: &str) -> String {
    let mut out = String::new();
    sigv4::canonical::uri_encode(name.as_bytes(), false, &mut out);
    out
}

impl Lambda {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        if !sigv4::is_scope_name(&s.region) {
            return Err(invalid(format!(
                "`region` must be a region name like us-east-1, got `{}`",
                s.region
            )));
        }
        let function = s.function.trim();
        let arn_account = function
            .strip_prefix("arn:")
            .and_then(|rest| rest.split(':').nth(3))
            .map(str::to_owned);
        if function.is_empty()
            || function.len() > 256
            || function
                .bytes()
                .any(|b| b <= b' ' || b == b'/' || b >= 0x7f)
        {
            return Err(invalid(format!(
                "`function` must be a function name or ARN (no spaces or '/'), got `{}`",
                s.function
            )));
        }
        if function.starts_with("arn:") && arn_account.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(format!(
                "`function` looks like an ARN but has no account: `{function}`"
            )));
        }
        let format = match s.payload_format.as_str() {
            "2.0" => Format::V2,
            "1.0" => Format::V1,
            other => {
                return Err(invalid(format!(
                    "`payload_format` must be \"2.0\" or \"1.0\", got `{other}`"
                )))
            }
        };
        let endpoint = match &s.endpoint {
            Some(e) => {
                let e = e.trim_end_matches('/');
                let ok = ["http://", "https://"]
                    .iter()
                    .any(|p| e.len() > p.len() && e.starts_with(p))
                    && !e.contains(['?', '#']);
                if !ok {
                    return Err(invalid(format!(
                        "`endpoint` must be an http:// or https:// origin, got `{e}`"
                    )));
                }
                e.to_owned()
            }
            None => format!("https://lambda.{}.amazonaws.com", s.region),
        };
        if s.timeout_ms == 0 {
            return Err(invalid("`timeout_ms` must be positive".into()));
        }
        Ok(Lambda {
            url: format!(
                "{endpoint}/2015-03-31/functions/{}/invocations",
                path_segment(function)
            ),
            region: s.region,
            format,
            timeout: Duration::from_millis(s.timeout_ms.into()),
            api: event::Api {
                api_id: s.api_id,
                account_id: s
                    .account_id
                    .or(arn_account)
                    .unwrap_or_else(|| "000000000000".into()),
                stage: s.stage,
                stage_variables: s.stage_variables,
            },
        })
    }

    fn event(&self, req: &Request, ctx: &Context) -> Vec<u8> {
        let mut headers = Vec::new();
        for name in req.header_names() {
            let lower = name.to_ascii_lowercase();
            for v in req.header_values(&name) {
                headers.push((lower.clone(), v));
            }
        }
        let context = ctx
            .keys()
            .into_iter()
            .filter_map(|k| Some((k.clone(), ctx.get(&k)?)))
            .collect();
        let incoming = event::Incoming {
            method: req.method(),
            path: req.path(),
            query: req.query(),
            headers,
            body: req.body(),
            context,
            now_ms: auth::now_unix_ms(),
        };
        let event = match self.format {
            Format::V1 => event::v1(&incoming, &self.api),
            Format::V2 => event::v2(&incoming, &self.api),
        };
        serde_json::to_vec(&event).expect("a JSON value serializes")
    }
}

/// API Gateway's answer when the function failed or answered something that is no response.
fn internal(status: u16, why: &str) -> Error {
    wicket_plugin_sdk::warn!("lambda: {why}");
    Error::new(status, "Internal server error")
}

impl Integration for Lambda {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new(
            "invokes an AWS Lambda function with API Gateway's proxy event (payload format 1.0 or 2.0)",
        )
        .config::<Settings>()
        .capabilities(&["http", "aws"])
    }

    /// The event carries the body: it is read whole (within `max_body_bytes`).
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        wicket_plugin_sdk::Plan::default().request_body(BodyUse::Whole)
    }

    fn new(config: Config) -> Result<Self, String> {
        Self::from_config(&config)
    }

    fn handle(&self, req: &Request, ctx: &Context) -> Result<Response, Error> {
        let out = http::OutgoingRequest::new("POST", &self.url);
        out.set_body(&self.event(req, ctx));
        out.set_header("content-type", "application/json")
            .and_then(|()| out.set_header("x-amz-invocation-type", "RequestResponse"))
            .map_err(|e| internal(500, &e))?;
        aws::sign(&out, "lambda", &self.region)
            .map_err(|e| internal(500, &format!("cannot sign the Invoke call: {e}")))?;
        let resp = match http::send(out, self.timeout) {
            Ok(r) => r,
            Err(http::HttpError::Timeout) => {
                wicket_plugin_sdk::warn!("lambda: no answer from {} in time", self.url);
                return Err(Error::new(504, "Endpoint request timed out"));
            }
            Err(e) => return Err(internal(502, &format!("Invoke failed: {}", e.describe()))),
        };
        let status = resp.status();
        let payload = resp.body();
        if !(200..300).contains(&status) {
            let detail = String::from_utf8_lossy(&payload[..payload.len().min(512)]).into_owned();
            return Err(internal(
                500,
                &format!("the Invoke API answered {status}: {detail}"),
            ));
        }
        if let Some(kind) = resp.header("x-amz-function-error") {
            let detail = String::from_utf8_lossy(&payload[..payload.len().min(512)]).into_owned();
            return Err(internal(502, &format!("function error ({kind}): {detail}")));
        }
        let answer = match self.format {
            Format::V1 => result::v1(&payload),
            Format::V2 => result::v2(&payload),
        }
        .map_err(|why| internal(502, &format!("malformed Lambda proxy response: {why}")))?;
        let out = Response::new(answer.status);
        for (name, value) in &answer.headers {
            out.append_header(name, value)
                .map_err(|e| internal(502, &format!("malformed Lambda proxy response: {e}")))?;
        }
        out.set_body(&answer.body);
        Ok(out)
    }
}

export_integration!(Lambda);

#[cfg(test)]
mod tests;
