//! Token → `Principal`: hot map first; on a miss, a JWT is signature-checked and an opaque
//! token looked up in its dialect's records; then the principal is held to the current
//! config (`Principal::held_to`) and remembered. A hot entry held to an older config is
//! treated as a miss, so a reload reaches cached and uncached tokens alike.

use crate::config::{Dialect, Level, Origin};
use crate::principal::Principal;
use crate::reject::{Invalid, Reject};
use crate::shared::Shared;
use crate::state::Runtime;
use crate::store::hot::HotKey;
use crate::token::jwt::{JwtKeys, Scope, VerifyError};
use crate::token::opaque;
use std::sync::Arc;

/// Seconds before a hot token's end from which its expiry is checked on the exact clock.
const EXACT_NEAR_END: u64 = 30;

/// `principal` after a catch-up with the shared store: a token still unknown is settled bad.
pub fn settle(token: &str, rt: &Runtime, shared: &Shared) -> Result<Arc<Principal>, Reject> {
    let r = principal(token, rt, shared);
    if matches!(r, Err(Reject::InvalidToken(Invalid::Bad))) {
        shared
            .bad
            .insert(opaque::hash(token), shared.clock.now_millis());
    }
    r
}

/// Verifies `token` and returns who it stands for (tollgate's own tokens; the guard also
/// asks external issuers, see `guard::resolve`).
pub fn principal(token: &str, rt: &Runtime, shared: &Shared) -> Result<Arc<Principal>, Reject> {
    let key = shared.hot.key(token);
    match hot(&key, rt, shared) {
        Some(r) => r,
        None => {
            shared.metrics.cache_misses.inc();
            own(token, key, rt, shared)
        }
    }
}

/// The hot map's answer for the token keyed `key`, `None` on a miss (a principal held to an
/// older config, or an external one past the time it may be cached, is a miss).
pub fn hot(key: &HotKey, rt: &Runtime, shared: &Shared) -> Option<Result<Arc<Principal>, Reject>> {
    let p = shared
        .hot
        .get(key)
        .filter(|p| p.generation == rt.generation)?;
    shared.metrics.cache_hits.inc();
    if p.is_revoked() {
        return Some(Err(Reject::InvalidToken(Invalid::Revoked)));
    }
    let external = match p.origin {
        Origin::Issuer(i) => rt.issuers.get(i as usize),
        Origin::Own(_) => None,
    };
    // Opaque tokens expire exactly; our JWTs get the configured clock skew; an external
    // principal's `exp` already says until when it may be cached.
    // (The leeway comes from the config: a hot hit touches no key.)
    let grace = match p.origin {
        Origin::Own(Dialect::Bkflow | Dialect::Feishu) | Origin::Issuer(_) => 0,
        Origin::Own(_) => rt.config.signing.leeway.as_secs(),
    };
    // The recent clock lags by ~20 ms; only a token within `EXACT_NEAR_END` of its end is
    // checked against the exact time (a starved clock thread stays well inside that).
    let end = p.exp + grace;
    if end <= shared.clock.recent_secs() + EXACT_NEAR_END && end <= shared.clock.now_secs() {
        shared.hot.remove(key);
        // An external token is checked again (its issuer says whether it still holds).
        return match external {
            Some(_) => None,
            None => Some(Err(Reject::InvalidToken(Invalid::Expired))),
        };
    }
    if let Some(i) = external {
        i.count_hit();
    }
    Some(Ok(p))
}

/// Who one of tollgate's own tokens stands for, judged as `own` judges it but touching
/// nothing: no hot-map insert, no negative cache, no counter (`explain`).
pub fn own_pure(token: &str, rt: &Runtime, shared: &Shared) -> Result<Principal, Reject> {
    let hash = opaque::hash(token);
    let p = held(token, &hash, rt, shared)?;
    if still_revoked(&p, &hash, shared) {
        return Err(Reject::InvalidToken(Invalid::Revoked));
    }
    Ok(p)
}

/// What one of tollgate's own tokens (SHA-256 `hash`) stands for, held to the current config:
/// its signature or store record, then `Principal::held_to`.
fn held(
    token: &str,
    hash: &opaque::TokenHash,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Principal, Reject> {
    let found = if crate::token::is_jwt(token) {
        from_jwt(token, &shared.keys(), shared)
    } else if token.starts_with("a-") || token.starts_with("t-") {
        from_feishu(hash, shared)
    } else {
        from_opaque(hash, shared)
    }?;
    let app = rt.apps.get(&*found.app).map(|a| &**a);
    found
        .held_to(app, rt.generation)
        .map_err(Reject::InvalidToken)
}

/// One of tollgate's own tokens, on a hot-map miss: signature or store record, held to the
/// current config, remembered.
pub fn own(
    token: &str,
    key: HotKey,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Arc<Principal>, Reject> {
    // A miss: the SHA-256 names the token in the negative set and the stores.
    let hash = opaque::hash(token);
    if shared.bad.contains(&hash, shared.clock.now_millis()) {
        return Err(Reject::InvalidToken(Invalid::Bad));
    }
    if !shared.store.is_up() {
        // Fail closed: with the shared store down a revocation elsewhere could go unseen.
        return Err(Reject::StoreUnavailable);
    }
    let jwt = crate::token::is_jwt(token);
    let p = match held(token, &hash, rt, shared) {
        Ok(p) => p,
        Err(r) => {
            // Forged or unknown: remembered briefly. Expired and revoked answers stay precise.
            // An unknown opaque token on a shared store is only settled after a catch-up.
            let unsettled = shared.store.is_shared() && !jwt;
            if matches!(r, Reject::InvalidToken(Invalid::Bad)) && !unsettled {
                shared.bad.insert(hash, shared.clock.now_millis());
            }
            return Err(r);
        }
    };
    let p = Arc::new(shared.hot.share(p));
    let now = shared.clock.now_secs();
    // Opaque tokens are also indexed by SHA-256: the store revokes them by it.
    let sha = (!jwt).then_some(hash);
    shared.hot.insert(key, sha, Arc::clone(&p), now);
    // A revocation may have landed between the lookup above and the insert.
    if still_revoked(&p, &hash, shared) {
        p.mark_revoked();
        shared.hot.remove(&key);
        return Err(Reject::InvalidToken(Invalid::Revoked));
    }
    Ok(p)
}

fn still_revoked(p: &Principal, hash: &opaque::TokenHash, shared: &Shared) -> bool {
    match p.origin {
        Origin::Issuer(_) => false,
        Origin::Own(Dialect::Bkflow) => shared
            .bkflow
            .lookup(hash, shared.clock.now_millis())
            .is_none(),
        Origin::Own(Dialect::Feishu) => shared
            .feishu
            .lookup(hash, shared.clock.now_millis())
            .is_none(),
        _ => shared.revoked.contains(&p.jti),
    }
}

fn from_jwt(token: &str, keys: &JwtKeys, shared: &Shared) -> Result<Principal, Reject> {
    let claims = keys
        .verify_at(token, shared.clock.now_secs())
        .map_err(|e| match e {
            VerifyError::Expired => Reject::InvalidToken(Invalid::Expired),
            VerifyError::Invalid => Reject::InvalidToken(Invalid::Bad),
        })?;
    if shared.revoked.contains(&claims.jti) {
        return Err(Reject::InvalidToken(Invalid::Revoked));
    }
    let dialect = claims
        .dialect
        .as_deref()
        .and_then(Dialect::parse)
        .unwrap_or(Dialect::Oauth);
    let (scopes, level) = match claims.scope {
        Scope::List(v) => (v.into_iter().map(String::into_boxed_str).collect(), None),
        Scope::Level(l) => (Box::default(), Level::parse(&l)),
    };
    let bound = claims
        .extra
        .get("cnf")
        .map(|c| {
            crate::tls::cert_info::thumbprint(c.get("x5t#S256"))
                .ok_or(Reject::InvalidToken(Invalid::Bad))
        })
        .transpose()?;
    Ok(Principal::new(
        claims.client_id.into(),
        dialect,
        claims.exp,
        claims.jti.into(),
    )
    .with_scopes(scopes)
    .with_level(level)
    .with_binding(bound))
}

/// An opaque token we issued but is past its expiry (revocation sets it to now) is `Expired`;
/// one we never issued is `Bad`.
fn unknown_or_expired(known: bool) -> Reject {
    Reject::InvalidToken(if known {
        Invalid::Expired
    } else {
        Invalid::Bad
    })
}

fn from_feishu(hash: &opaque::TokenHash, shared: &Shared) -> Result<Principal, Reject> {
    let rec = shared
        .feishu
        .lookup(hash, shared.clock.now_millis())
        .ok_or_else(|| unknown_or_expired(shared.feishu.known(hash)))?;
    let jti = hex::encode(&hash[..8]);
    let tenant = rec.kind.strip_prefix("tenant:");
    Ok(Principal::new(
        rec.app.as_str().into(),
        Dialect::Feishu,
        rec.expires_ms / 1000,
        jti.into(),
    )
    .with_tenant(tenant))
}

fn from_opaque(hash: &opaque::TokenHash, shared: &Shared) -> Result<Principal, Reject> {
    let rec = shared
        .bkflow
        .lookup(hash, shared.clock.now_millis())
        .ok_or_else(|| unknown_or_expired(shared.bkflow.known(hash)))?;
    let jti = hex::encode(&hash[..8]);
    Ok(Principal::new(
        rec.app.into(),
        Dialect::Bkflow,
        rec.expires_ms / 1000,
        jti.into(),
    )
    .with_bkflow(rec.space, &rec.user, rec.grant))
}
