//! Applying one stored write to the in-memory maps: at start, and for the writes of other
//! replicas. State only moves forward here: a revoked token stays revoked, the key ring never
//! goes back to an older version.

use super::Shared;
use crate::store::op::Op;
use crate::token::opaque;
use crate::token::ring::KeyRing;

impl Shared {
    /// Drops every record before a snapshot that replaces them is applied: what it leaves out
    /// (a deleted credential, a spent refresh token, an expired row) is gone here too. Marks
    /// that only take away (revocations, spent and lowered marks) and the key ring stay.
    pub fn start_over(&self) {
        self.bkflow.clear_records();
        self.feishu.clear_records();
        self.refresh.clear_live();
        self.credentials.clear();
        self.hot.clear();
    }

    /// Applies one stored write to the in-memory maps (at start, and for writes of other replicas).
    pub fn apply(&self, op: &Op) {
        let now = self.clock.now_millis();
        let drop_hot = |hash: &opaque::TokenHash, revoked: bool| {
            self.hot.forget_stored(hash, revoked);
        };
        match op {
            // A rotation on another replica (or replayed): the ring it left.
            Op::Meta { key, value } if *key == self.ring_name => {
                if let Some(text) = self.master.open(value, key.as_bytes()) {
                    let ring = KeyRing::from_stored(&text, self.clock.now_secs());
                    let mut held = self.ring.lock().expect("ring lock");
                    // The ring only moves forward: an older one (a replayed entry) is refused.
                    let older = held.as_ref().is_some_and(|h| {
                        ring.version < h.version || (ring.version == h.version && ring != *h)
                    });
                    if older {
                        drop(held);
                        if self.following.load(std::sync::atomic::Ordering::Acquire) {
                            self.store.refuse_replay("key ring");
                        }
                    } else if held.is_some() {
                        *held = Some(ring);
                        drop(held);
                        self.rebuild_keys();
                    }
                }
            }
            Op::Meta { .. } | Op::Sweep { .. } => {}
            Op::Bk(row) => self.bkflow.restore(vec![row.clone()]),
            Op::BkExpiry {
                ids,
                expires_ms: ms,
            } => {
                for hash in self.bkflow.set_expiry(ids, *ms) {
                    drop_hot(&hash, *ms < now);
                }
            }
            Op::BkRevoked { ids, at_ms } => {
                for hash in self.bkflow.revoke_ids(ids, *at_ms) {
                    drop_hot(&hash, true);
                }
            }
            Op::Fs(row) => {
                self.feishu.restore(vec![row.clone()], Vec::new());
                if row.expires_ms <= now {
                    drop_hot(&row.token_hash, true);
                }
            }
            Op::Ticket(t) => {
                if let Some(plain) = self.master.open(&t.sealed, t.app.as_bytes()) {
                    self.feishu
                        .restore(Vec::new(), vec![(t.app.clone(), plain, t.expires_ms)]);
                }
            }
            Op::Refresh { hash, record } => self.refresh.restore(vec![(*hash, record.clone())]),
            Op::RefreshUsed { hash } => self.refresh.remove(hash),
            Op::Revoked { jti, until } => {
                self.revoked.add(jti, *until);
                self.hot.revoke_jti(jti);
            }
            Op::Cred(row) => self.credentials.upsert(row.clone()),
            Op::CredDeleted { id } => self.credentials.delete_id(*id),
        }
    }
}
