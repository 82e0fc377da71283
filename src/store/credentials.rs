//! BKFlow credentials (seed 004): the app code in clear, the secret sealed with AES-256-GCM
//! under the master key; answered masked as exactly nine `*`.
//!
//! The master key: `TOLLGATE_MASTER_KEY`, else `store.master_key_file`, else generated beside
//! the store.

use super::op::CredRow;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine as _;
use dashmap::DashMap;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The header a BlueKing app credential travels in (JSON with `bk_app_code`, `bk_app_secret`).
pub static X_BKAPI_AUTHORIZATION: http::HeaderName =
    http::HeaderName::from_static("x-bkapi-authorization");

/// The mask every answer shows instead of a secret.
pub const MASK: &str = "*********";

/// The key that seals stored secrets (and, derived from it, a MAC key for stored fingerprints).
pub struct MasterKey(LessSafeKey, aws_lc_rs::hmac::Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// 32 bytes as 64 hex digits or base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bytes = hex::decode(t)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .filter(|b| b.len() == 32)
            .ok_or("the master key must be 32 bytes, hex or base64")?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "unusable master key")?;
        let derive = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &bytes);
        let mac_key = aws_lc_rs::hmac::sign(&derive, b"tollgate fingerprint key v1");
        let mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, mac_key.as_ref());
        Ok(MasterKey(LessSafeKey::new(key), mac))
    }

    /// From `TOLLGATE_MASTER_KEY`, else `file`, else a key generated (once) at `generated`.
    pub fn load(
        env: Option<String>,
        file: Option<&Path>,
        generated: &Path,
    ) -> Result<Self, String> {
        if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
            return Self::parse(&v).map_err(|e| format!("TOLLGATE_MASTER_KEY: {e}"));
        }
        let path = file.unwrap_or(generated);
        if file.is_none() {
            // Said at every start: whoever copies the data directory gets the key with it.
            tracing::warn!(
                path = %path.display(),
                "using the master key generated beside the store: a copy of the data directory opens every sealed secret; for production move it out (store.master_key_file or TOLLGATE_MASTER_KEY)"
            );
        }
        if file.is_none() && !path.exists() {
            crate::token::jwt::write_new_private(
                path,
                &hex::encode(crate::token::opaque::random_bytes::<32>()),
            )
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A keyed fingerprint of `parts` (16 bytes, hex): the same on every replica and after a
    /// restart, useless to whoever copies the store without the master key.
    pub fn fingerprint(&self, parts: &[&[u8]]) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.1);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        hex::encode(&ctx.sign().as_ref()[..16])
    }

    /// nonce ‖ ciphertext ‖ tag, bound to `context` (space and name) so sealed values cannot be swapped.
    pub fn seal(&self, plain: &str, context: &[u8]) -> Vec<u8> {
        let nonce_bytes = crate::token::opaque::random_bytes::<NONCE_LEN>();
        let mut buf = plain.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut buf,
            )
            .expect("AES-GCM sealing of a short secret");
        let mut out = nonce_bytes.to_vec();
        out.extend(buf);
        out
    }

    /// Opens what [`seal`](Self::seal) made with the same context.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Option<String> {
        let (nonce, ct) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ct.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// One stored credential.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Id, unique across spaces.
    pub id: u64,
    /// Space.
    pub space: u64,
    /// Name, unique within the space.
    pub name: String,
    /// Description.
    pub desc: Option<String>,
    /// Always `BK_APP`.
    pub kind: String,
    /// `content.bk_app_code`.
    pub app_code: String,
    sealed_secret: Vec<u8>,
}

impl Credential {
    /// As answered: the secret masked.
    pub fn display(&self) -> Value {
        json!({
            "id": self.id, "space_id": self.space, "name": self.name, "desc": self.desc, "type": self.kind,
            "content": { "bk_app_code": self.app_code, "bk_app_secret": MASK },
        })
    }
}

/// The fields of a create or update.
#[derive(Debug, Clone)]
pub struct CredentialFields {
    /// Name.
    pub name: String,
    /// Description.
    pub desc: Option<String>,
    /// `content.bk_app_code`.
    pub app_code: String,
    /// `content.bk_app_secret`, in clear until sealed here.
    pub app_secret: String,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// The name is taken in that space.
    Duplicate,
    /// No such credential in that space.
    NotFound,
}

/// Stored credentials.
#[derive(Debug)]
pub struct Credentials {
    key: std::sync::Arc<MasterKey>,
    by_id: DashMap<u64, Credential>,
    names: DashMap<(u64, String), u64>,
    next_id: AtomicU64,
}

fn context(space: u64, id: u64) -> Vec<u8> {
    format!("bkflow-credential:{space}:{id}").into_bytes()
}

impl Credentials {
    /// An empty set sealed under `key`.
    pub fn new(key: std::sync::Arc<MasterKey>) -> Self {
        Credentials {
            key,
            by_id: DashMap::new(),
            names: DashMap::new(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Loads stored rows.
    pub fn restore(&self, rows: Vec<CredRow>) {
        for r in rows {
            self.next_id.fetch_max(r.id + 1, Ordering::Relaxed);
            self.names.insert((r.space, r.name.clone()), r.id);
            let c = Credential {
                id: r.id,
                space: r.space,
                name: r.name,
                desc: r.desc,
                kind: r.kind,
                app_code: r.app_code,
                sealed_secret: r.sealed,
            };
            self.by_id.insert(c.id, c);
        }
    }

    /// Inserts or replaces one row (a write seen from another replica).
    pub fn upsert(&self, r: CredRow) {
        if let Some((_, old)) = self.by_id.remove(&r.id) {
            self.names.remove(&(old.space, old.name));
        }
        self.restore(vec![r]);
    }

    /// Deletes by id alone (a delete seen from another replica).
    pub fn delete_id(&self, id: u64) {
        if let Some((_, c)) = self.by_id.remove(&id) {
            self.names.remove(&(c.space, c.name));
        }
    }

    /// The stored form (secret still sealed).
    pub fn row(&self, c: &Credential) -> CredRow {
        CredRow {
            id: c.id,
            space: c.space,
            name: c.name.clone(),
            desc: c.desc.clone(),
            kind: c.kind.clone(),
            app_code: c.app_code.clone(),
            sealed: c.sealed_secret.clone(),
        }
    }

    /// Every row, in the stored form (for a snapshot).
    pub fn dump(&self) -> Vec<CredRow> {
        self.by_id.iter().map(|c| self.row(c.value())).collect()
    }

    /// Drops every credential (a snapshot replacing the state follows); ids already handed
    /// out are not handed out again.
    pub fn clear(&self) {
        self.by_id.clear();
        self.names.clear();
    }

    /// The highest id in use.
    pub fn max_id(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Creates one; the name must be free in the space. `id` is one the shared store allocated
    /// (replicas never pick the same), or `None` for the next local one.
    pub fn create(
        &self,
        space: u64,
        f: CredentialFields,
        id: Option<u64>,
    ) -> Result<Credential, CredentialError> {
        let id = match id {
            Some(id) => {
                self.next_id.fetch_max(id + 1, Ordering::Relaxed);
                id
            }
            None => self.next_id.fetch_add(1, Ordering::Relaxed),
        };
        match self.names.entry((space, f.name.clone())) {
            dashmap::mapref::entry::Entry::Occupied(_) => Err(CredentialError::Duplicate),
            dashmap::mapref::entry::Entry::Vacant(slot) => {
                let c = Credential {
                    id,
                    space,
                    sealed_secret: self.key.seal(&f.app_secret, &context(space, id)),
                    name: f.name,
                    desc: f.desc,
                    kind: "BK_APP".into(),
                    app_code: f.app_code,
                };
                self.by_id.insert(id, c.clone());
                slot.insert(id);
                Ok(c)
            }
        }
    }

    /// Replaces the fields of credential `id` of `space`.
    pub fn update(
        &self,
        space: u64,
        id: u64,
        f: CredentialFields,
    ) -> Result<Credential, CredentialError> {
        let mut c = self
            .by_id
            .get_mut(&id)
            .filter(|c| c.space == space)
            .ok_or(CredentialError::NotFound)?;
        if f.name != c.name {
            match self.names.entry((space, f.name.clone())) {
                dashmap::mapref::entry::Entry::Occupied(_) => {
                    return Err(CredentialError::Duplicate)
                }
                dashmap::mapref::entry::Entry::Vacant(slot) => {
                    slot.insert(id);
                }
            }
            self.names.remove(&(space, c.name.clone()));
        }
        c.sealed_secret = self.key.seal(&f.app_secret, &context(space, id));
        c.name = f.name;
        c.desc = f.desc;
        c.app_code = f.app_code;
        Ok(c.clone())
    }

    /// One credential of a space.
    pub fn get(&self, space: u64, id: u64) -> Option<Credential> {
        self.by_id
            .get(&id)
            .filter(|c| c.space == space)
            .map(|c| c.clone())
    }

    /// Every credential of a space, by id.
    pub fn list(&self, space: u64) -> Vec<Credential> {
        let mut v: Vec<Credential> = self
            .by_id
            .iter()
            .filter(|c| c.space == space)
            .map(|c| c.clone())
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Deletes one; false when there was none.
    pub fn delete(&self, space: u64, id: u64) -> bool {
        match self.by_id.remove_if(&id, |_, c| c.space == space) {
            Some((_, c)) => {
                self.names.remove(&(space, c.name));
                true
            }
            None => false,
        }
    }

    /// The secret in clear, for the upstream only.
    pub fn secret(&self, c: &Credential) -> Option<String> {
        self.key.open(&c.sealed_secret, &context(c.space, c.id))
    }

    /// `X-Bkapi-Authorization` for the named credential: `{"bk_app_code", "bk_app_secret"}`.
    pub fn header_for(&self, space: u64, name: &str) -> Option<http::HeaderValue> {
        let id = *self.names.get(&(space, name.to_owned()))?;
        let c = self.get(space, id)?;
        let secret = self.secret(&c)?;
        let json = json!({ "bk_app_code": c.app_code, "bk_app_secret": secret }).to_string();
        let mut v = http::HeaderValue::from_str(&json).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
