//! Compaction of the shared store: every `store.compact_every` one replica writes a snapshot
//! of every live record (MACed like stream entries) and trims the stream to the previous
//! snapshot, so Redis holds what is live plus one period of log, and a new replica starts from
//! the snapshot instead of replaying history.

use crate::shared::Shared;
use crate::store::op::{Op, TicketRow};
use crate::store::{Backend, StoreError};
use crate::token::opaque;

impl Shared {
    /// Every live record held here, as the ops that would recreate it (what has expired is
    /// left out; expired bkflow tokens stay for their retention, as in the maps).
    pub fn snapshot_ops(&self) -> Vec<Op> {
        let (now_ms, now_s) = (self.clock.now_millis(), self.clock.now_secs());
        let mut ops = Vec::new();
        let (bk, revoked) = self.bkflow.dump();
        let kept_from = now_ms.saturating_sub(crate::store::op::BK_RETENTION_MS);
        ops.extend(
            bk.into_iter()
                .filter(|r| r.expires_ms >= kept_from)
                .map(Op::Bk),
        );
        if !revoked.is_empty() {
            ops.push(Op::BkRevoked {
                ids: revoked,
                at_ms: 0,
            });
        }
        let (fs, tickets) = self.feishu.dump();
        ops.extend(fs.into_iter().filter(|r| r.expires_ms > now_ms).map(Op::Fs));
        let tickets = tickets.into_iter().filter(|t| t.2 > now_ms);
        ops.extend(tickets.map(|(app, ticket, expires_ms)| {
            Op::Ticket(TicketRow {
                ticket_hash: opaque::hash(&ticket),
                sealed: self.master.seal(&ticket, app.as_bytes()),
                app,
                expires_ms,
            })
        }));
        ops.extend(
            self.refresh
                .dump()
                .into_iter()
                .filter(|(_, r)| r.expires > now_s)
                .map(|(hash, record)| Op::Refresh { hash, record }),
        );
        ops.extend(self.credentials.dump().into_iter().map(Op::Cred));
        // The ring too: a replica starting from the snapshot never sees an older one.
        if let Some(ring) = self.ring.lock().expect("ring lock").as_ref() {
            ops.push(Op::Meta {
                key: self.ring_name.clone(),
                value: self
                    .master
                    .seal(&ring.to_stored(), self.ring_name.as_bytes()),
            });
        }
        ops.extend(
            self.revoked
                .dump()
                .into_iter()
                .filter(|(_, until)| *until > now_s)
                .map(|(jti, until)| Op::Revoked { jti, until }),
        );
        ops
    }

    /// Writes a snapshot as of the last entry applied here, then (with `trim`, the periodic
    /// compaction) trims the stream to the previous periodic snapshot, so replicas keep a whole
    /// period to catch up; a snapshot written because a replica asked trims nothing. Nothing when
    /// embedded.
    pub async fn compact(&self, trim: bool) -> Result<usize, StoreError> {
        let Backend::Redis(r) = self.store.backend() else {
            return Ok(0);
        };
        self.catch_up().await?;
        let previous = r.read_snapshot().await.map_err(StoreError::Unavailable)?;
        let (pos, ops) = {
            // No catch-up runs while the state is read: it is exactly the log up to `pos`.
            let pos = r.position.lock().await;
            (pos.clone(), self.snapshot_ops())
        };
        // Never over a snapshot as new or newer (another replica's, or ours again).
        if previous.as_ref().is_some_and(|p| p.seq >= pos.seq) {
            return Ok(0);
        }
        r.write_snapshot(&pos, &ops)
            .await
            .map_err(StoreError::Unavailable)?;
        if trim {
            // To the previous periodic snapshot, not merely the last one (which a replica's
            // ask may have written seconds ago): replicas keep a whole period of log.
            let unavailable = StoreError::Unavailable;
            if let Some(before) = r.periodic_mark().await.map_err(unavailable)? {
                r.trim_to(&before).await.map_err(unavailable)?;
            }
            r.set_periodic_mark(&pos.id).await.map_err(unavailable)?;
        }
        let id = pos.id;
        tracing::info!(records = ops.len(), covers = %id, "shared store compacted");
        Ok(ops.len())
    }
}
