//! Token → `Principal`: hot map first, then the JWT check, then remember it.

use super::Principal;
use crate::config::{Dialect, Level};
use crate::reject::{Invalid, Reject};
use crate::state::Shared;
use crate::token::jwt::{JwtKeys, Scope, VerifyError};
use crate::token::{now_secs, opaque};
use std::sync::Arc;

/// Verifies `token` and returns who it stands for.
pub fn principal(token: &str, keys: &JwtKeys, shared: &Shared) -> Result<Arc<Principal>, Reject> {
    let hash = opaque::hash(token);
    let now = now_secs();
    if let Some(p) = shared.hot.get(&hash) {
        shared.metrics.cache_hits.inc();
        if p.is_revoked() {
            return Err(Reject::InvalidToken(Invalid::Revoked));
        }
        if p.exp + keys.leeway() <= now {
            shared.hot.remove(&hash);
            return Err(Reject::InvalidToken(Invalid::Expired));
        }
        return Ok(p);
    }
    shared.metrics.cache_misses.inc();
    let claims = keys.verify(token).map_err(|e| match e {
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
    let p = Arc::new(Principal::new(
        claims.client_id.into(),
        dialect,
        scopes,
        level,
        claims.exp,
        claims.jti.into(),
    ));
    shared.hot.insert(hash, Arc::clone(&p), now);
    // A revocation may have landed between the check above and the insert.
    if shared.revoked.contains(&p.jti) {
        p.mark_revoked();
        shared.hot.remove(&hash);
        return Err(Reject::InvalidToken(Invalid::Revoked));
    }
    Ok(p)
}
