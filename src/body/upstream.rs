//! The upstream's response body on its way to the client; one from a kept HTTP/1 connection
//! hands the connection back to its pool (`Checkin`) when it has been read whole.

use super::client::{BodyFault, FaultFlag, ProxyBody};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Where a kept connection goes back when its answer was read whole (a pool of one target).
pub trait Checkin: Send + Sync + std::fmt::Debug {
    /// Takes `tx` back (or drops it, which closes the connection).
    fn checkin(&self, tx: SendRequest<ProxyBody>);
}

/// A response body from an upstream; one from a kept connection gives the connection back
/// when it has been read to its end and the request's own body was sent whole (a body dropped
/// half-read, or a request body still streaming, closes it instead).
#[derive(Debug)]
pub struct UpstreamBody {
    inner: Incoming,
    back: Option<(SendRequest<ProxyBody>, Arc<dyn Checkin>, FaultFlag)>,
}

impl UpstreamBody {
    /// A body whose connection is not pooled here (HTTP/2, TLS, upgrades).
    pub fn unpooled(inner: Incoming) -> Self {
        UpstreamBody { inner, back: None }
    }

    /// A body whose connection goes back to `home` once read to its end, if the request's
    /// own body (`sent`) went out whole by then.
    pub fn pooled(
        inner: Incoming,
        tx: SendRequest<ProxyBody>,
        home: Arc<dyn Checkin>,
        sent: FaultFlag,
    ) -> Self {
        let mut b = UpstreamBody {
            inner,
            back: Some((tx, home, sent)),
        };
        if b.inner.is_end_stream() {
            b.give_back();
        }
        b
    }

    fn give_back(&mut self) {
        if let Some((tx, home, sent)) = self.back.take() {
            if sent.get() == BodyFault::Finished {
                home.checkin(tx);
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.give_back(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
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
