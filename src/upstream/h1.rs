//! Plain HTTP/1.1 targets without hyper-util's pool: each target keeps its ready connections
//! in a lock-free queue; a request takes one in its own task (or connects), sends on it, and
//! the response body gives it back when it ends, if the request body went out whole by then
//! (otherwise it is closed: no request ever waits on another's body). No pool mutex, no hash lookup, no task
//! spawned per request: one task per *connection* drives its socket.

use crate::body::client::{FaultFlag, ProxyBody};
use crate::body::upstream::{Checkin, UpstreamBody};
use crossbeam_queue::ArrayQueue;
use http::{Request, Response};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;

/// How long a kept connection may take to be ready before it is dropped for a new one.
const READY_GRACE: Duration = Duration::from_millis(5);

/// The ready connections of one target, and how to open more.
#[derive(Debug)]
pub struct Conns {
    idle: ArrayQueue<Idle>,
    authority: http::uri::Authority,
    connect_timeout: Duration,
    idle_timeout_ms: u64,
}

#[derive(Debug)]
struct Idle {
    tx: SendRequest<ProxyBody>,
    /// When it was given back (`recent_millis`: idle times tolerate its lag).
    since_ms: u64,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum H1Error {
    /// No connection could be opened (nothing was sent).
    Connect(std::io::Error),
    /// The exchange failed on an open connection.
    Exchange(hyper::Error),
    /// The answer must not be passed on (`answer::judge`); its connection was closed.
    BadAnswer(&'static str),
}

impl std::fmt::Display for H1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            H1Error::Connect(e) => write!(f, "connect: {e}"),
            H1Error::Exchange(e) => write!(f, "{e}"),
            H1Error::BadAnswer(why) => write!(f, "answer refused: {why}"),
        }
    }
}

impl Conns {
    /// At most `max_idle` kept, each at most `idle_timeout` unused.
    pub fn new(
        authority: http::uri::Authority,
        max_idle: usize,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Conns {
            idle: ArrayQueue::new(max_idle.max(1)),
            authority,
            connect_timeout,
            idle_timeout_ms: u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Sends `req` (origin-form URI, `Host` set) on a kept connection or a new one. A kept
    /// connection that closed before taking the request is skipped; the request is sent once.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, H1Error> {
        // Bounded: at most `capacity` kept connections are tried, then a new one is opened,
        // and a failure on a new connection is the answer.
        let mut kept_tries = 0;
        loop {
            let kept = (kept_tries < self.idle.capacity())
                .then(|| self.checkout())
                .flatten();
            let (mut tx, kept) = match kept {
                Some(tx) => (tx, true),
                // Boxed: connecting is rare, and its future would make every request's larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            kept_tries += 1;
            // A kept connection takes the request only when ready at once (or within a few
            // milliseconds, while its task notices the last answer ended): one still writing
            // another request's body is dropped, never waited on.
            if kept && !tx.is_ready() {
                let soon = tokio::time::timeout(READY_GRACE, tx.ready()).await;
                if !matches!(soon, Ok(Ok(()))) {
                    continue;
                }
            }
            let sent = match req.body() {
                http_body_util::Either::Left(streamed) => streamed.flag().clone(),
                http_body_util::Either::Right(_) => FaultFlag::default(),
            };
            match tx.try_send_request(req).await {
                // Judged before the connection may go back to the pool; dropping `tx` closes it.
                Ok(mut res) => {
                    super::answer::judge(&mut res).map_err(H1Error::BadAnswer)?;
                    let home = Arc::clone(self);
                    return Ok(res.map(|body| UpstreamBody::pooled(body, tx, home, sent)));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if kept => req = back,
                    _ => return Err(H1Error::Exchange(e.into_error())),
                },
            }
        }
    }

    /// A kept connection that is not past its idle time.
    fn checkout(&self) -> Option<SendRequest<ProxyBody>> {
        let now = crate::token::recent_millis();
        while let Some(c) = self.idle.pop() {
            if now.saturating_sub(c.since_ms) < self.idle_timeout_ms && !c.tx.is_closed() {
                return Some(c.tx);
            }
        }
        None
    }

    /// Closes kept connections unused for longer than the idle timeout.
    pub fn reap(&self) {
        let now = crate::token::recent_millis();
        for _ in 0..self.idle.len() {
            match self.idle.pop() {
                Some(c) if now.saturating_sub(c.since_ms) < self.idle_timeout_ms => {
                    let _ = self.idle.push(c);
                }
                Some(_) => {}
                None => break,
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<ProxyBody>, H1Error> {
        let port = self.authority.port_u16().unwrap_or(80);
        let addr = (self.authority.host(), port);
        let tcp = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| {
                H1Error::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })?
            .map_err(H1Error::Connect)?;
        tcp.set_nodelay(true).map_err(H1Error::Connect)?;
        // The request head and a small body go out in one buffer, as on the public side.
        let (tx, conn) = http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(H1Error::Exchange)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(tx)
    }
}

impl Checkin for Conns {
    fn checkin(&self, tx: SendRequest<ProxyBody>) {
        if tx.is_closed() {
            return;
        }
        let since_ms = crate::token::recent_millis();
        // Full: the connection is dropped, which closes it.
        let _ = self.idle.push(Idle { tx, since_ms });
    }
}
