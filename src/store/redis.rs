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

use super::credentials::MasterKey;
use super::op::Op;
use redis::aio::ConnectionManager;
use redis::AsyncCommands as _;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The stream every replica writes to and follows.
pub const STREAM: &str = "tollgate:ops";
/// The compacted state: every live record as of one stream entry.
pub const SNAPSHOT: &str = "tollgate:snapshot";
/// Where the stream was last trimmed after a snapshot.
pub const TRIMMED_TO: &str = "tollgate:trimmed_to";

/// The compacted state as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    /// The last stream entry it covers.
    id: String,
    /// Every live record, as ops.
    ops: Vec<Op>,
}

/// Stream ids (`ms-seq`) in order.
pub fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}
/// Credentials outlive any token, so they are also kept as a hash (id → row) the stream may
/// forget: the stream is trimmed to the longest token lifetime.
pub const CREDENTIALS: &str = "tollgate:credentials";

/// A connection to the shared store.
pub struct RedisStore {
    conn: ConnectionManager,
    reader: Mutex<ConnectionManager>,
    /// Id of the last stream entry applied here.
    pub last_id: Mutex<String>,
    up: AtomicBool,
    master: Arc<MasterKey>,
    rejected: AtomicU64,
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

type Entries = Vec<(String, Vec<Op>)>;

/// The URL with any password hidden, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// The MAC of a stream entry or credential row (`what` tells the two apart).
fn tag(master: &MasterKey, what: &[u8], json: &str) -> String {
    master.fingerprint(&[b"tollgate shared log v1", what, json.as_bytes()])
}

impl RedisStore {
    /// Connects (two connections: one for writes, one that reads the stream).
    pub async fn connect(url: &str, master: Arc<MasterKey>) -> Result<Self, String> {
        let shown = redacted(url);
        let client = redis::Client::open(url).map_err(|e| format!("{shown}: {e}"))?;
        let conn = ConnectionManager::new_with_config(client.clone(), cfg())
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        let reader = ConnectionManager::new_with_config(client, cfg())
            .await
            .map_err(|e| format!("{shown}: {e}"))?;
        Ok(RedisStore {
            conn,
            reader: Mutex::new(reader),
            last_id: Mutex::new("0-0".into()),
            up: AtomicBool::new(true),
            master,
            rejected: AtomicU64::new(0),
        })
    }

    /// Entries and rows refused so far (no MAC, a wrong one, or unreadable).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn reject(&self, what: &str, id: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(what, id, "shared store entry without a valid MAC refused");
    }

    /// The entries whose MAC checks, in order; the others are counted and skipped.
    fn parse_entries(&self, reply: redis::streams::StreamRangeReply) -> Entries {
        let mut out = Vec::with_capacity(reply.ids.len());
        for e in reply.ids {
            let json = e.get::<String>("ops");
            let mac = e.get::<String>("mac");
            let ops = match (json, mac) {
                (Some(j), Some(m))
                    if crate::secret::ct_eq(
                        tag(&self.master, b"ops", &j).as_bytes(),
                        m.as_bytes(),
                    ) =>
                {
                    serde_json::from_str::<Vec<Op>>(&j).ok()
                }
                _ => None,
            };
            match ops {
                Some(ops) => out.push((e.id, ops)),
                None => {
                    self.reject("stream entry", &e.id);
                    // Still move past it: it is never applied, nor read again.
                    out.push((e.id, Vec::new()));
                }
            }
        }
        out
    }

    /// True while the last exchange with Redis succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn mark<T, E: std::fmt::Display>(&self, r: Result<T, E>) -> Result<T, String> {
        self.up.store(r.is_ok(), Ordering::Relaxed);
        r.map_err(|e| e.to_string())
    }

    /// Appends one commit to the stream; returns once Redis has it.
    pub async fn commit(&self, ops: &[Op]) -> Result<(), String> {
        if ops.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(ops).map_err(|e| e.to_string())?;
        let mut c = self.conn.clone();
        for op in ops {
            let r: Result<(), _> = match op {
                Op::Cred(row) => {
                    let json = serde_json::to_string(row).map_err(|e| e.to_string())?;
                    let value = format!("{}.{json}", tag(&self.master, b"cred", &json));
                    c.hset(CREDENTIALS, row.id, value).await
                }
                Op::CredDeleted { id } => c.hdel(CREDENTIALS, *id).await,
                // The newest value stays readable at start after the stream is trimmed.
                Op::Meta { key, value } => c.set(format!("tollgate:meta:{key}"), value).await,
                _ => Ok(()),
            };
            self.mark(r)?;
        }
        let mac = tag(&self.master, b"ops", &json);
        let fields = [("ops", json.as_str()), ("mac", mac.as_str())];
        let mut r: Result<String, _> = c.xadd(STREAM, "*", &fields).await;
        if r.is_err() {
            // One retry after the manager reconnects (a broken pipe after a Redis restart);
            // entries are idempotent upserts, so a duplicate append is harmless.
            r = c.xadd(STREAM, "*", &fields).await;
        }
        self.mark(r).map(|_| ())
    }

    /// The value of `key`, set to `init()` first if no replica has set it yet.
    pub async fn meta(&self, key: &str, init: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, String> {
        let mut c = self.conn.clone();
        let k = format!("tollgate:meta:{key}");
        let _: Result<bool, _> = c.set_nx(&k, init()).await;
        let r: Result<Vec<u8>, _> = c.get(&k).await;
        self.mark(r)
    }

    /// The next id of `kind`, the same counter on every replica (never below `floor` + 1).
    pub async fn allocate_id(&self, kind: &str, floor: u64) -> Result<u64, String> {
        let mut c = self.conn.clone();
        let key = format!("tollgate:ids:{kind}");
        // Ids made before the counter existed stay below it.
        let _: Result<bool, _> = c.set_nx(&key, floor).await;
        let r: Result<u64, _> = c.incr(&key, 1).await;
        self.mark(r)
    }

    /// Claims `key` once across replicas (a refresh token's single use): true for the first.
    pub async fn claim_once(&self, key: &str, ttl_secs: u64) -> Result<bool, String> {
        let mut c = self.conn.clone();
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(ttl_secs.max(1)));
        let r: Result<Option<String>, _> =
            c.set_options(format!("tollgate:once:{key}"), 1, opts).await;
        self.mark(r).map(|v| v.is_some())
    }

    /// Every entry after the last one applied here (the whole stream at start).
    pub async fn entries_after(&self, id: &str) -> Result<Entries, String> {
        let mut c = self.reader.lock().await;
        let start = if id == "0-0" {
            "-".to_owned()
        } else {
            format!("({id}")
        };
        let r: Result<redis::streams::StreamRangeReply, _> = c.xrange(STREAM, start, "+").await;
        self.mark(r).map(|reply| self.parse_entries(reply))
    }

    /// The credential rows kept outside the stream.
    pub async fn credentials(&self) -> Result<Vec<Op>, String> {
        let mut c = self.conn.clone();
        let r: Result<std::collections::HashMap<u64, String>, _> = c.hgetall(CREDENTIALS).await;
        let rows = self.mark(r)?;
        let mut out = Vec::new();
        for (id, value) in rows {
            let row = value.split_once('.').and_then(|(mac, json)| {
                crate::secret::ct_eq(tag(&self.master, b"cred", json).as_bytes(), mac.as_bytes())
                    .then(|| serde_json::from_str(json).ok())
                    .flatten()
            });
            match row {
                Some(row) => out.push(Op::Cred(row)),
                None => self.reject("credential row", &id.to_string()),
            }
        }
        Ok(out)
    }

    /// Writes the snapshot of every live record as of stream entry `id` (MACed like entries).
    pub async fn write_snapshot(&self, id: &str, ops: &[Op]) -> Result<(), String> {
        // A struct, not `json!`: record ids are u128, which a JSON `Value` cannot hold.
        let json = serde_json::to_string(&Snapshot {
            id: id.to_owned(),
            ops: ops.to_vec(),
        })
        .map_err(|e| e.to_string())?;
        let value = format!("{}.{json}", tag(&self.master, b"snapshot", &json));
        let mut c = self.conn.clone();
        let r: Result<(), _> = c.set(SNAPSHOT, value).await;
        self.mark(r)
    }

    /// The snapshot and the stream entry it covers up to, when there is a valid one.
    pub async fn read_snapshot(&self) -> Result<Option<(String, Vec<Op>)>, String> {
        let mut c = self.conn.clone();
        let r: Result<Option<String>, _> = c.get(SNAPSHOT).await;
        let Some(value) = self.mark(r)? else {
            return Ok(None);
        };
        let parsed = value.split_once('.').and_then(|(mac, json)| {
            if !crate::secret::ct_eq(
                tag(&self.master, b"snapshot", json).as_bytes(),
                mac.as_bytes(),
            ) {
                return None;
            }
            let snap: Snapshot = serde_json::from_str(json).ok()?;
            Some((snap.id, snap.ops))
        });
        if parsed.is_none() {
            self.reject("snapshot", SNAPSHOT);
        }
        Ok(parsed)
    }

    /// Drops the stream entries before `id` (a snapshot covers them) and says so for replicas
    /// that were away: one behind `id` must start over from the snapshot.
    pub async fn trim_to(&self, id: &str) -> Result<(), String> {
        let mut c = self.conn.clone();
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

    /// The id before which the stream was trimmed (none yet: "0-0").
    pub async fn trimmed_to(&self) -> Result<String, String> {
        let mut c = self.conn.clone();
        let r: Result<Option<String>, _> = c.get(TRIMMED_TO).await;
        self.mark(r).map(|v| v.unwrap_or_else(|| "0-0".into()))
    }

    /// Forgets stream entries older than `horizon` (every token they mention has expired by then).
    pub async fn trim(&self, horizon: Duration) -> Result<(), String> {
        let min = crate::token::now_millis().saturating_sub(horizon.as_millis() as u64);
        let mut c = self.conn.clone();
        let r: Result<u64, _> = redis::cmd("XTRIM")
            .arg(STREAM)
            .arg("MINID")
            .arg("~")
            .arg(min)
            .query_async(&mut c)
            .await;
        self.mark(r).map(|_| ())
    }

    /// Answers a PING within the connection's timeouts.
    pub async fn ping(&self) -> bool {
        let mut c = self.conn.clone();
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
