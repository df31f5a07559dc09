//! A standard `wasi:http/incoming-handler` component, built only with the upstream `wasip2`
//! crate (no Wicket SDK): what Spin or `wasmtime serve` would run. What it does is named by
//! the path's last segment:
//!
//! - anything else: answers 200 with `x-echo-*` headers describing the request (method, path
//!   with query, authority, the `x-probe` header), streaming the request body back.
//! - `.../fetch?url=URL`: GETs `URL` with `wasi:http/outgoing-handler` and answers with its status
//!   and body, or 502 with the error code when the host refused or failed the call.
//! - `.../slow`: writes `first\n`, waits 400 ms (wall time, not CPU), then writes `second\n`.
//! - `.../spin`: loops forever (the host's CPU limit must stop it).
//! - `.../oom`: allocates until memory runs out (the host's memory limit must stop it).
//! - `.../halfway`: sends the head and part of the body, then traps.
//! - `.../noanswer`: returns without setting a response.

use std::io::{Read as _, Write as _};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

wasip2::http::proxy::export!(Echo);

struct Echo;

fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let fields = Fields::new();
    for (k, v) in headers {
        fields.append(k, v.as_bytes()).unwrap();
    }
    let resp = OutgoingResponse::new(fields);
    resp.set_status_code(status).unwrap();
    let out_body = resp.body().unwrap();
    ResponseOutparam::set(out, Ok(resp));
    let mut stream = out_body.write().unwrap();
    stream.write_all(body).unwrap();
    stream.flush().unwrap();
    drop(stream);
    OutgoingBody::finish(out_body, None).unwrap();
}

fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%3A", ":").replace("%2F", "/"))
    })
}

fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    req.set_method(&Method::Get).unwrap();
    req.set_scheme(Some(&if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    }))
    .unwrap();
    req.set_authority(Some(authority)).unwrap();
    req.set_path_with_query(Some(path)).unwrap();
    let body = req.body().unwrap();
    OutgoingBody::finish(body, None).unwrap();
    let pending = outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let resp = pending
        .get()
        .expect("ready after block")
        .expect("first get")
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let body = resp.consume().unwrap();
    let mut bytes = Vec::new();
    body.stream().unwrap().read_to_end(&mut bytes).ok();
    Ok((status, bytes))
}

impl wasip2::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        // Routes mount the component anywhere: what it does is named by the last segment.
        let last = path.split('?').next().unwrap_or("").rsplit('/').next().unwrap_or("");
        if last == "fetch" {
            let url = query_param(&path, "url").unwrap_or_default();
            match fetch(&url) {
                Ok((status, body)) => {
                    respond(out, 200, &[("x-upstream-status", status.to_string())], &body)
                }
                Err(e) => respond(out, 502, &[], e.as_bytes()),
            }
            return;
        }
        if last == "slow" {
            let resp = OutgoingResponse::new(Fields::new());
            let body = resp.body().unwrap();
            ResponseOutparam::set(out, Ok(resp));
            let mut stream = body.write().unwrap();
            stream.write_all(b"first\n").unwrap();
            stream.flush().unwrap();
            wasip2::clocks::monotonic_clock::subscribe_duration(400_000_000).block();
            stream.write_all(b"second\n").unwrap();
            stream.flush().unwrap();
            drop(stream);
            OutgoingBody::finish(body, None).unwrap();
            return;
        }
        if last == "spin" {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if last == "oom" {
            let mut hoard = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        if last == "halfway" {
            let resp = OutgoingResponse::new(Fields::new());
            let body = resp.body().unwrap();
            ResponseOutparam::set(out, Ok(resp));
            let mut stream = body.write().unwrap();
            stream.write_all(b"the first half").unwrap();
            stream.flush().unwrap();
            panic!("failing halfway through the body");
        }
        if last == "noanswer" {
            return;
        }
        let method = match request.method() {
            Method::Get => "GET".to_string(),
            Method::Post => "POST".to_string(),
            Method::Put => "PUT".to_string(),
            Method::Delete => "DELETE".to_string(),
            Method::Other(m) => m,
            other => format!("{other:?}"),
        };
        let headers = request.headers();
        let probe = headers
            .get("x-probe")
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let authority = request.authority().unwrap_or_default();
        let fields = Fields::new();
        for (k, v) in [
            ("x-echo-method", method),
            ("x-echo-path", path),
            ("x-echo-authority", authority),
            ("x-echo-probe", probe),
        ] {
            fields.append(k, v.as_bytes()).unwrap();
        }
        let resp = OutgoingResponse::new(fields);
        let out_body = resp.body().unwrap();
        ResponseOutparam::set(out, Ok(resp));
        // Stream the request body back as it arrives.
        let in_body = request.consume().unwrap();
        let input = in_body.stream().unwrap();
        let output = out_body.write().unwrap();
        loop {
            match input.blocking_read(4096) {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => output.blocking_write_and_flush(&chunk).unwrap(),
                Err(_) => break,
            }
        }
        drop(input);
        drop(output);
        OutgoingBody::finish(out_body, None).unwrap();
    }
}
