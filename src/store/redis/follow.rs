//! Following the shared log: reading what was appended since this replica last looked, in
//! sequence (replays and forgeries refused, a gap explained by a newer snapshot or reported),
//! and the whole state at start.

use super::log::{self, Position, Step};
use super::{RedisStore, CREDENTIALS, RAISE, SEQ, SNAPSHOT_WANTED, STREAM};
use crate::store::op::Op;
use redis::AsyncCommands as _;
use std::sync::atomic::Ordering;

impl RedisStore {
    /// Every entry after stream id `id`, MACs checked.
    async fn entries_after(&self, id: &str) -> Result<Vec<log::Entry>, String> {
        let mut c = self.conns().await.reader.clone();
        let start = if id == "0-0" {
            "-".to_owned()
        } else {
            format!("({id}")
        };
        let r: Result<redis::streams::StreamRangeReply, _> = c.xrange(STREAM, start, "+").await;
        let reply = self.mark(r)?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| log::parse(&self.master, e.id.clone(), &e))
            .collect())
    }

    /// The highest sequence appended (0: none yet).
    async fn counter(&self) -> Result<u64, String> {
        let mut c = self.conns().await.reader.clone();
        let r: Result<Option<u64>, _> = c.get(SEQ).await;
        self.mark(r).map(|v| v.unwrap_or(0))
    }

    /// Applies to `pos` what the log holds after it, in sequence: replays and forgeries are
    /// refused and counted; a gap is explained by a newer snapshot (applied, then the log
    /// after it) or else reported as an error, with only the revocations past it applied.
    /// With `check_head`, an empty read is checked against the counter too (trimmed past us).
    pub async fn read_news(
        &self,
        pos: &mut Position,
        apply: &mut (dyn FnMut(&Op) + Send),
        check_head: bool,
    ) -> Result<(), String> {
        let mut resynced = false;
        loop {
            let entries = self.entries_after(&pos.id).await?;
            let mut gap = None;
            for e in entries {
                let Some(ops) = e.ops else {
                    self.reject("stream entry without a valid MAC", &e.id);
                    if gap.is_none() {
                        pos.id = e.id;
                    }
                    continue;
                };
                if gap.is_some() {
                    ops.iter()
                        .filter(|o| o.only_restricts())
                        .for_each(&mut *apply);
                    continue;
                }
                match log::step(pos.seq, e.seq) {
                    Step::Apply => {
                        ops.iter().for_each(&mut *apply);
                        pos.id = e.id;
                        pos.seq = e.seq.unwrap_or(0);
                    }
                    Step::Replay => {
                        self.reject("stream entry replayed or out of order", &e.id);
                        pos.id = e.id;
                    }
                    Step::Gap { from, to } => {
                        gap = Some((from, to));
                        ops.iter()
                            .filter(|o| o.only_restricts())
                            .for_each(&mut *apply);
                    }
                }
            }
            // Nothing after what was read, but the head says there is more (the tail deleted),
            // or less (the tail cut and the counter set back).
            if gap.is_none() && check_head {
                let head = self.counter().await?;
                if head > pos.seq {
                    gap = Some((pos.seq + 1, head));
                } else if head < pos.seq {
                    self.rolled_back(head, pos.seq).await;
                }
            }
            let Some((from, to)) = gap else {
                let mut p = self.problem.lock().expect("problem lock");
                if p.as_deref().is_some_and(|p| p.starts_with("log gap")) {
                    *p = None;
                }
                return Ok(());
            };
            if !resynced {
                resynced = true;
                if self.resync(pos, apply).await? {
                    continue;
                }
            }
            let why = format!("log gap: entries {from}..={to} are missing (deleted outside tollgate, or lost by a failover without wait_replicas) and no snapshot covers them");
            if self.gap_counted.swap(from, Ordering::AcqRel) != from {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    from,
                    to,
                    "shared store: {why}; only revocations past it are applied"
                );
            }
            *self.problem.lock().expect("problem lock") = Some(why.clone());
            // A replica that holds what is missing writes a snapshot covering it.
            let mut c = Self::writer(&*self.conns().await);
            let _: Result<(), _> = c.set(SNAPSHOT_WANTED, to).await;
            return Err(why);
        }
    }

    /// The log's head is below what this replica applied: its tail was cut (and the counter
    /// set back) outside tollgate. The head goes back up, so a replica starting now sees the
    /// hole instead of a shorter log, and a snapshot with what was cut is asked for.
    async fn rolled_back(&self, head: u64, held: u64) {
        self.reject("log cut back below what was applied", &head.to_string());
        tracing::error!(head, held, "shared store: the log ends before entries this replica applied (cut outside tollgate); restoring its head and writing a snapshot");
        let mut c = Self::writer(&*self.conns().await);
        let raise: Result<i64, _> = redis::Script::new(RAISE)
            .key(SEQ)
            .arg(held)
            .invoke_async(&mut c)
            .await;
        let asked: Result<(), _> = c.set(SNAPSHOT_WANTED, held).await;
        let _ = self.mark(raise.and(asked));
    }

    /// Starts over from the snapshot when it is newer than `pos`; true when it was.
    async fn resync(
        &self,
        pos: &mut Position,
        apply: &mut (dyn FnMut(&Op) + Send),
    ) -> Result<bool, String> {
        let Some(snap) = self.read_snapshot().await? else {
            return Ok(false);
        };
        if snap.seq <= pos.seq {
            return Ok(false);
        }
        tracing::warn!(
            applied = pos.seq,
            snapshot = snap.seq,
            "behind the trimmed log: resynchronising from the snapshot"
        );
        snap.ops.iter().for_each(&mut *apply);
        *pos = Position {
            id: snap.id,
            seq: snap.seq,
        };
        Ok(true)
    }

    /// Reads the whole state at start: the snapshot, then the log after it (credential rows of
    /// an older store's hash when there is no sequenced state yet).
    pub async fn load(&self, apply: &mut (dyn FnMut(&Op) + Send)) -> Result<(), String> {
        let mut pos = self.position.lock().await;
        if let Some(snap) = self.read_snapshot().await? {
            snap.ops.iter().for_each(&mut *apply);
            *pos = Position {
                id: snap.id,
                seq: snap.seq,
            };
        }
        if pos.seq == 0 {
            self.legacy_credentials()
                .await?
                .iter()
                .for_each(&mut *apply);
        }
        self.read_news(&mut pos, apply, true).await?;
        self.appended.fetch_max(pos.seq, Ordering::AcqRel);
        Ok(())
    }

    /// Credential rows kept beside the stream by versions before snapshots carried them.
    async fn legacy_credentials(&self) -> Result<Vec<Op>, String> {
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<std::collections::HashMap<u64, String>, _> = c.hgetall(CREDENTIALS).await;
        let rows = self.mark(r)?;
        let mut out = Vec::new();
        for (id, value) in rows {
            let row = value.split_once('.').and_then(|(mac, json)| {
                crate::secret::ct_eq(
                    log::tag(&self.master, b"cred", json).as_bytes(),
                    mac.as_bytes(),
                )
                .then(|| serde_json::from_str(json).ok())
                .flatten()
            });
            match row {
                Some(row) => out.push(Op::Cred(row)),
                None => self.reject("credential row without a valid MAC", &id.to_string()),
            }
        }
        Ok(out)
    }
}
