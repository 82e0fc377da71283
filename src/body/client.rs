//! The client's request body on its way upstream, watched: a piece must arrive within
//! `limits.body_read_timeout` of the last, and a body that breaks its own framing (a bad chunk
//! size, an oversize chunk extension, a body cut short) is told apart from an upstream failure,
//! so the client gets 400 / 408 instead of 502 and the half-sent upstream connection is dropped.
//! The same cell records that the body was read to its end, so a kept upstream connection is
//! reused only once its request went out whole.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Body sent upstream: the client's streamed, or a buffered copy that can be sent again.
pub type ProxyBody = http_body_util::Either<ClientBody, http_body_util::Full<Bytes>>;

/// What went wrong with the client's body, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Nothing (yet).
    None,
    /// Its framing was invalid or it ended early.
    Malformed,
    /// No piece arrived in time.
    Stalled,
    /// Read to its end without a fault.
    Finished,
}

/// Where the fault is reported; kept by the sender while the body travels. A request
/// without a body cannot fault, so it gets no shared cell (no allocation per request).
#[derive(Debug, Clone, Default)]
pub struct FaultFlag(Option<Arc<AtomicU8>>);

impl FaultFlag {
    /// A flag for `body`: a shared cell only when there is a body to watch.
    pub fn for_body(body: &Incoming) -> Self {
        FaultFlag((!body.is_end_stream()).then(Arc::default))
    }

    fn set(&self, f: BodyFault) {
        let v = match f {
            BodyFault::None => 0,
            BodyFault::Malformed => 1,
            BodyFault::Stalled => 2,
            BodyFault::Finished => 3,
        };
        if let Some(cell) = &self.0 {
            cell.store(v, Ordering::Release);
        }
    }

    /// The fault seen so far ([`BodyFault::Finished`] once read whole; a request without a
    /// body is finished from the start).
    pub fn get(&self) -> BodyFault {
        match self.0.as_ref().map(|c| c.load(Ordering::Acquire)) {
            Some(1) => BodyFault::Malformed,
            Some(2) => BodyFault::Stalled,
            Some(3) | None => BodyFault::Finished,
            _ => BodyFault::None,
        }
    }

    /// True when the client's body caused the failure (malformed, cut short, stalled): then
    /// it counts against the client, never against the upstream target.
    pub fn client_fault(&self) -> bool {
        matches!(self.get(), BodyFault::Malformed | BodyFault::Stalled)
    }
}

/// A request body with an idle deadline between pieces (the timer is made only if the body
/// ever waits, so bodiless requests cost nothing).
#[derive(Debug)]
pub struct ClientBody {
    inner: Incoming,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    fault: FaultFlag,
}

impl ClientBody {
    /// The cell this body reports to.
    pub fn flag(&self) -> &FaultFlag {
        &self.fault
    }

    /// Watches `inner`; faults are reported to `fault`.
    pub fn new(inner: Incoming, idle: Duration, fault: FaultFlag) -> Self {
        ClientBody {
            inner,
            idle,
            timer: None,
            fault,
        }
    }
}

/// Why the body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// The client's framing was broken.
    #[error("client request body malformed: {0}")]
    Malformed(hyper::Error),
    /// The client went silent.
    #[error("client request body stalled")]
    Stalled,
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            // The client's trailer fields are not forwarded: an upstream may merge them into
            // the head (RFC 9110 §6.5.1 forbids it, frameworks do it), and none of them is
            // read here. hyper's HTTP/1 client would drop them; HTTP/2 would send them.
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                this.timer = None;
                this.fault.set(BodyFault::Finished);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.timer = None;
                // hyper stops polling a body that says it ended (a Content-Length one).
                if this.inner.is_end_stream() {
                    this.fault.set(BodyFault::Finished);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.fault.set(BodyFault::Malformed);
                Poll::Ready(Some(Err(ClientBodyError::Malformed(e))))
            }
            Poll::Ready(None) => {
                this.fault.set(BodyFault::Finished);
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.fault.set(BodyFault::Stalled);
                        Poll::Ready(Some(Err(ClientBodyError::Stalled)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
