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
//!
//! The watchdog is lazy: marking a request costs two atomic operations and never wakes it.
//! It sleeps until the earliest moment it could have to act, then looks at what the
//! connection did meanwhile and either acts or sleeps again. (Waking it on every request
//! start and end, and re-arming its timer each time, cost four timer-wheel operations and two
//! extra polls of the connection per request.)

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long each stage of a connection may take.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From accept to the end of the first request's head.
    pub head: Duration,
    /// With no request in flight.
    pub idle: Duration,
}

/// What a connection has been doing, shared by its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    /// When the last request in flight ended, in nanoseconds after `accepted`.
    idle_since: AtomicU64,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            accepted: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
        })
    }

    /// A request's head has arrived; it is in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn idle_since(&self) -> Instant {
        self.accepted + Duration::from_nanos(self.idle_since.load(Ordering::Acquire))
    }

    /// What the watchdog does at `now`: act, or look again at a later instant.
    fn next(&self, d: Deadlines, shutting_down: Option<Instant>, now: Instant) -> Next {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Nothing to do while a request runs (a stream may run for hours); look again
            // later, soon enough that an idle deadline is missed by at most this much.
            return Next::At(now + d.idle.min(d.head) / 2);
        }
        let (at, act) = match shutting_down {
            None if self.requests.load(Ordering::Relaxed) == 0 => {
                (self.accepted + d.head, Act::Close("no request head"))
            }
            Some(at) => (at.max(self.idle_since()) + d.head, Act::Close("still open")),
            None => (self.idle_since() + d.idle, Act::Shutdown),
        };
        if now >= at {
            Next::Act(act)
        } else {
            Next::At(at)
        }
    }
}

/// The watchdog's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Act(Act),
    At(Instant),
}

/// A request in flight on its connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let since = Instant::now().saturating_duration_since(a.accepted);
            a.idle_since
                .store(since.as_nanos() as u64, Ordering::Release);
        }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    // The first moment anything can be due: no head by then closes the connection.
    let watchdog = tokio::time::sleep_until(activity.accepted + deadlines.head);
    tokio::pin!(watchdog);
    loop {
        tokio::select! {
            result = conn.as_mut() => return result,
            _ = shutdown.wait_for(|s| *s), if shutting_down.is_none() => {
                graceful(conn.as_mut());
                let now = Instant::now();
                shutting_down = Some(now);
                watchdog.as_mut().reset(now + deadlines.head);
            }
            () = watchdog.as_mut() => {
                let now = Instant::now();
                match activity.next(deadlines, shutting_down, now) {
                    Next::At(at) => watchdog.as_mut().reset(at),
                    Next::Act(Act::Close(why)) => {
                        tracing::debug!("closing connection: {why} after {:?}", activity.accepted.elapsed());
                        return Ok(());
                    }
                    Next::Act(Act::Shutdown) => {
                        tracing::debug!("closing idle connection");
                        graceful(conn.as_mut());
                        shutting_down = Some(now);
                        watchdog.as_mut().reset(now + deadlines.head);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        head: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_closes_at_the_head_deadline() {
        let a = Activity::new();
        let t0 = a.accepted;
        assert_eq!(a.next(D, None, t0), Next::At(t0 + D.head));
        assert_eq!(
            a.next(D, None, t0 + D.head),
            Next::Act(Act::Close("no request head"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_is_never_cut_and_idleness_counts_from_its_end() {
        let a = Activity::new();
        let t0 = a.accepted;
        let req = a.begin();
        // Long past every deadline, still in flight: look again later.
        let late = t0 + Duration::from_secs(3600);
        assert_eq!(a.next(D, None, late), Next::At(late + D.head / 2));
        tokio::time::advance(Duration::from_secs(100)).await;
        drop(req);
        let ended = t0 + Duration::from_secs(100);
        assert_eq!(a.next(D, None, ended), Next::At(ended + D.idle));
        assert_eq!(a.next(D, None, ended + D.idle), Next::Act(Act::Shutdown));
        // After a graceful shutdown, the connection gets `head` more to finish.
        let shut = ended + D.idle;
        assert_eq!(a.next(D, Some(shut), shut), Next::At(shut + D.head));
        assert_eq!(
            a.next(D, Some(shut), shut + D.head),
            Next::Act(Act::Close("still open"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_requests_keep_the_connection_busy_until_the_last_ends() {
        let a = Activity::new();
        let t0 = a.accepted;
        let one = a.begin();
        let two = a.begin();
        drop(one);
        assert!(matches!(a.next(D, None, t0), Next::At(at) if at == t0 + D.head / 2));
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(two);
        let ended = t0 + Duration::from_secs(5);
        assert_eq!(a.next(D, None, ended), Next::At(ended + D.idle));
    }
}
