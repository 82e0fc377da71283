//! BKFlow token records. A token is not stored: it is derived as HMAC(server key, record id)
//! cut to 32 hex (SPEC §7), so the same token can be answered again for a repeated apply,
//! while the records themselves hold only its hash.
//!
//! The records and the (sealed) server key live in the store; these maps are rebuilt from it.

use super::op::BkRow;
use crate::permission::{Grant, Perm, Resource};
use crate::token::opaque::{self, TokenHash};
use aws_lc_rs::hmac;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

/// One issued token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BkRecord {
    /// Record id (the MAC input).
    pub id: u128,
    /// Space.
    pub space: u64,
    /// App that applied.
    pub app: String,
    /// User it was applied for.
    pub user: String,
    /// What it grants.
    pub grant: Grant,
    /// Expiry, milliseconds since the epoch (`expired_time`).
    pub expires_ms: u64,
}

/// Which tokens of a space a revoke matches (every given field must match).
#[derive(Debug, Default, Clone)]
pub struct RevokeFilter {
    /// The token's hash.
    pub token: Option<TokenHash>,
    /// User.
    pub user: Option<String>,
    /// Type.
    pub resource: Option<Resource>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Permission.
    pub perm: Option<Perm>,
}

type IdentityKey = (u64, String, String, Resource, String, Perm);

/// A revocation mark: revoked at `at_ms`; kept while a replay could still carry an expiry
/// later than now (`keep_until_ms`: the latest expiry the record is known to have had).
#[derive(Debug, Clone, Copy)]
struct Revoked {
    at_ms: u64,
    keep_until_ms: u64,
}

/// How long a revocation of a record this replica never saw is kept: longer than any token
/// lives (a replayed row would be expired by then).
const UNKNOWN_KEEP_MS: u64 = 30 * 24 * 3_600_000;

/// Live BKFlow tokens.
#[derive(Debug)]
pub struct BkflowTokens {
    key: hmac::Key,
    records: DashMap<u128, BkRecord>,
    by_hash: DashMap<TokenHash, u128>,
    by_identity: DashMap<IdentityKey, u128>,
    /// Revoked record ids, with when they were revoked and until when the mark is kept (the
    /// latest expiry the record ever had): sticky, so neither a renewal that reaches this
    /// replica after the revocation nor a replayed stream entry brings the token back, even
    /// after the record itself was swept.
    revoked: DashMap<u128, Revoked>,
}

impl Default for BkflowTokens {
    fn default() -> Self {
        Self::new(&opaque::random_bytes::<32>())
    }
}

/// Who a token is for: space, app and user.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// Space.
    pub space: u64,
    /// App id.
    pub app: &'a str,
    /// User.
    pub user: &'a str,
}

/// Outcome of an apply.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The token (32 lower-case hex).
    pub token: String,
    /// Its record after the apply.
    pub record: BkRecord,
    /// True when an existing token was returned (and renewed if auto-renewal is on).
    pub reused: bool,
}

impl BkflowTokens {
    /// Empty, deriving tokens under `key` (the server key kept sealed in the store).
    pub fn new(key: &[u8]) -> Self {
        BkflowTokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            records: DashMap::new(),
            by_hash: DashMap::new(),
            by_identity: DashMap::new(),
            revoked: DashMap::new(),
        }
    }

    /// Loads stored rows (rows that no longer parse are skipped).
    pub fn restore(&self, rows: Vec<BkRow>) {
        for r in rows {
            let (Some(resource), Some(perm)) = (Resource::parse(&r.resource), Perm::parse(&r.perm))
            else {
                continue;
            };
            let grant = Grant {
                resource,
                id: r.resource_id,
                perm,
            };
            let key = (
                r.space,
                r.app.clone(),
                r.user.clone(),
                resource,
                grant.id.clone(),
                perm,
            );
            // A revoked id never gets a later expiry back, whatever an entry says.
            let expires_ms = match self.revoked.get_mut(&r.id) {
                Some(mut mark) => {
                    mark.keep_until_ms = mark.keep_until_ms.max(r.expires_ms);
                    r.expires_ms.min(mark.at_ms)
                }
                None => r.expires_ms,
            };
            let live = self
                .by_identity
                .get(&key)
                .and_then(|id| self.records.get(&*id).map(|x| x.expires_ms));
            if live.is_none_or(|e| e < expires_ms) {
                self.by_identity.insert(key, r.id);
            }
            self.by_hash.insert(r.token_hash, r.id);
            self.records.insert(
                r.id,
                BkRecord {
                    id: r.id,
                    space: r.space,
                    app: r.app,
                    user: r.user,
                    grant,
                    expires_ms,
                },
            );
        }
    }

    /// Marks `id` revoked at `at_ms`, kept at least until `keep_until_ms`.
    fn mark_revoked(&self, id: u128, at_ms: u64, keep_until_ms: u64) {
        let mut mark = self.revoked.entry(id).or_insert(Revoked {
            at_ms,
            keep_until_ms,
        });
        mark.at_ms = mark.at_ms.min(at_ms);
        mark.keep_until_ms = mark.keep_until_ms.max(keep_until_ms);
    }

    /// Every record held, as rows, and the ids revoked for good.
    pub fn dump(&self) -> (Vec<BkRow>, Vec<u128>) {
        let rows = self.records.iter().map(|r| self.row(&r)).collect();
        let revoked = self.revoked.iter().map(|e| *e.key()).collect();
        (rows, revoked)
    }

    /// Drops every record, keeping the revocation marks (a snapshot replacing the state
    /// follows; a mark only ever takes away).
    pub fn clear_records(&self) {
        self.records.clear();
        self.by_hash.clear();
        self.by_identity.clear();
    }

    /// The stored form of a record.
    pub fn row(&self, rec: &BkRecord) -> BkRow {
        BkRow {
            id: rec.id,
            token_hash: opaque::hash(&self.token_of(rec.id)),
            space: rec.space,
            app: rec.app.clone(),
            user: rec.user.clone(),
            resource: rec.grant.resource.as_str().to_owned(),
            resource_id: rec.grant.id.clone(),
            perm: rec.grant.perm.as_str().to_owned(),
            expires_ms: rec.expires_ms,
        }
    }

    /// The token of record `id`.
    pub fn token_of(&self, id: u128) -> String {
        let tag = hmac::sign(&self.key, &id.to_be_bytes());
        hex::encode(&tag.as_ref()[..16])
    }

    /// Returns the live token for (owner, grant), renewed when `renew`, or a new one.
    pub fn apply(
        &self,
        owner: Owner<'_>,
        grant: Grant,
        ttl_ms: u64,
        renew: bool,
        now_ms: u64,
    ) -> Applied {
        let Owner { space, app, user } = owner;
        let key = (
            space,
            app.to_owned(),
            user.to_owned(),
            grant.resource,
            grant.id.clone(),
            grant.perm,
        );
        match self.by_identity.entry(key) {
            Entry::Occupied(mut e) => {
                let id = *e.get();
                if let Some(mut rec) = self.records.get_mut(&id) {
                    if rec.expires_ms >= now_ms && !self.revoked.contains_key(&id) {
                        if renew {
                            rec.expires_ms = now_ms + ttl_ms;
                        }
                        return Applied {
                            token: self.token_of(id),
                            record: rec.clone(),
                            reused: true,
                        };
                    }
                }
                let fresh = self.create(space, app, user, grant, now_ms + ttl_ms);
                e.insert(fresh.record.id);
                fresh
            }
            Entry::Vacant(e) => {
                let fresh = self.create(space, app, user, grant, now_ms + ttl_ms);
                e.insert(fresh.record.id);
                fresh
            }
        }
    }

    fn create(&self, space: u64, app: &str, user: &str, grant: Grant, expires_ms: u64) -> Applied {
        let id = u128::from_be_bytes(opaque::random_bytes::<16>());
        let token = self.token_of(id);
        let record = BkRecord {
            id,
            space,
            app: app.to_owned(),
            user: user.to_owned(),
            grant,
            expires_ms,
        };
        self.records.insert(id, record.clone());
        self.by_hash.insert(opaque::hash(&token), id);
        Applied {
            token,
            record,
            reused: false,
        }
    }

    /// The live record of a presented token.
    pub fn lookup(&self, hash: &TokenHash, now_ms: u64) -> Option<BkRecord> {
        let id = *self.by_hash.get(hash)?;
        if self.revoked.contains_key(&id) {
            return None;
        }
        let rec = self.records.get(&id)?;
        (rec.expires_ms >= now_ms).then(|| rec.clone())
    }

    /// True when the token was issued here, live or not (expired rows are kept 12 h).
    pub fn known(&self, hash: &TokenHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Expires (now) every still-valid token of `space` matching `filter`; returns the ids and
    /// hashes of the tokens revoked (for the store and the hot caches).
    pub fn revoke(&self, space: u64, filter: &RevokeFilter, now_ms: u64) -> Vec<(u128, TokenHash)> {
        let mut hashes = Vec::new();
        for mut rec in self.records.iter_mut() {
            let hash = opaque::hash(&self.token_of(rec.id));
            let matches = rec.space == space
                && rec.expires_ms >= now_ms
                && filter.token.is_none_or(|t| t == hash)
                && filter.user.as_ref().is_none_or(|u| *u == rec.user)
                && filter.resource.is_none_or(|r| r == rec.grant.resource)
                && filter
                    .resource_id
                    .as_ref()
                    .is_none_or(|i| *i == rec.grant.id)
                && filter.perm.is_none_or(|p| p == rec.grant.perm);
            if matches {
                // Strictly before now, so the token fails `expires >= now` at once.
                let was = rec.expires_ms;
                rec.expires_ms = now_ms.saturating_sub(1);
                self.mark_revoked(rec.id, rec.expires_ms, was);
                hashes.push((rec.id, hash));
            }
        }
        hashes
    }

    /// Sets the expiry of records `ids` (a renewal or a revocation seen from another replica);
    /// returns their token hashes.
    pub fn set_expiry(&self, ids: &[u128], expires_ms: u64) -> Vec<TokenHash> {
        ids.iter()
            .filter(|id| !self.revoked.contains_key(*id))
            .filter_map(|id| {
                let mut rec = self.records.get_mut(id)?;
                rec.expires_ms = expires_ms;
                Some(opaque::hash(&self.token_of(*id)))
            })
            .collect()
    }

    /// Revokes records `ids` for good (a revocation seen from another replica, or replayed);
    /// returns their token hashes.
    pub fn revoke_ids(&self, ids: &[u128], at_ms: u64) -> Vec<TokenHash> {
        ids.iter()
            .filter_map(|id| {
                let was = self.records.get(id).map(|r| r.expires_ms);
                let keep = was.unwrap_or(at_ms.saturating_add(UNKNOWN_KEEP_MS));
                self.mark_revoked(*id, at_ms, keep.max(at_ms));
                let mut rec = self.records.get_mut(id)?;
                rec.expires_ms = rec.expires_ms.min(at_ms);
                Some(opaque::hash(&self.token_of(*id)))
            })
            .collect()
    }

    /// Drops records expired longer ago than `retention_ms`.
    pub fn sweep(&self, now_ms: u64, retention_ms: u64) {
        let cutoff = now_ms.saturating_sub(retention_ms);
        let dead: Vec<u128> = self
            .records
            .iter()
            .filter(|r| r.expires_ms < cutoff)
            .map(|r| r.id)
            .collect();
        // A mark goes only once no replay could carry a live expiry for its record.
        self.revoked.retain(|_, m| m.keep_until_ms >= cutoff);
        for id in dead {
            if let Some((_, rec)) = self.records.remove(&id) {
                self.by_hash.remove(&opaque::hash(&self.token_of(id)));
                let key = (
                    rec.space,
                    rec.app,
                    rec.user,
                    rec.grant.resource,
                    rec.grant.id,
                    rec.grant.perm,
                );
                self.by_identity.remove_if(&key, |_, v| *v == id);
            }
        }
    }
}

#[cfg(test)]
#[path = "bkflow_tests.rs"]
mod tests;
