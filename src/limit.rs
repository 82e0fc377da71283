//! Token buckets in memory, bounded in size: per client address for secret verifications on
//! the token endpoints, per presented app id and address for failed authentications (so
//! guessing one app's secret, or flooding argon2 with wrong ones, is slowed down without
//! touching other clients), and per app or address on a route with `rate_limit:`. A full map
//! forgets its fullest buckets (those that limit nobody), a tenth at a time, never all at once.

use crate::config::Rate;
use dashmap::DashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Instant;

/// Most keys tracked per bucket set; beyond it the fullest buckets are forgotten, a tenth at a time.
const CAP: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A set of token buckets by key.
#[derive(Debug)]
pub struct Buckets<K: Hash + Eq> {
    map: DashMap<K, Bucket>,
    cap: usize,
}

impl<K: Hash + Eq + Clone> Default for Buckets<K> {
    fn default() -> Self {
        Buckets {
            map: DashMap::new(),
            cap: CAP,
        }
    }
}

fn refill(b: Bucket, rate: Rate, burst: f64, now: Instant) -> f64 {
    let secs = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + secs * rate.per_sec()).min(burst)
}

/// Seconds until one token is back, rounded up, at least 1 (the `Retry-After` value).
fn wait(tokens: f64, rate: Rate) -> u64 {
    (((1.0 - tokens) / rate.per_sec()).ceil() as u64).max(1)
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Over the cap, forgets buckets until a tenth of the room is free again: the fullest
    /// first (a full bucket is the same as none; a nearly full one limits nobody), never the
    /// drained ones of a client being held back, and never all at once.
    fn make_room(&self, now: Instant, rate: Rate, burst: f64) {
        if self.map.len() < self.cap {
            return;
        }
        let target = self.cap - (self.cap / 10).max(1);
        let mut levels: Vec<f64> = self
            .map
            .iter()
            .map(|e| refill(*e.value(), rate, burst, now))
            .collect();
        let excess = levels.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        // The `excess`-th fullest level: buckets at or above it go.
        levels.sort_unstable_by(|a, b| b.total_cmp(a));
        let cutoff = levels[excess - 1];
        let mut dropped = 0;
        self.map.retain(|_, b| {
            if dropped < excess && refill(*b, rate, burst, now) >= cutoff {
                dropped += 1;
                false
            } else {
                true
            }
        });
    }

    /// Takes one token for `key`; `Err(seconds)` when none is left.
    pub fn take(&self, key: &K, rate: Rate, burst: u32, now: Instant) -> Result<(), u64> {
        let burst = f64::from(burst.max(1));
        if !self.map.contains_key(key) {
            self.make_room(now, rate, burst);
        }
        let mut b = self.map.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refill(*b, rate, burst, now);
        if tokens < 1.0 {
            return Err(wait(tokens, rate));
        }
        *b = Bucket {
            tokens: tokens - 1.0,
            at: now,
        };
        Ok(())
    }

    /// Gives back one token taken for `key` (at most up to `burst`).
    pub fn refund(&self, key: &K, burst: u32) {
        if let Some(mut b) = self.map.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(f64::from(burst.max(1)));
        }
    }

    /// `Err(seconds)` when `key` has no token left, without taking one (tests look with it).
    #[cfg(test)]
    pub fn check(&self, key: &K, rate: Rate, burst: u32, now: Instant) -> Result<(), u64> {
        let burst = f64::from(burst.max(1));
        match self.map.get(key) {
            Some(b) => {
                let tokens = refill(*b, rate, burst, now);
                if tokens < 1.0 {
                    Err(wait(tokens, rate))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The token endpoints' limits (process-wide, surviving reloads).
#[derive(Debug, Default)]
pub struct TokenLimits {
    /// Secret verifications per client address (IPv6 per /64).
    pub per_ip: Buckets<IpAddr>,
    /// Failed authentications per presented app id (at most 64 bytes of it) and client address.
    pub failures: Buckets<(Box<str>, IpAddr)>,
    /// Authenticated token-endpoint requests per app id.
    pub per_app: Buckets<Box<str>>,
    /// Introspection calls for uncached opaque tokens, per client address.
    pub introspection: Buckets<IpAddr>,
    /// Signing-key rotations asked for on the admin API (one bucket).
    pub rotations: Buckets<()>,
    /// Each rate-limited route's buckets, by methods and pattern (kept across reloads).
    pub routes: DashMap<Box<str>, std::sync::Arc<Buckets<Subject>>>,
}

impl TokenLimits {
    /// Forgets the buckets of routes no longer configured (`keys`: those that are).
    pub fn keep_routes(&self, keys: &[Box<str>]) {
        self.routes.retain(|k, _| keys.contains(k));
    }
}

/// Admin key rotations: a burst of [`ROTATION_BURST`], then one per [`ROTATION_EVERY`].
pub const ROTATION_BURST: u32 = 3;
/// See [`ROTATION_BURST`].
pub const ROTATION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Whom a route's `rate_limit:` counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The token's app, by the origin that vouches for it (an issuer's client `billing` is
    /// not the local app `billing`).
    App(crate::config::Origin, Box<str>),
    /// The client address (IPv6 by its /64).
    Ip(IpAddr),
}

/// One route's limit: its setting and its buckets, which outlive reloads (kept by route pattern).
#[derive(Debug, Clone)]
pub struct RouteLimiter {
    /// As configured.
    pub cfg: crate::config::RouteRate,
    /// Its methods and pattern: what its buckets are kept under across reloads.
    pub key: Box<str>,
    buckets: std::sync::Arc<Buckets<Subject>>,
}

/// A spent route limit, as the refusal tells it (`Retry-After`, `RateLimit-Policy`, `RateLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    /// Seconds until a request is allowed again.
    pub retry_after: u64,
    /// Requests allowed at once (the burst).
    pub quota: u32,
    /// Seconds the rate takes to refill the whole quota.
    pub window: u64,
}

impl Spent {
    /// Writes `Retry-After` and the IETF draft's `RateLimit-Policy` / `RateLimit`
    /// (draft-ietf-httpapi-ratelimit-headers: `"name";q=quota;w=window`, `"name";r=remaining;t=reset`).
    pub fn write_headers(&self, h: &mut http::HeaderMap) {
        use http::HeaderValue;
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(self.retry_after),
        );
        let policy = format!("\"route\";q={};w={}", self.quota, self.window);
        let now = format!("\"route\";r=0;t={}", self.retry_after);
        if let (Ok(p), Ok(n)) = (HeaderValue::from_str(&policy), HeaderValue::from_str(&now)) {
            h.insert("ratelimit-policy", p);
            h.insert("ratelimit", n);
        }
    }
}

impl RouteLimiter {
    /// The limiter of route `r` with `cfg`, reusing the buckets `limits` keeps for it (under
    /// its methods and pattern: `GET /x` and `POST /x` are two routes with limits of their own);
    /// its 429 series exists from the start, at 0.
    pub fn for_route(
        r: &crate::config::RouteConfig,
        cfg: crate::config::RouteRate,
        limits: &TokenLimits,
        metrics: &crate::metrics::Metrics,
    ) -> Self {
        let _ = metrics
            .rate_limited
            .with_label_values(&[r.pattern.as_str()]);
        let methods = r.methods.as_ref().map_or("*".to_owned(), |m| {
            m.iter()
                .map(http::Method::as_str)
                .collect::<Vec<_>>()
                .join(",")
        });
        let key: Box<str> = format!("{methods} {}", r.pattern.as_str()).into();
        let buckets = limits
            .routes
            .entry(key.clone())
            .or_default()
            .value()
            .clone();
        RouteLimiter { cfg, key, buckets }
    }

    /// Takes one request for `who`; what to tell the client when none is left.
    pub fn admit(&self, who: &Subject, now: Instant) -> Result<(), Spent> {
        let c = &self.cfg;
        self.buckets
            .take(who, c.rate, c.burst, now)
            .map_err(|retry_after| Spent {
                retry_after,
                quota: c.burst.max(1),
                window: (f64::from(c.burst.max(1)) / c.rate.per_sec())
                    .ceil()
                    .max(1.0) as u64,
            })
    }
}

/// The key of a presented app id: bounded, so a flood of long ids stays small.
pub fn app_key(id: &str) -> Box<str> {
    let mut end = id.len().min(64);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    id[..end].into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rate(n: f64, secs: u64) -> Rate {
        Rate {
            tokens: n,
            per: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_burst_then_the_rate_then_a_wait() {
        let b: Buckets<u8> = Buckets::default();
        let t0 = Instant::now();
        let r = rate(2.0, 1);
        for _ in 0..4 {
            assert!(b.take(&1, r, 4, t0).is_ok());
        }
        assert_eq!(b.take(&1, r, 4, t0), Err(1));
        assert!(b.take(&2, r, 4, t0).is_ok(), "other keys are untouched");
        assert!(b.take(&1, r, 4, t0 + Duration::from_millis(500)).is_ok());
        assert!(b.check(&1, r, 4, t0 + Duration::from_millis(500)).is_err());
        let slow = rate(10.0, 60);
        for _ in 0..10 {
            b.take(&9, slow, 10, t0).unwrap();
        }
        assert_eq!(b.check(&9, slow, 10, t0), Err(6), "a token every 6 s");
    }

    #[test]
    fn the_set_stays_bounded() {
        let b: Buckets<u32> = Buckets {
            map: DashMap::new(),
            cap: 8,
        };
        let t0 = Instant::now();
        for k in 0..100 {
            let _ = b.take(&k, rate(1.0, 60), 1, t0);
        }
        assert!(b.len() <= 8);
    }

    #[test]
    fn a_full_set_forgets_the_oldest_and_keeps_the_rest_limited() {
        let b: Buckets<u32> = Buckets {
            map: DashMap::new(),
            cap: 10,
        };
        let t0 = Instant::now();
        let slow = rate(1.0, 3600);
        for k in 0..10 {
            let at = t0 + Duration::from_millis(u64::from(k));
            b.take(&k, slow, 1, at).unwrap();
        }
        let later = t0 + Duration::from_millis(50);
        b.take(&99, slow, 1, later).unwrap();
        assert!(b.len() <= 10);
        assert!(
            b.check(&0, slow, 1, later).is_ok(),
            "the oldest was forgotten"
        );
        for k in 5..10 {
            assert!(b.check(&k, slow, 1, later).is_err(), "{k} still limited");
        }
    }
}
