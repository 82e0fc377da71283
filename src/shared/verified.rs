//! Secrets already verified, remembered as keyed MACs, so a client asking again does not pay
//! the argon2 cost each time; and the bound on argon2 runs at once.

use crate::config::{App, AppSecret};
use crate::token::opaque;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;
use aws_lc_rs::hmac;
use dashmap::DashMap;
use tokio::sync::Semaphore;

/// Secrets already verified, as MACs under a per-process key.
#[derive(Debug)]
pub struct VerifiedSecrets {
    key: hmac::Key,
    /// The MAC of the secret that verified last, per app id.
    pub(crate) ok: DashMap<Box<str>, [u8; 32]>,
    /// Argon2 runs allowed at once.
    pub(crate) slots: Semaphore,
    pub(crate) argon2_runs: std::sync::atomic::AtomicU64,
}

impl Default for VerifiedSecrets {
    fn default() -> Self {
        VerifiedSecrets {
            key: hmac::Key::new(hmac::HMAC_SHA256, &opaque::random_bytes::<32>()),
            ok: DashMap::new(),
            slots: Semaphore::new(4),
            argon2_runs: Default::default(),
        }
    }
}

impl VerifiedSecrets {
    /// How many full argon2 verifications ran (repeat requests with a known-good secret run none).
    pub fn argon2_runs(&self) -> u64 {
        self.argon2_runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// MAC of (app, stored secret, presented secret) under the per-process key.
    pub(crate) fn mac(&self, app: &App, stored: &str, presented: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [
            app.id.as_bytes(),
            b"\0",
            stored.as_bytes(),
            b"\0",
            presented.as_bytes(),
        ] {
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

/// A hash of a random secret with the parameters of the config's first argon2 secret (the
/// defaults when it has none), verified against for unknown app ids; `None` when no app has
/// an argon2 secret (then every check is a fast constant-time compare anyway).
pub fn dummy_secret(apps: &[App]) -> Option<String> {
    let phc = apps.iter().find_map(|a| match &a.secret {
        AppSecret::Argon2(p) => Some(p.as_str()),
        AppSecret::Plain(_) => None,
    })?;
    let params = PasswordHash::new(phc)
        .ok()
        .and_then(|h| argon2::Params::try_from(&h).ok())
        .unwrap_or_default();
    let salt =
        SaltString::encode_b64(&opaque::random_bytes::<16>()).expect("16 bytes is a valid salt");
    let random = opaque::random_hex128();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(random.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}
