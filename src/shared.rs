//! Process-wide state that survives reloads: metrics, the hot map, every dialect's records,
//! and the store behind them (embedded SQLite, or Redis shared by replicas).

mod apply;
pub mod verified;
use crate::config::{Config, ConfigError, Signing};
use crate::metrics::Metrics;
use crate::shared::verified::VerifiedSecrets;
use crate::store::bkflow::BkflowTokens;
use crate::store::credentials::{Credentials, MasterKey};
use crate::store::feishu::FeishuTokens;
use crate::store::hot::{HotTokens, NegativeTokens};
use crate::store::keys::{
    master_key, new_server_key, new_signing_key, open_server_key, open_signing_key,
    signing_key_name, SERVER_KEYS,
};
use crate::store::op::Op;
use crate::store::redis::RedisStore;
use crate::store::refresh::RefreshTokens;
use crate::store::revoked::Revocations;
use crate::store::sqlite::Db;
use crate::store::{Backend, Change, Store, StoreError};
use crate::token::jwt::JwtKeys;
use crate::token::now_millis;
use crate::token::ring::KeyRing;
use std::sync::Arc;
use std::time::Duration;

/// Process-wide state that survives reloads.
#[derive(Debug)]
pub struct Shared {
    /// Metrics registry and handles.
    pub metrics: Metrics,
    /// Verified tokens.
    pub hot: HotTokens,
    /// Tokens recently found bad.
    pub bad: NegativeTokens,
    /// Revoked token ids.
    pub revoked: Revocations,
    /// Secrets already verified.
    pub secrets: VerifiedSecrets,
    /// Live refresh tokens (hosecloud).
    pub refresh: RefreshTokens,
    /// Live bkflow tokens.
    pub bkflow: BkflowTokens,
    /// Feishu tickets and tokens.
    pub feishu: FeishuTokens,
    /// Stored bkflow credentials.
    pub credentials: Credentials,
    /// The key sealing stored secrets.
    pub master: Arc<MasterKey>,
    /// The store.
    pub store: Store,
    /// External issuers' keys and answers, kept across reloads.
    pub issuers: crate::idp::Registry,
    /// Rate limits of the token endpoints.
    pub limits: crate::limit::TokenLimits,
    /// The gateway's clock (every expiry is judged by it).
    pub clock: crate::token::Clock,
    /// The JWT signing key ring kept in the store (none when `signing.key_file` names a key).
    pub ring: std::sync::Mutex<Option<KeyRing>>,
    /// The store's name for the ring.
    pub(crate) ring_name: String,
    /// The signing settings the keys were last built with.
    pub(crate) signing: std::sync::Mutex<Option<Signing>>,
    /// The JWT keys in force: swapped when the config or the ring changes (`signing.rs`).
    pub(crate) keys: arc_swap::ArcSwapOption<JwtKeys>,
    /// Held while a rotation makes and commits a key, so two never overwrite each other.
    pub(crate) rotating: tokio::sync::Mutex<()>,
    /// Set once the state read at start is applied: from then on an entry older than what is
    /// held is a replay (at start, the stream's history is older than the stored ring).
    following: std::sync::atomic::AtomicBool,
}

/// What opening a store gave back, from which `Shared` is assembled.
struct Opened<'a> {
    /// The key that seals stored secrets.
    master: Arc<MasterKey>,
    /// The server keys bkflow and feishu tokens are derived under.
    token_keys: (&'a [u8], &'a [u8]),
    /// The signing-key ring, when the store keeps one.
    ring: Option<KeyRing>,
    /// The store itself.
    backend: Backend,
    /// The live records, in order.
    ops: &'a [Op],
}

impl Shared {
    /// State for `config` with the embedded store (opens the file, loads what is live).
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let master = master_key(config)?;
        let signing_name = signing_key_name(config);
        let mut signing_error = None;
        let (db, snap) = Db::open(&config.store.path, now_millis(), |meta| {
            let mut init: Vec<(String, Vec<u8>)> = SERVER_KEYS
                .iter()
                .filter(|k| !meta.contains_key(**k))
                .map(|k| (k.to_string(), new_server_key(&master, k)))
                .collect();
            if config.signing.key_file.is_none() && !meta.contains_key(&signing_name) {
                match new_signing_key(config, &master, &signing_name) {
                    Ok(sealed) => init.push((signing_name.clone(), sealed)),
                    Err(e) => signing_error = Some(e),
                }
            }
            init
        })
        .map_err(|e| ConfigError::single(&config.file, "store.path", e))?;
        if let Some(e) = signing_error {
            return Err(ConfigError::single(&config.file, "signing.algorithm", e));
        }
        let signing = open_signing_key(config, &master, snap.meta.get(&signing_name))?;
        let bk = open_server_key(config, &master, "bkflow_key", snap.meta.get("bkflow_key"))?;
        let fs = open_server_key(config, &master, "feishu_key", snap.meta.get("feishu_key"))?;
        let mut ops: Vec<Op> = Vec::new();
        ops.extend(snap.bk.into_iter().map(Op::Bk));
        if !snap.bk_revoked.is_empty() {
            ops.push(Op::BkRevoked {
                ids: snap.bk_revoked,
                at_ms: 0,
            });
        }
        ops.extend(snap.fs.into_iter().map(Op::Fs));
        ops.extend(snap.tickets.into_iter().map(Op::Ticket));
        ops.extend(
            snap.refresh
                .into_iter()
                .map(|(hash, record)| Op::Refresh { hash, record }),
        );
        ops.extend(
            snap.revoked
                .into_iter()
                .map(|(jti, until)| Op::Revoked { jti, until }),
        );
        ops.extend(snap.credentials.into_iter().map(Op::Cred));
        Ok(Self::assemble(
            config,
            Opened {
                master,
                token_keys: (&bk, &fs),
                ring: signing,
                backend: Backend::Embedded(db),
                ops: &ops,
            },
        ))
    }

    /// State for `config` with whichever store it names (Redis needs to connect first).
    pub async fn open(config: &Config) -> Result<Self, ConfigError> {
        let Some(settings) = &config.store.redis else {
            return Self::new(config);
        };
        let master = master_key(config)?;
        let key = if settings.sentinels.is_empty() {
            "store.url"
        } else {
            "store.sentinels"
        };
        let err = |e: String| ConfigError::single(&config.file, key, e);
        let redis = RedisStore::connect(settings, Arc::clone(&master))
            .await
            .map_err(err)?;
        let mut keys = Vec::new();
        for name in SERVER_KEYS {
            let sealed = redis
                .meta(name, || new_server_key(&master, name))
                .await
                .map_err(err)?;
            keys.push(open_server_key(config, &master, name, Some(&sealed))?);
        }
        // The first replica to start makes the key; SET NX means every other one, even one
        // starting at the same instant, reads that same key.
        let signing_name = signing_key_name(config);
        let signing = if config.signing.key_file.is_none() {
            let fresh = new_signing_key(config, &master, &signing_name)
                .map_err(|e| ConfigError::single(&config.file, "signing.algorithm", e))?;
            let sealed = redis.meta(&signing_name, || fresh).await.map_err(err)?;
            open_signing_key(config, &master, Some(&sealed))?
        } else {
            None
        };
        // The snapshot of live records first, then only the log after it, in sequence:
        // start-up reads what is live, not the whole history, and refuses a log with a hole.
        let mut ops = Vec::new();
        redis
            .load(&mut |change: Change<'_>| match change {
                Change::Op(op) => ops.push(op.clone()),
                // A newer snapshot replaces what was read (revocations stay).
                Change::StartOver => ops.retain(Op::only_restricts),
            })
            .await
            .map_err(err)?;
        let shared = Self::assemble(
            config,
            Opened {
                master,
                token_keys: (&keys[0], &keys[1]),
                ring: signing,
                backend: Backend::Redis(Box::new(redis)),
                ops: &ops,
            },
        );
        shared.count_rejected();
        Ok(shared)
    }

    fn assemble(config: &Config, opened: Opened<'_>) -> Self {
        let Opened {
            master,
            token_keys: (bk, fs),
            ring,
            backend,
            ops,
        } = opened;
        let shared = Shared {
            metrics: Metrics::new(),
            hot: HotTokens::new(config.store.hot_tokens),
            bad: NegativeTokens::new(config.store.hot_tokens / 10 + 1, 2000),
            revoked: Revocations::default(),
            secrets: VerifiedSecrets::default(),
            refresh: RefreshTokens::default(),
            bkflow: BkflowTokens::new(bk),
            feishu: FeishuTokens::new(fs),
            credentials: Credentials::new(Arc::clone(&master)),
            master,
            store: Store::new(backend),
            issuers: Default::default(),
            limits: Default::default(),
            clock: Default::default(),
            ring: std::sync::Mutex::new(ring),
            ring_name: signing_key_name(config),
            signing: std::sync::Mutex::new(None),
            keys: arc_swap::ArcSwapOption::empty(),
            rotating: tokio::sync::Mutex::new(()),
            following: std::sync::atomic::AtomicBool::new(false),
        };
        for op in ops {
            shared.apply(op);
        }
        shared
            .following
            .store(true, std::sync::atomic::Ordering::Release);
        shared
    }

    /// Expires now every still-valid bkflow token of `space` that `filter` matches, committed
    /// before it returns, hot copies refused at once; returns how many there were.
    pub async fn revoke_bkflow(
        &self,
        space: u64,
        filter: &crate::store::bkflow::RevokeFilter,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        // Another replica may hold tokens of the space a moment old: see them first.
        self.catch_up().await?;
        let revoked = self.bkflow.revoke(space, filter, now_ms);
        let ids = revoked.iter().map(|(id, _)| *id).collect();
        self.store
            .commit(vec![Op::BkRevoked {
                ids,
                at_ms: now_ms.saturating_sub(1),
            }])
            .await?;
        for (_, hash) in &revoked {
            self.hot.forget_stored(hash, true);
        }
        Ok(revoked.len())
    }

    /// Applies what other replicas wrote since the last look (nothing to do when embedded).
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        let result = self
            .store
            .catch_up(|change| match change {
                Change::Op(op) => self.apply(op),
                Change::StartOver => self.start_over(),
            })
            .await;
        self.count_rejected();
        result
    }

    /// Brings `tollgate_store_rejected_entries_total` up to the store's own count.
    pub fn count_rejected(&self) {
        let seen = self.store.rejected_entries();
        let counted = self.metrics.store_rejected.get();
        if seen > counted {
            self.metrics.store_rejected.inc_by(seen - counted);
        }
    }
}

/// Follows the shared store (every 100 ms) until `stop`, compacting it every `compact_every`
/// (one replica per period); nothing to follow when embedded. The stream is trimmed only
/// behind a snapshot: a trim no snapshot covers would be a gap every new replica refuses.
pub async fn follow(
    shared: Arc<Shared>,
    compact_every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if !shared.store.is_shared() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_compact = std::time::Instant::now();
    let mut last_ask = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let _ = shared.catch_up().await;
        shared
            .metrics
            .replication_lag
            .set(shared.store.lag_seconds());
        // A replica stuck at a gap (entries lost or deleted) asks for a snapshot covering it.
        if last_ask.elapsed() >= Duration::from_secs(2) {
            last_ask = std::time::Instant::now();
            if let Backend::Redis(r) = shared.store.backend() {
                if r.snapshot_asked().await && shared.compact(false).await.is_ok() {
                    r.snapshot_given().await;
                }
            }
        }
        if last_compact.elapsed() >= compact_every {
            last_compact = std::time::Instant::now();
            // One replica per period does it; the bucket names the period.
            let bucket = crate::token::now_secs() / compact_every.as_secs().max(1);
            let claim = format!("compact:{bucket}");
            if let Ok(true) = shared
                .store
                .claim_once(&claim, compact_every.as_secs())
                .await
            {
                if let Err(e) = shared.compact(true).await {
                    tracing::warn!(error = %e, "could not compact the shared store");
                }
            }
        }
    }
}
