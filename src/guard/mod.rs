//! The guard: token → `Principal` → `Permit`. Forwarding requires a `Permit`, and only this
//! module can make one, so an unchecked request cannot be forwarded.

pub mod bearer;
pub mod lookup;
pub mod permission;
pub mod require;
pub mod verify;

#[cfg(test)]
mod reload_tests;

use crate::config::{App, AuthMode, Dialect, Level};
use crate::reject::{Invalid, Reject};
use crate::state::{CompiledRoute, Runtime, Shared};
pub use bearer::Source;
use http::request::Parts;
use permission::{grant_covers, Grant};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Who a verified token stands for.
#[derive(Debug)]
pub struct Principal {
    /// App the token was issued to.
    pub app: Box<str>,
    /// Dialect that issued it.
    pub dialect: Dialect,
    /// oauth scopes it holds.
    pub scopes: Box<[Box<str>]>,
    /// hosecloud level it holds.
    pub level: Option<Level>,
    /// bkflow: the resource permission it holds.
    pub grant: Option<Grant>,
    /// bkflow: its space.
    pub space: Option<u64>,
    /// bkflow: the user it was applied for.
    pub user: Option<Box<str>>,
    /// feishu: the tenant of a tenant token.
    pub tenant: Option<Box<str>>,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Token id (JWT `jti`; for opaque tokens, a hash of the token).
    pub jti: Box<str>,
    /// Identity header values, made once per token, not per request.
    pub identity: Identity,
    /// The `Runtime::generation` whose config this principal was held to.
    pub generation: u64,
    revoked: AtomicBool,
}

/// Identity header values of a principal, ready to send.
#[derive(Debug, Default)]
pub struct Identity {
    /// `X-Tollgate-App`.
    pub app: Option<http::HeaderValue>,
    /// `X-Tollgate-Scope` (space-separated oauth scopes, or the hosecloud level, or the bkflow grant).
    pub scope: Option<http::HeaderValue>,
    /// `X-Tollgate-Space`.
    pub space: Option<http::HeaderValue>,
    /// `X-Tollgate-User`.
    pub user: Option<http::HeaderValue>,
    /// `X-Tollgate-Tenant`.
    pub tenant: Option<http::HeaderValue>,
}

impl Principal {
    /// A principal holding nothing beyond its app and dialect; add with the `with_*` methods.
    pub fn new(app: Box<str>, dialect: Dialect, exp: u64, jti: Box<str>) -> Self {
        Principal {
            app,
            dialect,
            scopes: Box::default(),
            level: None,
            grant: None,
            space: None,
            user: None,
            tenant: None,
            exp,
            jti,
            identity: Identity::default(),
            generation: 0,
            revoked: AtomicBool::new(false),
        }
        .sealed()
    }

    /// With oauth scopes.
    pub fn with_scopes(mut self, scopes: Box<[Box<str>]>) -> Self {
        self.scopes = scopes;
        self.sealed()
    }

    /// With a hosecloud level.
    pub fn with_level(mut self, level: Option<Level>) -> Self {
        self.level = level;
        self.sealed()
    }

    /// With a bkflow space, user and grant.
    pub fn with_bkflow(mut self, space: u64, user: &str, grant: Grant) -> Self {
        self.space = Some(space);
        self.user = Some(user.into());
        self.grant = Some(grant);
        self.sealed()
    }

    /// With the feishu tenant of a tenant token.
    pub fn with_tenant(mut self, tenant: Option<&str>) -> Self {
        self.tenant = tenant.map(Into::into);
        self.sealed()
    }

    /// Holds the principal to what its app may hold *now* (SPEC §4): no app, no token; oauth
    /// scopes, the hosecloud level and the bkflow grant capped by the current config. What a
    /// token says it holds is only ever narrowed here, never widened.
    pub fn held_to(mut self, app: Option<&App>, generation: u64) -> Result<Self, Invalid> {
        let app = app.ok_or(Invalid::Withdrawn)?;
        if let Some(space) = self.space {
            if app.space_id != Some(space) {
                return Err(Invalid::Withdrawn);
            }
        }
        if self
            .scopes
            .iter()
            .any(|s| !app.oauth_scopes.iter().any(|a| **a == **s))
        {
            let kept: Vec<Box<str>> = self
                .scopes
                .iter()
                .filter(|s| app.oauth_scopes.iter().any(|a| **a == ***s))
                .cloned()
                .collect();
            self.scopes = kept.into_boxed_slice();
        }
        if app.level == Level::Tenant {
            self.level = self.level.map(|_| Level::Tenant);
        }
        if let Some(g) = &self.grant {
            if !app.grants.iter().any(|a| grant_covers(a, g)) {
                self.grant = None;
            }
        }
        self.generation = generation;
        Ok(self.sealed())
    }

    /// Recomputes the identity header values from the fields.
    fn sealed(mut self) -> Self {
        let value = |s: &str| http::HeaderValue::from_str(s).ok();
        let scope = if let Some(g) = &self.grant {
            Some(format!(
                "{}:{}:{}",
                g.resource.as_str(),
                g.id,
                g.perm.as_str()
            ))
        } else if let Some(l) = self.level {
            Some(l.as_str().to_owned())
        } else if !self.scopes.is_empty() {
            Some(self.scopes.join(" "))
        } else {
            None
        };
        self.identity = Identity {
            app: value(&self.app),
            scope: scope.as_deref().and_then(value),
            space: self.space.and_then(|s| value(&s.to_string())),
            user: self.user.as_deref().and_then(value),
            tenant: self.tenant.as_deref().and_then(value),
        };
        self
    }
    /// Flags it revoked; hot copies held elsewhere see it at once.
    pub fn mark_revoked(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    /// True once revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

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
        Err(Reject::InvalidToken(Invalid::Bad)) if shared.is_shared() && !token.contains('.') => {
            shared.catch_up().await?;
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
            (Some(l), Some(_)) => Some(l.facts(route, path, rt, shared).await?),
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
