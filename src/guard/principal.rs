//! Who a verified token stands for, held to the current config, with the identity header
//! values made once per token.

use crate::config::{App, Dialect, Level};
use crate::permission::{grant_covers, Grant};
use crate::reject::Invalid;
use std::sync::atomic::{AtomicBool, Ordering};

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
