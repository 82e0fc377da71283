//! The guard: token → `Principal` → `Permit`. Forwarding requires a `Permit`, and only this
//! module can make one, so an unchecked request cannot be forwarded.

pub mod bearer;
pub mod client_cert;
pub mod external;
pub mod require;
pub mod verify;

#[cfg(test)]
mod reload_tests;

use crate::config::{AuthMode, Origin, Requirements, RouteMode};
use crate::principal::Principal;
use crate::reject::{Invalid, Reject};
use crate::shared::Shared;
use crate::state::exchange::Exchange;
use crate::state::Runtime;
use bearer::Source;
use external::ColdToken;
use http::request::Parts;
use std::sync::Arc;

/// Proof that the guard let a request through; `proxy::forward` takes one.
#[derive(Debug)]
pub struct Permit {
    principal: Option<Arc<Principal>>,
    source: Option<Source>,
    shadow: Option<Result<(), Reject>>,
}

impl Permit {
    fn new() -> Self {
        Permit {
            principal: None,
            source: None,
            shadow: None,
        }
    }

    /// What a shadow rule (`mode: shadow` or `require_shadow`) would have decided: `None`
    /// when the route has none, else the refusal it would have answered, if any.
    pub fn shadow(&self) -> Option<Result<(), &Reject>> {
        self.shadow.as_ref().map(|r| r.as_ref().map(|_| ()))
    }

    /// The principal, on `auth: bearer` routes.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_deref()
    }

    /// A shared handle on the principal (for the access log), without copying it.
    pub fn principal_arc(&self) -> Option<Arc<Principal>> {
        self.principal.clone()
    }

    /// Where the client put its token.
    pub fn source(&self) -> Option<Source> {
        self.source
    }
}

/// The guard's answer: the permit or the refusal, and the dialect of the token it verified,
/// allowed or not (the decision metric's label).
#[derive(Debug)]
pub struct Verdict {
    /// Let through, or refused.
    pub permit: Result<Permit, Reject>,
    /// The verified token's dialect, if a token was verified.
    pub dialect: Option<Origin>,
}

/// Decides whether the request in `parts` (whose normalised path is `path`) may use its route.
/// On a shadow route a refusal for the token is kept in the permit instead of answered; a
/// `require_shadow` is tried on what passes.
pub async fn check(ex: Exchange<'_>, parts: &Parts, path: &str) -> Verdict {
    let route = ex.route;
    let mut permit = Permit::new();
    let decided = decide(ex, parts, path, &mut permit).await;
    let dialect = permit.principal.as_ref().map(|p| p.origin);
    let permit = match decided {
        Ok(()) => {
            if let (Some(reqs), Some(p)) = (&route.config.shadow, &permit.principal) {
                let p = Arc::clone(p);
                permit.shadow = Some(Box::pin(meets(reqs, ex, parts, path, &p)).await);
            } else if route.config.mode == RouteMode::Shadow {
                permit.shadow = Some(Ok(()));
            }
            Ok(permit)
        }
        Err(rej) if route.config.mode == RouteMode::Shadow && rej.decision().is_some() => {
            permit.shadow = Some(Err(rej));
            Ok(permit)
        }
        Err(rej) => Err(rej),
    };
    Verdict { permit, dialect }
}

async fn decide(
    ex: Exchange<'_>,
    parts: &Parts,
    path: &str,
    permit: &mut Permit,
) -> Result<(), Reject> {
    let (route, rt, shared, conn) = (ex.route, ex.rt, ex.shared(), ex.conn);
    match route.config.auth {
        AuthMode::None => return Ok(()),
        // The certificate alone authenticates; its identity goes upstream in headers.
        AuthMode::ClientCert => {
            client_cert::check(conn, route.config.client_cert.as_ref())?;
            return Ok(());
        }
        AuthMode::Bearer => {}
    }
    let (token, source) = bearer::extract(parts)?.ok_or(Reject::MissingToken)?;
    let key = shared.hot.key(&token);
    let principal = match verify::hot(&key, rt, shared) {
        Some(r) => r?,
        // Boxed, as is the lookup below: the rare paths keep the usual request's future small.
        None => {
            let client = conn.request_client(&parts.headers, &rt.config.listen.trusted_proxies);
            let cold = ColdToken {
                token: &token,
                key,
                admitted: route.config.dialects.as_deref(),
                client: Some(client),
            };
            Box::pin(resolve_cold(cold, rt, shared)).await?
        }
    };
    // Kept in the permit (its dialect is the metric's label, allowed or not) from here on: a shadow route forwards a refused request with its
    // identity.
    permit.source = Some(source);
    let principal: &Principal = permit.principal.insert(principal);
    client_cert::check_binding(principal, conn)?;
    if let Some(req) = &route.config.client_cert {
        client_cert::check(conn, Some(req))?;
    }
    if let Some(allowed) = &route.config.dialects {
        if !allowed.contains(&principal.origin) {
            return Err(Reject::InvalidToken(Invalid::WrongDialect));
        }
    }
    meets(&route.config.require, ex, parts, path, principal).await
}

/// `Ok` when `principal` meets `reqs` on this request, else the refusal naming what is missing.
async fn meets(
    reqs: &Requirements,
    ex: Exchange<'_>,
    parts: &Parts,
    path: &str,
    principal: &Principal,
) -> Result<(), Reject> {
    if let Some(scope) = &reqs.oauth_scope {
        if !principal.scopes.iter().any(|s| **s == **scope) {
            return Err(Reject::Forbidden(format!("oauth scope {scope}")));
        }
    }
    if let Some(need) = reqs.level {
        if !principal.level.is_some_and(|held| held.satisfies(need)) {
            return Err(Reject::Forbidden(format!(
                "hosecloud level {}",
                need.as_str()
            )));
        }
    }
    if let Some(req) = &reqs.resource {
        resource(req, ex, parts, path, principal).await?;
    }
    Ok(())
}

/// A bkflow resource permission, its facts read from the route's lookup when it has one.
async fn resource(
    req: &crate::config::ResourceRequirement,
    ex: Exchange<'_>,
    parts: &Parts,
    path: &str,
    principal: &Principal,
) -> Result<(), Reject> {
    let (route, rt, shared) = (ex.route, ex.rt, ex.shared());
    let id = require::resource_id(req, parts, path, &route.config.pattern)?;
    // Facts are fetched only for a token that holds a grant at all.
    let facts = match (&route.lookup, &principal.grant) {
        (Some(l), Some(_)) => {
            let credential = crate::state::credential::header(route, shared)?;
            let pool = &rt.upstreams[l.upstream()];
            Some(Box::pin(l.facts(&route.config.pattern, path, pool, credential)).await?)
        }
        _ => None,
    };
    require::check(req, principal, &id, facts.as_deref()).map_err(Reject::Forbidden)
}

/// Who `token` stands for, whoever issued it, as the guard judges it on a route admitting
/// `admitted` (all origins when `None`); what `POST /admin/introspect` reports.
pub async fn resolve(
    token: &str,
    admitted: Option<&[Origin]>,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Arc<Principal>, Reject> {
    let key = shared.hot.key(token);
    match verify::hot(&key, rt, shared) {
        Some(r) => r,
        None => {
            let cold = ColdToken {
                token,
                key,
                admitted,
                client: None,
            };
            resolve_cold(cold, rt, shared).await
        }
    }
}

/// A hot-map miss: an external issuer's JWT goes to its keys; anything else is looked up as
/// tollgate's own (after a catch-up with a shared store), then, when still unknown and
/// opaque, asked about at the admitted introspection endpoints.
async fn resolve_cold(
    cold: ColdToken<'_>,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Arc<Principal>, Reject> {
    let ColdToken {
        token,
        key,
        admitted,
        ..
    } = cold;
    shared.metrics.cache_misses.inc();
    let jwt = crate::token::is_jwt(token);
    if jwt {
        if let Some(i) = external::jwt_issuer(token, rt) {
            return external::from_jwt(i, token, key, rt, shared).await;
        }
    }
    let own = match verify::own(token, key, rt, shared) {
        // Another replica may have issued it a moment ago: read the shared stream, then look again.
        Err(Reject::InvalidToken(Invalid::Bad)) if shared.store.is_shared() && !jwt => {
            shared.catch_up().await?;
            verify::settle(token, rt, shared)
        }
        other => other,
    };
    match own {
        Err(Reject::InvalidToken(Invalid::Bad)) if !jwt && external::introspects(admitted, rt) => {
            external::introspected(cold, rt, shared).await
        }
        other => other,
    }
}
