//! The JWT keys in force: built from `signing.key_file` or the store's key ring, swapped on
//! reload, rotation (here or on another replica) and as retired keys run out of time.

use crate::config::Signing;
use crate::reject::Reject;
use crate::shared::Shared;
use crate::store::keys::signing_key_name_of;
use crate::store::op::Op;
use crate::token::jwt::JwtKeys;
use std::sync::Arc;

impl Shared {
    /// The JWT keys in force.
    pub fn keys(&self) -> Arc<JwtKeys> {
        self.keys
            .load_full()
            .expect("keys are installed before the gateway serves")
    }

    /// Keys for `signing`: its key file, or the store's ring.
    pub fn build_keys(
        &self,
        signing: &Signing,
        store_path: &std::path::Path,
    ) -> Result<JwtKeys, String> {
        if signing.key_file.is_some() {
            return JwtKeys::load_or_generate(signing, store_path).map_err(|e| e.to_string());
        }
        let ring = self.ring.lock().expect("ring lock");
        match ring.as_ref() {
            Some(r) if signing_key_name_of(signing) == self.ring_name => {
                JwtKeys::from_ring(signing, r, self.clock.now_secs())
            }
            _ => Err("a new signing algorithm, or dropping signing.key_file, takes effect on restart (the store's key is made at start)".into()),
        }
    }

    /// Puts `keys` (built for `signing`) in force.
    pub fn install_keys(&self, signing: &Signing, keys: Arc<JwtKeys>) {
        *self.signing.lock().expect("signing lock") = Some(signing.clone());
        self.keys.store(Some(keys));
    }

    /// Rebuilds the keys from the ring (after a rotation here or on another replica, and
    /// periodically, so retired keys leave the JWKS when their time is over).
    pub fn rebuild_keys(&self) {
        let Some(signing) = self.signing.lock().expect("signing lock").clone() else {
            return;
        };
        if signing.key_file.is_some() {
            return;
        }
        let ring = self.ring.lock().expect("ring lock").clone();
        if let Some(ring) = ring {
            match JwtKeys::from_ring(&signing, &ring, self.clock.now_secs()) {
                Ok(keys) => self.keys.store(Some(Arc::new(keys))),
                Err(e) => tracing::error!(error = %e, "the store's signing keys do not load"),
            }
        }
    }

    /// Makes a new active signing key; the previous one keeps verifying for `keep_secs`
    /// (every token it signed has expired by then). Committed (and so published to every
    /// replica) before it takes effect here; returns the new `kid`.
    pub async fn rotate_keys(&self, keep_secs: u64) -> Result<String, Reject> {
        let signing = self
            .signing
            .lock()
            .expect("signing lock")
            .clone()
            .ok_or(Reject::StoreUnavailable)?;
        if signing.key_file.is_some() {
            return Err(Reject::BadRequest(
                "signing.key_file names the key: rotate the file and reload".into(),
            ));
        }
        let _one_at_a_time = self.rotating.lock().await;
        let now = self.clock.now_secs();
        let full = self
            .ring
            .lock()
            .expect("ring lock")
            .as_ref()
            .and_then(|r| r.full_until(now));
        if let Some(until) = full {
            // Dropping a retired key would log out everyone it signed for.
            return Err(Reject::RateLimited(until.saturating_sub(now).max(1)));
        }
        // RSA generation takes tens of milliseconds: off the async workers that serve requests.
        let alg = signing.alg;
        let pem = tokio::task::spawn_blocking(move || crate::token::jwt::generate(alg))
            .await
            .map_err(|_| Reject::StoreUnavailable)?
            .map_err(|_| Reject::StoreUnavailable)?;
        let mut ring = self
            .ring
            .lock()
            .expect("ring lock")
            .clone()
            .ok_or(Reject::StoreUnavailable)?;
        ring.rotate(pem, now, now + keep_secs);
        let sealed = self
            .master
            .seal(&ring.to_stored(), self.ring_name.as_bytes());
        self.store
            .commit(vec![Op::Meta {
                key: self.ring_name.clone(),
                value: sealed,
            }])
            .await?;
        *self.ring.lock().expect("ring lock") = Some(ring);
        self.rebuild_keys();
        tracing::info!(kid = self.keys().kid(), "signing key rotated");
        Ok(self.keys().kid().to_owned())
    }
}
