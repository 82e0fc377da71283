//! RFC 7662 introspection of opaque tokens: one call in flight per token however many
//! requests carry it, active answers reused until `min(exp, cache_ttl)`, inactive ones for
//! `negative_ttl`, failures never reused. Active and inactive answers are kept in two bounded
//! caches (quick_cache: CLOCK-Pro eviction of the least recently and frequently used), so a
//! flood of unknown tokens can fill only the inactive one and never push out an active answer.

use super::fetch::IdpClient;
use crate::config::{Introspection, IssuerConfig};
use crate::token::opaque::TokenHash;
use dashmap::DashMap;
use quick_cache::sync::Cache;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The most active answers kept per issuer (past it the least used go, one at a time).
const MAX_ACTIVE: usize = 100_000;
/// The most inactive answers kept per issuer.
const MAX_INACTIVE: usize = 20_000;

/// What the IdP said about a token.
#[derive(Debug)]
pub enum Verdict {
    /// Active, with its claims; reusable until `until_ms`.
    Active {
        /// The answer's members.
        claims: Map<String, Value>,
        /// When the answer stops being reused (ms).
        until_ms: u64,
    },
    /// Not active (unknown, expired, revoked, or not for this audience).
    Inactive,
}

type Call = Arc<OnceCell<Result<(Arc<Verdict>, u64), String>>>;

type Answers = Cache<TokenHash, (Arc<Verdict>, u64)>;

/// Takes a token's in-flight call out of the map when a request holding it ends, if it is
/// still that call (a later one may have replaced it); requests already waiting on it keep
/// their own handle, later ones start (and are charged for) a call of their own.
struct Leave<'a>(&'a DashMap<TokenHash, Call>, TokenHash, Call);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.remove_if(&self.1, |_, c| Arc::ptr_eq(c, &self.2));
    }
}

/// The introspection side of one issuer.
#[derive(Debug)]
pub struct Introspector {
    active: Answers,
    inactive: Answers,
    inflight: DashMap<TokenHash, Call>,
}

impl Default for Introspector {
    fn default() -> Self {
        Introspector {
            active: Cache::new(MAX_ACTIVE),
            inactive: Cache::new(MAX_INACTIVE),
            inflight: DashMap::new(),
        }
    }
}

/// Why an introspection answer cannot be used.
fn refuse(claims: &Map<String, Value>, cfg: &IssuerConfig, now_s: u64) -> bool {
    let exp = claims.get("exp").and_then(Value::as_u64);
    if exp.is_some_and(|e| e + cfg.leeway.as_secs() < now_s) {
        return true;
    }
    if let (Some(want), Some(iss)) = (&cfg.issuer, claims.get("iss").and_then(Value::as_str)) {
        if want != iss {
            return true;
        }
    }
    if !cfg.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => cfg.audiences.iter().any(|w| w == a),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .any(|a| cfg.audiences.iter().any(|w| w == a)),
            _ => false,
        };
        if !ok {
            return true;
        }
    }
    false
}

impl Introspector {
    /// The verdict on `token` (whose SHA-256 is `hash`) at `now_ms`, from the cache or one
    /// call to the IdP shared by every request asking at the same time. `Err` when the IdP
    /// could not answer; `Ok((verdict, fresh))` says whether this call reached the IdP.
    pub async fn verdict(
        &self,
        token: &str,
        hash: &TokenHash,
        cfg: &IssuerConfig,
        client: &IdpClient,
        now_ms: u64,
    ) -> Result<(Arc<Verdict>, bool), String> {
        let Some(spec) = &cfg.introspection else {
            return Err("the issuer has no introspection endpoint".into());
        };
        if let Some(v) = self.cached(hash, now_ms) {
            return Ok((v, false));
        }
        let call = Arc::clone(self.inflight.entry(*hash).or_default().value());
        // Removed however this ends, a cancelled request included: a stale entry would
        // make every later request look like it shares a call that no longer runs.
        let _leave = Leave(&self.inflight, *hash, Arc::clone(&call));
        let mut ran = false;
        let result = call
            .get_or_init(|| {
                ran = true;
                async {
                    let r = ask(token, cfg, spec, client, now_ms).await;
                    if let Ok((v, until)) = &r {
                        self.keep(*hash, Arc::clone(v), *until);
                    }
                    r
                }
            })
            .await
            .clone();
        result.map(|(v, _)| (v, ran))
    }

    fn keep(&self, hash: TokenHash, v: Arc<Verdict>, until_ms: u64) {
        match &*v {
            Verdict::Active { .. } => {
                self.inactive.remove(&hash);
                self.active.insert(hash, (v, until_ms));
            }
            Verdict::Inactive => {
                self.active.remove(&hash);
                self.inactive.insert(hash, (v, until_ms));
            }
        }
    }

    /// The answer held for a token at `now_ms`, if any (no call).
    pub fn cached(&self, hash: &TokenHash, now_ms: u64) -> Option<Arc<Verdict>> {
        [&self.active, &self.inactive]
            .into_iter()
            .find_map(|c| c.get(hash).filter(|e| e.1 > now_ms).map(|e| e.0))
    }

    /// True when an answer about the token is held or being asked for right now: another
    /// request for it costs the IdP nothing.
    pub fn known_or_pending(&self, hash: &TokenHash, now_ms: u64) -> bool {
        self.inflight.contains_key(hash) || self.cached(hash, now_ms).is_some()
    }

    /// Forgets what the IdP said about a token (`POST /admin/tokens/revoke`).
    pub fn evict(&self, hash: &TokenHash) -> bool {
        let a = self.active.remove(hash).is_some();
        self.inactive.remove(hash).is_some() || a
    }
}

/// One RFC 7662 call: the verdict and until when it may be reused (ms).
async fn ask(
    token: &str,
    cfg: &IssuerConfig,
    spec: &Introspection,
    client: &IdpClient,
    now_ms: u64,
) -> Result<(Arc<Verdict>, u64), String> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("token_type_hint", "access_token")
        .finish();
    let answer = client
        .post_form(&spec.url, &spec.client_id, &spec.client_secret, form)
        .await?;
    if !answer.status.is_success() {
        return Err(format!("introspection answered {}", answer.status));
    }
    let doc: Map<String, Value> = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("introspection answer is not a JSON object: {e}"))?;
    let negative = now_ms + spec.negative_ttl.as_millis() as u64;
    if doc.get("active") != Some(&Value::Bool(true)) || refuse(&doc, cfg, now_ms / 1000) {
        return Ok((Arc::new(Verdict::Inactive), negative));
    }
    let mut until = now_ms + spec.cache_ttl.as_millis() as u64;
    if let Some(exp) = doc.get("exp").and_then(Value::as_u64) {
        until = until.min(exp.saturating_mul(1000));
    }
    Ok((
        Arc::new(Verdict::Active {
            claims: doc,
            until_ms: until,
        }),
        until,
    ))
}
