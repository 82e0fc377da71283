//! The embedded store: one SQLite file (WAL), schema versioned and migrated at start.
//!
//! At start every live row is loaded into the in-memory maps (the hot side); afterwards each
//! write that acknowledges a client is sent to one writer thread, which batches what is
//! queued into one transaction and commits it (fsync) before the waiting handler answers.
//! Nothing here runs on the async workers.

use super::op::{BkRow, CredRow, FsRow, Op, TicketRow};
use super::refresh::RefreshRecord;
use super::sqlite_schema::migrate;
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Everything live in the file, read at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Meta values.
    pub meta: HashMap<String, Vec<u8>>,
    /// Bkflow tokens.
    pub bk: Vec<BkRow>,
    /// Bkflow tokens revoked for good.
    pub bk_revoked: Vec<u128>,
    /// Feishu tokens.
    pub fs: Vec<FsRow>,
    /// Feishu tickets.
    pub tickets: Vec<TicketRow>,
    /// Refresh tokens.
    pub refresh: Vec<([u8; 32], RefreshRecord)>,
    /// Revoked JWT ids.
    pub revoked: Vec<(String, u64)>,
    /// Credentials.
    pub credentials: Vec<CredRow>,
}

type Job = (Vec<Op>, oneshot::Sender<Result<(), String>>);

/// Sets an existing file to 0600 (a missing one is fine).
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Handle on the writer thread.
#[derive(Debug, Clone)]
pub struct Db {
    tx: mpsc::Sender<Job>,
}

fn hash32(v: Vec<u8>) -> rusqlite::Result<[u8; 32]> {
    v.try_into().map_err(|_| rusqlite::Error::InvalidQuery)
}

fn id128(v: Vec<u8>) -> rusqlite::Result<u128> {
    let b: [u8; 16] = v.try_into().map_err(|_| rusqlite::Error::InvalidQuery)?;
    Ok(u128::from_be_bytes(b))
}

fn load(conn: &Connection, now_ms: u64) -> rusqlite::Result<Snapshot> {
    let mut s = Snapshot::default();
    let now_s = now_ms / 1000;
    let mut q = conn.prepare("SELECT key, value FROM meta")?;
    for r in q.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })? {
        let (k, v) = r?;
        s.meta.insert(k, v);
    }
    let mut q = conn.prepare(
        "SELECT id, token_hash, space, app, user, resource, resource_id, perm, expires_ms, revoked FROM bk_tokens",
    )?;
    for r in q.query_map([], |r| {
        let revoked = r.get::<_, i64>(9)? != 0;
        Ok((
            revoked,
            BkRow {
                id: id128(r.get(0)?)?,
                token_hash: hash32(r.get(1)?)?,
                space: r.get::<_, i64>(2)? as u64,
                app: r.get(3)?,
                user: r.get(4)?,
                resource: r.get(5)?,
                resource_id: r.get(6)?,
                perm: r.get(7)?,
                expires_ms: r.get::<_, i64>(8)? as u64,
            },
        ))
    })? {
        let (revoked, row) = r?;
        if revoked {
            s.bk_revoked.push(row.id);
        }
        s.bk.push(row);
    }
    let mut q = conn.prepare(
        "SELECT token_hash, id, app, kind, prefix, expires_ms FROM fs_tokens WHERE expires_ms > ?1",
    )?;
    for r in q.query_map([now_ms as i64], |r| {
        Ok(FsRow {
            token_hash: hash32(r.get(0)?)?,
            id: id128(r.get(1)?)?,
            app: r.get(2)?,
            kind: r.get(3)?,
            prefix: r.get(4)?,
            expires_ms: r.get::<_, i64>(5)? as u64,
        })
    })? {
        s.fs.push(r?);
    }
    let mut q = conn.prepare(
        "SELECT app, ticket_hash, sealed, expires_ms FROM fs_tickets WHERE expires_ms > ?1",
    )?;
    for r in q.query_map([now_ms as i64], |r| {
        Ok(TicketRow {
            app: r.get(0)?,
            ticket_hash: hash32(r.get(1)?)?,
            sealed: r.get(2)?,
            expires_ms: r.get::<_, i64>(3)? as u64,
        })
    })? {
        s.tickets.push(r?);
    }
    let mut q = conn.prepare(
        "SELECT token_hash, app, access_jti, expires, secret_gen, chain_start FROM refresh_tokens WHERE expires > ?1",
    )?;
    for r in q.query_map([now_s as i64], |r| {
        Ok((
            hash32(r.get(0)?)?,
            RefreshRecord {
                app: r.get(1)?,
                access_jti: r.get(2)?,
                expires: r.get::<_, i64>(3)? as u64,
                secret_gen: r.get(4)?,
                chain_start: r.get::<_, i64>(5)? as u64,
            },
        ))
    })? {
        s.refresh.push(r?);
    }
    let mut q = conn.prepare("SELECT jti, exp FROM revoked_jti WHERE exp > ?1")?;
    for r in q.query_map([now_s as i64], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
    })? {
        s.revoked.push(r?);
    }
    let mut q = conn.prepare(
        "SELECT id, space, name, desc, kind, app_code, sealed FROM credentials ORDER BY id",
    )?;
    for r in q.query_map([], |r| {
        Ok(CredRow {
            id: r.get::<_, i64>(0)? as u64,
            space: r.get::<_, i64>(1)? as u64,
            name: r.get(2)?,
            desc: r.get(3)?,
            kind: r.get(4)?,
            app_code: r.get(5)?,
            sealed: r.get(6)?,
        })
    })? {
        s.credentials.push(r?);
    }
    Ok(s)
}

fn apply(tx: &rusqlite::Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Meta { key: k, value: v } => {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )?;
        }
        Op::Bk(r) => {
            // A revoked record keeps its mark and never gets a later expiry back.
            tx.execute(
                "INSERT INTO bk_tokens (id, token_hash, space, app, user, resource, resource_id, perm, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(id) DO UPDATE SET expires_ms = CASE WHEN bk_tokens.revoked = 1
                     THEN MIN(bk_tokens.expires_ms, excluded.expires_ms) ELSE excluded.expires_ms END",
                params![
                    r.id.to_be_bytes().to_vec(),
                    r.token_hash.to_vec(),
                    r.space as i64,
                    r.app,
                    r.user,
                    r.resource,
                    r.resource_id,
                    r.perm,
                    r.expires_ms as i64
                ],
            )?;
        }
        Op::BkExpiry {
            ids,
            expires_ms: ms,
        } => {
            // A renewal that raced a revocation and lost never writes over it.
            let mut st = tx.prepare_cached(
                "UPDATE bk_tokens SET expires_ms = ?1 WHERE id = ?2 AND revoked = 0",
            )?;
            for id in ids {
                st.execute(params![*ms as i64, id.to_be_bytes().to_vec()])?;
            }
        }
        Op::BkRevoked { ids, at_ms: ms } => {
            let mut st = tx.prepare_cached(
                "UPDATE bk_tokens SET expires_ms = MIN(expires_ms, ?1), revoked = 1 WHERE id = ?2",
            )?;
            for id in ids {
                st.execute(params![*ms as i64, id.to_be_bytes().to_vec()])?;
            }
        }
        Op::Fs(r) => {
            // A feishu token's expiry only ever moves down (a revocation lowers it).
            tx.execute(
                "INSERT INTO fs_tokens VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(token_hash) DO UPDATE SET expires_ms = MIN(fs_tokens.expires_ms, excluded.expires_ms)",
                params![
                    r.token_hash.to_vec(),
                    r.id.to_be_bytes().to_vec(),
                    r.app,
                    r.kind,
                    r.prefix,
                    r.expires_ms as i64
                ],
            )?;
        }
        Op::Ticket(r) => {
            tx.execute(
                "INSERT OR REPLACE INTO fs_tickets VALUES (?1, ?2, ?3, ?4)",
                params![r.app, r.ticket_hash.to_vec(), r.sealed, r.expires_ms as i64],
            )?;
        }
        Op::Refresh { hash, record: r } => {
            tx.execute(
                "INSERT OR REPLACE INTO refresh_tokens (token_hash, app, access_jti, expires, secret_gen, chain_start) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash.to_vec(), r.app, r.access_jti, r.expires as i64, r.secret_gen, r.chain_start as i64],
            )?;
        }
        Op::RefreshUsed { hash: h } => {
            tx.execute(
                "DELETE FROM refresh_tokens WHERE token_hash = ?1",
                params![h.to_vec()],
            )?;
        }
        Op::Revoked { jti, until: exp } => {
            tx.execute(
                "INSERT OR REPLACE INTO revoked_jti VALUES (?1, ?2)",
                params![jti, *exp as i64],
            )?;
        }
        Op::Cred(c) => {
            tx.execute(
                // An upsert on the id only: a name clash is an error, never a silent replace.
                "INSERT INTO credentials VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET
                 space = excluded.space, name = excluded.name, desc = excluded.desc, kind = excluded.kind,
                 app_code = excluded.app_code, sealed = excluded.sealed",
                params![c.id as i64, c.space as i64, c.name, c.desc, c.kind, c.app_code, c.sealed],
            )?;
        }
        Op::CredDeleted { id } => {
            tx.execute("DELETE FROM credentials WHERE id = ?1", params![*id as i64])?;
        }
        Op::Sweep {
            now_ms,
            bk_retention_ms,
        } => {
            let now_s = (now_ms / 1000) as i64;
            tx.execute(
                "DELETE FROM bk_tokens WHERE expires_ms < ?1",
                params![now_ms.saturating_sub(*bk_retention_ms) as i64],
            )?;
            tx.execute(
                "DELETE FROM fs_tokens WHERE expires_ms <= ?1",
                params![*now_ms as i64],
            )?;
            tx.execute(
                "DELETE FROM fs_tickets WHERE expires_ms <= ?1",
                params![*now_ms as i64],
            )?;
            tx.execute(
                "DELETE FROM refresh_tokens WHERE expires <= ?1",
                params![now_s],
            )?;
            tx.execute("DELETE FROM revoked_jti WHERE exp <= ?1", params![now_s])?;
        }
    }
    Ok(())
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        // Take whatever else is queued: one transaction, one fsync for the whole batch.
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = (|| {
            let tx = conn.transaction()?;
            for (ops, _) in &batch {
                for op in ops {
                    apply(&tx, op)?;
                }
            }
            tx.commit()
        })()
        .map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "store write failed");
        }
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

impl Db {
    /// Opens (creating and migrating) the file, loads what is live at `now_ms`, writes the meta
    /// values `init` returns for what is missing (server keys made on first start), starts the writer.
    pub fn open(
        path: &Path,
        now_ms: u64,
        init: impl FnOnce(&HashMap<String, Vec<u8>>) -> Vec<(String, Vec<u8>)>,
    ) -> Result<(Db, Snapshot), String> {
        if let Some(dir) = path.parent() {
            crate::token::jwt::create_private_dir(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let err = |e: rusqlite::Error| format!("{}: {e}", path.display());
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(err)?;
        migrate(&conn).map_err(err)?;
        let mut snapshot = load(&conn, now_ms).map_err(err)?;
        for (k, v) in init(&snapshot.meta) {
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
            .map_err(err)?;
            snapshot.meta.insert(k, v);
        }
        // Token hashes, sealed secrets and server keys: for the owner's eyes only (the WAL and
        // shared-memory files hold the same pages).
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            private_file(Path::new(&p)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tollgate-store".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| e.to_string())?;
        Ok((Db { tx }, snapshot))
    }

    /// True when the writer answers a (write-free) transaction within `timeout`.
    pub async fn ping(&self, timeout: std::time::Duration) -> bool {
        let (reply, done) = oneshot::channel();
        if self.tx.send((Vec::new(), reply)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(Ok(()))))
    }

    /// Commits `ops` in one transaction; returns once they are on disk.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), String> {
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        self.tx
            .send((ops, reply))
            .map_err(|_| "store writer stopped".to_owned())?;
        done.await.map_err(|_| "store writer stopped".to_owned())?
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
