//! The shared store for many replicas: every acknowledged write is appended (as the same
//! `Op`s the embedded store commits) to one Redis stream, which every replica replays at start
//! and then follows, applying each entry to its own maps and hot cache. A revocation on one
//! replica therefore reaches the others as fast as they read the stream (milliseconds).
//!
//! Every entry (and every credential row kept beside the stream) carries a MAC under a key
//! derived from the master key: anything another client of the same Redis writes without it
//! is dropped and counted, never applied.
//!
//! While Redis is unreachable: tokens already hot keep working, unknown ones are refused
//! (503, fail closed), writes fail (the dialect's server error), and the connection manager
//! reconnects by itself.

pub mod connect;
mod follow;
pub mod log;
mod snapshot;

use super::credentials::MasterKey;
use super::op::Op;
use connect::{describe, Locator};
use log::Position;
use redis::aio::ConnectionManager;
use redis::AsyncCommands as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

pub use log::id_key;

/// The stream every replica writes to and follows.
pub const STREAM: &str = "tollgate:ops";
/// The highest sequence appended to the stream (a hint: entries carry their own, MACed).
pub const SEQ: &str = "tollgate:seq";
/// The compacted state: every live record as of one stream entry.
pub const SNAPSHOT: &str = "tollgate:snapshot";
/// Where the stream was last trimmed after a snapshot (a hint for people; not trusted).
pub const TRIMMED_TO: &str = "tollgate:trimmed_to";
/// Set by a replica stuck at a gap: the sequence a snapshot must cover to let it go on.
pub const SNAPSHOT_WANTED: &str = "tollgate:snapshot_wanted";
/// Credential rows of stores written before snapshots carried them (read at start only then).
pub const CREDENTIALS: &str = "tollgate:credentials";

/// Appends one entry at sequence `ARGV[1]` if that is past the counter, atomically with
/// moving the counter; otherwise answers the counter so the writer can MAC the next one.
const APPEND: &str = r"
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
local want = tonumber(ARGV[1])
if want <= cur then return {0, tostring(cur)} end
redis.call('SET', KEYS[2], ARGV[1])
local id = redis.call('XADD', KEYS[1], '*', 'seq', ARGV[1], 'ops', ARGV[2], 'mac', ARGV[3])
return {1, id}
";

/// Raises the counter to `ARGV[1]` unless it is there already.
const RAISE: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
";

/// The two connections to the primary: writes, and the reads of the stream.
struct Conns {
    writer: ConnectionManager,
    reader: ConnectionManager,
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

/// The URL with any password hidden, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

async fn open(client: redis::Client) -> Result<Conns, String> {
    let e = |e: redis::RedisError| describe(&e);
    let writer = ConnectionManager::new_with_config(client.clone(), cfg())
        .await
        .map_err(e)?;
    let reader = ConnectionManager::new_with_config(client, cfg())
        .await
        .map_err(e)?;
    Ok(Conns { writer, reader })
}

impl RedisStore {
    /// Connects as `settings` say (two connections to the primary: writes, stream reads).
    pub async fn connect(
        settings: &crate::config::RedisSettings,
        master: Arc<MasterKey>,
    ) -> Result<Self, String> {
        let locator = Locator::new(settings)?;
        let conns = open(locator.primary().await?).await?;
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
        if !self.stale.swap(false, Ordering::AcqRel) {
            return;
        }
        let found = match self.locator.primary().await {
            Ok(client) => open(client).await,
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

    fn failed(&self, why: String) {
        self.up.store(false, Ordering::Relaxed);
        self.stale.store(true, Ordering::Release);
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

    /// Appends one commit to the stream at the next sequence; returns once Redis has it (and,
    /// with `wait_replicas`, once that many Redis replicas confirm it).
    pub async fn commit(&self, ops: &[Op]) -> Result<(), String> {
        if ops.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(ops).map_err(|e| e.to_string())?;
        let conns = self.conns().await;
        let mut c = Self::writer(&conns);
        for op in ops {
            // The newest value stays readable at start (a hint: the stream and snapshot carry
            // it MACed, and the ring only moves forward).
            if let Op::Meta { key, value } = op {
                let r: Result<(), _> = c.set(format!("tollgate:meta:{key}"), value).await;
                self.mark(r)?;
            }
        }
        let script = redis::Script::new(APPEND);
        let held = self.position.try_lock().map(|p| p.seq).unwrap_or(0);
        let mut want = self.appended.load(Ordering::Acquire).max(held) + 1;
        let mut retried_io = false;
        for _ in 0..64 {
            let mac = log::entry_tag(&self.master, want, &json);
            let r: Result<(i64, String), _> = script
                .key(STREAM)
                .key(SEQ)
                .arg(want)
                .arg(&json)
                .arg(&mac)
                .invoke_async(&mut c)
                .await;
            match r {
                Ok((1, id)) => {
                    self.appended.fetch_max(want, Ordering::AcqRel);
                    // Applied here already: when this replica had read everything before it,
                    // its own entry needs no reading back (and survives a Redis that loses it).
                    if let Ok(mut pos) = self.position.try_lock() {
                        if pos.seq + 1 == want {
                            *pos = Position { id, seq: want };
                        }
                    }
                    self.mark(Ok(()))?;
                    return self.confirm(&mut c).await;
                }
                // Another replica took that place: MAC the next one.
                Ok((_, cur)) => want = cur.parse::<u64>().unwrap_or(want) + 1,
                // One retry after the manager reconnects (a broken pipe after a restart).
                Err(e) if !retried_io => {
                    retried_io = true;
                    let _ = self.mark::<()>(Err(e));
                    c = Self::writer(&*self.conns().await);
                }
                Err(e) => return self.mark(Err(e)),
            }
        }
        Err("could not take a place in the shared log (64 tries)".into())
    }

    /// With `wait_replicas: N`, `WAIT N` after a write: an error when fewer confirm in time.
    async fn confirm(&self, c: &mut ConnectionManager) -> Result<(), String> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let r: Result<u32, _> = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(WAIT_MS)
            .query_async(c)
            .await;
        let got = self.mark(r)?;
        if got < self.wait_replicas {
            return Err(format!(
                "only {got} of {} Redis replicas confirmed the write within {WAIT_MS} ms",
                self.wait_replicas
            ));
        }
        Ok(())
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
            super::redacted("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            super::redacted("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
