//! Revoked token ids, kept until the token would have expired anyway.

use dashmap::DashMap;

/// Set of revoked `jti`s with their expiry.
#[derive(Debug, Default)]
pub struct Revocations {
    ids: DashMap<Box<str>, u64>,
}

impl Revocations {
    /// Records a revocation of `jti`, which expires at `exp`.
    pub fn add(&self, jti: &str, exp: u64) {
        self.ids.insert(jti.into(), exp);
    }

    /// Loads stored revocations.
    pub fn restore(&self, rows: Vec<(String, u64)>) {
        for (jti, exp) in rows {
            self.ids.insert(jti.into(), exp);
        }
    }

    /// True when `jti` was revoked.
    pub fn contains(&self, jti: &str) -> bool {
        self.ids.contains_key(jti)
    }

    /// Every revocation held: (jti, expiry).
    pub fn dump(&self) -> Vec<(String, u64)> {
        self.ids
            .iter()
            .map(|e| (e.key().to_string(), *e.value()))
            .collect()
    }

    /// Forgets revocations of tokens that have expired by `now`.
    pub fn sweep(&self, now: u64) {
        self.ids.retain(|_, exp| *exp > now);
    }
}
