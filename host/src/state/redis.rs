//! Shared state in Redis, so that several gateway instances enforce one limit and share one
//! cache. Every operation is one round trip (a Lua script where it must be atomic), bounded
//! by a timeout; a lost connection is re-established by the connection manager, and while
//! Redis is away operations fail fast with an error the plugin decides about.

use super::{StateError, Take};
use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Token bucket, atomic in Redis, on Redis's own clock (so gateway clocks may disagree).
/// Returns {allowed (0/1), tokens left as a string}.
const TAKE: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = math.max(0, now - ts) / 1000000
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
local full_ms = 1000
if rate > 0 then full_ms = math.ceil((burst - tokens) / rate * 1000) + 1000 end
redis.call('PEXPIRE', KEYS[1], full_ms)
return {allowed, tostring(tokens)}
"#;

/// Fixed window: add, start the window's expiry on first touch. Returns {count, ms left}.
const ADD: &str = r#"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {n, ttl}
"#;

pub struct RedisState {
    client: redis::Client,
    /// `None` until the first successful connection; the manager reconnects after that.
    conn: Mutex<Option<ConnectionManager>>,
    timeout: Duration,
    take: Script,
    add: Script,
}

impl RedisState {
    pub fn new(url: &str, timeout: Duration) -> Result<Arc<RedisState>, StateError> {
        let client =
            redis::Client::open(url).map_err(|e| StateError::Config(format!("redis_url: {e}")))?;
        Ok(Arc::new(RedisState {
            client,
            conn: Mutex::new(None),
            timeout,
            take: Script::new(TAKE),
            add: Script::new(ADD),
        }))
    }

    /// A connection, made on first use so the gateway starts (and each plugin fails open or
    /// closed, as it chose) even while Redis is down.
    async fn conn(&self) -> Result<ConnectionManager, StateError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        let made = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| StateError::Backend(e.to_string()))?;
        *guard = Some(made.clone());
        Ok(made)
    }

    /// Run one command; waiting for a connection counts against the same timeout, so no
    /// request waits longer than `timeout` for Redis, however many are queued.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StateError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let op = async {
            let conn = self.conn().await?;
            f(conn)
                .await
                .map_err(|e| StateError::Backend(e.to_string()))
        };
        tokio::time::timeout(self.timeout, op)
            .await
            .map_err(|_| StateError::Timeout(self.timeout))?
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StateError> {
        let key = format!("wicket:kv:{key}");
        let v: Option<Vec<u8>> = self.run(|mut c| async move { c.get(key).await }).await?;
        Ok(v.map(Bytes::from))
    }

    pub async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), StateError> {
        let key = format!("wicket:kv:{key}");
        self.run(|mut c| async move {
            match ttl {
                Some(ttl) => {
                    c.pset_ex(key, value.as_ref(), ttl.as_millis().max(1) as u64)
                        .await
                }
                None => c.set(key, value.as_ref()).await,
            }
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), StateError> {
        let key = format!("wicket:kv:{key}");
        self.run(|mut c| async move { c.del::<_, ()>(key).await })
            .await
    }

    pub async fn take(
        &self,
        key: &str,
        rate: f64,
        burst: u64,
        cost: u64,
    ) -> Result<Take, StateError> {
        let key = format!("wicket:tb:{key}");
        let (allowed, tokens): (i64, String) = self
            .run(|mut c| async move {
                self.take
                    .key(key)
                    .arg(rate)
                    .arg(burst)
                    .arg(cost)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let tokens: f64 = tokens
            .parse()
            .map_err(|_| StateError::Backend(format!("bad token count {tokens:?}")))?;
        Ok(Take::from_tokens(allowed == 1, tokens, rate, burst, cost))
    }

    pub async fn add(
        &self,
        key: &str,
        delta: u64,
        window: Duration,
    ) -> Result<(u64, Duration), StateError> {
        let key = format!("wicket:win:{key}");
        let window_ms = window.as_millis().max(1) as u64;
        let (count, left): (u64, i64) = self
            .run(|mut c| async move {
                self.add
                    .key(key)
                    .arg(delta)
                    .arg(window_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok((count, Duration::from_millis(left.max(0) as u64)))
    }
}

/// The hash of one day's usage counts; its fields are `["plan","principal"]` (JSON, so no
/// principal can forge another's field).
fn usage_key(day: u32) -> String {
    format!("wicket:usage:{}", crate::usage::date::format(day))
}

impl RedisState {
    /// One round trip: `HINCRBY` per entry, and each day's hash set to expire
    /// `retention_days` after the day ended.
    pub async fn usage_add(
        &self,
        entries: &[crate::usage::Entry],
        retention_days: u32,
    ) -> Result<(), StateError> {
        let mut pipe = redis::pipe();
        let mut days = std::collections::BTreeSet::new();
        for e in entries {
            let field = serde_json::json!([e.plan, e.principal]).to_string();
            pipe.hincr(usage_key(e.day), field, e.requests).ignore();
            days.insert(e.day);
        }
        for day in days {
            let until = (u64::from(day) + 1 + u64::from(retention_days)) * 86_400;
            pipe.expire_at(usage_key(day), until as i64).ignore();
        }
        self.run(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// (plan, principal, requests) of each of `days`, in one round trip.
    pub async fn usage_read(
        &self,
        days: &[u32],
    ) -> Result<Vec<Vec<(String, String, u64)>>, StateError> {
        let mut pipe = redis::pipe();
        for day in days {
            pipe.hgetall(usage_key(*day));
        }
        let raw: Vec<std::collections::HashMap<String, u64>> = self
            .run(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        Ok(raw
            .into_iter()
            .map(|fields| {
                fields
                    .into_iter()
                    .filter_map(|(field, n)| {
                        let (plan, principal): (String, String) =
                            serde_json::from_str(&field).ok()?;
                        Some((plan, principal, n))
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    /// A throwaway redis-server on a free port.
    struct Server(Child, u16);

    /// Start redis-server on `port` and wait until it accepts connections.
    fn spawn(port: u16) -> Child {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for these tests");
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    impl Server {
        fn start() -> Server {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            Server(spawn(port), port)
        }

        fn state(&self) -> Arc<RedisState> {
            RedisState::new(
                &format!("redis://127.0.0.1:{}/0", self.1),
                Duration::from_secs(2),
            )
            .unwrap()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The failure security.md warns of: a read-then-write limiter lets everything through
    /// under concurrency. 640 concurrent takes from a bucket of 100 that barely refills must
    /// admit 100, not more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_takes_are_atomic() {
        let server = Server::start();
        let state = server.state();
        let mut tasks = Vec::new();
        for _ in 0..640 {
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                state.take("k", 0.001, 100, 1).await.unwrap().allowed
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 100);
    }

    #[tokio::test]
    async fn windows_count_and_kv_round_trips() {
        let server = Server::start();
        let state = server.state();
        assert_eq!(
            state.add("w", 2, Duration::from_secs(60)).await.unwrap().0,
            2
        );
        let (n, left) = state.add("w", 3, Duration::from_secs(60)).await.unwrap();
        assert_eq!(n, 5);
        assert!(left > Duration::from_secs(50) && left <= Duration::from_secs(60));
        assert_eq!(state.get("a").await.unwrap(), None);
        state
            .set("a", Bytes::from_static(b"\x00bytes\xff"), None)
            .await
            .unwrap();
        assert_eq!(
            state.get("a").await.unwrap().as_deref(),
            Some(&b"\x00bytes\xff"[..])
        );
        state
            .set(
                "b",
                Bytes::from_static(b"x"),
                Some(Duration::from_millis(50)),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(state.get("b").await.unwrap(), None);
        state.delete("a").await.unwrap();
        assert_eq!(state.get("a").await.unwrap(), None);
    }

    /// With Redis gone every operation fails within the timeout, and works again once it is
    /// back (the connection manager reconnects by itself).
    #[tokio::test]
    async fn outage_fails_fast_and_recovers() {
        let mut server = Server::start();
        let port = server.1;
        let state = RedisState::new(
            &format!("redis://127.0.0.1:{port}/0"),
            Duration::from_millis(200),
        )
        .unwrap();
        state
            .set("k", Bytes::from_static(b"v"), None)
            .await
            .unwrap();
        let _ = server.0.kill();
        let _ = server.0.wait();
        for _ in 0..3 {
            let started = std::time::Instant::now();
            assert!(state.get("k").await.is_err());
            assert!(
                started.elapsed() < Duration::from_millis(600),
                "took {:?}",
                started.elapsed()
            );
        }
        server.0 = spawn(port);
        let mut recovered = false;
        for _ in 0..100 {
            if state.set("k", Bytes::from_static(b"w"), None).await.is_ok() {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(recovered, "no recovery within 5 s of Redis coming back");
        assert_eq!(state.get("k").await.unwrap().as_deref(), Some(&b"w"[..]));
    }
}
