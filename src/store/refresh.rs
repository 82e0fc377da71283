//! Refresh tokens (hosecloud): kept by hash, single use, bound to the access token they came
//! with, to the app secret they were issued under, and to the login that started their chain.

use crate::token::opaque::TokenHash;
use dashmap::DashMap;

/// What a refresh token stands for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefreshRecord {
    /// App it was issued to.
    pub app: String,
    /// `jti` of the access token issued with it.
    pub access_jti: String,
    /// Expiry (seconds since the epoch).
    pub expires: u64,
    /// Which app secret it was issued under (a MAC of the configured secret); a changed
    /// secret ends the chain. Empty for tokens stored before generations existed.
    #[serde(default)]
    pub secret_gen: String,
    /// When the login that started this chain happened (seconds since the epoch).
    #[serde(default)]
    pub chain_start: u64,
}

/// Live refresh tokens by hash, and the spent ones until they would have expired: a spent
/// token is never taken back in (a replayed store entry, a `put` racing the spend).
#[derive(Debug, Default)]
pub struct RefreshTokens {
    map: DashMap<TokenHash, RefreshRecord>,
    spent: DashMap<TokenHash, u64>,
}

impl RefreshTokens {
    /// Drops every live refresh token, keeping the spent marks (a snapshot replacing the
    /// state follows).
    pub fn clear_live(&self) {
        self.map.clear();
    }

    /// Remembers a refresh token.
    pub fn put(&self, hash: TokenHash, record: RefreshRecord) {
        if !self.spent.contains_key(&hash) {
            self.map.insert(hash, record);
        }
    }

    /// Consumes the token when it belongs with access token `jti` and is not expired at `now`;
    /// a presentation that does not match leaves it in place (so a guess cannot burn it).
    pub fn take(&self, hash: &TokenHash, jti: &str, now: u64) -> Option<RefreshRecord> {
        let (_, r) = self
            .map
            .remove_if(hash, |_, r| r.access_jti == jti && r.expires > now)?;
        self.spent.insert(*hash, r.expires);
        Some(r)
    }

    /// True when `hash` is a live refresh token issued with access token `jti` to `app`
    /// (nothing is consumed).
    pub fn matches(&self, hash: &TokenHash, jti: &str, app: &str, now: u64) -> bool {
        self.map
            .get(hash)
            .is_some_and(|r| r.access_jti == jti && r.app == app && r.expires > now)
    }

    /// Every live refresh token held, by hash.
    pub fn dump(&self) -> Vec<(TokenHash, RefreshRecord)> {
        self.map
            .iter()
            .map(|e| (*e.key(), e.value().clone()))
            .collect()
    }

    /// Loads stored tokens.
    pub fn restore(&self, rows: Vec<(TokenHash, RefreshRecord)>) {
        for (hash, record) in rows {
            self.put(hash, record);
        }
    }

    /// Forgets one token for good (spent on another replica).
    pub fn remove(&self, hash: &TokenHash) {
        // Unknown here: kept as long as a refresh chain may live (`refresh_max_lifetime`).
        let unknown = crate::token::now_secs().saturating_add(90 * 86_400);
        let until = self.map.remove(hash).map_or(unknown, |(_, r)| r.expires);
        self.spent.insert(*hash, until);
    }

    /// Forgets expired tokens, and spent ones once they would have expired.
    pub fn sweep(&self, now: u64) {
        self.map.retain(|_, r| r.expires > now);
        self.spent.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_is_used_once_and_only_with_its_access_token() {
        let t = RefreshTokens::default();
        let rec = RefreshRecord {
            app: "a".into(),
            access_jti: "J".into(),
            expires: 100,
            secret_gen: "g".into(),
            chain_start: 0,
        };
        t.put([1; 32], rec.clone());
        assert_eq!(t.take(&[1; 32], "OTHER", 50), None);
        assert_eq!(t.take(&[1; 32], "J", 150), None, "expired");
        assert_eq!(t.take(&[1; 32], "J", 50), Some(rec.clone()));
        assert_eq!(t.take(&[1; 32], "J", 50), None, "single use");
        t.restore(vec![([1; 32], rec)]);
        assert!(
            !t.matches(&[1; 32], "J", "a", 50),
            "a replayed row stays spent"
        );
    }
}
