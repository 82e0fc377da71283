//! Who a verified token stands for, held to the current config, with the identity header
//! values made once per token. What a token holds (`Holding`) is shared by every token of
//! the same app that holds the same, so a million hot tokens of one app keep one copy of it.

use crate::config::{App, Dialect, Level, Origin};
use crate::permission::{grant_covers, Grant};
use crate::reject::Invalid;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Who a verified token stands for: what it holds (shared, reached through `Deref`) and what
/// is its own.
#[derive(Debug)]
pub struct Principal {
    held: Arc<Holding>,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Token id (JWT `jti`; for opaque tokens, a hash of the token).
    pub jti: Box<str>,
    /// The `Runtime::generation` whose config this principal was held to.
    pub generation: u64,
    /// RFC 8705: the SHA-256 of the client certificate the token is bound to.
    pub bound_to: Option<[u8; 32]>,
    revoked: AtomicBool,
}

/// What a token holds, with its identity header values.
#[derive(Debug, Clone)]
pub struct Holding {
    /// App the token was issued to.
    pub app: Box<str>,
    /// Who issued it: one of tollgate's dialects or an external issuer.
    pub origin: Origin,
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
    /// External tokens: the claims a `claims_to_headers` mapping forwards, as header values.
    pub claims: Box<[(Box<str>, http::HeaderValue)]>,
    /// Identity header values, made once, not per request.
    pub identity: Identity,
}

// Equal facts make equal identity headers, so the headers take no part in equality.
impl PartialEq for Holding {
    fn eq(&self, o: &Self) -> bool {
        self.app == o.app
            && self.origin == o.origin
            && self.scopes == o.scopes
            && self.level == o.level
            && self.grant == o.grant
            && self.space == o.space
            && self.user == o.user
            && self.tenant == o.tenant
            && self.claims == o.claims
    }
}

impl Eq for Holding {}

impl Hash for Holding {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.app.hash(state);
        self.scopes.hash(state);
        self.space.hash(state);
        self.user.hash(state);
        self.tenant.hash(state);
        self.origin.hash(state);
    }
}

impl Holding {
    /// The dialect, for tollgate's own tokens.
    pub fn dialect(&self) -> Option<Dialect> {
        self.origin.dialect()
    }
}

impl Deref for Principal {
    type Target = Holding;

    fn deref(&self) -> &Holding {
        &self.held
    }
}

/// Identity header values of a principal, ready to send.
#[derive(Debug, Default, Clone)]
pub struct Identity {
    /// `X-Tollgate-Dialect`: the dialect's or the external issuer's name.
    pub dialect: Option<http::HeaderValue>,
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

/// One shared copy of each distinct `Holding` among the hot tokens.
#[derive(Debug, Default)]
pub struct Holdings(dashmap::DashMap<Arc<Holding>, ()>);

impl Holdings {
    /// `p` with its holding replaced by the shared copy of an equal one (which it becomes
    /// when there is none yet).
    pub fn share(&self, mut p: Principal) -> Principal {
        if let Some(e) = self.0.get(&*p.held) {
            p.held = Arc::clone(e.key());
            return p;
        }
        self.0.insert(Arc::clone(&p.held), ());
        p
    }

    /// Drops the copies no token holds any more; returns how many remain.
    pub fn sweep(&self) -> usize {
        self.0.retain(|h, _| Arc::strong_count(h) > 1);
        self.0.len()
    }

    /// Drops every copy (the hot map was cleared).
    pub fn clear(&self) {
        self.0.clear();
    }
}

impl Principal {
    /// A principal of one of tollgate's dialects holding nothing beyond its app; add with the
    /// `with_*` methods.
    pub fn new(app: Box<str>, dialect: Dialect, exp: u64, jti: Box<str>) -> Self {
        let name = http::HeaderValue::from_static(dialect.as_str());
        Self::of(app, Origin::Own(dialect), name, exp, jti)
    }

    /// A principal of the external issuer `index` (named `name`); valid for caching until
    /// `exp`.
    pub fn external(app: Box<str>, index: u16, name: &str, exp: u64, jti: Box<str>) -> Self {
        let name = http::HeaderValue::from_str(name).unwrap_or(http::HeaderValue::from_static(""));
        Self::of(app, Origin::Issuer(index), name, exp, jti)
    }

    fn of(app: Box<str>, origin: Origin, name: http::HeaderValue, exp: u64, jti: Box<str>) -> Self {
        Principal {
            held: Arc::new(Holding {
                app,
                origin,
                scopes: Box::default(),
                level: None,
                grant: None,
                space: None,
                user: None,
                tenant: None,
                claims: Box::default(),
                identity: Identity {
                    dialect: Some(name),
                    ..Identity::default()
                },
            }),
            exp,
            jti,
            generation: 0,
            bound_to: None,
            revoked: AtomicBool::new(false),
        }
        .sealed()
    }

    /// With the claims forwarded as headers (external tokens).
    pub fn with_claims(mut self, claims: Box<[(Box<str>, http::HeaderValue)]>) -> Self {
        self.holding().claims = claims;
        self
    }

    /// Bound to the client certificate whose SHA-256 is `thumbprint`.
    pub fn with_binding(mut self, thumbprint: Option<[u8; 32]>) -> Self {
        self.bound_to = thumbprint;
        self
    }

    /// Held to the current runtime's generation (external tokens: nothing else to hold to).
    pub fn at_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// The holding, to change before the principal is shared.
    fn holding(&mut self) -> &mut Holding {
        Arc::make_mut(&mut self.held)
    }

    /// With oauth scopes.
    pub fn with_scopes(mut self, scopes: Box<[Box<str>]>) -> Self {
        self.holding().scopes = scopes;
        self.sealed()
    }

    /// With a hosecloud level.
    pub fn with_level(mut self, level: Option<Level>) -> Self {
        self.holding().level = level;
        self.sealed()
    }

    /// With a bkflow space, user and grant.
    pub fn with_bkflow(mut self, space: u64, user: &str, grant: Grant) -> Self {
        let h = self.holding();
        h.space = Some(space);
        h.user = Some(user.into());
        h.grant = Some(grant);
        self.sealed()
    }

    /// With the feishu tenant of a tenant token.
    pub fn with_tenant(mut self, tenant: Option<&str>) -> Self {
        self.holding().tenant = tenant.map(Into::into);
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
            self.holding().scopes = kept.into_boxed_slice();
        }
        if app.level == Level::Tenant {
            let h = self.holding();
            h.level = h.level.map(|_| Level::Tenant);
        }
        if let Some(g) = &self.grant {
            if !app.grants.iter().any(|a| grant_covers(a, g)) {
                self.holding().grant = None;
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
        let identity = Identity {
            dialect: self.identity.dialect.clone(),
            app: value(&self.app),
            scope: scope.as_deref().and_then(value),
            space: self.space.and_then(|s| value(&s.to_string())),
            user: self.user.as_deref().and_then(value),
            tenant: self.tenant.as_deref().and_then(value),
        };
        self.holding().identity = identity;
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
