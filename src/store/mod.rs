//! The store: the truth behind the in-memory maps. Every acknowledged change is an [`op::Op`]
//! committed to the backend the config names before the answer goes out: one embedded SQLite
//! file, or a Redis stream shared by replicas (replayed at start and followed). The maps of
//! each dialect's records, the hot-token cache and revocations live in the other modules.

pub mod bkflow;
pub mod credentials;
pub mod feishu;
pub mod hot;
pub mod keys;
pub mod op;
pub mod redis;
pub mod refresh;
pub mod revoked;
pub mod sqlite;
pub mod sqlite_schema;

use op::Op;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What reading the shared log asks of the in-memory state.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Apply one op.
    Op(&'a Op),
    /// A snapshot follows that replaces the state: drop every record (revocation marks stay).
    StartOver,
}

/// Why the store could not do what was asked; nothing was acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend refused or could not be reached.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Where acknowledged writes go.
#[derive(Debug)]
pub enum Backend {
    /// One SQLite file (state loaded at start, written through).
    Embedded(sqlite::Db),
    /// A Redis stream shared by replicas (replayed at start, followed after).
    Redis(Box<redis::RedisStore>),
}

/// The store front the rest of the gateway talks to.
#[derive(Debug)]
pub struct Store {
    backend: Backend,
    /// Catch-up rounds begun and completed, so concurrent callers share one read of the stream.
    rounds_begun: AtomicU64,
    rounds_done: AtomicU64,
    /// When (ms since the epoch) this replica last read the shared log to its end.
    caught_up_ms: AtomicU64,
    /// When it last checked whether the log was trimmed past what it has applied.
    gap_checked_ms: AtomicU64,
    /// Entries refused after their MAC checked (an older key ring replayed).
    refused_replays: AtomicU64,
}

impl Store {
    /// A front on `backend`.
    pub fn new(backend: Backend) -> Self {
        Store {
            backend,
            rounds_begun: AtomicU64::new(0),
            rounds_done: AtomicU64::new(0),
            caught_up_ms: AtomicU64::new(crate::token::now_millis()),
            gap_checked_ms: AtomicU64::new(crate::token::now_millis()),
            refused_replays: AtomicU64::new(0),
        }
    }

    /// The backend (for what only one kind does: the Redis follower and trimming).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Commits `ops`; returns once they are durable (on disk, or in Redis).
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let result = match &self.backend {
            Backend::Embedded(db) => db.commit(ops).await,
            Backend::Redis(r) => r.commit(&ops).await,
        };
        result.map_err(|e| {
            tracing::error!(error = %e, "store commit failed");
            StoreError::Unavailable(e)
        })
    }

    /// True when several replicas share the store (lookups may need the stream first).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// False while a shared store is unreachable.
    pub fn is_up(&self) -> bool {
        match &self.backend {
            Backend::Embedded(_) => true,
            Backend::Redis(r) => r.is_up(),
        }
    }

    /// Applies what other replicas wrote since the last look (nothing to do when embedded).
    ///
    /// Concurrent callers share reads: a caller that finds a round begun after it asked has
    /// completed returns at once, so a flood of unknown tokens costs a couple of stream reads,
    /// not one each.
    pub async fn catch_up(&self, apply: impl Fn(Change<'_>) + Sync) -> Result<(), StoreError> {
        let Backend::Redis(r) = &self.backend else {
            return Ok(());
        };
        let asked = self.rounds_begun.load(Ordering::Acquire);
        let mut pos = r.position.lock().await;
        if self.rounds_done.load(Ordering::Acquire) > asked {
            return Ok(());
        }
        let round = self.rounds_begun.fetch_add(1, Ordering::AcqRel) + 1;
        // Was the log trimmed past what this replica applied (a long partition, a paused
        // process), or cut back below it? The head is asked every second: then start over
        // from the snapshot, never from a log with a hole in it.
        let now = crate::token::now_millis();
        let due = now.saturating_sub(self.gap_checked_ms.load(Ordering::Relaxed)) >= 1_000;
        if due {
            self.gap_checked_ms.store(now, Ordering::Relaxed);
        }
        let mut apply = |c: Change<'_>| apply(c);
        // Boxed: the reading loop's future stays out of every request's future.
        Box::pin(r.read_news(&mut pos, &mut apply, due))
            .await
            .map_err(StoreError::Unavailable)?;
        self.rounds_done.store(round, Ordering::Release);
        self.caught_up_ms
            .store(crate::token::now_millis(), Ordering::Release);
        Ok(())
    }

    /// How far behind the shared log this replica may be: the time since it last read the
    /// log to its end (0 when embedded: there is no one else to follow).
    pub fn lag_seconds(&self) -> f64 {
        match &self.backend {
            Backend::Embedded(_) => 0.0,
            Backend::Redis(_) => {
                let since = crate::token::now_millis()
                    .saturating_sub(self.caught_up_ms.load(Ordering::Acquire));
                since as f64 / 1000.0
            }
        }
    }

    /// Takes `key` once across replicas (always true when embedded: the local take is atomic).
    pub async fn claim_once(&self, key: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(true),
            Backend::Redis(r) => r
                .claim_once(key, ttl_secs)
                .await
                .map_err(StoreError::Unavailable),
        }
    }

    /// A fresh id for `kind` unique across replicas (Redis `INCR`, started above `floor`),
    /// or `None` when embedded (one process: its own counter is unique).
    pub async fn allocate_id(&self, kind: &str, floor: u64) -> Result<Option<u64>, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(None),
            Backend::Redis(r) => r
                .allocate_id(kind, floor)
                .await
                .map(Some)
                .map_err(StoreError::Unavailable),
        }
    }

    /// Shared-store entries refused so far: a missing or wrong MAC, or content older than what
    /// this replica holds.
    pub fn rejected_entries(&self) -> u64 {
        let replays = self.refused_replays.load(Ordering::Relaxed);
        match &self.backend {
            Backend::Embedded(_) => replays,
            Backend::Redis(r) => r.rejected() + replays,
        }
    }

    /// Counts an authentic entry refused because it would move state backwards (`what`),
    /// logged once per kind.
    pub fn refuse_replay(&self, what: &'static str) {
        if self.refused_replays.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                entry = what,
                "store entry refused: older than what this replica holds (a replay?)"
            );
        }
    }

    /// True when the store answers within a second.
    pub async fn ready(&self) -> bool {
        self.not_ready().await.is_none()
    }

    /// Why the store cannot serve now (TLS, auth, no primary, unreachable, a gap in the
    /// shared log), never with a secret in it; `None` when it can.
    pub async fn not_ready(&self) -> Option<String> {
        match &self.backend {
            Backend::Embedded(db) => {
                (!db.ping(Duration::from_secs(1)).await).then(|| "unreachable".to_owned())
            }
            Backend::Redis(r) => {
                if r.ping().await {
                    // Up, but maybe stuck at a gap in the log.
                    return r.problem();
                }
                Some(Box::pin(r.diagnose()).await)
            }
        }
    }
}
impl From<StoreError> for crate::reject::Reject {
    fn from(_: StoreError) -> Self {
        crate::reject::Reject::StoreUnavailable
    }
}
