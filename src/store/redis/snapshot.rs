//! Snapshots of the shared store: every live record as of one place in the log, MACed with
//! its sequence; the stream is trimmed only behind one. A replica stuck at a gap asks for one
//! and a replica holding what is missing writes it.

use super::log::{self, Position, Snapshot};
use super::{RedisStore, PERIODIC, SNAPSHOT, SNAPSHOT_WANTED, STREAM, TRIMMED_TO};
use crate::store::op::Op;
use redis::AsyncCommands as _;
use std::sync::atomic::Ordering;

impl RedisStore {
    /// Writes the snapshot of every live record as of `pos` (MACed with its sequence).
    pub async fn write_snapshot(&self, pos: &Position, ops: &[Op]) -> Result<(), String> {
        // A struct, not `json!`: record ids are u128, which a JSON `Value` cannot hold.
        let json = serde_json::to_string(&Snapshot {
            id: pos.id.clone(),
            seq: pos.seq,
            ops: ops.to_vec(),
        })
        .map_err(|e| e.to_string())?;
        let value = format!("{}.{json}", log::snapshot_tag(&self.master, &json));
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<(), _> = c.set(SNAPSHOT, value).await;
        self.mark(r)?;
        self.confirm(&mut c).await
    }

    /// The snapshot, when there is a valid one (an invalid one is counted).
    pub async fn read_snapshot(&self) -> Result<Option<Snapshot>, String> {
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<Option<String>, _> = c.get(SNAPSHOT).await;
        let Some(value) = self.mark(r)? else {
            return Ok(None);
        };
        let parsed = value.split_once('.').and_then(|(mac, json)| {
            crate::secret::ct_eq(
                log::snapshot_tag(&self.master, json).as_bytes(),
                mac.as_bytes(),
            )
            .then(|| serde_json::from_str::<Snapshot>(json).ok())
            .flatten()
            .filter(|s| s.seq > 0)
        });
        if parsed.is_none() {
            self.reject("snapshot without a valid MAC and sequence", SNAPSHOT);
        }
        Ok(parsed)
    }

    /// Drops the stream entries before `id` (a snapshot covers them).
    pub async fn trim_to(&self, id: &str) -> Result<(), String> {
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<u64, _> = redis::cmd("XTRIM")
            .arg(STREAM)
            .arg("MINID")
            .arg(id)
            .query_async(&mut c)
            .await;
        self.mark(r)?;
        let r: Result<(), _> = c.set(TRIMMED_TO, id).await;
        self.mark(r)
    }

    /// The stream id the last periodic compaction covered (where the next one trims to).
    pub async fn periodic_mark(&self) -> Result<Option<String>, String> {
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<Option<String>, _> = c.get(PERIODIC).await;
        self.mark(r)
    }

    /// Records the stream id a periodic compaction covered.
    pub async fn set_periodic_mark(&self, id: &str) -> Result<(), String> {
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<(), _> = c.set(PERIODIC, id).await;
        self.mark(r)
    }

    /// Whether a replica stuck at a gap asked for a snapshot this one can give (it holds the
    /// sequence asked for); the ask is dropped once answered. Anyone can ask: at most one
    /// answer every 5 s per replica.
    pub async fn snapshot_asked(&self) -> bool {
        let now = crate::token::now_millis();
        if now.saturating_sub(self.answered_ms.load(Ordering::Acquire)) < 5_000 {
            return false;
        }
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<Option<u64>, _> = c.get(SNAPSHOT_WANTED).await;
        let Ok(Some(wanted)) = self.mark(r) else {
            return false;
        };
        let can = wanted <= self.position.lock().await.seq;
        if can {
            self.answered_ms.store(now, Ordering::Release);
        }
        can
    }

    /// Drops the ask for a snapshot (one was written).
    pub async fn snapshot_given(&self) {
        let mut c = Self::writer(&*self.conns().await);
        let _: Result<(), _> = c.del(SNAPSHOT_WANTED).await;
    }
}
