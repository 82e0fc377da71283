//! Tokens of external issuers (`issuers:`) in the guard: a JWT whose `iss` names one is
//! checked against that issuer's keys, an opaque token tollgate does not know is asked about
//! at the introspection endpoints the route admits. The principal is cached in the hot map
//! like tollgate's own (keyed by the token, carrying its issuer); every route still checks
//! its own requirements against it.

use crate::config::Origin;
use crate::idp::introspect::Verdict;
use crate::idp::{claims, Issuer, JwtCheck};
use crate::principal::Principal;
use crate::reject::{Invalid, Reject};
use crate::shared::Shared;
use crate::state::Runtime;
use crate::store::hot::HotKey;
use crate::token::opaque;
use base64::Engine as _;
use std::sync::Arc;

/// The external issuer whose exact `iss` the JWT `token` carries (read unverified, only to
/// pick the keys it is then verified with).
pub fn jwt_issuer(token: &str, rt: &Runtime) -> Option<u16> {
    if rt.issuer_by_iss.is_empty() {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let iss = serde_json::from_slice::<Iss>(&bytes).ok()?.iss?;
    rt.issuer_by_iss.get(&iss).copied()
}

/// True when `admitted` (a route's `dialects:`, all when `None`) lets issuer `i` in.
fn admits(admitted: Option<&[Origin]>, i: u16) -> bool {
    admitted.is_none_or(|a| a.contains(&Origin::Issuer(i)))
}

/// True when some admitted issuer introspects opaque tokens.
pub fn introspects(admitted: Option<&[Origin]>, rt: &Runtime) -> bool {
    rt.issuers
        .iter()
        .enumerate()
        .any(|(i, s)| s.cfg.introspection.is_some() && admits(admitted, i as u16))
}

fn remember(p: Principal, key: HotKey, rt: &Runtime, shared: &Shared) -> Arc<Principal> {
    let p = Arc::new(shared.hot.share(p.at_generation(rt.generation)));
    shared
        .hot
        .insert(key, None, Arc::clone(&p), shared.clock.now_secs());
    p
}

/// The principal of a JWT of issuer `i`.
pub async fn from_jwt(
    i: u16,
    token: &str,
    key: HotKey,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Arc<Principal>, Reject> {
    let issuer: &Arc<Issuer> = &rt.issuers[i as usize];
    let hash = opaque::hash(token);
    if shared.bad.contains(&hash, shared.clock.now_millis()) {
        return Err(Reject::InvalidToken(Invalid::Bad));
    }
    let refused = |inv: Invalid| {
        if inv == Invalid::Bad {
            // A forged or garbled token is remembered briefly, as tollgate's own are.
            shared.bad.insert(hash, shared.clock.now_millis());
        }
        Err(Reject::InvalidToken(inv))
    };
    match issuer.check_jwt(token, shared.clock.now_secs()).await {
        JwtCheck::Valid(c, until) => {
            match claims::principal(&issuer.cfg, i, &c, until, &rt.forwarded_claims) {
                Ok(p) => Ok(remember(p, key, rt, shared)),
                Err(inv) => refused(inv),
            }
        }
        JwtCheck::Refused(inv) => refused(inv),
        JwtCheck::NoKeys => Err(Reject::IssuerUnavailable),
        JwtCheck::UnknownKey => Err(Reject::InvalidToken(Invalid::Bad)),
    }
}

/// A token the hot map does not hold, and who asks about it.
#[derive(Debug, Clone, Copy)]
pub struct ColdToken<'a> {
    /// The token.
    pub token: &'a str,
    /// Its hot-map key.
    pub key: HotKey,
    /// The origins the route admits (all when `None`).
    pub admitted: Option<&'a [Origin]>,
    /// The client address an introspection is charged to; `None` for the operator's own
    /// questions (admin introspection).
    pub client: Option<std::net::IpAddr>,
}

/// The principal of an opaque token one of the admitted introspecting issuers says is
/// active (asked in config order; the first active answer wins). Only issuers whose declared
/// token shape fits are asked; a token no answer is cached for costs `client` one token of
/// `limits.introspection_rate` (none left: 401 without asking). `client` is `None` for the
/// operator's own questions (admin introspection).
pub async fn introspected(
    cold: ColdToken<'_>,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Arc<Principal>, Reject> {
    let ColdToken {
        token,
        key,
        admitted,
        client,
    } = cold;
    let hash = opaque::hash(token);
    let now_ms = shared.clock.now_millis();
    let asked: Vec<_> = rt
        .issuers
        .iter()
        .enumerate()
        .map(|(i, issuer)| (i as u16, issuer))
        .filter(|(i, issuer)| {
            admits(admitted, *i)
                && issuer
                    .cfg
                    .introspection
                    .as_ref()
                    .is_some_and(|s| s.may_have_issued(token))
        })
        .collect();
    // Charged when this request may start a call at any issuer it would ask.
    let free = asked
        .iter()
        .all(|(_, issuer)| issuer.introspector.known_or_pending(&hash, now_ms));
    if let (Some(ip), false) = (client, free) {
        let l = &rt.config.limits;
        let ip = crate::client_addr::limit_key(ip);
        if shared
            .limits
            .introspection
            .take(
                &ip,
                l.introspection_rate,
                l.introspection_burst,
                std::time::Instant::now(),
            )
            .is_err()
        {
            return Err(Reject::InvalidToken(Invalid::Bad));
        }
    }
    let mut unavailable = false;
    for (i, issuer) in asked {
        let verdict = match issuer.introspect(token, &hash, now_ms).await {
            Ok(v) => v,
            Err(_) => {
                unavailable = true;
                continue;
            }
        };
        if let Verdict::Active { claims, until_ms } = &*verdict {
            let p = claims::principal(
                &issuer.cfg,
                i,
                claims,
                until_ms / 1000,
                &rt.forwarded_claims,
            )
            .map_err(Reject::InvalidToken)?;
            return Ok(remember(p, key, rt, shared));
        }
    }
    Err(if unavailable {
        Reject::IssuerUnavailable
    } else {
        Reject::InvalidToken(Invalid::Bad)
    })
}

/// Forgets an external token: its hot entry and every issuer's cached answer about it.
/// True when something was held.
pub fn evict(token: &str, rt: &Runtime, shared: &Shared) -> bool {
    let key = shared.hot.key(token);
    let held = shared.hot.get(&key).is_some();
    shared.hot.remove(&key);
    let hash = opaque::hash(token);
    let mut answered = false;
    for i in &rt.issuers {
        answered |= i.introspector.evict(&hash);
    }
    held || answered
}
