//! `json-map` filter: reshapes JSON request and response bodies with jq programs (run by jaq,
//! compiled once per plugin instance), and maps headers and query parameters, like API Gateway's
//! mapping templates and parameter mapping.
//!
//! ```toml
//! [plugins.reshape]
//! builtin = "json-map"
//! config.request.body = '{name: .fullName, pet_id: ($params.id | tonumber), by: $ctx.principal}'
//! config.request.headers = { set = { "x-user" = '$headers["x-user-id"] // "anonymous"' }, rename = { "x-old" = "x-new" }, remove = ["x-debug"] }
//! config.request.query = { set = { "limit" = '$query.limit // "20"' }, rename = { "q" = "search" }, remove = ["debug"] }
//! config.response.body = '{data: ., status: $status}'
//! config.response.headers = { set = { "x-count" = '.items | length' } }
//! ```
//!
//! * `request.body`, `response.body`: a jq program whose input `.` is the body parsed as JSON
//!   (`null` when empty); its one output becomes the new body (`Content-Type:
//!   application/json`). A request whose `Content-Type` is not JSON gets 415; a response whose
//!   `Content-Type` is not JSON passes untouched; a body that is not valid JSON gets 400
//!   (request) or 502 (response) with the parse error's line and column.
//! * `headers.set`, `query.set`: name -> jq expression, evaluated on the body as it arrived
//!   (`null` when empty or not JSON). A string output is the value, a number or boolean its
//!   text; `null` or no output leaves the name alone; an array or object is an error.
//! * `headers.rename`, `query.rename`: old name -> new name (all values move).
//!   `headers.remove`, `query.remove`: names. Applied in the order rename, remove, set.
//!   `query` exists for the request only.
//!
//! Variables every program sees: `$ctx` (the context: `request_id`, `route`, `client_ip`,
//! `principal`, ...), `$params` (path parameters), `$query` (first value of each query
//! parameter, decoded), `$headers` (request headers, lower-case names, repeated values joined
//! with `, `), `$method`, `$path`; in the response phase also `$status` (a number) and
//! `$response_headers` (`null` and `{}` in the request phase). jaq's whole standard library is
//! there (`map`, `select`, `test`/`sub` regexes, `@base64`/`@uri`/`@csv`, dates, math).
//!
//! A program that does not compile is refused at load (`wicket check` prints it with the line of
//! the plugin's `config` and the position inside the program). A program that fails on a
//! request (an error, no output, more than one output, or a non-string header value) answers
//! `500 json-map: ... mapping failed`, with the detail in the log; a program that runs past the
//! plugin's CPU time or memory is stopped by the gateway (500).

use std::collections::BTreeMap;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::Val;
use serde::Deserialize;
use serde_json::{Map, Value};
use wicket_plugin_sdk::body::{
    is_json, line_column, set_request_body, set_response_body, JsonError,
};
use wicket_plugin_sdk::header::is_header_name;
use wicket_plugin_sdk::query::Query;
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request, Response};

/// The global variables, in the order their values are given.
const VARS: [&str; 8] = [
    "$ctx",
    "$params",
    "$query",
    "$headers",
    "$method",
    "$path",
    "$status",
    "$response_headers",
];

type Program = jaq_core::Filter<JustLut<Val>>;

/// One mapping side of the `config` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestSettings {
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    headers: Option<ParamSettings>,
    #[serde(default)]
    query: Option<ParamSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseSettings {
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    headers: Option<ParamSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSettings {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    rename: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Debug, Default, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// { body = "jq program", headers = { set = { name = "jq" }, rename = { old = "new" }, remove = ["name"] }, query = { the same } }; programs see the body as . and $ctx, $params, $query, $headers, $method, $path
    #[serde(default)]
    request: RequestSettings,
    /// { body = "jq program", headers = { set, rename, remove } } applied on the way out; also $status and $response_headers
    #[serde(default)]
    response: ResponseSettings,
}

/// A compiled program and where it came from (for messages).
struct Compiled {
    key: String,
    program: Program,
}

/// Compiled edits of headers or query parameters.
#[derive(Default)]
struct ParamMap {
    set: Vec<(String, Compiled)>,
    rename: Vec<(String, String)>,
    remove: Vec<String>,
}

impl ParamMap {
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.rename.is_empty() && self.remove.is_empty()
    }
}

#[derive(Default)]
struct Side {
    body: Option<Compiled>,
    headers: ParamMap,
    query: ParamMap,
}

struct JsonMap {
    request: Side,
    response: Side,
}

/// Compiles `code` (the config key `key`), reporting errors with their line and column in the
/// program.
fn compile(key: &str, code: &str) -> Result<Compiled, String> {
    let position = |found: &str| {
        let offset = (found.as_ptr() as usize).saturating_sub(code.as_ptr() as usize);
        let (line, column) = line_column(code.as_bytes(), offset);
        format!("line {line}, column {column}")
    };
    let fail = |what: String| format!("invalid plugin configuration: `{key}`: {what}");
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code, path: () })
        .map_err(|errors| {
            let mut messages = Vec::new();
            for (_, error) in errors {
                match error {
                    jaq_core::load::Error::Io(items) => {
                        for (path, e) in items {
                            messages.push(format!("cannot load module `{path}`: {e}"));
                        }
                    }
                    jaq_core::load::Error::Lex(items) => {
                        for (expect, found) in items {
                            messages.push(format!(
                                "jq syntax error at {}: expected {}",
                                position(found),
                                expect.as_str()
                            ));
                        }
                    }
                    jaq_core::load::Error::Parse(items) => {
                        for (expect, found) in items {
                            let got = if found.is_empty() {
                                "end of program".to_owned()
                            } else {
                                format!("`{}`", found.chars().take(20).collect::<String>())
                            };
                            messages.push(format!(
                                "jq syntax error at {}: expected {}, found {got}",
                                position(found),
                                expect.as_str()
                            ));
                        }
                    }
                }
            }
            fail(messages.join("; "))
        })?;
    let program = Compiler::default()
        .with_funs(funs)
        .with_global_vars(VARS)
        .compile(modules)
        .map_err(|errors| {
            let mut messages = Vec::new();
            for (_, items) in errors {
                for (name, undefined) in items {
                    messages.push(format!(
                        "jq error at {}: undefined {} `{name}`",
                        position(name),
                        undefined.as_str()
                    ));
                }
            }
            fail(messages.join("; "))
        })?;
    Ok(Compiled {
        key: key.to_owned(),
        program,
    })
}

fn compile_params(
    prefix: &str,
    settings: Option<ParamSettings>,
    names_are_headers: bool,
) -> Result<ParamMap, String> {
    let Some(s) = settings else {
        return Ok(ParamMap::default());
    };
    let check = |name: &str| {
        let ok = if names_are_headers {
            is_header_name(name)
        } else {
            !name.is_empty()
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid plugin configuration: `{prefix}` has an invalid name `{name}`"
            ))
        }
    };
    let lower = |name: &str| {
        if names_are_headers {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        }
    };
    let mut map = ParamMap::default();
    for (from, to) in &s.rename {
        check(from)?;
        check(to)?;
        map.rename.push((lower(from), lower(to)));
    }
    for name in &s.remove {
        check(name)?;
        map.remove.push(lower(name));
    }
    for (name, code) in &s.set {
        check(name)?;
        let compiled = compile(&format!("{prefix}.set.{name}"), code)?;
        map.set.push((lower(name), compiled));
    }
    Ok(map)
}

impl JsonMap {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        let request = Side {
            body: s
                .request
                .body
                .as_deref()
                .map(|code| compile("request.body", code))
                .transpose()?,
            headers: compile_params("request.headers", s.request.headers, true)?,
            query: compile_params("request.query", s.request.query, false)?,
        };
        let response = Side {
            body: s
                .response
                .body
                .as_deref()
                .map(|code| compile("response.body", code))
                .transpose()?,
            headers: compile_params("response.headers", s.response.headers, true)?,
            query: ParamMap::default(),
        };
        let nothing =
            |side: &Side| side.body.is_none() && side.headers.is_empty() && side.query.is_empty();
        if nothing(&request) && nothing(&response) {
            return Err("invalid plugin configuration: nothing to map; set `request.body`, `request.headers`, `request.query`, `response.body` or `response.headers`".to_owned());
        }
        Ok(Self { request, response })
    }
}

/// The variables' values for one phase.
struct Env {
    values: Vec<Val>,
}

fn to_val(value: Value) -> Val {
    // Every serde_json value has a jaq form.
    serde_json::from_value(value).unwrap_or(Val::Null)
}

fn headers_object(names: Vec<String>, values: impl Fn(&str) -> Vec<String>) -> Value {
    let mut map = Map::new();
    for name in names {
        let joined = values(&name).join(", ");
        map.insert(name, Value::String(joined));
    }
    Value::Object(map)
}

impl Env {
    fn new(req: &Request, ctx: &Context, resp: Option<&Response>) -> Self {
        let mut context = Map::new();
        let mut params = Map::new();
        for key in ctx.keys() {
            if let Some(value) = ctx.get(&key) {
                if let Some(name) = key.strip_prefix("param.") {
                    params.insert(name.to_owned(), Value::String(value.clone()));
                }
                context.insert(key, Value::String(value));
            }
        }
        let mut query = Map::new();
        if let Some(raw) = req.query() {
            for (name, value) in Query::parse(&raw).pairs() {
                query
                    .entry(name.to_owned())
                    .or_insert_with(|| Value::String(value.to_owned()));
            }
        }
        let headers = headers_object(req.header_names(), |n| req.header_values(n));
        let (status, response_headers) = match resp {
            Some(r) => (
                Value::from(r.status()),
                headers_object(r.header_names(), |n| r.header_values(n)),
            ),
            None => (Value::Null, Value::Object(Map::new())),
        };
        let values = [
            Value::Object(context),
            Value::Object(params),
            Value::Object(query),
            headers,
            Value::String(req.method()),
            Value::String(req.path()),
            status,
            response_headers,
        ];
        Self {
            values: values.into_iter().map(to_val).collect(),
        }
    }
}

/// Runs `compiled` on `input`: its single output, `None` for no output, or what went wrong.
fn run(compiled: &Compiled, input: Val, env: &Env) -> Result<Option<Val>, String> {
    let ctx =
        Ctx::<JustLut<Val>>::new(&compiled.program.lut, Vars::new(env.values.iter().cloned()));
    let mut outputs = compiled
        .program
        .id
        .run((ctx, input))
        .map(jaq_core::unwrap_valr);
    let first = match outputs.next() {
        None => return Ok(None),
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(format!("`{}` failed: {e}", compiled.key)),
    };
    match outputs.next() {
        None => Ok(Some(first)),
        Some(Ok(_)) => Err(format!("`{}` produced more than one value", compiled.key)),
        Some(Err(e)) => Err(format!("`{}` failed: {e}", compiled.key)),
    }
}

/// The text of a header or query value, `None` for null.
fn as_text(key: &str, value: Val) -> Result<Option<String>, String> {
    match value {
        Val::Null => Ok(None),
        Val::TStr(bytes) | Val::BStr(bytes) => {
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        v @ (Val::Bool(_) | Val::Num(_)) => Ok(Some(v.to_string())),
        other => Err(format!(
            "`{key}` must give a string, number, boolean or null, not {other}"
        )),
    }
}

/// Parses a body for the programs: `null` when empty.
fn parse_body(body: &[u8]) -> Result<Val, JsonError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Val::Null);
    }
    serde_json::from_slice(body).map_err(|e| JsonError::from_serde(&e))
}

/// Evaluates every `set` expression on `input`: (name, Some(value)) to set.
fn evaluate_sets(map: &ParamMap, input: &Val, env: &Env) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (name, compiled) in &map.set {
        if let Some(value) = run(compiled, input.clone(), env)? {
            if let Some(text) = as_text(&compiled.key, value)? {
                out.push((name.clone(), text));
            }
        }
    }
    Ok(out)
}

fn mapping_failed(phase: &str, detail: &str) -> Error {
    wicket_plugin_sdk::error!("json-map: {phase} mapping failed: {detail}");
    Error::new(500, format!("json-map: {phase} mapping failed"))
}

/// Header operations common to requests and responses.
trait Headers {
    fn values(&self, name: &str) -> Vec<String>;
    fn remove(&self, name: &str);
    fn append(&self, name: &str, value: &str) -> Result<(), String>;
    fn set(&self, name: &str, value: &str) -> Result<(), String>;
}

impl Headers for Request {
    fn values(&self, name: &str) -> Vec<String> {
        self.header_values(name)
    }
    fn remove(&self, name: &str) {
        self.remove_header(name)
    }
    fn append(&self, name: &str, value: &str) -> Result<(), String> {
        self.append_header(name, value)
    }
    fn set(&self, name: &str, value: &str) -> Result<(), String> {
        self.set_header(name, value)
    }
}

impl Headers for Response {
    fn values(&self, name: &str) -> Vec<String> {
        self.header_values(name)
    }
    fn remove(&self, name: &str) {
        self.remove_header(name)
    }
    fn append(&self, name: &str, value: &str) -> Result<(), String> {
        self.append_header(name, value)
    }
    fn set(&self, name: &str, value: &str) -> Result<(), String> {
        self.set_header(name, value)
    }
}

fn apply_headers(
    target: &impl Headers,
    map: &ParamMap,
    sets: Vec<(String, String)>,
) -> Result<(), String> {
    for (from, to) in &map.rename {
        let values = target.values(from);
        if values.is_empty() {
            continue;
        }
        target.remove(from);
        target.remove(to);
        for v in &values {
            target
                .append(to, v)
                .map_err(|e| format!("renaming `{from}` to `{to}`: {e}"))?;
        }
    }
    for name in &map.remove {
        target.remove(name);
    }
    for (name, value) in sets {
        target
            .set(&name, &value)
            .map_err(|e| format!("setting header `{name}`: {e}"))?;
    }
    Ok(())
}

fn apply_query(query: &mut Query, map: &ParamMap, sets: Vec<(String, String)>) {
    for (from, to) in &map.rename {
        query.rename(from, to);
    }
    for name in &map.remove {
        query.remove(name);
    }
    for (name, value) in sets {
        query.set(&name, &value);
    }
}

impl Filter for JsonMap {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("reshapes JSON bodies with jq programs and maps headers and query parameters (set from jq expressions, rename, remove)")
            .config::<Settings>()
    }

    /// A side with a body program reads that body whole.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        let body = |side: &Side| match side.body {
            Some(_) => wicket_plugin_sdk::BodyUse::Whole,
            None => wicket_plugin_sdk::BodyUse::None,
        };
        wicket_plugin_sdk::Plan::default()
            .request_body(body(&self.request))
            .response_body(body(&self.response))
    }

    fn new(config: Config) -> Result<Self, String> {
        JsonMap::from_config(&config)
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        let side = &self.request;
        let needs_sets = !side.headers.set.is_empty() || !side.query.set.is_empty();
        if side.body.is_none() && !needs_sets && side.headers.is_empty() && side.query.is_empty() {
            return Ok(Action::Continue);
        }
        let content_type = req.header("content-type");
        if side.body.is_some() && content_type.is_some() && !is_json(content_type.as_deref()) {
            return Err(Error::new(
                415,
                "Unsupported Media Type: the body must be application/json",
            ));
        }
        let env = Env::new(req, ctx, None);
        let mut input = Val::Null;
        if side.body.is_some() || needs_sets {
            let body = req.body();
            input = match parse_body(&body) {
                Ok(v) => v,
                Err(e) if side.body.is_some() => {
                    return Err(Error::bad_request(format!("Invalid JSON body: {e}")))
                }
                // Expressions of headers and query parameters see `null` for a non-JSON body.
                Err(_) => Val::Null,
            };
        }
        let header_sets = evaluate_sets(&side.headers, &input, &env)
            .map_err(|e| mapping_failed("request", &e))?;
        let query_sets =
            evaluate_sets(&side.query, &input, &env).map_err(|e| mapping_failed("request", &e))?;
        if let Some(body) = &side.body {
            let output = run(body, input, &env)
                .and_then(|v| v.ok_or_else(|| "`request.body` produced no value".to_owned()))
                .map_err(|e| mapping_failed("request", &e))?;
            set_request_body(req, output.to_string().as_bytes(), Some("application/json"))
                .map_err(|e| mapping_failed("request", &e))?;
        }
        apply_headers(req, &side.headers, header_sets)
            .map_err(|e| mapping_failed("request", &e))?;
        if !side.query.is_empty() {
            let mut query = Query::parse(req.query().as_deref().unwrap_or(""));
            apply_query(&mut query, &side.query, query_sets);
            req.set_query(query.to_query_string().as_deref());
        }
        Ok(Action::Continue)
    }

    fn on_response(&self, req: &Request, resp: &Response, ctx: &Context) -> Result<(), Error> {
        let side = &self.response;
        if side.body.is_none() && side.headers.is_empty() {
            return Ok(());
        }
        let content_type = resp.header("content-type");
        let json_body = content_type.is_none() || is_json(content_type.as_deref());
        let env = Env::new(req, ctx, Some(resp));
        let mut input = Val::Null;
        if json_body && (side.body.is_some() || !side.headers.set.is_empty()) {
            let body = resp.body();
            input = match parse_body(&body) {
                Ok(v) => v,
                Err(e) if side.body.is_some() => {
                    wicket_plugin_sdk::warn!("json-map: upstream body is not JSON: {e}");
                    return Err(Error::new(
                        502,
                        format!("Invalid JSON in the upstream response: {e}"),
                    ));
                }
                Err(_) => Val::Null,
            };
        }
        let header_sets = evaluate_sets(&side.headers, &input, &env)
            .map_err(|e| mapping_failed("response", &e))?;
        if let (Some(body), true) = (&side.body, json_body) {
            let output = run(body, input, &env)
                .and_then(|v| v.ok_or_else(|| "`response.body` produced no value".to_owned()))
                .map_err(|e| mapping_failed("response", &e))?;
            set_response_body(
                resp,
                output.to_string().as_bytes(),
                Some("application/json"),
            )
            .map_err(|e| mapping_failed("response", &e))?;
        }
        apply_headers(resp, &side.headers, header_sets)
            .map_err(|e| mapping_failed("response", &e))?;
        Ok(())
    }
}

export_filter!(JsonMap);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(vars: Value) -> Env {
        let values = VARS
            .iter()
            .map(|name| to_val(vars.get(&name[1..]).cloned().unwrap_or(Value::Null)))
            .collect();
        Env { values }
    }

    fn eval(code: &str, input: Value, vars: Value) -> Result<Option<Value>, String> {
        let compiled = compile("t", code)?;
        let out = run(&compiled, to_val(input), &env(vars))?;
        Ok(out.map(|v| serde_json::from_str(&v.to_string()).unwrap()))
    }

    fn plugin(config: Value) -> Result<JsonMap, String> {
        JsonMap::from_config(&Config::from_value(config).unwrap())
    }

    #[test]
    fn programs_see_the_body_and_the_variables() {
        let out = eval(
            r#"{name: .first + " " + .last, id: ($params.id | tonumber), by: $ctx.principal, limit: ($query.limit // "10"), agent: $headers["user-agent"], m: $method, p: $path, s: $status}"#,
            json!({"first": "Ada", "last": "Lovelace"}),
            json!({"params": {"id": "42"}, "ctx": {"principal": "u1"}, "query": {}, "headers": {"user-agent": "t/1"}, "method": "POST", "path": "/x", "status": 201}),
        )
        .unwrap();
        assert_eq!(
            out,
            Some(
                json!({"name": "Ada Lovelace", "id": 42, "by": "u1", "limit": "10", "agent": "t/1", "m": "POST", "p": "/x", "s": 201})
            )
        );
        // Standard library: map, select, length, @base64, keys order kept.
        assert_eq!(
            eval(
                "[.[] | select(. > 1) | . * 2] | {n: length, v: ., b: (\"hi\" | @base64)}",
                json!([1, 2, 3]),
                json!({})
            )
            .unwrap(),
            Some(json!({"n": 2, "v": [4, 6], "b": "aGk="}))
        );
        assert_eq!(eval("empty", json!(1), json!({})).unwrap(), None);
    }

    #[test]
    fn run_errors_are_reported() {
        let err = eval(".a.b", json!({"a": [1]}), json!({})).unwrap_err();
        assert!(err.starts_with("`t` failed: "), "{err}");
        let err = eval(".[]", json!([1, 2]), json!({})).unwrap_err();
        assert!(err.contains("more than one value"), "{err}");
        let err = eval("error(\"boom\")", json!(null), json!({})).unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = compile("request.body", "{a: .b,\n  c: (.d | }")
            .err()
            .unwrap();
        assert!(
            err.starts_with(
                "invalid plugin configuration: `request.body`: jq syntax error at line 2"
            ),
            "{err}"
        );
        let err = compile("request.body", ".a | nosuchfn(1)").err().unwrap();
        assert!(
            err.contains("undefined")
                && err.contains("nosuchfn")
                && err.contains("line 1, column 6"),
            "{err}"
        );
        let err = compile("request.body", "$nope").err().unwrap();
        assert!(
            err.contains("undefined variable") && err.contains("line 1, column 1"),
            "{err}"
        );
        let err = compile("x", "\"unterminated").err().unwrap();
        assert!(err.contains("jq syntax error at line 1"), "{err}");
    }

    #[test]
    fn header_values_must_be_scalars() {
        assert_eq!(
            as_text("k", Val::from("v".to_owned())).unwrap(),
            Some("v".into())
        );
        assert_eq!(as_text("k", Val::from(3usize)).unwrap(), Some("3".into()));
        assert_eq!(as_text("k", Val::Bool(true)).unwrap(), Some("true".into()));
        assert_eq!(as_text("k", Val::Null).unwrap(), None);
        assert!(as_text("k", to_val(json!([1])))
            .unwrap_err()
            .contains("`k` must give"));
    }

    #[test]
    fn query_edits() {
        let map = plugin(json!({"request": {"query": {"rename": {"q": "search"}, "remove": ["debug"], "set": {"limit": "\"20\""}}}})).unwrap();
        let mut q = Query::parse("q=a%20b&debug=1&limit=5&x=y");
        apply_query(
            &mut q,
            &map.request.query,
            vec![("limit".into(), "20".into())],
        );
        assert_eq!(
            q.to_query_string().as_deref(),
            Some("search=a%20b&limit=20&x=y")
        );
    }

    #[test]
    fn config_errors() {
        for (config, needle) in [
            (json!({}), "nothing to map"),
            (
                json!({"request": {"body": ".a |"}}),
                "`request.body`: jq syntax error",
            ),
            (
                json!({"request": {"headers": {"set": {"x-a": "$nope"}}}}),
                "`request.headers.set.x-a`",
            ),
            (
                json!({"request": {"headers": {"set": {"bad name": "1"}}}}),
                "invalid name `bad name`",
            ),
            (json!({"response": {"query": {}}}), "unknown field `query`"),
            (json!({"request": {"bodyy": "."}}), "unknown field `bodyy`"),
        ] {
            let err = plugin(config.clone()).err().unwrap_or_default();
            assert!(err.contains(needle), "{config}: {err}");
        }
        assert!(plugin(json!({"response": {"body": "{data: .}"}})).is_ok());
    }

    #[test]
    fn bodies_parse_with_positions() {
        assert!(matches!(parse_body(b"  "), Ok(Val::Null)));
        let err = parse_body(b"{\n\"a\": }").err().unwrap();
        assert_eq!((err.line, err.column), (2, 6));
    }
}
