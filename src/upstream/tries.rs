//! One request's tries over an upstream's targets: round robin from a moving start, the
//! retry plan and budget deciding whether a failed try goes to the next target in rotation.

use super::client::{self, Failure};
use super::retry::Plan;
use super::target::{ms_since, Outcome, Target};
use super::{ProxyBody, ServedBy, UpstreamBody, UpstreamPool};
use crate::body::client::{BodyFault, FaultFlag};
use crate::reject::Reject;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::Response;
use std::sync::atomic::Ordering;

impl UpstreamPool {
    /// `res` marked with the target that answered it, when the access log will name it.
    fn note_target<B>(&self, mut res: Response<B>, t: &Target) -> Response<B> {
        if tracing::enabled!(target: "tollgate::access", tracing::Level::INFO) {
            if let Some(i) = self.targets.iter().position(|x| std::ptr::eq(x, t)) {
                res.extensions_mut().insert(ServedBy(i));
            }
        }
        res
    }

    /// Tries the targets in turn. A try that failed because of the client's own body
    /// (`fault`) ends the request without touching the target's health, the retries or the
    /// upstream error counts: the client hears about it, the target did nothing wrong.
    pub(super) async fn try_targets(
        &self,
        mut parts: Parts,
        body: ProxyBody,
        pq: PathAndQuery,
        fault: &FaultFlag,
    ) -> Result<Response<UpstreamBody>, Reject> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = ms_since(self.epoch);
        let mut k = 0;
        let Some(mut t) = self.next_target(start, &mut k, now) else {
            return Err(self.none_in_rotation(now));
        };
        let mut plan = Plan::new(&self.cfg.retries, &parts.method, &body);
        let mut body = Some(body);
        let mut _retrying = None;
        loop {
            let b = match body.take() {
                Some(b) => b,
                None => plan
                    .replay()
                    .expect("a retry is planned only with a replayable body"),
            };
            let more = plan.may_retry() && {
                let mut peek = k;
                self.next_target(start, &mut peek, now).is_some()
            };
            // Copy the head only when a retry may need it again.
            let headers = if more {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            let sent = self.exchange(t, &parts, headers, &pq, b);
            let outcome = match self.cfg.retries.per_try_timeout {
                Some(d) => tokio::time::timeout(d, sent).await.ok(),
                None => Some(sent.await),
            };
            let wants_retry = match outcome {
                Some(Ok(res)) => {
                    let status = res.status().as_u16();
                    let failed = matches!(status, 502..=504);
                    if failed {
                        self.failed("status_5xx");
                    }
                    let o = if failed { Outcome::Failed } else { Outcome::Ok };
                    t.record(o, self.cfg.passive, self.epoch, &self.name);
                    if !(more && plan.after_status(status)) {
                        return Ok(self.note_target(res, t));
                    }
                    tracing::warn!(upstream = %self.name, target = %t.label, status, "upstream answered a retryable status; trying another target");
                    Reject::UpstreamUnavailable
                }
                Some(Err(_)) | None if fault.client_fault() => {
                    return Err(client_fault(fault));
                }
                // Out of time while the client was still sending: nobody to blame for sure,
                // so not the target.
                None if fault.get() == BodyFault::None => return Err(Reject::UpstreamTimeout),
                Some(Err(e)) => {
                    let failure = client::classify(&e);
                    self.failed(match failure {
                        Failure::Connect => "connect",
                        Failure::Tls(_) => "tls",
                        Failure::RefusedStream => "refused_stream",
                        Failure::Other => "broken",
                    });
                    t.record(Outcome::Failed, self.cfg.passive, self.epoch, &self.name);
                    let rej = match &failure {
                        Failure::Tls(check) => {
                            tracing::warn!(upstream = %self.name, target = %t.label, check = %check, "upstream TLS handshake failed");
                            Reject::UpstreamTls(check.clone())
                        }
                        Failure::Connect => {
                            tracing::warn!(upstream = %self.name, target = %t.label, "upstream target refused the connection");
                            Reject::UpstreamUnavailable
                        }
                        Failure::RefusedStream | Failure::Other => {
                            tracing::warn!(upstream = %self.name, target = %t.label, error = %e, "upstream request failed");
                            Reject::UpstreamUnavailable
                        }
                    };
                    if !(more && plan.after_failure(&failure)) {
                        return Err(rej);
                    }
                    rej
                }
                None => {
                    self.failed("timeout");
                    t.record(Outcome::Failed, self.cfg.passive, self.epoch, &self.name);
                    tracing::warn!(upstream = %self.name, target = %t.label, "upstream try timed out");
                    if !(more && plan.after_try_timeout()) {
                        return Err(Reject::UpstreamTimeout);
                    }
                    Reject::UpstreamTimeout
                }
            };
            // A retry: within the budget, to the next target in rotation.
            let Some(slot) = self.budget.retry(self.cfg.retries.budget_percent) else {
                tracing::warn!(upstream = %self.name, "retry budget spent; not retrying");
                return Err(wants_retry);
            };
            _retrying = Some(slot);
            match self.next_target(start, &mut k, ms_since(self.epoch)) {
                Some(next) => t = next,
                None => return Err(wants_retry),
            }
            self.retried.inc();
            plan.retried();
        }
    }
}

/// The refusal for a try the client's body broke.
fn client_fault(fault: &FaultFlag) -> Reject {
    match fault.get() {
        BodyFault::Stalled => Reject::BodyTimeout,
        _ => Reject::BadBody,
    }
}
