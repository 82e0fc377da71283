//! `store:` and `signing:`.

use super::Checker;
use crate::config::raw::RawConfig;
use crate::config::*;
use std::path::Path;
use std::time::Duration;

/// `store:` (with the warning about a master key kept beside the data).
pub(super) fn check_store(raw: &RawConfig, c: &mut Checker) -> StoreConfig {
    let redis = match raw.store.kind.as_deref() {
        None | Some("embedded") => None,
        Some("redis") => Some(check_redis(raw, c)),
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
        redis,
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
    if crate::config::master_key_env().is_none() {
        let data_dir = store.path.parent();
        let key = store
            .master_key_file
            .clone()
            .unwrap_or_else(|| data_dir.unwrap_or(Path::new(".")).join("master.key"));
        if store.redis.is_none() && key.parent() == data_dir {
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

/// `store:` for `kind: redis`: where (URL or sentinels), TLS files, password file, `WAIT`.
fn check_redis(raw: &RawConfig, c: &mut Checker) -> RedisSettings {
    let s = &raw.store;
    let url = s.url.clone();
    match &url {
        None if s.sentinels.is_empty() => c.fail(
            "store.url",
            "store.kind redis needs url: redis://host:port/db (or sentinels)",
        ),
        Some(u) if redis::parse_redis_url(u).is_none() => c.fail(
            "store.url",
            format!(
                "{:?} is not a redis:// or rediss:// URL",
                crate::config::redacted_url(u)
            ),
        ),
        _ => {}
    }
    let scheme_tls = url.as_deref().is_some_and(|u| u.starts_with("rediss://"));
    let tls = s.tls.as_ref().map(|t| {
        let client = match (&t.cert, &t.key) {
            (Some(cert), Some(key)) => Some((c.path(cert), c.path(key))),
            (None, None) => None,
            _ => {
                c.fail(
                    "store.tls",
                    "cert and key go together (a client certificate and its key)",
                );
                None
            }
        };
        RedisTls {
            ca_file: t.ca_file.as_ref().map(|p| c.path(p)),
            client,
        }
    });
    if let Some(t) = &tls {
        if !scheme_tls {
            c.fail(
                "store.tls",
                "TLS files are given but store.url is not rediss://",
            );
        }
        if let Some(p) = &t.ca_file {
            c.readable("store.tls.ca_file", p);
        }
        if let Some((cert, key)) = &t.client {
            c.readable("store.tls.cert", cert);
            c.readable("store.tls.key", key);
        }
    }
    let password_file = s.password_file.as_ref().map(|p| c.path(p));
    if let Some(p) = &password_file {
        c.readable("store.password_file", p);
        if url
            .as_deref()
            .is_some_and(|u| redis::parse_redis_url(u).is_some_and(|u| u.password().is_some()))
        {
            c.fail(
                "store.password_file",
                "the URL carries a password too: keep it in one place",
            );
        }
    }
    match (&s.sentinel_master, s.sentinels.is_empty()) {
        (None, false) => c.fail("store.sentinel_master", "sentinels need the primary's name"),
        (Some(_), true) => c.fail(
            "store.sentinels",
            "sentinel_master needs sentinels: [host:port, ...]",
        ),
        _ => {}
    }
    for (i, a) in s.sentinels.iter().enumerate() {
        let ok = a
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            c.fail(
                format!("store.sentinels[{i}]"),
                format!("{a:?} is not host:port"),
            );
        }
    }
    // Replicas must share the keys: nothing may be generated per process.
    if s.master_key_file.is_none() && crate::config::master_key_env().is_none() {
        c.fail("store.master_key_file", "store.kind redis needs a master key shared by the replicas (file or TOLLGATE_MASTER_KEY)");
    }
    RedisSettings {
        url,
        tls,
        password_file,
        sentinels: s.sentinels.clone(),
        sentinel_master: s.sentinel_master.clone(),
        wait_replicas: s.wait_replicas.unwrap_or(0),
    }
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
            .map_or(Duration::from_secs(crate::config::JWT_LEEWAY_SECS), |d| d.0),
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

#[cfg(test)]
mod tests {
    /// The messages `store:` (kind redis, with `extra` keys) is refused with.
    fn refused(extra: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        std::fs::write(&key, "7f".repeat(32)).unwrap();
        let yaml = format!(
            "listen: {{ address: \"127.0.0.1:0\" }}\nstore: {{ kind: redis, master_key_file: {}, {extra} }}\n",
            key.display()
        );
        match crate::config::load_str(&yaml, std::path::Path::new("t.yaml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn redis_settings_that_cannot_work_are_refused_with_their_key() {
        let pem = |n: &str| format!("/nonexistent/{n}.pem");
        let e = refused(&format!(
            "url: \"redis://h:6379/0\", tls: {{ ca_file: {} }}",
            pem("ca")
        ));
        assert!(
            e.contains("store.tls") && e.contains("not rediss://"),
            "{e}"
        );
        let e = refused(&format!(
            "url: \"rediss://h:6380/0\", tls: {{ cert: {} }}",
            pem("c")
        ));
        assert!(e.contains("cert and key go together"), "{e}");
        let e = refused("sentinels: [\"10.0.0.1:26379\"]");
        assert!(e.contains("store.sentinel_master"), "{e}");
        let e = refused("sentinel_master: m, url: \"redis://h:6379/0\"");
        assert!(e.contains("store.sentinels"), "{e}");
        let e = refused("sentinels: [\"nohost\"], sentinel_master: m");
        assert!(e.contains("store.sentinels[0]"), "{e}");
        let e = refused("url: \"redis://u:pw@h:6379/0\", password_file: /etc/hostname");
        assert!(e.contains("password too"), "{e}");
        assert!(!e.contains("pw@"), "no password in the message: {e}");
        let e = refused("");
        assert!(e.contains("store.url"), "{e}");
        assert_eq!(
            refused("sentinels: [\"10.0.0.1:26379\"], sentinel_master: m, wait_replicas: 1"),
            "",
            "sentinels without a url are enough"
        );
    }
}
