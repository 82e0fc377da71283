//! The hot-token map: a keyed hash of the token → verified principal, bounded, expired
//! entries evicted.
//!
//! A JWT is signature-checked once, then served from here until it expires. Sharded
//! (dashmap), so lookups from many cores never wait on one lock. The key is a GMAC of the
//! token under a key drawn at start (`HotKeyer`): a tenth of SHA-256's cost on an 800-byte
//! JWT, and with the key secret no one can choose two tokens that share an entry. The token
//! itself is never kept. Opaque tokens are also indexed by their SHA-256, which is how the
//! store names them when another replica revokes one.

use crate::principal::{Holdings, Principal};
use crate::token::opaque::TokenHash;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Key of a hot entry: the 128-bit GMAC of the token.
pub type HotKey = [u8; 16];

/// Makes hot keys: AES-256-GCM's tag over the token as associated data, no plaintext, one
/// fixed nonce (GMAC, NIST SP 800-38D) under a random key that never leaves the process.
/// The tags are never shown to anyone, so the fixed nonce gives an attacker nothing to solve.
pub struct HotKeyer(LessSafeKey);

impl std::fmt::Debug for HotKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HotKeyer(..)")
    }
}

impl HotKeyer {
    /// A keyer with a fresh random key.
    pub fn new() -> Self {
        let key = crate::token::opaque::random_bytes::<32>();
        let key = UnboundKey::new(&AES_256_GCM, &key).expect("a 256-bit AES key");
        HotKeyer(LessSafeKey::new(key))
    }

    /// The hot key of `token`.
    pub fn key(&self, token: &str) -> HotKey {
        let nonce = Nonce::assume_unique_for_key([0; 12]);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, Aad::from(token.as_bytes()), &mut [])
            .expect("GCM seals any associated data under 2^61 bytes");
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl Default for HotKeyer {
    fn default() -> Self {
        Self::new()
    }
}

/// The hot map's hasher: a hot key is already a keyed MAC, uniform and unknown to clients,
/// so its first 8 bytes serve as the bucket hash without hashing it again.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyBits(u64);

impl std::hash::Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(first);
    }

    // The slice's length prefix (always 16) adds nothing.
    fn write_usize(&mut self, _: usize) {}
}

type KeyMap<V> = DashMap<HotKey, V, std::hash::BuildHasherDefault<KeyBits>>;

/// Bounded cache of verified tokens.
#[derive(Debug)]
pub struct HotTokens {
    keyer: HotKeyer,
    map: KeyMap<Arc<Principal>>,
    /// SHA-256 → hot key, for opaque tokens only (the store revokes those by SHA-256).
    by_sha: DashMap<TokenHash, HotKey>,
    holdings: Holdings,
    cap: usize,
    last_full_sweep: AtomicU64,
}

impl HotTokens {
    /// A map holding at most `cap` tokens.
    pub fn new(cap: usize) -> Self {
        HotTokens {
            keyer: HotKeyer::new(),
            map: KeyMap::with_capacity_and_hasher(cap.min(4096), Default::default()),
            by_sha: DashMap::new(),
            holdings: Holdings::default(),
            cap: cap.max(1),
            last_full_sweep: AtomicU64::new(0),
        }
    }

    /// The key `token` is kept under.
    pub fn key(&self, token: &str) -> HotKey {
        self.keyer.key(token)
    }

    /// `p`, sharing what it holds with the hot tokens that hold the same.
    pub fn share(&self, p: Principal) -> Principal {
        self.holdings.share(p)
    }

    /// The principal of a hot token.
    pub fn get(&self, key: &HotKey) -> Option<Arc<Principal>> {
        self.map.get(key).map(|e| Arc::clone(e.value()))
    }

    /// Remembers a verified token (with its SHA-256 when it is opaque); when full, expired
    /// entries go first, then an arbitrary one.
    pub fn insert(&self, key: HotKey, sha: Option<TokenHash>, principal: Arc<Principal>, now: u64) {
        if self.map.len() >= self.cap {
            // A full scan at most once a second: a map full of live tokens must not make every
            // miss walk all of it. Between scans one arbitrary entry makes room.
            if self.last_full_sweep.swap(now, Ordering::Relaxed) != now {
                self.sweep(now);
            }
            if self.map.len() >= self.cap {
                let victim = self.map.iter().next().map(|e| *e.key());
                if let Some(k) = victim {
                    self.map.remove(&k);
                }
            }
        }
        if let Some(sha) = sha {
            // Evicted entries leave their SHA behind; past twice the bound they are dropped,
            // which leaves at most the map's size, so the scan is amortised over `cap` inserts.
            if self.by_sha.len() >= self.cap.saturating_mul(2) {
                self.by_sha.retain(|_, k| self.map.contains_key(k));
            }
            self.by_sha.insert(sha, key);
        }
        self.map.insert(key, principal);
    }

    /// Forgets one token.
    pub fn remove(&self, key: &HotKey) {
        self.map.remove(key);
    }

    /// Forgets `token`; `revoked` also flags copies already handed out.
    pub fn forget_token(&self, token: &str, revoked: bool) {
        self.forget_key(&self.key(token), revoked);
    }

    /// Forgets the opaque token whose SHA-256 is `sha` (as the store names it).
    pub fn forget_stored(&self, sha: &TokenHash, revoked: bool) {
        if let Some((_, key)) = self.by_sha.remove(sha) {
            self.forget_key(&key, revoked);
        }
    }

    fn forget_key(&self, key: &HotKey, revoked: bool) {
        if let Some((_, p)) = self.map.remove(key) {
            if revoked {
                p.mark_revoked();
            }
        }
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
        self.by_sha.retain(|_, k| self.map.contains_key(k));
        self.holdings.sweep();
        self.map.len()
    }

    /// Drops everything (signing keys changed).
    pub fn clear(&self) {
        self.map.clear();
        self.by_sha.clear();
        self.holdings.clear();
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
            hot.insert([i; 16], Some([i; 32]), p("j", 100), 50);
        }
        assert_eq!(hot.len(), 3);
        assert!(
            hot.by_sha.len() <= 6,
            "the SHA index stays within twice the bound"
        );
    }

    #[test]
    fn expired_entries_are_evicted_before_live_ones() {
        let hot = HotTokens::new(2);
        hot.insert([1; 16], None, p("old", 10), 5);
        hot.insert([2; 16], None, p("live", 100), 5);
        hot.insert([3; 16], None, p("new", 100), 50);
        assert!(hot.get(&[1; 16]).is_none());
        assert!(hot.get(&[2; 16]).is_some());
        assert!(hot.get(&[3; 16]).is_some());
    }

    #[test]
    fn revoking_a_jti_marks_and_drops_its_entries() {
        let hot = HotTokens::new(10);
        let held = p("x", 100);
        hot.insert([1; 16], None, Arc::clone(&held), 0);
        hot.revoke_jti("x");
        assert!(hot.get(&[1; 16]).is_none());
        assert!(held.is_revoked());
    }

    #[test]
    fn an_opaque_token_is_forgotten_by_the_sha_the_store_names_it_by() {
        let hot = HotTokens::new(10);
        let token = "opaque-token-value";
        let held = p("o", 100);
        let sha = crate::token::opaque::hash(token);
        hot.insert(hot.key(token), Some(sha), Arc::clone(&held), 0);
        assert!(hot.get(&hot.key(token)).is_some());
        hot.forget_stored(&sha, true);
        assert!(hot.get(&hot.key(token)).is_none());
        assert!(held.is_revoked());
    }

    #[test]
    fn keys_are_stable_distinct_and_secret_per_map() {
        let (a, b) = (HotTokens::new(1), HotTokens::new(1));
        assert_eq!(a.key("token"), a.key("token"));
        assert_ne!(a.key("token"), a.key("tokem"));
        assert_ne!(a.key("token"), b.key("token"), "each map draws its own key");
    }
}
