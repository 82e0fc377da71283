//! The shared store for many replicas: every acknowledged write is appended (as the same
//! `Op`s the embedded store commits) to one Redis stream, which every replica replays at start
//! and then follows, applying each entry to its own maps and hot cache. A revocation on one
//! replica therefore reaches the others as fast as they read the stream (milliseconds).
//!
//! Every entry carries a MAC under a key derived from the master key over its content and its
//! place in one sequence (`log.rs`), appended by a compare-and-append script (`append.rs`):
//! anything another client of the same Redis writes, replays, deletes or cuts is refused and
//! counted (`follow.rs`), and snapshots carry the sequence they cover (`snapshot.rs`).
//!
//! While Redis is unreachable: tokens already hot keep working, unknown ones are refused
//! (503, fail closed), writes fail (the dialect's server error), and the connection manager
//! reconnects by itself.

mod append;
pub mod connect;
mod follow;
pub mod log;
mod snapshot;

use super::credentials::MasterKey;
use connect::{describe, Locator};
use log::Position;
use redis::aio::ConnectionManager;
use redis::AsyncCommands as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The stream every replica writes to and follows.
pub const STREAM: &str = "tollgate:ops";
/// The highest sequence appended, and its MAC (`HEAD`): a counter moved by anyone else fails
/// the MAC and is not believed.
pub const SEQ: &str = "tollgate:seq";
/// The MAC of `SEQ`'s value.
pub const HEAD: &str = "tollgate:head";
/// The compacted state: every live record as of one stream entry.
pub const SNAPSHOT: &str = "tollgate:snapshot";
/// Where the stream was last trimmed after a snapshot (a hint for people; not trusted).
pub const TRIMMED_TO: &str = "tollgate:trimmed_to";
/// The stream id the last periodic compaction covered: the next one trims to it (a hint: a
/// wrong one trims less or more, and a hole the snapshots do not cover is refused anyway).
pub const PERIODIC: &str = "tollgate:periodic_snapshot";
/// Set by a replica stuck at a gap: the sequence a snapshot must cover to let it go on.
pub const SNAPSHOT_WANTED: &str = "tollgate:snapshot_wanted";

/// The connections to the primary: writes, the reads of the stream, and (with
/// `wait_replicas`) a few for appends, since `WAIT` holds up every command behind it on its
/// connection.
struct Conns {
    writer: ConnectionManager,
    reader: ConnectionManager,
    appenders: Vec<ConnectionManager>,
}

/// A connection to the shared store.
pub struct RedisStore {
    locator: Locator,
    conns: arc_swap::ArcSwap<Conns>,
    /// Where this replica stands in the shared log (held while a catch-up reads it).
    pub position: Mutex<Position>,
    /// The highest sequence this replica knows was appended (the next write tries one more).
    appended: AtomicU64,
    up: AtomicBool,
    /// Set by a failure; the primary is asked of the sentinels again before the next command.
    stale: AtomicBool,
    locating: Mutex<()>,
    master: Arc<MasterKey>,
    rejected: AtomicU64,
    /// Kinds of refusal already logged (one line per kind).
    logged: std::sync::Mutex<Vec<&'static str>>,
    /// What is wrong, for `/readyz` (never a secret).
    problem: std::sync::Mutex<Option<String>>,
    wait_replicas: u32,
    gap_counted: AtomicU64,
    /// Sequences this replica appended lately: a hole made only of them is no hole here.
    own: std::sync::Mutex<std::collections::VecDeque<u64>>,
    /// When the sentinels were last asked for the primary (ms), so failures do not storm them.
    located_ms: AtomicU64,
    /// When this replica last answered an ask for a snapshot (ms).
    answered_ms: AtomicU64,
    next_appender: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

fn cfg() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
}

/// How long `WAIT` may take before a write counts as not confirmed.
const WAIT_MS: u64 = 1000;

/// Connections to `client`: writer, reader and `appenders` more.
async fn open(client: redis::Client, appenders: usize) -> Result<Conns, String> {
    let connect = || async {
        ConnectionManager::new_with_config(client.clone(), cfg())
            .await
            .map_err(|e| describe(&e))
    };
    let (writer, reader) = (connect().await?, connect().await?);
    let mut more = Vec::with_capacity(appenders);
    for _ in 0..appenders {
        more.push(connect().await?);
    }
    Ok(Conns {
        writer,
        reader,
        appenders: more,
    })
}

/// Appending connections with `wait_replicas` (each `WAIT` holds up only its own).
const APPENDERS: usize = 4;

impl RedisStore {
    /// Connects as `settings` say (two connections to the primary: writes, stream reads).
    pub async fn connect(
        settings: &crate::config::RedisSettings,
        master: Arc<MasterKey>,
    ) -> Result<Self, String> {
        let locator = Locator::new(settings)?;
        let appenders = if settings.wait_replicas > 0 {
            APPENDERS
        } else {
            0
        };
        let conns = open(locator.primary().await?, appenders).await?;
        Ok(RedisStore {
            locator,
            conns: arc_swap::ArcSwap::from_pointee(conns),
            position: Mutex::new(Position::default()),
            appended: AtomicU64::new(0),
            up: AtomicBool::new(true),
            stale: AtomicBool::new(false),
            locating: Mutex::new(()),
            master,
            rejected: AtomicU64::new(0),
            logged: Default::default(),
            problem: Default::default(),
            wait_replicas: settings.wait_replicas,
            gap_counted: AtomicU64::new(0),
            own: Default::default(),
            located_ms: AtomicU64::new(0),
            answered_ms: AtomicU64::new(0),
            next_appender: Default::default(),
        })
    }

    /// The connections, to the primary the sentinels name now when the last command failed.
    async fn conns(&self) -> Arc<Conns> {
        if self.stale.load(Ordering::Acquire) && self.locator.follows_failover() {
            // Boxed: asking the sentinels is a deep future, kept out of every request's.
            Box::pin(self.relocate()).await;
        }
        self.conns.load_full()
    }

    async fn relocate(&self) {
        let _one = self.locating.lock().await;
        // At most one look every 500 ms, whatever the number of failing commands.
        let now = crate::token::now_millis();
        if now.saturating_sub(self.located_ms.load(Ordering::Acquire)) < 500
            || !self.stale.swap(false, Ordering::AcqRel)
        {
            return;
        }
        self.located_ms.store(now, Ordering::Release);
        let appenders = self.conns.load().appenders.len();
        let found = match self.locator.primary().await {
            Ok(client) => open(client, appenders).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(c) => {
                tracing::info!("shared store: connected to the primary the sentinels name");
                self.conns.store(Arc::new(c));
            }
            Err(e) => self.failed(e),
        }
    }

    fn writer(conns: &Conns) -> ConnectionManager {
        conns.writer.clone()
    }

    /// Records a failure; one of reaching the primary (not a refused command) makes the next
    /// command ask the sentinels again.
    fn failed(&self, why: String) {
        self.up.store(false, Ordering::Relaxed);
        let reach = ["unreachable", "not the primary", "no primary", "tls"];
        if reach.iter().any(|k| why.starts_with(k)) {
            self.stale.store(true, Ordering::Release);
        }
        *self.problem.lock().expect("problem lock") = Some(why);
    }

    /// What is wrong with the store now (TLS, auth, no primary, unreachable, a gap), if anything.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().expect("problem lock").clone()
    }

    /// Entries and rows refused so far (no MAC, a wrong one, replayed, or unreadable).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Counts one refused entry; one log line per kind.
    fn reject(&self, what: &'static str, id: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let mut logged = self.logged.lock().expect("logged lock");
        if !logged.contains(&what) {
            logged.push(what);
            tracing::warn!(what, id, "shared store entry refused");
        }
    }

    /// True while the last exchange with Redis succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn mark<T>(&self, r: Result<T, redis::RedisError>) -> Result<T, String> {
        match r {
            Ok(v) => {
                self.up.store(true, Ordering::Relaxed);
                let mut p = self.problem.lock().expect("problem lock");
                if p.as_deref().is_some_and(|p| !p.starts_with("log gap")) {
                    *p = None;
                }
                Ok(v)
            }
            Err(e) => {
                let why = describe(&e);
                self.failed(why.clone());
                Err(why)
            }
        }
    }

    /// The value of `key`, set to `init()` first if no replica has set it yet.
    pub async fn meta(&self, key: &str, init: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, String> {
        let mut c = Self::writer(&*self.conns().await);
        let k = format!("tollgate:meta:{key}");
        let set: Result<bool, _> = c.set_nx(&k, init()).await;
        let r: Result<Vec<u8>, _> = c.get(&k).await;
        let v = self.mark(r)?;
        // A key made here must survive a failover like any acknowledged write.
        if set.unwrap_or(false) {
            self.confirm(&mut c).await?;
        }
        Ok(v)
    }

    /// The next id of `kind`, the same counter on every replica (never below `floor` + 1).
    pub async fn allocate_id(&self, kind: &str, floor: u64) -> Result<u64, String> {
        let mut c = Self::writer(&*self.conns().await);
        let key = format!("tollgate:ids:{kind}");
        // Ids made before the counter existed stay below it.
        let _: Result<bool, _> = c.set_nx(&key, floor).await;
        let r: Result<u64, _> = c.incr(&key, 1).await;
        self.mark(r)
    }

    /// Claims `key` once across replicas (a refresh token's single use): true for the first.
    pub async fn claim_once(&self, key: &str, ttl_secs: u64) -> Result<bool, String> {
        let mut c = Self::writer(&*self.conns().await);
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(ttl_secs.max(1)));
        let r: Result<Option<String>, _> =
            c.set_options(format!("tollgate:once:{key}"), 1, opts).await;
        self.mark(r).map(|v| v.is_some())
    }

    /// Why a new connection to the primary fails now (the shared connections only see a
    /// broken pipe while they reconnect in the background): TLS, auth, no primary, unreachable.
    pub async fn diagnose(&self) -> String {
        let probe = async {
            let client = self.locator.primary().await?;
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| describe(&e))?;
            let r: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
            r.map_err(|e| describe(&e))
        };
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(_)) => "unreachable: the shared connection is reconnecting".to_owned(),
            Ok(Err(why)) => why,
            Err(_) => "unreachable: no answer within 2 s".to_owned(),
        }
    }

    /// Answers a PING within the connection's timeouts.
    pub async fn ping(&self) -> bool {
        let mut c = Self::writer(&*self.conns().await);
        let r: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
        self.mark(r).is_ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            crate::config::redacted_url("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            crate::config::redacted_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            crate::config::redacted_url("redis://u:pa?ss@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            crate::config::redacted_url("redis+unix:///run/redis.sock?db=0&pass=hunter2"),
            "redis+unix:///run/redis.sock?***"
        );
    }
}
