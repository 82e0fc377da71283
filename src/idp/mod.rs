//! External identity providers (`issuers:`): their signing keys, their introspection
//! endpoint, and the principal one of their tokens stands for. An issuer's state (keys,
//! answers) outlives a reload that leaves its settings as they were.

pub mod claims;
pub mod fetch;
pub mod introspect;
pub mod jwks;

use crate::config::{IssuerConfig, KeySource};
use crate::reject::{Invalid, Reject};
use arc_swap::ArcSwapOption;
use fetch::IdpClient;
use jwks::{Found, KeySet, Schedule};
use prometheus::IntCounter;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex, Weak};

/// Metric handles of one issuer.
#[derive(Debug)]
struct IssuerMetrics {
    fetch_ok: IntCounter,
    fetch_error: IntCounter,
    active: IntCounter,
    inactive: IntCounter,
    introspect_error: IntCounter,
    cache_hits: IntCounter,
}

/// One trusted external issuer and what is known of it.
#[derive(Debug)]
pub struct Issuer {
    /// As configured.
    pub cfg: IssuerConfig,
    client: IdpClient,
    keys: ArcSwapOption<KeySet>,
    schedule: Schedule,
    /// Why the last fetch failed (for `/readyz`), while it has.
    last_error: Mutex<Option<String>>,
    fetching: tokio::sync::Mutex<()>,
    /// Opaque tokens' answers.
    pub introspector: introspect::Introspector,
    metrics: IssuerMetrics,
}

/// How a JWT of this issuer fared.
#[derive(Debug)]
pub enum JwtCheck {
    /// Valid: its claims, and until when it may be cached (seconds, leeway included).
    Valid(Map<String, Value>, u64),
    /// Refused.
    Refused(Invalid),
    /// No keys yet (the first fetch has not succeeded).
    NoKeys,
    /// Signed under a `kid` the keys held do not have: refused, but not remembered as bad,
    /// since a refetch (scheduled) may bring the key.
    UnknownKey,
}

impl Issuer {
    fn new(cfg: &IssuerConfig, m: &crate::metrics::Metrics) -> Result<Arc<Self>, String> {
        let client = IdpClient::new(cfg.ca_file.as_deref(), cfg.timeout)?;
        // A key file is read now: a broken one refuses the config, as any bad file does.
        let keys = match cfg.jwt.as_ref().map(|j| &j.keys) {
            Some(KeySource::File(path)) => {
                let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let set = KeySet::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                ArcSwapOption::from_pointee(set)
            }
            _ => ArcSwapOption::empty(),
        };
        let name = cfg.name.as_str();
        let fetches = |r| m.issuer_jwks_fetches.with_label_values(&[name, r]);
        let calls = |r| m.issuer_introspections.with_label_values(&[name, r]);
        Ok(Arc::new(Issuer {
            cfg: cfg.clone(),
            client,
            keys,
            schedule: Schedule::default(),
            last_error: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            introspector: introspect::Introspector::default(),
            metrics: IssuerMetrics {
                fetch_ok: fetches("ok"),
                fetch_error: fetches("error"),
                active: calls("active"),
                inactive: calls("inactive"),
                introspect_error: calls("error"),
                cache_hits: m.issuer_cache_hits.with_label_values(&[name]),
            },
        }))
    }

    /// Counts a hot-map hit of one of its tokens.
    pub fn count_hit(&self) {
        self.metrics.cache_hits.inc();
    }

    /// `None` when it is ready to check tokens, else why not (for `/readyz`).
    pub fn not_ready(&self) -> Option<String> {
        if self.cfg.jwt.is_none() || self.keys.load().is_some() {
            return None;
        }
        let why = self.last_error.lock().ok().and_then(|e| e.clone());
        Some(why.unwrap_or_else(|| "keys not fetched yet".into()))
    }

    /// Fetches (or reads) the JWKS now; on failure the keys held stay in use.
    pub async fn fetch_keys(&self, now_ms: u64) -> Result<(), String> {
        let Some(jwt) = &self.cfg.jwt else {
            return Ok(());
        };
        let _one = self.fetching.lock().await;
        let got = match &jwt.keys {
            KeySource::Url(url) => self.client.get(url).await.and_then(|a| {
                if !a.status.is_success() {
                    return Err(format!("{url} answered {}", a.status));
                }
                let keys = KeySet::parse(&a.body).map_err(|e| format!("{url}: {e}"))?;
                Ok((keys, jwks::refresh_after(&a.headers, jwt.refresh)))
            }),
            KeySource::File(path) => std::fs::read(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|b| KeySet::parse(&b).map_err(|e| format!("{}: {e}", path.display())))
                .map(|k| (k, jwt.refresh)),
        };
        match got {
            Ok((keys, after)) => {
                self.metrics.fetch_ok.inc();
                self.keys.store(Some(Arc::new(keys)));
                self.schedule.fetched(now_ms, true, after);
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
                Ok(())
            }
            Err(e) => {
                self.metrics.fetch_error.inc();
                tracing::warn!(issuer = %self.cfg.name, error = %e, "JWKS fetch failed; the keys held stay in use");
                self.schedule.fetched(now_ms, false, jwt.refresh);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    /// Verifies one of its JWTs at `now` (seconds): algorithm in the allow-list, a key of the
    /// right type (refetched once per cooldown for an unknown `kid`), signature, `iss`,
    /// `aud`, `exp` and `nbf` with the leeway.
    pub async fn check_jwt(&self, token: &str, now: u64) -> JwtCheck {
        self.check_jwt_with(token, now, true).await
    }

    /// As `check_jwt` with the keys held now, never fetching (`explain`: no side effects).
    pub async fn check_jwt_held(&self, token: &str, now: u64) -> JwtCheck {
        self.check_jwt_with(token, now, false).await
    }

    async fn check_jwt_with(&self, token: &str, now: u64, fetch: bool) -> JwtCheck {
        let Some(jwt) = &self.cfg.jwt else {
            return JwtCheck::Refused(Invalid::Bad);
        };
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return JwtCheck::Refused(Invalid::Bad);
        };
        if !jwt.algorithms.contains(&header.alg) {
            return JwtCheck::Refused(Invalid::Bad);
        }
        let kid = header.kid.as_deref();
        let mut keys = self.keys.load_full();
        if keys.is_none() && fetch {
            // The first fetch has not succeeded: try now (within the cooldown), else 503.
            if self.schedule.may_try(wall_ms(), jwt.cooldown) {
                let _ = self.fetch_keys(wall_ms()).await;
            }
            keys = self.keys.load_full();
        }
        let Some(mut set) = keys else {
            return JwtCheck::NoKeys;
        };
        if fetch
            && matches!(set.find(kid, header.alg), Found::UnknownKid)
            && self.schedule.unknown_kid(kid, wall_ms(), jwt.cooldown) == jwks::KidAction::FetchNow
        {
            // A rotation: fetch once, then look again.
            let _ = self.fetch_keys(wall_ms()).await;
            if let Some(s) = self.keys.load_full() {
                set = s;
            }
        }
        let key = match set.find(kid, header.alg) {
            Found::Key(k) => k,
            Found::UnknownKid => return JwtCheck::UnknownKey,
            Found::WrongType => return JwtCheck::Refused(Invalid::Bad),
        };
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.validate_exp = false;
        v.validate_nbf = false;
        v.set_issuer(&[&jwt.issuer]);
        if self.cfg.audiences.is_empty() {
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp", "iss"]);
        } else {
            v.set_audience(&self.cfg.audiences);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
        }
        let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v) else {
            return JwtCheck::Refused(Invalid::Bad);
        };
        let claims = data.claims;
        let leeway = self.cfg.leeway.as_secs();
        let Some(exp) = claims.get("exp").and_then(Value::as_u64) else {
            return JwtCheck::Refused(Invalid::Bad);
        };
        if exp.saturating_add(leeway) < now {
            return JwtCheck::Refused(Invalid::Expired);
        }
        if claims
            .get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return JwtCheck::Refused(Invalid::Bad);
        }
        JwtCheck::Valid(claims, exp.saturating_add(leeway))
    }

    /// Asks its introspection endpoint about `token` (or reuses an answer).
    pub async fn introspect(
        &self,
        token: &str,
        hash: &crate::token::opaque::TokenHash,
        now_ms: u64,
    ) -> Result<Arc<introspect::Verdict>, Reject> {
        if self.cfg.introspection.is_none() {
            return Err(Reject::InvalidToken(Invalid::Bad));
        }
        match self
            .introspector
            .verdict(token, hash, &self.cfg, &self.client, now_ms)
            .await
        {
            Ok((v, fresh)) => {
                if fresh {
                    match &*v {
                        introspect::Verdict::Active { .. } => self.metrics.active.inc(),
                        introspect::Verdict::Inactive => self.metrics.inactive.inc(),
                    }
                }
                Ok(v)
            }
            Err(e) => {
                self.metrics.introspect_error.inc();
                tracing::warn!(issuer = %self.cfg.name, error = %e, "introspection failed");
                Err(Reject::IssuerUnavailable)
            }
        }
    }
}

/// The system clock in milliseconds: fetch schedules run on it (token expiry does not).
fn wall_ms() -> u64 {
    crate::token::now_millis()
}

/// Refreshes an issuer's keys on its schedule, until the issuer is dropped.
async fn refresh_loop(issuer: Weak<Issuer>) {
    loop {
        let Some(i) = issuer.upgrade() else { return };
        let now = wall_ms();
        let next = i
            .schedule
            .next_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if next <= now {
            let _ = i.fetch_keys(now).await;
            continue;
        }
        drop(i);
        // Short turns: a recheck an unknown kid asked for is not kept waiting.
        let wait = (next - now).min(1_000);
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
}

/// The issuers known to the process, reused across reloads while their settings stay.
#[derive(Debug, Default)]
pub struct Registry(Mutex<Vec<Arc<Issuer>>>);

impl Registry {
    /// The issuers for `configs`, in order: a known one with equal settings is kept (its
    /// keys and answers with it) unless it reads files, new ones start fetching their keys.
    pub fn sync(
        &self,
        configs: &[IssuerConfig],
        metrics: &crate::metrics::Metrics,
    ) -> Result<Vec<Arc<Issuer>>, (String, String)> {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(configs.len());
        for cfg in configs {
            let files = cfg.ca_file.is_some()
                || matches!(cfg.jwt.as_ref().map(|j| &j.keys), Some(KeySource::File(_)));
            if let Some(i) = known.iter().find(|i| i.cfg == *cfg && !files) {
                out.push(Arc::clone(i));
                continue;
            }
            let i = Issuer::new(cfg, metrics).map_err(|e| (cfg.name.clone(), e))?;
            if cfg.jwt.is_some() {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(refresh_loop(Arc::downgrade(&i)));
                }
            }
            out.push(i);
        }
        *known = out.clone();
        Ok(out)
    }
}
