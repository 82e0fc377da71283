//! The embedded store's schema, versioned by `PRAGMA user_version` and migrated at start.

use rusqlite::Connection;

/// Current schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bk_tokens (
    id BLOB PRIMARY KEY, token_hash BLOB NOT NULL UNIQUE, space INTEGER NOT NULL, app TEXT NOT NULL,
    user TEXT NOT NULL, resource TEXT NOT NULL, resource_id TEXT NOT NULL, perm TEXT NOT NULL,
    expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fs_tokens (
    token_hash BLOB PRIMARY KEY, id BLOB NOT NULL, app TEXT NOT NULL, kind TEXT NOT NULL,
    prefix TEXT NOT NULL, expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fs_tickets (
    app TEXT NOT NULL, ticket_hash BLOB NOT NULL, sealed BLOB NOT NULL, expires_ms INTEGER NOT NULL,
    PRIMARY KEY (app, ticket_hash));
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash BLOB PRIMARY KEY, app TEXT NOT NULL, access_jti TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_jti (jti TEXT PRIMARY KEY, exp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (
    id INTEGER PRIMARY KEY, space INTEGER NOT NULL, name TEXT NOT NULL, desc TEXT, kind TEXT NOT NULL,
    app_code TEXT NOT NULL, sealed BLOB NOT NULL, UNIQUE (space, name));
";

/// v2: refresh tokens remember the app secret they were issued under and when their chain began.
const SCHEMA_V2: &str = "
ALTER TABLE refresh_tokens ADD COLUMN secret_gen TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN chain_start INTEGER NOT NULL DEFAULT 0;
";

/// v3: a bkflow token's revocation is stored with its record, so no later write (a renewal
/// that raced it, a replayed row) and no restart brings it back.
const SCHEMA_V3: &str = "
ALTER TABLE bk_tokens ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
";

/// Creates or upgrades the schema to [`SCHEMA_VERSION`].
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 1 {
        conn.execute_batch(SCHEMA_V1)?;
    }
    if version < 2 {
        conn.execute_batch(SCHEMA_V2)?;
    }
    if version < 3 {
        conn.execute_batch(SCHEMA_V3)?;
    }
    if version < SCHEMA_VERSION {
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    Ok(())
}
