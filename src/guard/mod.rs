//! The guard: token → `Principal` → `Permit`. Forwarding requires a `Permit`, and only this
//! module can make one, so an unchecked request cannot be forwarded.

pub mod bearer;
pub mod lookup;
pub mod principal;
pub mod require;
pub mod verify;

#[cfg(test)]
mod reload_tests;

use crate::config::{AuthMode, Dialect};
use crate::reject::{Invalid, Reject};
use crate::shared::Shared;
use crate::state::{CompiledRoute, Runtime};
use bearer::Source;
use http::request::Parts;
use principal::Principal;
use std::sync::Arc;

/// Proof that the guard let a request through; `proxy::forward` takes one.
#[derive(Debug)]
pub struct Permit {
    principal: Option<Arc<Principal>>,
    source: Option<Source>,
}

impl Permit {
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

/// Decides whether the request in `parts` (whose normalised path is `path`) may use `route`.
/// `seen` receives the dialect of a verified token, allowed or not (the metric's label).
pub async fn check(
    parts: &Parts,
    path: &str,
    route: &CompiledRoute,
    rt: &Runtime,
    shared: &Shared,
    seen: &mut Option<Dialect>,
) -> Result<Permit, Reject> {
    if route.config.auth == AuthMode::None {
        return Ok(Permit {
            principal: None,
            source: None,
        });
    }
    let (token, source) = bearer::extract(parts)?.ok_or(Reject::MissingToken)?;
    let principal = match verify::principal(&token, rt, shared) {
        // Another replica may have issued it a moment ago: read the shared stream, then look again.
        Err(Reject::InvalidToken(Invalid::Bad))
            if shared.store.is_shared() && !crate::token::is_jwt(&token) =>
        {
            // Boxed, as is the lookup below: the rare paths keep the usual request's future small.
            Box::pin(shared.catch_up()).await?;
            verify::settle(&token, rt, shared)?
        }
        other => other?,
    };
    *seen = Some(principal.dialect);
    if let Some(allowed) = &route.config.dialects {
        if !allowed.contains(&principal.dialect) {
            return Err(Reject::InvalidToken(Invalid::WrongDialect));
        }
    }
    if let Some(scope) = &route.config.oauth_scope {
        if !principal.scopes.iter().any(|s| **s == **scope) {
            return Err(Reject::Forbidden(format!("oauth scope {scope}")));
        }
    }
    if let Some(need) = route.config.level {
        if !principal.level.is_some_and(|held| held.satisfies(need)) {
            return Err(Reject::Forbidden(format!(
                "hosecloud level {}",
                need.as_str()
            )));
        }
    }
    if let Some(req) = &route.config.resource {
        let id = require::resource_id(req, parts, path, &route.config.pattern)?;
        // Facts are fetched only for a token that holds a grant at all.
        let facts = match (&route.lookup, &principal.grant) {
            (Some(l), Some(_)) => {
                let credential = crate::proxy::credential::header(route, shared)?;
                let pool = &rt.upstreams[l.upstream()];
                Some(Box::pin(l.facts(&route.config.pattern, path, pool, credential)).await?)
            }
            _ => None,
        };
        require::check(
            req,
            &principal,
            &id,
            path,
            &route.config.pattern,
            facts.as_deref(),
        )
        .map_err(Reject::Forbidden)?;
    }
    Ok(Permit {
        principal: Some(principal),
        source: Some(source),
    })
}
