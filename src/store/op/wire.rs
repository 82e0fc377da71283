//! The ops as they travel in the Redis stream: JSON of this enum, positional where earlier
//! versions wrote tuples, so a stream written by any version replays. Only `op.rs` converts.

use super::{BkRow, CredRow, FsRow, Op, TicketRow};
use crate::store::refresh::RefreshRecord;
use serde::{Deserialize, Serialize};

/// The stream form of an `Op` (variant names and shapes are the stream's format: never change
/// one; add a variant instead).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireOp {
    /// `Op::Meta`.
    Meta(String, Vec<u8>),
    /// `Op::Bk`.
    Bk(BkRow),
    /// `Op::BkExpiry`.
    BkExpiry(Vec<u128>, u64),
    /// `Op::BkRevoked`.
    BkRevoked(Vec<u128>, u64),
    /// `Op::Fs`.
    Fs(FsRow),
    /// `Op::Ticket`.
    Ticket(TicketRow),
    /// A refresh token as written before secret generations (hash, app, jti, expiry).
    Refresh([u8; 32], String, String, u64),
    /// `Op::Refresh`.
    RefreshToken {
        /// SHA-256 of the token.
        hash: [u8; 32],
        /// What it stands for.
        record: RefreshRecord,
    },
    /// `Op::RefreshUsed`.
    RefreshUsed([u8; 32]),
    /// `Op::Revoked`.
    Revoked(String, u64),
    /// `Op::Cred`.
    Cred(CredRow),
    /// `Op::CredDeleted`.
    CredDeleted(u64),
    /// `Op::Sweep`.
    Sweep {
        /// Now, ms.
        now_ms: u64,
        /// Retention of expired bkflow tokens.
        bk_retention_ms: u64,
    },
}

impl From<WireOp> for Op {
    fn from(w: WireOp) -> Self {
        match w {
            WireOp::Meta(key, value) => Op::Meta { key, value },
            WireOp::Bk(r) => Op::Bk(r),
            WireOp::BkExpiry(ids, expires_ms) => Op::BkExpiry { ids, expires_ms },
            WireOp::BkRevoked(ids, at_ms) => Op::BkRevoked { ids, at_ms },
            WireOp::Fs(r) => Op::Fs(r),
            WireOp::Ticket(r) => Op::Ticket(r),
            // No generation recorded: such a chain ends at its next refresh (secret unknown).
            WireOp::Refresh(hash, app, access_jti, expires) => Op::Refresh {
                hash,
                record: RefreshRecord {
                    app,
                    access_jti,
                    expires,
                    secret_gen: String::new(),
                    chain_start: 0,
                },
            },
            WireOp::RefreshToken { hash, record } => Op::Refresh { hash, record },
            WireOp::RefreshUsed(hash) => Op::RefreshUsed { hash },
            WireOp::Revoked(jti, until) => Op::Revoked { jti, until },
            WireOp::Cred(r) => Op::Cred(r),
            WireOp::CredDeleted(id) => Op::CredDeleted { id },
            WireOp::Sweep {
                now_ms,
                bk_retention_ms,
            } => Op::Sweep {
                now_ms,
                bk_retention_ms,
            },
        }
    }
}

impl From<Op> for WireOp {
    fn from(op: Op) -> Self {
        match op {
            Op::Meta { key, value } => WireOp::Meta(key, value),
            Op::Bk(r) => WireOp::Bk(r),
            Op::BkExpiry { ids, expires_ms } => WireOp::BkExpiry(ids, expires_ms),
            Op::BkRevoked { ids, at_ms } => WireOp::BkRevoked(ids, at_ms),
            Op::Fs(r) => WireOp::Fs(r),
            Op::Ticket(r) => WireOp::Ticket(r),
            Op::Refresh { hash, record } => WireOp::RefreshToken { hash, record },
            Op::RefreshUsed { hash } => WireOp::RefreshUsed(hash),
            Op::Revoked { jti, until } => WireOp::Revoked(jti, until),
            Op::Cred(r) => WireOp::Cred(r),
            Op::CredDeleted { id } => WireOp::CredDeleted(id),
            Op::Sweep {
                now_ms,
                bk_retention_ms,
            } => WireOp::Sweep {
                now_ms,
                bk_retention_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_form_is_what_earlier_versions_wrote() {
        let op = Op::Revoked {
            jti: "J".into(),
            until: 5,
        };
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"Revoked":["J",5]}"#
        );
        let old: Op = serde_json::from_str(r#"{"Refresh":[[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"app","J",9]}"#).unwrap();
        assert!(
            matches!(old, Op::Refresh { record, .. } if record.app == "app" && record.secret_gen.is_empty())
        );
        let e: Op = serde_json::from_str(r#"{"BkExpiry":[[7],3]}"#).unwrap();
        assert!(matches!(e, Op::BkExpiry { ids, expires_ms: 3 } if ids == vec![7]));
    }
}
