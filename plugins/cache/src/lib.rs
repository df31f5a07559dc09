//! `cache` filter: serves integration responses from the shared `kv` store, so with `[state]
//! backend = "redis"` every gateway instance shares one cache.
//!
//! ```toml
//! [plugins.cache]
//! builtin = "cache"
//! config.ttl_s = 300                          # 1..=3600, default 300
//! config.key_query = ["page", "size"]         # or ["*"] for the whole query string
//! config.key_headers = ["accept-language"]
//! config.key_principal = true                 # one entry per caller
//! config.invalidation = { scopes = ["cache:invalidate"] }
//! ```
//!
//! * Key: method, route, host, path, the `key_query` parameters and `key_headers`
//!   (absent and empty differ), and with `key_principal` the context's `principal`. Other
//!   parameters and headers do not make a new entry: list every one the response depends on.
//!   The key is hashed (SHA-256), so entries are as long as their response, whatever the key.
//! * Stored: responses to `methods` (default GET, HEAD; only GET, HEAD, OPTIONS accepted) with
//!   a status in `statuses` (default 200), for `ttl_s`, or less when the response's
//!   `s-maxage`/`max-age` says so. Not stored: `Cache-Control: no-store`, `private`,
//!   `no-cache` or a lifetime of 0; a `Set-Cookie`; a `Vary` of `*` or of a header not in
//!   `key_headers`; header values that are not valid UTF-8 (they could not be replayed
//!   byte for byte); entries (status, headers and body) over `max_entry_bytes` (default 1 MiB,
//!   at most 16 MiB).
//! * A response streams to the client as it arrives, whether stored or not: the host keeps a
//!   copy as it passes and stores the entry once the body has ended whole (a body cut off, or
//!   one that grows past `max_entry_bytes`, is passed on and not stored).
//! * A hit answers from `on_request` (later filters and the integration are skipped) with
//!   `X-Cache: Hit` and `Age`; every other response of a cached method gets `X-Cache: Miss`.
//! * A client's `Cache-Control: max-age=0` refreshes the entry (skips the lookup, stores the new
//!   response, or deletes the entry if the new one is not storable) only when `invalidation`
//!   allows that caller (`true`, or a rule over the context: `scopes`, `principals`,
//!   `usage_plans`, `context`; see `wicket_plugin_sdk::rule`). Otherwise it is ignored. Default:
//!   nobody.
//! * Metrics: `wicket_plugin_cache_hits_total` and `wicket_plugin_cache_misses_total` with the
//!   label `route`; `wicket_plugin_cache_errors_total` for state backend failures, which
//!   count as misses and never fail the request.
//! * `coalesce` (default on, `{ wait_ms = 40, settle_ms = 5 }`, or `false`): concurrent misses
//!   of one key elect one request to fetch it; the others poll the store until `wait_ms` after
//!   their `on_request` began and answer from it. With only `get`/`set`/`delete` in `kv` the election cannot be atomic:
//!   it claims a lock key, waits `settle_ms`, and fetches only if its claim is still the one
//!   stored (Fischer's algorithm). That is exact when no claimer takes longer than
//!   `settle_ms` between reading the lock as free and writing its claim; otherwise two
//!   requests may fetch. Waiting counts towards the plugin's `cpu_ms` (default 100; the host
//!   counts wall time minus host I/O, and a sleep is not host I/O): keep `wait_ms` well below
//!   it (a loaded machine adds scheduling delays), and raise both for slow upstreams.

mod cache_control;
mod entry;
mod settings;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wicket_plugin_sdk::auth::{base64url_encode, sha256, PRINCIPAL};
use wicket_plugin_sdk::header::list_items;
use wicket_plugin_sdk::query::{encode, Query};
use wicket_plugin_sdk::source::join_key;
use wicket_plugin_sdk::throttle::Throttle;
use wicket_plugin_sdk::{
    export_filter, kv, metrics, Action, Config, Context, Error, Filter, Request, Response,
};

use cache_control::{storable, wants_fresh, Storable};
use entry::Entry;
use settings::{Coalesce, KeyQuery, Settings};

/// Context keys from `on_request` to `on_response` (a pooled plugin may serve the two hooks
/// on different instances).
const CTX_STATE: &str = "cache.state";
const CTX_KEY: &str = "cache.key";
const CTX_LEADER: &str = "cache.leader";

/// Headers never stored: ours, and those that describe one response on one connection.
const NOT_STORED: &[&str] = &[
    "x-cache",
    "age",
    "x-request-id",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// How often a waiting request looks for the entry.
const POLL: Duration = Duration::from_millis(10);

struct Cache {
    s: Settings,
    backend_warning: Throttle,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The query string with its parameters decoded, sorted and encoded again, so that
/// `b=2&a=1` and `a=1&b=%32` are one key.
fn normalized_query(raw: &str) -> String {
    let q = Query::parse(raw);
    let mut pairs: Vec<(&str, &str)> = q.pairs().collect();
    pairs.sort();
    let parts: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect();
    parts.join("&")
}

/// What a lookup found for a miss that may wait for another request's fetch.
enum Claim {
    /// This request fetches and stores.
    Lead,
    /// Another request stored the entry while this one waited.
    Filled(Entry),
    /// Fetch without having claimed (the other one took too long, or the store failed).
    Fetch,
}

fn entry_key(id: &str) -> String {
    format!("e|{id}")
}

fn lock_key(id: &str) -> String {
    format!("l|{id}")
}

impl Cache {
    fn warn_backend(&self, what: &str, error: &str, route: &str) {
        metrics::counter_inc("cache_errors_total", &[("route", route)]);
        if self.backend_warning.ready() {
            wicket_plugin_sdk::warn!("cache: state backend failed to {what}: {error}");
        }
    }

    /// The entry's id: a hash of everything the key is made of.
    fn key_id(&self, req: &Request, ctx: &Context, method: &str, route: &str) -> String {
        // The host is always part of the key: a response fetched for one host must never be
        // a hit for another (cache poisoning through a route that accepts several hosts). Its
        // port is not: gateways sharing a cache through Redis serve one name on many ports.
        let host = req.header("host").map(|h| host_name(&h));
        let mut parts: Vec<Option<String>> = vec![
            Some(method.to_owned()),
            Some(route.to_owned()),
            host,
            Some(req.path()),
        ];
        match &self.s.key_query {
            KeyQuery::All => parts.push(req.query().map(|q| normalized_query(&q))),
            KeyQuery::Named(sources) => parts.extend(sources.iter().map(|s| s.get(req, ctx))),
        }
        parts.extend(self.s.key_headers.iter().map(|s| s.get(req, ctx)));
        if self.s.key_principal {
            parts.push(ctx.get(PRINCIPAL));
        }
        let material = join_key(parts.iter().map(Option::as_deref));
        base64url_encode(&sha256(material.as_bytes()))
    }

    /// The stored response as a response, marked as a hit.
    fn replay(&self, entry: Entry, method: &str, ctx: &Context, route: &str) -> Action {
        let resp = Response::new(entry.status);
        for (name, value) in &entry.headers {
            // Stored from a valid response: appending cannot fail.
            let _ = resp.append_header(name, value);
        }
        if method != "HEAD" {
            resp.set_body(&entry.body);
        }
        let age = now_ms().saturating_sub(entry.stored_at_ms) / 1000;
        let _ = resp.set_header("age", &age.to_string());
        let _ = resp.set_header("x-cache", "Hit");
        ctx.set(CTX_STATE, "hit");
        metrics::counter_inc("cache_hits_total", &[("route", route)]);
        Action::Respond(resp)
    }

    /// Elects the request that fetches a missing key; see the crate documentation.
    /// `started` is when `on_request` began: the whole hook, not just the wait, stays within
    /// `wait_ms` (plus one poll), because waiting counts towards the plugin's `cpu_ms`.
    fn claim(&self, id: &str, c: Coalesce, ctx: &Context, route: &str, started: Instant) -> Claim {
        let lock = lock_key(id);
        let me = ctx.request_id().unwrap_or_else(|| now_ms().to_string());
        let lock_ttl = Some(Duration::from_millis(c.wait_ms + c.settle_ms));
        let holder = match kv::get_string(&lock) {
            Ok(holder) => holder,
            Err(e) => {
                self.warn_backend("read a fill lock", &e, route);
                return Claim::Fetch;
            }
        };
        if holder.is_none() {
            if let Err(e) = kv::set_string(&lock, &me, lock_ttl) {
                self.warn_backend("write a fill lock", &e, route);
                return Claim::Fetch;
            }
            if c.settle_ms > 0 {
                std::thread::sleep(Duration::from_millis(c.settle_ms));
            }
            match kv::get_string(&lock) {
                Ok(Some(holder)) if holder == me => return Claim::Lead,
                Ok(_) => {}
                Err(e) => {
                    self.warn_backend("read a fill lock", &e, route);
                    return Claim::Fetch;
                }
            }
        }
        // Another request is fetching: wait for its entry.
        let deadline = started + Duration::from_millis(c.wait_ms);
        let entry = entry_key(id);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Claim::Fetch;
            }
            std::thread::sleep(left.min(POLL));
            let found = |bytes: Option<Vec<u8>>| bytes.as_deref().and_then(Entry::decode);
            match kv::get(&entry) {
                Ok(bytes) => {
                    if let Some(e) = found(bytes) {
                        return Claim::Filled(e);
                    }
                }
                Err(_) => return Claim::Fetch,
            }
            // The fetcher gave up without storing (an uncacheable response): fetch too,
            // unless the entry arrived just before its lock went.
            if let Ok(None) = kv::get(&lock) {
                return match kv::get(&entry).map(found) {
                    Ok(Some(e)) => Claim::Filled(e),
                    _ => Claim::Fetch,
                };
            }
        }
    }

    /// Stores `resp` under `id` if it may be stored; whether it was.
    fn store(&self, id: &str, method: &str, resp: &Response, route: &str) -> bool {
        if !self.s.statuses.contains(&resp.status()) {
            return false;
        }
        let cache_control = resp.header_values("cache-control");
        let lifetime = match storable(cache_control.iter().map(String::as_str)) {
            Storable::No => return false,
            Storable::Yes(lifetime) => lifetime,
        };
        let ttl_s = lifetime.map_or(self.s.ttl_s, |l| l.min(self.s.ttl_s));
        if !resp.header_values("set-cookie").is_empty() {
            return false;
        }
        let vary = resp.header_values("vary");
        let vary_ok = list_items(vary.iter().map(String::as_str))
            .iter()
            .all(|name| {
                let name = name.to_ascii_lowercase();
                self.s.key_header_names.contains(&name)
            });
        if !vary_ok {
            return false;
        }
        let declared = resp
            .header("content-length")
            .and_then(|l| l.trim().parse::<u64>().ok());
        if method != "HEAD" && declared.is_some_and(|l| l > self.s.max_entry_bytes) {
            return false;
        }
        let mut headers = Vec::new();
        for name in resp.header_names() {
            if NOT_STORED.contains(&name.as_str()) {
                continue;
            }
            for value in resp.header_values(&name) {
                if value.contains('\u{FFFD}') {
                    return false;
                }
                headers.push((name.clone(), value));
            }
        }
        if Entry::encoded_len(&headers, 0) as u64 > self.s.max_entry_bytes {
            return false;
        }
        // The entry without its body: the body is the rest of the entry, appended by the host
        // as it streams to the client (a response is never held here, nor made to buffer).
        let head = Entry {
            status: resp.status(),
            stored_at_ms: now_ms(),
            headers,
            body: Vec::new(),
        };
        let Some(head) = head.encode() else {
            return false;
        };
        let key = entry_key(id);
        let ttl = Some(Duration::from_secs(ttl_s));
        let stored = if method == "HEAD" {
            kv::set(&key, &head, ttl)
        } else {
            kv::set_with_body(&key, &head, resp, ttl, self.s.max_entry_bytes)
        };
        match stored {
            Ok(()) => true,
            Err(e) => {
                self.warn_backend("store an entry", &e, route);
                false
            }
        }
    }
}

impl Filter for Cache {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("caches integration responses in kv (X-Cache: Hit | Miss), shared through Redis; hits answer before the integration")
            .config::<settings::Raw>()
            .capabilities(&["kv", "metrics"]).answers_from_store()
    }

    // A miss stores the response, body included, as it streams through (`kv::set_with_body`):
    // the default plan, which needs no body whole.

    fn new(config: Config) -> Result<Self, String> {
        Ok(Self {
            s: Settings::from_config(&config)?,
            backend_warning: Throttle::new(Duration::from_secs(5)),
        })
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        let started = Instant::now();
        let method = req.method();
        if !self.s.methods.contains(&method) {
            return Ok(Action::Continue);
        }
        let route = ctx.get("route").unwrap_or_default();
        let id = self.key_id(req, ctx, &method, &route);
        let miss = |state: &str| -> Result<Action, Error> {
            ctx.set(CTX_KEY, &id);
            ctx.set(CTX_STATE, state);
            metrics::counter_inc("cache_misses_total", &[("route", &route)]);
            Ok(Action::Continue)
        };

        let cache_control = req.header_values("cache-control");
        if wants_fresh(cache_control.iter().map(String::as_str)) && self.s.invalidation.allows(ctx)
        {
            return miss("refresh");
        }

        match kv::get(&entry_key(&id)) {
            Ok(Some(bytes)) => match Entry::decode(&bytes) {
                Some(entry) => return Ok(self.replay(entry, &method, ctx, &route)),
                None => wicket_plugin_sdk::debug!("cache: undecodable entry, treated as a miss"),
            },
            Ok(None) => {}
            Err(e) => {
                // No coalescing while the store fails: every request fetches.
                self.warn_backend("look up an entry", &e, &route);
                return miss("miss");
            }
        }

        if let Some(c) = self.s.coalesce {
            match self.claim(&id, c, ctx, &route, started) {
                Claim::Lead => ctx.set(CTX_LEADER, "1"),
                Claim::Filled(entry) => return Ok(self.replay(entry, &method, ctx, &route)),
                Claim::Fetch => {}
            }
        }
        miss("miss")
    }

    fn on_response(&self, req: &Request, resp: &Response, ctx: &Context) -> Result<(), Error> {
        let state = match ctx.get(CTX_STATE) {
            Some(state) if state == "miss" || state == "refresh" => state,
            // A hit (already marked), or a request this filter does not cache.
            _ => return Ok(()),
        };
        let Some(id) = ctx.get(CTX_KEY) else {
            return Ok(());
        };
        let route = ctx.get("route").unwrap_or_default();
        let stored = self.store(&id, &req.method(), resp, &route);
        let _ = resp.set_header("x-cache", "Miss");
        if !stored {
            if state == "refresh" {
                if let Err(e) = kv::delete(&entry_key(&id)) {
                    self.warn_backend("delete a refreshed entry", &e, &route);
                }
            }
            if ctx.get(CTX_LEADER).is_some() {
                // Let the waiting requests fetch now rather than at the end of their wait.
                let _ = kv::delete(&lock_key(&id));
            }
        }
        Ok(())
    }
}

export_filter!(Cache);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_normalized() {
        assert_eq!(normalized_query("b=2&a=1"), normalized_query("a=1&b=%32"));
        assert_eq!(normalized_query("a=x+y&a=b"), "a=b&a=x%20y");
        assert_ne!(normalized_query("a=1"), normalized_query("a=1&a=1"));
        assert_eq!(normalized_query(""), "");
    }
}

/// A Host value as the cache keys it: lower case, without port or trailing dot.
fn host_name(host: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod host_key_tests {
    use super::host_name;

    #[test]
    fn hosts_are_keyed_by_name() {
        assert_eq!(host_name("Example.COM.:8080"), "example.com");
        assert_eq!(host_name("example.com"), "example.com");
        assert_eq!(host_name("[::1]:8080"), "::1");
    }
}
