//! When a failed try may be made again: idempotent methods after any configured outcome, any
//! method only when nothing reached the target, a body only when it was small enough to keep,
//! and never beyond the retry budget.

use super::client::{Failure, ProxyBody};
use crate::body::client::ClientBody;
use crate::config::{Retries, RetryOn, UpstreamConfig};
use crate::reject::Reject;
use http::Method;
use http_body::Body as _;
use http_body_util::{BodyExt as _, Either, Full, Limited};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Retries in flight allowed whatever the load, so a quiet pool may still retry.
const MIN_RETRY_CONCURRENCY: usize = 3;

/// Methods whose repetition has the effect of one (RFC 9110 §9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The body, buffered when a retry could need it again and it is known to fit
/// `retry_body_bytes`; otherwise streamed as it comes (and never retried).
pub async fn replayable(body: ClientBody, cfg: &UpstreamConfig) -> Result<ProxyBody, Reject> {
    if cfg.retries.attempts <= 1 {
        return Ok(Either::Left(body));
    }
    // The common case: nothing to keep, nothing to wait for.
    if body.is_end_stream() {
        return Ok(Either::Right(Full::default()));
    }
    let fits = body
        .size_hint()
        .exact()
        .is_some_and(|n| n <= cfg.retry_body_bytes as u64);
    if !fits {
        return Ok(Either::Left(body));
    }
    let bytes = Limited::new(body, cfg.retry_body_bytes)
        .collect()
        .await
        .map_err(|_| Reject::BadBody)?
        .to_bytes();
    Ok(Either::Right(Full::new(bytes)))
}

/// The retry decisions of one request.
#[derive(Debug)]
pub struct Plan<'a> {
    retries: &'a Retries,
    idempotent: bool,
    replay: Option<Full<bytes::Bytes>>,
    tries: u32,
}

impl<'a> Plan<'a> {
    /// For a request of `method` sending `body`.
    pub fn new(retries: &'a Retries, method: &Method, body: &ProxyBody) -> Self {
        Plan {
            retries,
            idempotent: idempotent(method),
            replay: match body {
                Either::Right(full) => Some(full.clone()),
                Either::Left(_) => None,
            },
            tries: 1,
        }
    }

    /// Whether another try is possible at all (attempts left, a body to send again).
    pub fn may_retry(&self) -> bool {
        self.tries < self.retries.attempts && self.replay.is_some()
    }

    /// The body again, for the next try.
    pub fn replay(&self) -> Option<ProxyBody> {
        self.replay.clone().map(Either::Right)
    }

    /// After the target answered `status`: only an idempotent request is sent again.
    pub fn after_status(&self, status: u16) -> bool {
        self.idempotent && RetryOn::of_status(status).is_some_and(|o| self.retries.on(o))
    }

    /// After a failed exchange: any method when nothing reached the target.
    pub fn after_failure(&self, f: &Failure) -> bool {
        let what = match f {
            Failure::Connect | Failure::Tls(_) => RetryOn::ConnectFailure,
            Failure::RefusedStream => RetryOn::RefusedStream,
            Failure::Other => return false,
        };
        self.retries.on(what) && (what.nothing_sent() || self.idempotent)
    }

    /// After `per_try_timeout` ran out (counted as a 504): only an idempotent request.
    pub fn after_try_timeout(&self) -> bool {
        self.idempotent && self.retries.on(RetryOn::GatewayTimeout)
    }

    /// Counts a retry made.
    pub fn retried(&mut self) {
        self.tries += 1;
    }
}

/// Requests and retries in flight in one pool.
#[derive(Debug, Default)]
pub struct Budget {
    in_flight: AtomicUsize,
    retrying: AtomicUsize,
}

/// Held while a request (or a retry) is in flight.
#[derive(Debug)]
pub struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Budget {
    /// Counts a request in flight until the slot is dropped.
    pub fn enter(&self) -> Slot<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Slot(&self.in_flight)
    }

    /// A retry slot when retries in flight stay within `percent` of requests in flight (and
    /// at least a few are always allowed); `None` when the budget is spent.
    pub fn retry(&self, percent: u32) -> Option<Slot<'_>> {
        if percent == 0 {
            return None;
        }
        let flight = self.in_flight.load(Ordering::Relaxed);
        let allowed = (flight * percent as usize / 100).max(MIN_RETRY_CONCURRENCY);
        let now = self.retrying.fetch_add(1, Ordering::Relaxed);
        if now >= allowed {
            self.retrying.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Slot(&self.retrying))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_share_of_what_is_in_flight() {
        let b = Budget::default();
        let flights: Vec<_> = (0..50).map(|_| b.enter()).collect();
        // 20% of 50 = 10 retries at once, the 11th refused.
        let slots: Vec<_> = (0..10)
            .map(|_| b.retry(20).expect("within budget"))
            .collect();
        assert!(b.retry(20).is_none());
        drop(slots);
        assert!(b.retry(20).is_some());
        drop(flights);
        // A quiet pool still has the minimum.
        let _one = b.enter();
        let few: Vec<_> = (0..3).map(|_| b.retry(20).expect("minimum")).collect();
        assert!(b.retry(20).is_none());
        assert_eq!(few.len(), 3);
        assert!(b.retry(0).is_none());
    }

    #[test]
    fn a_write_is_sent_again_only_when_it_never_left() {
        let retries = Retries {
            attempts: 2,
            on: RetryOn::NAMES.iter().map(|(_, o)| *o).collect(),
            per_try_timeout: None,
            budget_percent: 20,
        };
        let body: ProxyBody = Either::Right(Full::new(bytes::Bytes::from_static(b"x")));
        let post = Plan::new(&retries, &Method::POST, &body);
        assert!(post.may_retry());
        assert!(post.after_failure(&Failure::Connect));
        assert!(post.after_failure(&Failure::RefusedStream));
        assert!(!post.after_failure(&Failure::Other));
        assert!(!post.after_status(503));
        assert!(!post.after_try_timeout());
        let get = Plan::new(&retries, &Method::GET, &body);
        assert!(get.after_status(503));
        assert!(!get.after_status(500));
        assert!(get.after_try_timeout());
    }
}
