//! A function: the code behind a route, run in-process as a WebAssembly component, as a Lambda
//! function runs behind API Gateway. It keeps each caller's notes in the gateway's `kv` store
//! and, when `directory_url` is configured, looks up the note's id over `http`.
//!
//! ```toml
//! [plugins.notes]
//! wasm = "notes_function.wasm"
//! grants = ["kv", "http"]
//! isolation = "pooled"
//! config = { directory_url = "http://127.0.0.1:9000/directory", stage = "prod" }
//!
//! [[routes]]
//! path = "/notes/{id}"
//! plugins = ["keys"]          # an auth filter sets `principal`
//! integration = "notes"
//! ```
//!
//! * `PUT /notes/{id}` stores the body (at most 64 KiB) as the caller's note `id`: 201.
//! * `GET /notes/{id}` answers `{"id", "owner", "note", "stage", "directory"}`, 404 when the
//!   caller has no such note. Another caller's note with the same id is never seen: keys are
//!   `principal/id`.
//! * `DELETE /notes/{id}`: 204.
//!
//! What it reads from the request's context: `principal` (set by the route's auth filter;
//! refused with 401 when absent), `param.id` (the path parameter), `request_id`.

use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use wicket_plugin_sdk::{
    export_integration, http, kv, Config, Context, Description, Error, Integration, Request,
    Response,
};

/// The function's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// URL of a directory service; `GET {directory_url}/{id}` is merged into each answer
    #[serde(default)]
    directory_url: Option<String>,
    /// the deployment stage this function runs in, echoed in each answer (a stage variable)
    #[serde(default)]
    stage: Option<String>,
}

const MAX_NOTE: usize = 64 << 10;

struct Notes {
    settings: Settings,
}

fn json_response(status: u16, value: serde_json::Value) -> Response {
    let resp = Response::new(status);
    let _ = resp.set_header("content-type", "application/json");
    resp.set_body(value.to_string().as_bytes());
    resp
}

impl Notes {
    /// The directory's entry for `id`, or `null` when there is no directory or it failed
    /// (a note is still served when the directory is down).
    fn directory(&self, id: &str) -> serde_json::Value {
        let Some(base) = &self.settings.directory_url else {
            return serde_json::Value::Null;
        };
        let url = format!("{}/{id}", base.trim_end_matches('/'));
        let req = http::OutgoingRequest::new("GET", &url);
        match http::send(req, Duration::from_secs(2)) {
            Ok(resp) if resp.status() == 200 => {
                serde_json::from_slice(&resp.body()).unwrap_or(serde_json::Value::Null)
            }
            Ok(resp) => json!({ "status": resp.status() }),
            Err(e) => {
                wicket_plugin_sdk::warn!("notes: directory lookup failed: {}", e.describe());
                serde_json::Value::Null
            }
        }
    }
}

impl Integration for Notes {
    fn describe() -> Description {
        Description::new("a per-caller notes API on kv, enriched from a directory over http")
            .config::<Settings>()
            .capabilities(&["kv", "http"])
    }

    fn new(config: Config) -> Result<Self, String> {
        Ok(Notes {
            settings: config.parse()?,
        })
    }

    fn handle(&self, req: &Request, ctx: &Context) -> Result<Response, Error> {
        let Some(owner) = ctx.get("principal") else {
            return Err(Error {
                status: 401,
                message: "Unauthorized".into(),
            });
        };
        let id = ctx.get("param.id").unwrap_or_default();
        let key = format!("{owner}/{id}");
        let store_failed = |e: String| {
            wicket_plugin_sdk::error!("notes: kv: {e}");
            Error::internal()
        };
        match req.method().as_str() {
            "PUT" => {
                let body = req.body();
                if body.len() > MAX_NOTE {
                    return Ok(json_response(413, json!({ "message": "note too large" })));
                }
                kv::set(&key, &body, None).map_err(store_failed)?;
                Ok(json_response(
                    201,
                    json!({ "id": id, "owner": owner, "bytes": body.len() }),
                ))
            }
            "GET" => match kv::get(&key).map_err(store_failed)? {
                None => Ok(json_response(404, json!({ "message": "no such note" }))),
                Some(note) => Ok(json_response(
                    200,
                    json!({
                        "id": id,
                        "owner": owner,
                        "note": String::from_utf8_lossy(&note),
                        "stage": self.settings.stage,
                        "directory": self.directory(&id),
                        "requestId": ctx.get("request_id"),
                    }),
                )),
            },
            "DELETE" => {
                kv::delete(&key).map_err(store_failed)?;
                Ok(Response::new(204))
            }
            _ => Ok(json_response(
                405,
                json!({ "message": "Method not allowed" }),
            )),
        }
    }
}

export_integration!(Notes);
