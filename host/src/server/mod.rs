//! Listeners: accept connections (plain or TLS), speak HTTP/1.1 and HTTP/2 (h2c by prior
//! knowledge, h2 over TLS by ALPN) with hyper, enforce the connection-level limits and
//! deadlines (`conn.rs`), and hand each request to the pipeline with the gateway that is
//! current when it arrives.

pub mod conn;
pub mod tls;

use crate::gateway::Gateway;
use crate::inbound::{hyper_header_bytes, HYPER_MAX_HEADERS};
use crate::pipeline::{self, Peer};
use arc_swap::ArcSwap;
use conn::{Activity, Deadlines, TrackedBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

/// HTTP/2 pings on a connection with nothing to send, and how long an answer may take
/// before the peer is taken for gone.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The gateway currently serving; swapped whole when the config changes.
pub type Shared = Arc<ArcSwap<Gateway>>;

/// A worker's new listener (the listen address changed), and where it says it has closed
/// the old one.
pub type Rebind = (std::net::TcpListener, tokio::sync::oneshot::Sender<()>);

/// How connections are served under one config: made once per config a worker sees, not per
/// connection.
struct ConnSettings {
    /// The gateway these settings were made from. Weak: a worker must not keep an old config
    /// alive; the allocation it keeps also means a new gateway can never be mistaken for it.
    from: Weak<Gateway>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    deadlines: Deadlines,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_timeout: Duration,
}

impl ConnSettings {
    fn new(gateway: &Arc<Gateway>) -> ConnSettings {
        let server = &gateway.config.server;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's own limits sit above ours so that the pipeline answers most oversized heads
        // itself, with a JSON body; past these hyper answers a bare 431.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(server.header_read_timeout)
            .max_headers(HYPER_MAX_HEADERS)
            .max_buf_size(hyper_header_bytes(server.max_header_bytes));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(100)
            .max_header_list_size(hyper_header_bytes(server.max_header_bytes) as u32)
            .keep_alive_interval(Some(H2_PING_INTERVAL))
            .keep_alive_timeout(H2_PING_TIMEOUT)
            // WebSockets over HTTP/2 (RFC 8441), for routes with `websocket = true`.
            .enable_connect_protocol();
        ConnSettings {
            from: Arc::downgrade(gateway),
            builder: Arc::new(builder),
            deadlines: Deadlines {
                head: server.header_read_timeout,
                idle: server.idle_timeout,
            },
            tls: gateway.tls.clone(),
            handshake_timeout: server.tls_handshake_timeout,
        }
    }

    /// These settings, remade if the config changed since.
    fn current(mut self: Arc<Self>, shared: &Shared) -> Arc<Self> {
        let now = shared.load();
        if !std::ptr::eq(self.from.as_ptr(), Arc::as_ptr(&now)) {
            self = Arc::new(ConnSettings::new(&now));
        }
        self
    }
}

/// Serve `listener` until `shutdown` resolves, then let requests in flight finish (for up to
/// `[server] drain_timeout_ms`). With `workers` listeners sharing the port (one per core),
/// each takes its share of `max_connections`. A listener arriving on `rebind` (the listen
/// address changed) replaces the current one, which is closed once the connections already
/// waiting on it are taken.
pub async fn serve(
    listener: TcpListener,
    gateway: Shared,
    mut rebind: mpsc::UnboundedReceiver<Rebind>,
    shutdown: impl std::future::Future<Output = ()>,
    workers: usize,
) {
    let max_connections = gateway
        .load()
        .config
        .server
        .max_connections
        .div_ceil(workers.max(1))
        .max(1);
    let mut settings = Arc::new(ConnSettings::new(&gateway.load_full()));
    let (stop, stopping) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut listener = listener;
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some((next, done)) = rebind.recv() => {
                match TcpListener::from_std(next) {
                    Ok(next) => {
                        let old = std::mem::replace(&mut listener, next);
                        settings = settings.current(&gateway);
                        // Connections the kernel already completed on the old address are
                        // served, not reset.
                        while let Ok(Ok((stream, addr))) =
                            tokio::time::timeout(Duration::ZERO, old.accept()).await
                        {
                            let permit = slots.clone().acquire_owned().await.expect("never closed");
                            spawn_connection(stream, addr, permit, &settings, &gateway, &stopping);
                        }
                    }
                    Err(e) => tracing::error!("cannot use the new listener: {e}"),
                }
                let _ = done.send(());
                continue;
            }
            () = &mut shutdown => break,
        };
        settings = settings.current(&gateway);
        spawn_connection(stream, addr, permit, &settings, &gateway, &stopping);
    }
    drop(listener);
    let _ = stop.send(true);
    let drain = gateway.load().config.server.drain_timeout;
    // Every connection holds a slot until it ends: all slots back means all drained.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("all connections drained"),
        () = tokio::time::sleep(drain) => tracing::warn!("connections still open after {drain:?}; closing"),
    }
}

/// Serve one accepted connection on its own task, holding its `permit` until it ends.
fn spawn_connection(
    stream: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    settings: &Arc<ConnSettings>,
    gateway: &Shared,
    stopping: &watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let peer = Peer { addr, scheme };
    let gateway = gateway.clone();
    let tracked = activity.clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let gw = gateway.load_full();
        let in_flight = tracked.begin();
        async move {
            let resp = pipeline::handle(&gw, req, peer).await;
            Ok::<_, Infallible>(resp.map(|body| TrackedBody::new(body, in_flight)))
        }
    });
    let settings = settings.clone();
    let mut stopping = stopping.clone();
    tokio::spawn(async move {
        let ConnSettings {
            builder,
            deadlines,
            tls,
            handshake_timeout,
            ..
        } = &*settings;
        let result = match tls {
            None => {
                serve_one(
                    builder,
                    stream,
                    service,
                    &activity,
                    *deadlines,
                    &mut stopping,
                )
                .await
            }
            Some(acceptor) => {
                match tokio::time::timeout(*handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        serve_one(builder, s, service, &activity, *deadlines, &mut stopping).await
                    }
                    Ok(Err(e)) => Err(format!("TLS handshake failed: {e}").into()),
                    Err(_) => Err("TLS handshake timed out".into()),
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(client = %addr, "connection ended: {e}");
        }
        drop(permit);
    });
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serve one connection (plain or TLS) under its deadlines.
async fn serve_one<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    activity: &Activity,
    deadlines: Deadlines,
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<TrackedBody>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    conn::drive(
        conn.as_mut(),
        |c| c.graceful_shutdown(),
        activity,
        deadlines,
        stopping,
    )
    .await
}
