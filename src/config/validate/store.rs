//! `store:` and `signing:`.

use super::Checker;
use crate::config::raw::RawConfig;
use crate::config::*;
use std::path::Path;
use std::time::Duration;

/// `store:` (with the warning about a master key kept beside the data).
pub(super) fn check_store(raw: &RawConfig, c: &mut Checker) -> StoreConfig {
    let redis_url = match raw.store.kind.as_deref() {
        None | Some("embedded") => None,
        Some("redis") => {
            let url = raw.store.url.clone();
            match &url {
                None => c.fail(
                    "store.url",
                    "store.kind redis needs url: redis://host:port/db",
                ),
                Some(u) if redis::parse_redis_url(u).is_none() => c.fail(
                    "store.url",
                    format!(
                        "{:?} is not a redis:// URL",
                        crate::store::redis::redacted(u)
                    ),
                ),
                Some(_) => {}
            }
            // Replicas must share the keys: nothing may be generated per process.
            if raw.store.master_key_file.is_none()
                && crate::store::credentials::master_key_env().is_none()
            {
                c.fail("store.master_key_file", "store.kind redis needs a master key shared by the replicas (file or TOLLGATE_MASTER_KEY)");
            }
            url
        }
        Some(other) => {
            c.fail("store.kind", format!("{other:?} is not embedded or redis"));
            None
        }
    };
    let store = StoreConfig {
        path: c.path(
            raw.store
                .path
                .as_deref()
                .unwrap_or(Path::new("data/tollgate.db")),
        ),
        hot_tokens: raw.store.hot_tokens.unwrap_or(100_000),
        master_key_file: raw.store.master_key_file.as_ref().map(|p| c.path(p)),
        redis_url,
        compact_every: raw
            .store
            .compact_every
            .map_or(Duration::from_secs(3600), |d| d.0),
    };
    if store.compact_every < Duration::from_secs(1) {
        c.fail("store.compact_every", "at least 1s");
    }
    if let Some(p) = &store.master_key_file {
        c.readable("store.master_key_file", p);
    }
    if crate::store::credentials::master_key_env().is_none() {
        let data_dir = store.path.parent();
        let key = store
            .master_key_file
            .clone()
            .unwrap_or_else(|| data_dir.unwrap_or(Path::new(".")).join("master.key"));
        if store.redis_url.is_none() && key.parent() == data_dir {
            c.warnings.push(format!(
                "store.master_key_file: the master key {} sits beside the store, so a copy of the data directory opens every sealed secret; for production keep it elsewhere (store.master_key_file or TOLLGATE_MASTER_KEY)",
                key.display()
            ));
        }
    }
    if store.hot_tokens == 0 {
        c.fail("store.hot_tokens", "must be at least 1");
    }
    store
}

/// `signing:`.
pub(super) fn check_signing(raw: &RawConfig, c: &mut Checker) -> Signing {
    let alg = match raw.signing.algorithm.as_deref().unwrap_or("RS256") {
        "RS256" => SigningAlg::RS256,
        "ES256" => SigningAlg::ES256,
        "EdDSA" => SigningAlg::EdDSA,
        "HS256" => SigningAlg::HS256,
        other => {
            c.fail(
                "signing.algorithm",
                format!("{other:?} is not RS256, ES256, EdDSA or HS256"),
            );
            SigningAlg::RS256
        }
    };
    let key_file = raw.signing.key_file.as_ref().map(|p| c.path(p));
    if let Some(p) = &key_file {
        c.readable("signing.key_file", p);
    }
    let signing = Signing {
        alg,
        key_file,
        issuer: raw
            .signing
            .issuer
            .clone()
            .unwrap_or_else(|| "tollgate".to_owned()),
        leeway: raw
            .signing
            .leeway
            .map_or(Duration::from_secs(crate::token::jwt::LEEWAY_SECS), |d| d.0),
        rotate_every: raw.signing.rotate_every.map(|d| d.0),
    };
    if signing
        .rotate_every
        .is_some_and(|d| d < Duration::from_secs(60))
    {
        c.fail("signing.rotate_every", "at least 1m");
    }
    if signing.rotate_every.is_some() && signing.key_file.is_some() {
        c.fail(
            "signing.rotate_every",
            "signing.key_file names the key: rotation needs the store-kept key",
        );
    }
    if signing.leeway > Duration::from_secs(300) {
        c.fail(
            "signing.leeway",
            "more than 5m of clock skew would keep expired tokens alive",
        );
    }
    signing
}
