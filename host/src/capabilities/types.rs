//! The host side of `wicket:plugin/types`: the request, response and context a plugin works on.
//! They are moved into a plugin's resource table for the duration of one call and moved out
//! again afterwards, so handing them to a plugin copies nothing; a plugin pays for a header or
//! the body only when it asks for it.

use crate::body::{Body, BodyError};
use crate::runtime::bindings::types::{Host, HostContext, HostRequest, HostResponse};
use crate::runtime::HostState;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use std::net::SocketAddr;
use wasmtime::component::Resource;

/// The client's request as plugins see it.
#[derive(Debug)]
pub struct RequestData {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// Streaming until a plugin needs it whole.
    pub body: Body,
    pub client_addr: SocketAddr,
    /// `http` or `https`, as the client connected.
    pub scheme: &'static str,
    /// The authority the client asked for (Host header, or `:authority` in HTTP/2).
    pub host: Option<String>,
}

/// A response on its way to the client.
#[derive(Debug)]
pub struct ResponseData {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Streaming (from an upstream) until a plugin needs it whole.
    pub body: Body,
}

impl ResponseData {
    pub fn new(status: StatusCode) -> ResponseData {
        ResponseData {
            status,
            headers: HeaderMap::new(),
            body: Body::empty(),
        }
    }
}

/// Per-request string keys and values shared along the chain. A request carries a handful
/// (request id, route, client, path parameters, what auth found), so a list searched in
/// order beats hashing every key (SipHash was 4% of a proxied request); the cap keeps a
/// plugin from growing it without bound, or making each lookup slow.
#[derive(Debug, Clone, Default)]
pub struct ContextData {
    values: Vec<(String, String)>,
}

/// The most keys a request's context holds.
pub const MAX_CONTEXT_KEYS: usize = 1024;

/// A plugin tried to add a key to a full context.
#[derive(Debug, thiserror::Error)]
#[error("the request context is full ({MAX_CONTEXT_KEYS} keys); not adding {0:?}")]
pub struct ContextFull(String);

impl ContextData {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Set `key`, replacing its value; refused when the key is new and the context full.
    pub fn try_set(
        &mut self,
        key: impl Into<String> + AsRef<str>,
        value: impl Into<String>,
    ) -> Result<(), ContextFull> {
        if let Some((_, v)) = self.values.iter_mut().find(|(k, _)| k == key.as_ref()) {
            *v = value.into();
        } else if self.values.len() >= MAX_CONTEXT_KEYS {
            return Err(ContextFull(key.into()));
        } else {
            self.values.push((key.into(), value.into()));
        }
        Ok(())
    }

    /// Set a key the host itself adds (a few, before any plugin runs).
    pub fn set(&mut self, key: impl Into<String> + AsRef<str>, value: impl Into<String>) {
        // The host sets a bounded number of keys: never past the cap.
        let _ = self.try_set(key, value);
    }

    pub fn remove(&mut self, key: &str) {
        self.values.retain(|(k, _)| k != key);
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(k, _)| k.as_str())
    }
}

pub(crate) fn first_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

pub(crate) fn all_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

pub(crate) fn names(headers: &HeaderMap) -> Vec<String> {
    headers.keys().map(|k| k.as_str().to_string()).collect()
}

pub(crate) fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    let value =
        HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
    Ok((name, value))
}

pub(crate) fn set_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), String> {
    let (name, value) = parse_header(name, value)?;
    headers.insert(name, value);
    Ok(())
}

pub(crate) fn append_header(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
) -> Result<(), String> {
    let (name, value) = parse_header(name, value)?;
    headers.append(name, value);
    Ok(())
}

pub(crate) fn remove_header(headers: &mut HeaderMap, name: &str) {
    if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
        headers.remove(name);
    }
}

/// A declared `Content-Length` follows the body it describes, so later plugins read the truth.
fn fix_length(headers: &mut HeaderMap, len: usize) {
    if headers.contains_key(http::header::CONTENT_LENGTH) {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
}

impl Host for HostState {}

impl HostState {
    /// A body a plugin asked for could not be read whole: the call traps, and the pipeline
    /// answers 413 (request) or 502 (response) rather than a plugin failure.
    fn body_failed<T>(&mut self, e: BodyError, request: bool) -> wasmtime::Result<T> {
        if let BodyError::TooLarge { limit } = e {
            self.body_too_large = Some((request, limit));
        }
        wasmtime::bail!("{} {e}", if request { "request" } else { "response" })
    }
}

impl HostRequest for HostState {
    fn method(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.table.get(&r)?.method.as_str().to_string())
    }

    fn path(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.table.get(&r)?.path.clone())
    }

    fn query(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&r)?.query.clone())
    }

    fn set_path(
        &mut self,
        r: Resource<RequestData>,
        path: String,
    ) -> wasmtime::Result<Result<(), String>> {
        if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
            return Ok(Err(format!("invalid path {path:?}")));
        }
        self.table.get_mut(&r)?.path = path;
        Ok(Ok(()))
    }

    fn set_query(
        &mut self,
        r: Resource<RequestData>,
        query: Option<String>,
    ) -> wasmtime::Result<()> {
        self.table.get_mut(&r)?.query = query.filter(|q| !q.is_empty());
        Ok(())
    }

    fn header(
        &mut self,
        r: Resource<RequestData>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(first_value(&self.table.get(&r)?.headers, &name))
    }

    fn header_values(
        &mut self,
        r: Resource<RequestData>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(all_values(&self.table.get(&r)?.headers, &name))
    }

    fn header_names(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<String>> {
        Ok(names(&self.table.get(&r)?.headers))
    }

    fn set_header(
        &mut self,
        r: Resource<RequestData>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(set_header(
            &mut self.table.get_mut(&r)?.headers,
            &name,
            &value,
        ))
    }

    fn append_header(
        &mut self,
        r: Resource<RequestData>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(append_header(
            &mut self.table.get_mut(&r)?.headers,
            &name,
            &value,
        ))
    }

    fn remove_header(&mut self, r: Resource<RequestData>, name: String) -> wasmtime::Result<()> {
        remove_header(&mut self.table.get_mut(&r)?.headers, &name);
        Ok(())
    }

    async fn body(&mut self, r: Resource<RequestData>) -> wasmtime::Result<Vec<u8>> {
        let limit = self.services.http.max_body_bytes();
        let req = self.table.get_mut(&r)?;
        match self.clock.paused(req.body.buffer(limit)).await {
            Ok(b) => Ok(b.to_vec()),
            Err(e) => self.body_failed(e, true),
        }
    }

    fn set_body(&mut self, r: Resource<RequestData>, body: Vec<u8>) -> wasmtime::Result<()> {
        let req = self.table.get_mut(&r)?;
        fix_length(&mut req.headers, body.len());
        req.body = Body::Full(Bytes::from(body));
        Ok(())
    }

    fn client_addr(&mut self, r: Resource<RequestData>) -> wasmtime::Result<String> {
        Ok(self.table.get(&r)?.client_addr.to_string())
    }

    fn drop(&mut self, r: Resource<RequestData>) -> wasmtime::Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

impl HostResponse for HostState {
    fn new(&mut self, status: u16) -> wasmtime::Result<Resource<ResponseData>> {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Ok(self.table.push(ResponseData::new(status))?)
    }

    fn status(&mut self, r: Resource<ResponseData>) -> wasmtime::Result<u16> {
        Ok(self.table.get(&r)?.status.as_u16())
    }

    fn set_status(&mut self, r: Resource<ResponseData>, status: u16) -> wasmtime::Result<()> {
        if let Ok(status) = StatusCode::from_u16(status) {
            self.table.get_mut(&r)?.status = status;
        }
        Ok(())
    }

    fn header(
        &mut self,
        r: Resource<ResponseData>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(first_value(&self.table.get(&r)?.headers, &name))
    }

    fn header_values(
        &mut self,
        r: Resource<ResponseData>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(all_values(&self.table.get(&r)?.headers, &name))
    }

    fn header_names(&mut self, r: Resource<ResponseData>) -> wasmtime::Result<Vec<String>> {
        Ok(names(&self.table.get(&r)?.headers))
    }

    fn set_header(
        &mut self,
        r: Resource<ResponseData>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(set_header(
            &mut self.table.get_mut(&r)?.headers,
            &name,
            &value,
        ))
    }

    fn append_header(
        &mut self,
        r: Resource<ResponseData>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(append_header(
            &mut self.table.get_mut(&r)?.headers,
            &name,
            &value,
        ))
    }

    fn remove_header(&mut self, r: Resource<ResponseData>, name: String) -> wasmtime::Result<()> {
        remove_header(&mut self.table.get_mut(&r)?.headers, &name);
        Ok(())
    }

    async fn body(&mut self, r: Resource<ResponseData>) -> wasmtime::Result<Vec<u8>> {
        let limit = self.services.http.max_body_bytes();
        let resp = self.table.get_mut(&r)?;
        match self.clock.paused(resp.body.buffer(limit)).await {
            Ok(b) => Ok(b.to_vec()),
            Err(e) => self.body_failed(e, false),
        }
    }

    fn set_body(&mut self, r: Resource<ResponseData>, body: Vec<u8>) -> wasmtime::Result<()> {
        let resp = self.table.get_mut(&r)?;
        fix_length(&mut resp.headers, body.len());
        resp.body = Body::Full(Bytes::from(body));
        Ok(())
    }

    fn drop(&mut self, r: Resource<ResponseData>) -> wasmtime::Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

impl HostContext for HostState {
    fn get(&mut self, r: Resource<ContextData>, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&r)?.get(&key).map(str::to_string))
    }

    fn set(
        &mut self,
        r: Resource<ContextData>,
        key: String,
        value: String,
    ) -> wasmtime::Result<()> {
        Ok(self.table.get_mut(&r)?.try_set(key, value)?)
    }

    fn remove(&mut self, r: Resource<ContextData>, key: String) -> wasmtime::Result<()> {
        self.table.get_mut(&r)?.remove(&key);
        Ok(())
    }

    fn keys(&mut self, r: Resource<ContextData>) -> wasmtime::Result<Vec<String>> {
        Ok(self.table.get(&r)?.keys().map(str::to_string).collect())
    }

    fn drop(&mut self, r: Resource<ContextData>) -> wasmtime::Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keys_are_replaced_removed_and_capped() {
        let mut ctx = ContextData::default();
        ctx.set("a", "1");
        ctx.set("a", "2");
        assert_eq!(ctx.get("a"), Some("2"));
        assert_eq!(ctx.keys().count(), 1);
        ctx.remove("a");
        assert_eq!(ctx.get("a"), None);
        for i in 0..MAX_CONTEXT_KEYS {
            ctx.try_set(format!("k{i}"), "v").unwrap();
        }
        assert!(ctx.try_set("one-more", "v").is_err());
        // A full context still takes new values for its keys.
        ctx.try_set("k0", "w").unwrap();
        assert_eq!(ctx.get("k0"), Some("w"));
    }
}
