//! The keys the store keeps, sealed under the master key: the server keys tokens are derived
//! with, and the JWT signing key (unless `signing.key_file` names one).

use crate::config::{Config, ConfigError};
use crate::store::credentials::MasterKey;
use crate::token::opaque;
use crate::token::ring::KeyRing;
use std::sync::Arc;

/// Names of the server keys kept (sealed) in the store.
pub(crate) const SERVER_KEYS: [&str; 2] = ["bkflow_key", "feishu_key"];

pub(crate) fn master_key(config: &Config) -> Result<Arc<MasterKey>, ConfigError> {
    let dir = config
        .store
        .path
        .parent()
        .unwrap_or(std::path::Path::new("."));
    let env = crate::config::master_key_env();
    MasterKey::load(
        env,
        config.store.master_key_file.as_deref(),
        &dir.join("master.key"),
    )
    .map(Arc::new)
    .map_err(|e| ConfigError::single(&config.file, "store.master_key_file", e))
}

/// What `name` seals, opened with the master key.
fn unseal(
    config: &Config,
    master: &MasterKey,
    name: &str,
    sealed: Option<&Vec<u8>>,
) -> Result<String, ConfigError> {
    sealed
        .and_then(|s| master.open(s, name.as_bytes()))
        .ok_or_else(|| unopened(config, name))
}

/// A stored key the master key does not open: the wrong master key, most likely.
fn unopened(config: &Config, name: &str) -> ConfigError {
    let msg = format!(
        "cannot open {name:?} kept in the store: is this the master key the store was made with?"
    );
    ConfigError::single(&config.file, "store.master_key_file", msg)
}

pub(crate) fn new_server_key(master: &MasterKey, name: &str) -> Vec<u8> {
    master.seal(&hex::encode(opaque::random_bytes::<32>()), name.as_bytes())
}

pub(crate) fn open_server_key(
    config: &Config,
    master: &MasterKey,
    name: &str,
    sealed: Option<&Vec<u8>>,
) -> Result<Vec<u8>, ConfigError> {
    unseal(config, master, name, sealed)
        .and_then(|h| hex::decode(h).map_err(|_| unopened(config, name)))
}

/// The store's name for the signing key of the configured algorithm.
pub(crate) fn signing_key_name(config: &Config) -> String {
    signing_key_name_of(&config.signing)
}

/// The store's name for the signing key ring of `signing`'s algorithm.
pub(crate) fn signing_key_name_of(signing: &crate::config::Signing) -> String {
    format!("signing_key_{:?}", signing.alg).to_ascii_lowercase()
}

/// Material for a new store-kept signing key: the key an earlier version generated beside the
/// store when there is one (so its tokens stay valid), else a fresh one.
pub(crate) fn new_signing_key(
    config: &Config,
    master: &MasterKey,
    name: &str,
) -> Result<Vec<u8>, String> {
    let old = crate::token::jwt::generated_key_path(&config.signing, &config.store.path);
    let pem = match std::fs::read_to_string(&old) {
        Ok(text) if config.store.redis.is_none() => text,
        _ => crate::token::jwt::generate(config.signing.alg)?,
    };
    Ok(master.seal(&pem, name.as_bytes()))
}

/// The signing key ring kept in the store (none when `signing.key_file` names a key).
pub(crate) fn open_signing_key(
    config: &Config,
    master: &MasterKey,
    sealed: Option<&Vec<u8>>,
) -> Result<Option<KeyRing>, ConfigError> {
    let name = &signing_key_name(config);
    if config.signing.key_file.is_some() {
        return Ok(None);
    }
    let text = unseal(config, master, name, sealed)?;
    Ok(Some(KeyRing::from_stored(&text, crate::token::now_secs())))
}
