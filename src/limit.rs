//! Token buckets in memory, bounded in size: per client IP on the token endpoints, and per
//! presented app id for failed authentications (so guessing one app's secret, or flooding
//! argon2 with wrong ones, is slowed down without touching other clients).

use crate::config::Rate;
use dashmap::DashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Instant;

/// Most keys tracked per bucket set; beyond it full buckets (the same as no entry) are
/// dropped, and if every one is draining the set starts over.
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
    fn make_room(&self, now: Instant, rate: Rate, burst: f64) {
        if self.map.len() >= self.cap {
            self.map.retain(|_, b| refill(*b, rate, burst, now) < burst);
            if self.map.len() >= self.cap {
                self.map.clear();
            }
        }
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

    /// `Err(seconds)` when `key` has no token left, without taking one.
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
    /// Requests per client IP.
    pub per_ip: Buckets<IpAddr>,
    /// Failed authentications per presented app id (at most 64 bytes of it).
    pub failures: Buckets<Box<str>>,
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
}
