//! The write log: every change that must survive a restart (or reach other replicas) is an
//! `Op`, committed by the store before the request that made it is answered. Rows have named
//! fields; on the wire (the Redis stream) ops keep the form `wire.rs` describes, so streams
//! written by earlier versions still replay.

pub mod wire;

use super::refresh::RefreshRecord;
use wire::WireOp;

/// A bkflow token row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BkRow {
    /// Record id.
    pub id: u128,
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// Space.
    pub space: u64,
    /// App.
    pub app: String,
    /// User.
    pub user: String,
    /// `TASK` / `TEMPLATE` / `SCOPE`.
    pub resource: String,
    /// Resource id.
    pub resource_id: String,
    /// Permission.
    pub perm: String,
    /// Expiry, ms.
    pub expires_ms: u64,
}

/// A feishu token row (the token is re-derived from `id` and `prefix`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FsRow {
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// Record id.
    pub id: u128,
    /// App.
    pub app: String,
    /// Kind (`app`, `internal_tenant`, ...).
    pub kind: String,
    /// `a-` / `t-`.
    pub prefix: String,
    /// Expiry, ms.
    pub expires_ms: u64,
}

/// A feishu ticket row (sealed, so the admin API can show it after a restart).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TicketRow {
    /// App.
    pub app: String,
    /// SHA-256 of the ticket.
    pub ticket_hash: [u8; 32],
    /// The ticket sealed under the master key.
    pub sealed: Vec<u8>,
    /// Expiry, ms.
    pub expires_ms: u64,
}

/// A credential row (secret sealed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CredRow {
    /// Id.
    pub id: u64,
    /// Space.
    pub space: u64,
    /// Name.
    pub name: String,
    /// Description.
    pub desc: Option<String>,
    /// `BK_APP`.
    pub kind: String,
    /// App code.
    pub app_code: String,
    /// Sealed secret.
    pub sealed: Vec<u8>,
}

/// One write.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(from = "WireOp", into = "WireOp")]
pub enum Op {
    /// Insert or replace a meta value (server keys, sealed).
    Meta {
        /// Name.
        key: String,
        /// Value (sealed under the master key).
        value: Vec<u8>,
    },
    /// Insert or replace a bkflow token.
    Bk(BkRow),
    /// Set the expiry of bkflow tokens (renewal, revocation).
    BkExpiry {
        /// Record ids.
        ids: Vec<u128>,
        /// New expiry, ms since the epoch.
        expires_ms: u64,
    },
    /// Revoke bkflow tokens for good: no later renewal brings them back.
    BkRevoked {
        /// Record ids.
        ids: Vec<u128>,
        /// When (ms since the epoch); their expiry becomes at most this.
        at_ms: u64,
    },
    /// Insert a feishu token.
    Fs(FsRow),
    /// Insert a feishu ticket.
    Ticket(TicketRow),
    /// Insert a refresh token.
    Refresh {
        /// SHA-256 of the token.
        hash: [u8; 32],
        /// What it stands for.
        record: RefreshRecord,
    },
    /// Delete a refresh token (used).
    RefreshUsed {
        /// SHA-256 of the token.
        hash: [u8; 32],
    },
    /// A revoked JWT id, remembered until `until` (s).
    Revoked {
        /// The token id.
        jti: String,
        /// When the token expires anyway.
        until: u64,
    },
    /// Insert or replace a credential.
    Cred(CredRow),
    /// Delete a credential.
    CredDeleted {
        /// Its id.
        id: u64,
    },
    /// Delete rows expired before `now_ms` (bkflow keeps a retention).
    Sweep {
        /// Now, ms.
        now_ms: u64,
        /// Expired bkflow tokens are kept this long for revoke and renewal.
        bk_retention_ms: u64,
    },
}

impl Op {
    /// True for an op that can only take something away (a revocation, a use, a deletion):
    /// safe to apply even past a gap in the shared log, where nothing that grants is taken.
    pub fn only_restricts(&self) -> bool {
        matches!(
            self,
            Op::BkRevoked { .. }
                | Op::RefreshUsed { .. }
                | Op::Revoked { .. }
                | Op::CredDeleted { .. }
        )
    }

    /// True for an op that can only take something away at `now_ms`: those of
    /// [`Op::only_restricts`], and a feishu row or bkflow expiry already in the past (a feishu
    /// revocation, a bkflow expiry set back), which end a token and never make one.
    pub fn restricts_at(&self, now_ms: u64) -> bool {
        match self {
            Op::Fs(row) => row.expires_ms <= now_ms,
            Op::BkExpiry { expires_ms, .. } => *expires_ms <= now_ms,
            _ => self.only_restricts(),
        }
    }
}

/// How long expired bkflow tokens stay visible to revoke and renewal, as the original keeps
/// them (12 h).
pub const BK_RETENTION_MS: u64 = 12 * 3600 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_a_gap_only_what_ends_a_token_counts_as_restricting() {
        let fs = |expires_ms| {
            Op::Fs(FsRow {
                token_hash: [1; 32],
                id: 1,
                app: "a".into(),
                kind: "app".into(),
                prefix: "a-".into(),
                expires_ms,
            })
        };
        assert!(fs(999).restricts_at(1000), "a feishu revocation");
        assert!(!fs(2000).restricts_at(1000), "a live feishu row grants");
        let bk = |expires_ms| Op::BkExpiry {
            ids: vec![1],
            expires_ms,
        };
        assert!(bk(1000).restricts_at(1000));
        assert!(!bk(5000).restricts_at(1000), "a renewal grants");
        assert!(Op::CredDeleted { id: 1 }.restricts_at(0));
        assert!(!Op::Sweep {
            now_ms: 0,
            bk_retention_ms: 0
        }
        .restricts_at(0));
    }
}
