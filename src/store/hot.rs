//! The hot-token map: token hash → verified principal, bounded, expired entries evicted.
//!
//! A JWT is signature-checked once, then served from here until it expires. Sharded
//! (dashmap), so lookups from many cores never wait on one lock.

use crate::guard::principal::Principal;
use crate::token::opaque::TokenHash;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bounded cache of verified tokens.
#[derive(Debug)]
pub struct HotTokens {
    map: DashMap<TokenHash, Arc<Principal>>,
    cap: usize,
    last_full_sweep: AtomicU64,
}

impl HotTokens {
    /// A map holding at most `cap` tokens.
    pub fn new(cap: usize) -> Self {
        HotTokens {
            map: DashMap::with_capacity(cap.min(4096)),
            cap: cap.max(1),
            last_full_sweep: AtomicU64::new(0),
        }
    }

    /// The principal of a hot token.
    pub fn get(&self, hash: &TokenHash) -> Option<Arc<Principal>> {
        self.map.get(hash).map(|e| Arc::clone(e.value()))
    }

    /// Remembers a verified token; when full, expired entries go first, then an arbitrary one.
    pub fn insert(&self, hash: TokenHash, principal: Arc<Principal>, now: u64) {
        if self.map.len() >= self.cap {
            // A full scan at most once a second: a map full of live tokens must not make every
            // miss walk all of it. Between scans one arbitrary entry makes room.
            if self.last_full_sweep.swap(now, Ordering::Relaxed) != now {
                self.map.retain(|_, p| p.exp > now);
            }
            if self.map.len() >= self.cap {
                let victim = self.map.iter().next().map(|e| *e.key());
                if let Some(k) = victim {
                    self.map.remove(&k);
                }
            }
        }
        self.map.insert(hash, principal);
    }

    /// Forgets one token.
    pub fn remove(&self, hash: &TokenHash) {
        self.map.remove(hash);
    }

    /// Marks every hot entry with token id `jti` revoked and drops it.
    pub fn revoke_jti(&self, jti: &str) {
        self.map.retain(|_, p| {
            if &*p.jti == jti {
                p.mark_revoked();
                false
            } else {
                true
            }
        });
    }

    /// Drops expired entries; returns how many remain.
    pub fn sweep(&self, now: u64) -> usize {
        self.map.retain(|_, p| p.exp > now);
        self.map.len()
    }

    /// Drops everything (signing keys changed).
    pub fn clear(&self) {
        self.map.clear();
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Tokens found bad recently, so a flood of the same garbage costs one check, not one each.
/// Kept briefly: on another replica an unknown token may become known.
#[derive(Debug)]
pub struct NegativeTokens {
    map: DashMap<TokenHash, u64>,
    cap: usize,
    ttl_ms: u64,
}

impl NegativeTokens {
    /// At most `cap` entries, each remembered `ttl_ms`.
    pub fn new(cap: usize, ttl_ms: u64) -> Self {
        NegativeTokens {
            map: DashMap::new(),
            cap: cap.max(1),
            ttl_ms,
        }
    }

    /// True when `hash` was found bad less than the ttl ago.
    pub fn contains(&self, hash: &TokenHash, now_ms: u64) -> bool {
        self.map.get(hash).is_some_and(|until| *until > now_ms)
    }

    /// Remembers a bad token; when full, the set starts over.
    pub fn insert(&self, hash: TokenHash, now_ms: u64) {
        // Full: start over. One clear per `cap` inserts, where scanning for expired entries on
        // every insert would let a flood of distinct garbage walk the whole set each time.
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        self.map.insert(hash, now_ms + self.ttl_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dialect;

    fn p(jti: &str, exp: u64) -> Arc<Principal> {
        Arc::new(Principal::new(
            "app".into(),
            Dialect::Oauth,
            exp,
            jti.into(),
        ))
    }

    #[test]
    fn bad_tokens_are_remembered_briefly_and_the_set_stays_bounded() {
        let neg = NegativeTokens::new(2, 1000);
        neg.insert([1; 32], 0);
        assert!(neg.contains(&[1; 32], 999));
        assert!(!neg.contains(&[1; 32], 1000));
        for i in 0..10u8 {
            neg.insert([i; 32], 5000);
        }
        assert!(neg.map.len() <= 2);
    }

    #[test]
    fn the_map_never_grows_past_its_bound() {
        let hot = HotTokens::new(3);
        for i in 0..10u8 {
            hot.insert([i; 32], p("j", 100), 50);
        }
        assert_eq!(hot.len(), 3);
    }

    #[test]
    fn expired_entries_are_evicted_before_live_ones() {
        let hot = HotTokens::new(2);
        hot.insert([1; 32], p("old", 10), 5);
        hot.insert([2; 32], p("live", 100), 5);
        hot.insert([3; 32], p("new", 100), 50);
        assert!(hot.get(&[1; 32]).is_none());
        assert!(hot.get(&[2; 32]).is_some());
        assert!(hot.get(&[3; 32]).is_some());
    }

    #[test]
    fn revoking_a_jti_marks_and_drops_its_entries() {
        let hot = HotTokens::new(10);
        let held = p("x", 100);
        hot.insert([1; 32], Arc::clone(&held), 0);
        hot.revoke_jti("x");
        assert!(hot.get(&[1; 32]).is_none());
        assert!(held.is_revoked());
    }
}
