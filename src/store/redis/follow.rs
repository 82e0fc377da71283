//! Following the shared log: reading what was appended since this replica last looked, in
//! sequence (replays and forgeries refused, a gap explained by a newer snapshot or reported),
//! and the whole state at start.

use super::log::{self, Position, Step};
use super::{RedisStore, SNAPSHOT_WANTED, STREAM};
use crate::store::Change;
use redis::AsyncCommands as _;
use std::sync::atomic::Ordering;

/// Entries read per `XRANGE`.
const PAGE: usize = 10_000;

/// Where a reading round stands.
struct Round {
    /// The first hole met (`from..=to`), past which only revocations are applied.
    gap: Option<(u64, u64)>,
    /// The last stream id read (past a hole too).
    read_to: String,
}

impl RedisStore {
    /// Up to `PAGE` entries after stream id `id`, MACs checked.
    async fn entries_after(&self, id: &str) -> Result<Vec<log::Entry>, String> {
        let mut c = self.conns().await.reader.clone();
        let start = if id == "0-0" {
            "-".to_owned()
        } else {
            format!("({id}")
        };
        let r: Result<redis::streams::StreamRangeReply, _> =
            c.xrange_count(STREAM, start, "+", PAGE).await;
        let reply = self.mark(r)?;
        Ok(reply
            .ids
            .into_iter()
            .map(|e| log::parse(&self.master, e.id.clone(), &e))
            .collect())
    }

    /// Takes one page into `pos` (or, past a hole, only its revocations).
    fn take_page(
        &self,
        pos: &mut Position,
        round: &mut Round,
        page: Vec<log::Entry>,
        apply: &mut (dyn FnMut(Change<'_>) + Send),
    ) {
        for e in page {
            round.read_to.clone_from(&e.id);
            let Some(ops) = e.ops else {
                self.reject("stream entry without a valid sequence and MAC", &e.id);
                if round.gap.is_none() {
                    pos.id = e.id;
                }
                continue;
            };
            let now = crate::token::now_millis();
            let restricting = ops.iter().filter(|o| o.restricts_at(now));
            if round.gap.is_some() {
                restricting.for_each(|o| apply(Change::Op(o)));
                continue;
            }
            match log::step(pos.seq, e.seq) {
                Step::Replay => {
                    self.reject("stream entry replayed or out of order", &e.id);
                    // What only takes away is applied all the same: a place taken twice (a
                    // writer misled about the head) never loses a revocation.
                    restricting.for_each(|o| apply(Change::Op(o)));
                    pos.id = e.id;
                }
                // A hole made only of this replica's own appends is no hole here.
                Step::Gap { from, to } if !self.all_own(from, to) => {
                    round.gap = Some((from, to));
                    restricting.for_each(|o| apply(Change::Op(o)));
                }
                Step::Apply | Step::Gap { .. } => {
                    ops.iter().for_each(|o| apply(Change::Op(o)));
                    *pos = Position {
                        id: e.id,
                        seq: e.seq,
                    };
                }
            }
        }
    }

    /// Applies to `pos` what the log holds after it, in sequence: replays and forgeries are
    /// refused and counted; a gap is explained by a newer snapshot (applied, then the log
    /// after it) or else reported as an error, with only the revocations past it applied.
    /// With `check_head`, the log's MACed head is compared too: a hole at its end is seen,
    /// and a head below what was applied (the tail cut) is put back.
    pub async fn read_news(
        &self,
        pos: &mut Position,
        apply: &mut (dyn FnMut(Change<'_>) + Send),
        check_head: bool,
    ) -> Result<(), String> {
        // Stuck at a hole: look again only when the head is checked (every second).
        if !check_head && self.gap_counted.load(Ordering::Acquire) != 0 {
            return Err(self.problem().unwrap_or_else(|| "log gap".into()));
        }
        let mut resynced = false;
        loop {
            // The head is read before the entries: every entry it counts is then in the read
            // (one appended in between is past it, not a hole), and it is compared with what
            // was applied before the read (a newer entry read since is not a cut).
            let head = match check_head {
                true => Some((self.head().await?, pos.seq)),
                false => None,
            };
            let mut round = Round {
                gap: None,
                read_to: pos.id.clone(),
            };
            loop {
                let page = self.entries_after(&round.read_to).await?;
                let full = page.len() == PAGE;
                self.take_page(pos, &mut round, page, apply);
                if !full {
                    break;
                }
            }
            if let (None, Some(((raw, head), before))) = (round.gap, head) {
                round.gap = self.judge_head(pos, raw.as_deref(), head, before).await;
            }
            let Some((from, to)) = round.gap else {
                self.gap_counted.store(0, Ordering::Release);
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
            let mut c = self.conns().await.writer.clone();
            let _: Result<(), _> = c.set(SNAPSHOT_WANTED, to).await;
            return Err(why);
        }
    }

    /// Judges the MACed head read before the entries: a hole at the end of the log when it is
    /// past what was read (and not all this replica's own appends); the tail cut when it is
    /// below what was applied `before` the read, or forged or deleted.
    async fn judge_head(
        &self,
        pos: &mut Position,
        raw: Option<&str>,
        head: Option<u64>,
        before: u64,
    ) -> Option<(u64, u64)> {
        match head {
            Some(head) if head > pos.seq => {
                if self.all_own(pos.seq + 1, head) {
                    pos.seq = head;
                    return None;
                }
                Some((pos.seq + 1, head))
            }
            Some(head) if head < before => {
                self.rolled_back(raw, head, pos.seq).await;
                None
            }
            // No head, or one whose MAC fails, with entries applied here: set back by hand.
            None if before > 0 => {
                self.rolled_back(raw, 0, pos.seq).await;
                None
            }
            _ => None,
        }
    }

    /// The log's head is below what this replica applied: its tail was cut (and the counter
    /// set back) outside tollgate. The head goes back up, so a replica starting now sees the
    /// hole instead of a shorter log, and a snapshot with what was cut is asked for.
    async fn rolled_back(&self, raw: Option<&str>, head: u64, held: u64) {
        self.reject("log cut back below what was applied", &head.to_string());
        let put_back = self.set_head(raw, held).await;
        let mut c = self.conns().await.writer.clone();
        let asked: Result<(), _> = c.set(SNAPSHOT_WANTED, held).await;
        let _ = put_back.and(self.mark(asked));
    }

    /// Starts over from the snapshot when it is newer than `pos`; true when it was.
    async fn resync(
        &self,
        pos: &mut Position,
        apply: &mut (dyn FnMut(Change<'_>) + Send),
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
        // The snapshot replaces the state (a deletion it left out stays deleted).
        apply(Change::StartOver);
        snap.ops.iter().for_each(|o| apply(Change::Op(o)));
        *pos = Position {
            id: snap.id,
            seq: snap.seq,
        };
        Ok(true)
    }

    /// Reads the whole state at start: the snapshot, then the log after it.
    pub async fn load(&self, apply: &mut (dyn FnMut(Change<'_>) + Send)) -> Result<(), String> {
        let mut pos = self.position.lock().await;
        if let Some(snap) = self.read_snapshot().await? {
            snap.ops.iter().for_each(|o| apply(Change::Op(o)));
            *pos = Position {
                id: snap.id,
                seq: snap.seq,
            };
        }
        self.read_news(&mut pos, apply, true).await?;
        self.appended.fetch_max(pos.seq, Ordering::AcqRel);
        Ok(())
    }
}
