//! One connection's deadlines. hyper bounds an HTTP/1.1 head once it has started reading
//! one, but not the wait before it: protocol detection (is this the HTTP/2 preface?), a
//! TLS session with nothing in it, an HTTP/2 connection that sends its preface and then no
//! stream, a keep-alive connection nobody uses. Thirty such sockets hold thirty connection
//! slots forever. So every connection is driven under a watchdog:
//!
//! * no request head complete within `header_read_timeout` of accept: closed at once;
//! * no request in flight (responses fully written) for `idle_timeout`: shut down
//!   gracefully (HTTP/2 `GOAWAY`, HTTP/1.1 close), and closed outright if it is still open
//!   `header_read_timeout` later with nothing in flight.
//!
//! The service marks requests in and out through [`Activity`]; a request counts as in
//! flight until its response body has been handed to the socket ([`TrackedBody`]).

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// How long each stage of a connection may take.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From accept to the end of the first request's head.
    pub head: Duration,
    /// With no request in flight.
    pub idle: Duration,
}

#[derive(Debug)]
struct State {
    requests: u64,
    in_flight: usize,
    idle_since: Instant,
}

/// What a connection has been doing, shared by its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Activity> {
        let now = Instant::now();
        Arc::new(Activity {
            accepted: now,
            state: Mutex::new(State {
                requests: 0,
                in_flight: 0,
                idle_since: now,
            }),
            changed: Notify::new(),
        })
    }

    /// A request's head has arrived; it is in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        {
            let mut s = self.state.lock().expect("activity lock");
            s.requests += 1;
            s.in_flight += 1;
        }
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When the watchdog must act next, and what it does then.
    fn next(&self, d: Deadlines, shutting_down: Option<Instant>) -> Option<(Instant, Act)> {
        let s = self.state.lock().expect("activity lock");
        if s.in_flight > 0 {
            return None;
        }
        if s.requests == 0 && shutting_down.is_none() {
            return Some((self.accepted + d.head, Act::Close("no request head")));
        }
        match shutting_down {
            Some(at) => Some((at.max(s.idle_since) + d.head, Act::Close("still open"))),
            None => Some((s.idle_since + d.idle, Act::Shutdown)),
        }
    }
}

/// A request in flight on its connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut s = self.0.state.lock().expect("activity lock");
            s.in_flight -= 1;
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
            }
        }
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request in flight until hyper has taken all of it.
pub struct TrackedBody {
    inner: crate::body::Stream,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub fn new(body: crate::body::Stream, in_flight: InFlight) -> TrackedBody {
        TrackedBody {
            inner: body,
            _in_flight: in_flight,
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, Clone, Copy)]
enum Act {
    /// Drop the connection: the client is doing nothing we are waiting for.
    Close(&'static str),
    /// Ask the connection to finish (`GOAWAY` or close after the response).
    Shutdown,
}

/// Drive `conn` to its end, shutting it down gracefully (with `graceful`) when `shutdown`
/// turns true or it sits idle, and dropping it when a deadline passes with nothing to wait
/// for. Returns the connection's own result, or `Ok` when the watchdog closed it.
pub async fn drive<F, E>(
    mut conn: Pin<&mut F>,
    mut graceful: impl FnMut(Pin<&mut F>),
    activity: &Activity,
    deadlines: Deadlines,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    let mut shutting_down: Option<Instant> = None;
    loop {
        let next = activity.next(deadlines, shutting_down);
        let at = next.map(|(at, _)| at).unwrap_or_else(Instant::now);
        tokio::select! {
            result = conn.as_mut() => return result,
            _ = shutdown.wait_for(|s| *s), if shutting_down.is_none() => {
                graceful(conn.as_mut());
                shutting_down = Some(Instant::now());
            }
            () = activity.changed.notified() => {}
            () = tokio::time::sleep_until(at), if next.is_some() => match next.map(|(_, a)| a) {
                Some(Act::Close(why)) => {
                    tracing::debug!("closing connection: {why} after {:?}", activity.accepted.elapsed());
                    return Ok(());
                }
                Some(Act::Shutdown) => {
                    tracing::debug!("closing idle connection");
                    graceful(conn.as_mut());
                    shutting_down = Some(Instant::now());
                }
                None => {}
            },
        }
    }
}
