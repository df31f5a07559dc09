//! Bodies owned by the host. A body is a stream (the client's upload, the upstream's response)
//! that goes on to its reader as it arrives, and is held whole in memory only when a plugin
//! needs it whole: declared in the plugin's plan, or asked for. Buffering is always bounded.

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body still arriving.
pub type Stream = UnsyncBoxBody<Bytes, BoxError>;

/// A request or response body: whole, or still streaming.
pub enum Body {
    Full(Bytes),
    Stream(Stream),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the body: {0}")]
    Read(BoxError),
}

impl Default for Body {
    fn default() -> Body {
        Body::Full(Bytes::new())
    }
}

impl Body {
    pub fn empty() -> Body {
        Body::default()
    }

    /// A stream from any body (hyper's `Incoming`, a client response).
    pub fn stream<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if body.is_end_stream() {
            return Body::empty();
        }
        Body::Stream(body.map_err(Into::into).boxed_unsync())
    }

    /// The whole body if it is in memory already.
    pub fn as_full(&self) -> Option<&Bytes> {
        match self {
            Body::Full(b) => Some(b),
            Body::Stream(_) => None,
        }
    }

    /// Read the body into memory, at most `limit` bytes. On `TooLarge` what was read is lost:
    /// the request or response fails.
    pub async fn buffer(&mut self, limit: usize) -> Result<&Bytes, BodyError> {
        if let Body::Stream(stream) = self {
            let too_large = BodyError::TooLarge { limit };
            if http_body::Body::size_hint(&*stream).lower() > limit as u64 {
                return Err(too_large);
            }
            let mut buf =
                BytesMut::with_capacity(http_body::Body::size_hint(&*stream).lower() as usize);
            while let Some(frame) = stream.frame().await {
                let frame = frame.map_err(BodyError::Read)?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return Err(too_large);
                    }
                    buf.extend_from_slice(&data);
                }
            }
            *self = Body::Full(buf.freeze());
        }
        match self {
            Body::Full(b) => Ok(b),
            Body::Stream(_) => unreachable!("buffered above"),
        }
    }

    /// The whole body if it is at most `limit` bytes; `None` if it is longer, in which case
    /// the body is left whole for its reader (the part read is put back in front of the rest).
    pub async fn buffer_within(&mut self, limit: usize) -> Result<Option<&Bytes>, BodyError> {
        if let Body::Stream(stream) = self {
            if http_body::Body::size_hint(&*stream).lower() > limit as u64 {
                return Ok(None);
            }
            let mut buf = BytesMut::new();
            loop {
                match stream.frame().await {
                    None => break,
                    Some(Err(e)) => return Err(BodyError::Read(e)),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) if buf.len() + data.len() > limit => {
                            buf.extend_from_slice(&data);
                            let rest = std::mem::replace(
                                stream,
                                Empty::new().map_err(|e| match e {}).boxed_unsync(),
                            );
                            let head = Full::new(buf.freeze()).map_err(|e| match e {});
                            *self = Body::Stream(Chain::new(head, rest).boxed_unsync());
                            return Ok(None);
                        }
                        Ok(data) => buf.extend_from_slice(&data),
                        // Trailers of a body short enough to hold are dropped with it.
                        Err(_) => {}
                    },
                }
            }
            *self = Body::Full(buf.freeze());
        }
        Ok(self.as_full())
    }

    /// The body as something hyper can send.
    pub fn into_stream(self) -> Stream {
        match self {
            Body::Full(b) if b.is_empty() => Empty::new().map_err(|e| match e {}).boxed_unsync(),
            Body::Full(b) => Full::new(b).map_err(|e| match e {}).boxed_unsync(),
            Body::Stream(s) => s,
        }
    }
}

pin_project_lite::pin_project! {
    /// One body after another (a buffered head put back in front of the rest).
    struct Chain<A, B> {
        #[pin]
        first: A,
        #[pin]
        second: B,
        first_done: bool,
    }
}

impl<A, B> Chain<A, B> {
    fn new(first: A, second: B) -> Self {
        Chain {
            first,
            second,
            first_done: false,
        }
    }
}

impl<A, B> http_body::Body for Chain<A, B>
where
    A: http_body::Body<Data = Bytes, Error = BoxError>,
    B: http_body::Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if !*this.first_done {
            match this.first.poll_frame(cx) {
                Poll::Ready(None) => *this.first_done = true,
                other => return other,
            }
        }
        this.second.poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.second.size_hint();
        if !self.first_done {
            let first = self.first.size_hint();
            hint.set_lower(hint.lower() + first.lower());
            if let (Some(a), Some(b)) = (hint.upper(), first.upper()) {
                hint.set_upper(a + b);
            }
        }
        hint
    }
}

/// Raised by a stream that went quiet for longer than its idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}")]
pub struct Idle(pub Duration);

pin_project_lite::pin_project! {
    /// Ends a stream that sends nothing for `timeout`: a quiet upstream (or client) must not
    /// hold a connection forever, while a stream that keeps sending (SSE, a download) may run
    /// as long as it likes.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: tokio::time::Sleep,
        timeout: Duration,
    }
}

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            sleep: tokio::time::sleep(timeout),
            timeout,
        }
    }
}

impl<B> http_body::Body for IdleTimeout<B>
where
    B: http_body::Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + *this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.sleep.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Idle(*this.timeout))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// Passes a body on while keeping a copy of it behind `head`, up to `limit` bytes in all;
    /// when the body has ended whole, hands the copy to `done`. A body that fails, passes the
    /// limit or is dropped before its end (the client went away) hands over nothing.
    pub struct Tee<B, F> {
        #[pin]
        inner: B,
        copy: Option<BytesMut>,
        limit: usize,
        // The body's length when it was known at the start.
        expected: Option<u64>,
        seen: u64,
        done: Option<F>,
    }
}

impl<B: http_body::Body, F: FnOnce(Bytes)> Tee<B, F> {
    pub fn new(inner: B, head: &[u8], limit: usize, done: F) -> Self {
        let copy = (head.len() <= limit).then(|| BytesMut::from(head));
        Tee {
            expected: inner.size_hint().exact(),
            inner,
            copy,
            limit,
            seen: 0,
            done: Some(done),
        }
    }
}

impl<B, F> http_body::Body for Tee<B, F>
where
    B: http_body::Body<Data = Bytes, Error = BoxError>,
    F: FnOnce(Bytes),
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        // The end is the last frame of a body of known length (hyper stops polling one once
        // all its bytes are written), a body that says it is at its end, or its `None`.
        let ended = match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.seen += data.len() as u64;
                    if let Some(copy) = this.copy.as_mut() {
                        if copy.len() + data.len() > *this.limit {
                            *this.copy = None;
                        } else {
                            copy.extend_from_slice(data);
                        }
                    }
                }
                this.inner.is_end_stream() || *this.expected == Some(*this.seen)
            }
            Poll::Ready(Some(Err(_))) => {
                *this.copy = None;
                false
            }
            Poll::Ready(None) => true,
            Poll::Pending => false,
        };
        if ended {
            if let (Some(copy), Some(done)) = (this.copy.take(), this.done.take()) {
                done(copy.freeze());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Raised by a stream that passed its byte limit.
#[derive(Debug, thiserror::Error)]
#[error("body larger than {0} bytes")]
pub struct OverLimit(pub u64);

pin_project_lite::pin_project! {
    /// Fails a streamed body past `limit` bytes and raises `tripped`, so whoever sees the
    /// failure downstream (the upstream client) can tell the client 413 rather than 502.
    pub struct CountingLimit<B> {
        #[pin]
        inner: B,
        seen: u64,
        limit: u64,
        tripped: Arc<AtomicBool>,
    }
}

impl<B> CountingLimit<B> {
    pub fn new(inner: B, limit: u64, tripped: Arc<AtomicBool>) -> Self {
        CountingLimit {
            inner,
            seen: 0,
            limit,
            tripped,
        }
    }
}

impl<B> http_body::Body for CountingLimit<B>
where
    B: http_body::Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.seen += data.len() as u64;
                    if *this.seen > *this.limit {
                        this.tripped.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(OverLimit(*this.limit)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        Body::stream(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
    }

    async fn collect(body: Body) -> Vec<u8> {
        body.into_stream()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    /// Where a test tee's copy went.
    type Got = Arc<std::sync::Mutex<Option<Bytes>>>;

    /// A tee over `body` with `head` "H:" and `limit`, and where its copy went.
    fn tee(body: Stream, limit: usize) -> (Tee<Stream, impl FnOnce(Bytes)>, Got) {
        let got = Got::default();
        let sink = got.clone();
        let t = Tee::new(body, b"H:", limit, move |b| *sink.lock().unwrap() = Some(b));
        (t, got)
    }

    #[tokio::test]
    async fn a_tee_hands_over_the_whole_body_behind_its_head() {
        let (t, got) = tee(chunks(&["ab", "cd"]).into_stream(), 100);
        assert_eq!(t.collect().await.unwrap().to_bytes().as_ref(), b"abcd");
        assert_eq!(got.lock().unwrap().as_deref(), Some(&b"H:abcd"[..]));
    }

    #[tokio::test]
    async fn a_tee_of_known_length_hands_over_at_its_last_byte() {
        // hyper polls a body of known length no further once its bytes are written.
        let body = Full::new(Bytes::from_static(b"abcd"))
            .map_err(|e| match e {})
            .boxed_unsync();
        let (mut t, got) = tee(body, 100);
        let frame = t.frame().await.unwrap().unwrap();
        assert_eq!(frame.data_ref().unwrap().as_ref(), b"abcd");
        assert_eq!(got.lock().unwrap().as_deref(), Some(&b"H:abcd"[..]));
    }

    #[tokio::test]
    async fn a_tee_hands_over_nothing_past_its_limit_on_error_or_when_dropped_early() {
        let (t, got) = tee(chunks(&["ab", "cde"]).into_stream(), 6);
        assert_eq!(t.collect().await.unwrap().to_bytes().as_ref(), b"abcde");
        assert!(got.lock().unwrap().is_none(), "past the limit");

        let failing = futures_util::stream::iter(vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err::<Frame<Bytes>, BoxError>("upstream reset".into()),
        ]);
        let (t, got) = tee(
            Body::stream(http_body_util::StreamBody::new(failing)).into_stream(),
            100,
        );
        assert!(t.collect().await.is_err());
        assert!(got.lock().unwrap().is_none(), "after an error");

        let (mut t, got) = tee(chunks(&["ab", "cd"]).into_stream(), 100);
        t.frame().await.unwrap().unwrap();
        drop(t);
        assert!(got.lock().unwrap().is_none(), "dropped before its end");
    }

    #[tokio::test]
    async fn buffers_within_the_limit_and_refuses_past_it() {
        let mut b = chunks(&["ab", "cd"]);
        assert_eq!(b.buffer(4).await.unwrap().as_ref(), b"abcd");
        let mut b = chunks(&["ab", "cde"]);
        assert!(matches!(
            b.buffer(4).await,
            Err(BodyError::TooLarge { limit: 4 })
        ));
    }

    #[tokio::test]
    async fn a_body_too_long_to_hold_is_left_whole() {
        let mut b = chunks(&["ab", "cd", "ef"]);
        assert!(b.buffer_within(3).await.unwrap().is_none());
        assert_eq!(collect(b).await, b"abcdef");
        let mut b = chunks(&["ab", "c"]);
        assert_eq!(b.buffer_within(3).await.unwrap().unwrap().as_ref(), b"abc");
    }

    #[tokio::test]
    async fn a_counting_limit_trips_past_its_bytes() {
        let tripped = Arc::new(AtomicBool::new(false));
        let limited = CountingLimit::new(chunks(&["ab", "cd"]).into_stream(), 3, tripped.clone());
        assert!(limited.collect().await.is_err());
        assert!(tripped.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_quiet_stream_times_out() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let quiet = http_body_util::StreamBody::new(tokio_stream_rx(rx));
        let body = IdleTimeout::new(quiet, Duration::from_millis(50));
        let err = body.collect().await.err().unwrap();
        assert!(err.to_string().contains("no data"), "{err}");
    }

    fn tokio_stream_rx<T>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
