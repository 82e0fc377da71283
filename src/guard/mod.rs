//! The guard: token → `Principal` → `Permit`. Forwarding requires a `Permit`, and only this
//! module can make one, so an unchecked request cannot be forwarded.

pub mod bearer;
pub mod permission;
pub mod verify;

use crate::config::{AuthMode, Dialect, Level};
use crate::reject::{Invalid, Reject};
use crate::state::{CompiledRoute, Shared};
use crate::token::jwt::JwtKeys;
pub use bearer::Source;
use http::request::Parts;
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
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Token id.
    pub jti: Box<str>,
    /// `X-Tollgate-App` / `X-Tollgate-Scope` values, made once per token, not per request.
    pub identity: Identity,
    revoked: AtomicBool,
}

/// Identity header values of a principal, ready to send.
#[derive(Debug, Default)]
pub struct Identity {
    /// `X-Tollgate-App`.
    pub app: Option<http::HeaderValue>,
    /// `X-Tollgate-Scope` (space-separated scopes).
    pub scope: Option<http::HeaderValue>,
}

impl Principal {
    /// A principal not (yet) revoked.
    pub fn new(
        app: Box<str>,
        dialect: Dialect,
        scopes: Box<[Box<str>]>,
        level: Option<Level>,
        exp: u64,
        jti: Box<str>,
    ) -> Self {
        let identity = Identity {
            app: http::HeaderValue::from_str(&app).ok(),
            scope: match scopes.is_empty() {
                true => None,
                false => http::HeaderValue::from_str(&scopes.join(" ")).ok(),
            },
        };
        Principal {
            app,
            dialect,
            scopes,
            level,
            exp,
            jti,
            identity,
            revoked: AtomicBool::new(false),
        }
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

/// Decides whether the request in `parts` may use `route`.
pub fn check(
    parts: &Parts,
    route: &CompiledRoute,
    shared: &Shared,
    keys: &JwtKeys,
) -> Result<Permit, Reject> {
    if route.config.auth == AuthMode::None {
        return Ok(Permit {
            principal: None,
            source: None,
        });
    }
    let (token, source) = bearer::extract(parts)?.ok_or(Reject::MissingToken)?;
    let principal = verify::principal(&token, keys, shared)?;
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
    Ok(Permit {
        principal: Some(principal),
        source: Some(source),
    })
}
