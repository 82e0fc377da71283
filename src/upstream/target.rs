//! One target of a pool and whether it is in rotation: the active check's verdict and the
//! passive ejection after consecutive failures, both lock-free.

use super::h1::Conns;
use crate::config::Passive;
use http::uri::Authority;
use http::HeaderValue;
use prometheus::IntGauge;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One configured target.
#[derive(Debug)]
pub struct Target {
    /// `host:port`.
    pub authority: Authority,
    /// The `Host` sent to it.
    pub host: HeaderValue,
    /// As configured (`https://host:port`), for logs and the metric label.
    pub label: String,
    /// Its kept connections, for a plain HTTP/1.1 target (others use hyper-util's pool).
    pub h1: Option<Arc<Conns>>,
    /// The active health check's verdict (true until a check says otherwise).
    healthy: AtomicBool,
    /// Milliseconds since the pool's epoch until which passive ejection keeps it out.
    ejected_until: AtomicU64,
    /// Consecutive failed answers or connects.
    failures: AtomicU32,
    /// Consecutive probe passes (+) or failures (−) of the active check.
    streak: std::sync::atomic::AtomicI32,
    gauge: IntGauge,
}

/// What one try at a target came to, for passive ejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer below 500.
    Ok,
    /// A connect error, a 5xx, or a broken exchange.
    Failed,
}

impl Target {
    /// A target, in rotation; `label` is how it is configured (`http://host:port`).
    pub fn new(
        authority: Authority,
        label: String,
        h1: Option<Arc<Conns>>,
        gauge: IntGauge,
    ) -> Self {
        gauge.set(1);
        Target {
            h1,
            host: HeaderValue::from_str(authority.as_str())
                .expect("an authority is a valid header value"),
            label,
            authority,
            healthy: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            streak: std::sync::atomic::AtomicI32::new(0),
            gauge,
        }
    }

    /// Whether requests may go to it at `now_ms`.
    pub fn in_rotation(&self, now_ms: u64) -> bool {
        if !self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if until > now_ms {
            return false;
        }
        // The ejection has run out: back in rotation (the first to see it says so).
        if self
            .ejected_until
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.gauge.set(1);
            tracing::info!(target = %self.label, "upstream target back in rotation after ejection");
        }
        true
    }

    /// Milliseconds until it may be back (0 when it is in rotation or waits on a probe).
    pub fn back_in_ms(&self, now_ms: u64) -> u64 {
        self.ejected_until
            .load(Ordering::Relaxed)
            .saturating_sub(now_ms)
    }

    /// Records a try; `passive.failures` consecutive failures eject it for `eject_for`
    /// (counted from `epoch`; the clock is read only on a failure).
    pub fn record(&self, outcome: Outcome, passive: Passive, epoch: Instant, upstream: &str) {
        match outcome {
            Outcome::Ok => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            Outcome::Failed => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if passive.failures != 0 && n >= passive.failures {
                    self.failures.store(0, Ordering::Relaxed);
                    let until = ms_since(epoch) + duration_ms(passive.eject_for);
                    self.ejected_until.store(until, Ordering::Relaxed);
                    self.gauge.set(0);
                    tracing::warn!(
                        upstream,
                        target = %self.label,
                        failures = n,
                        eject_for_ms = duration_ms(passive.eject_for),
                        "upstream target ejected after consecutive failures"
                    );
                }
            }
        }
    }

    /// Records one active probe; `healthy` passes in a row bring it back, `unhealthy`
    /// failures in a row take it out.
    pub fn probed(&self, pass: bool, healthy: u32, unhealthy: u32, upstream: &str, why: &str) {
        let s = self.streak.load(Ordering::Relaxed);
        let s = match (pass, s) {
            (true, s) if s > 0 => s.saturating_add(1),
            (true, _) => 1,
            (false, s) if s < 0 => s.saturating_sub(1),
            (false, _) => -1,
        };
        self.streak.store(s, Ordering::Relaxed);
        let was = self.healthy.load(Ordering::Relaxed);
        if !was && s >= healthy as i32 {
            self.healthy.store(true, Ordering::Relaxed);
            if self.ejected_until.load(Ordering::Relaxed) == 0 {
                self.gauge.set(1);
            }
            tracing::info!(upstream, target = %self.label, "upstream target healthy again");
        } else if was && -s >= unhealthy as i32 {
            self.healthy.store(false, Ordering::Relaxed);
            self.gauge.set(0);
            tracing::warn!(upstream, target = %self.label, reason = why, "upstream target unhealthy");
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since `epoch`.
pub fn ms_since(epoch: Instant) -> u64 {
    duration_ms(epoch.elapsed())
}
