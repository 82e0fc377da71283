//! Pre-resolved metric handles of one route: a request takes no lock on the metric vectors.

use super::Decision;
use super::DIALECT_LABELS;
use crate::config::Origin;
use http::Method;
use prometheus::{Histogram, IntCounter, IntCounterVec};
use std::sync::OnceLock;

const METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];
const METHOD_SLOTS: usize = METHODS.len();
const STATUS_SLOTS: [u16; 20] = [
    200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408, 413, 429, 431, 500, 502, 503,
    504,
];

impl RouteMetrics {
    /// The `route` label these handles carry.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Pre-resolved metric handles of one route.
pub struct RouteMetrics {
    label: Box<str>,
    duration: Histogram,
    decisions: Box<[OnceLock<IntCounter>]>,
    /// `dialect` label values past [`DIALECT_LABELS`]: the external issuers' names.
    issuers: Box<[Box<str>]>,
    decisions_vec: IntCounterVec,
    requests: Box<[OnceLock<IntCounter>]>,
    requests_vec: IntCounterVec,
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RouteMetrics({})", self.label)
    }
}

impl RouteMetrics {
    /// Handles for the route labelled `label`; the per-label counters resolve on first use.
    pub(super) fn new(
        label: &str,
        issuers: &[&str],
        duration: Histogram,
        decisions_vec: IntCounterVec,
        requests_vec: IntCounterVec,
    ) -> Self {
        RouteMetrics {
            label: label.into(),
            duration,
            decisions: (0..2 * Decision::ALL.len() * (DIALECT_LABELS.len() + issuers.len()))
                .map(|_| OnceLock::new())
                .collect(),
            issuers: issuers.iter().map(|&n| n.into()).collect(),
            decisions_vec,
            requests: (0..METHOD_SLOTS * STATUS_SLOTS.len())
                .map(|_| OnceLock::new())
                .collect(),
            requests_vec,
        }
    }

    /// Counts one request and its duration.
    pub fn observe(&self, method: &Method, status: u16, seconds: f64) {
        self.duration.observe(seconds);
        let m = METHODS.iter().position(|x| x == method);
        let s = STATUS_SLOTS.iter().position(|&x| x == status);
        match (m, s) {
            (Some(m), Some(s)) => self.requests[m * STATUS_SLOTS.len() + s]
                .get_or_init(|| {
                    let status = status.to_string();
                    self.requests_vec
                        .with_label_values(&[&*self.label, method.as_str(), &status])
                })
                .inc(),
            // Unusual methods share one label so a client cannot grow the label set.
            _ => {
                let method = if m.is_some() {
                    method.as_str()
                } else {
                    "OTHER"
                };
                self.requests_vec
                    .with_label_values(&[&*self.label, method, &status.to_string()])
                    .inc()
            }
        }
    }

    /// Counts one decision for a token (or an issuing request) of `origin` (`none` when no
    /// token was verified).
    pub fn decision(&self, decision: Decision, origin: Option<Origin>) {
        self.count_decision(decision, origin, false);
    }

    /// Counts what a shadow rule would have decided (`mode="shadow"`).
    pub fn shadow_decision(&self, decision: Decision, origin: Option<Origin>) {
        self.count_decision(decision, origin, true);
    }

    fn count_decision(&self, decision: Decision, origin: Option<Origin>, shadow: bool) {
        let d = match origin {
            None => 0,
            Some(Origin::Own(d)) => 1 + d as usize,
            Some(Origin::Issuer(i)) => DIALECT_LABELS.len() + i as usize,
        };
        let per = DIALECT_LABELS.len() + self.issuers.len();
        let half = Decision::ALL.len() * per;
        let at = usize::from(shadow) * half + decision as usize * per + d;
        let Some(slot) = self.decisions.get(at) else {
            return;
        };
        slot.get_or_init(|| {
            let name = DIALECT_LABELS
                .get(d)
                .copied()
                .unwrap_or_else(|| &self.issuers[d - DIALECT_LABELS.len()]);
            let mode = if shadow { "shadow" } else { "enforce" };
            self.decisions_vec
                .with_label_values(&[&*self.label, decision.as_str(), name, mode])
        })
        .inc();
    }
}
