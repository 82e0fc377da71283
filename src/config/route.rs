//! `routes:`: patterns, auth, requirements and lookups.

use super::{Level, Origin};
use crate::permission::{Perm, Resource};
use crate::route::Pattern;
use http::Method;
use std::time::Duration;

/// `auth:` of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No token needed.
    None,
    /// A valid bearer token needed.
    Bearer,
    /// A verified client certificate alone authenticates (mutual TLS).
    ClientCert,
}

/// `mode:` of a route: its auth decision enforced, or only logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteMode {
    /// Refusals are answered.
    #[default]
    Enforce,
    /// Every request the guard would refuse for its token is forwarded as if allowed; the
    /// decision is logged (`shadow_decision`) and counted with `mode="shadow"`.
    Shadow,
}

/// Token requirements: an oauth scope, a hosecloud level, a bkflow resource permission.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// oauth scope the token must hold.
    pub oauth_scope: Option<String>,
    /// Hosecloud level the token must hold.
    pub level: Option<Level>,
    /// BKFlow resource permission the token must hold.
    pub resource: Option<ResourceRequirement>,
}

/// `require.client_cert`: what the verified client certificate must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequirement {
    /// Its subject: a whole distinguished name (RFC 4514, compared attribute by attribute)
    /// when the text holds `=`, else the subject's CN.
    pub subject: Option<SubjectMatch>,
    /// One of its SAN DNS names or URIs.
    pub san: Option<String>,
}

/// What `require.client_cert.subject` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectMatch {
    /// The whole subject, attribute by attribute, in certificate order.
    Dn(Vec<crate::config::dn::Attr>),
    /// The subject's CN.
    Cn(String),
}

impl std::fmt::Display for SubjectMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubjectMatch::Dn(a) => f.write_str(&crate::config::dn::render(a)),
            SubjectMatch::Cn(cn) => {
                f.write_str(&crate::config::dn::render(&[("CN".into(), cn.clone())]))
            }
        }
    }
}

/// Body style of 401/403 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorStyle {
    /// `{statusCode, errMsg}`.
    #[default]
    Oauth,
    /// `{code: "401", msg, data: null}`.
    Hosecloud,
    /// `{code: 9999166x, msg}`.
    Feishu,
    /// `{result: false, code, message, data: null}`.
    Bkflow,
}

impl ErrorStyle {
    /// Parses a YAML name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "oauth" => ErrorStyle::Oauth,
            "hosecloud" => ErrorStyle::Hosecloud,
            "feishu" => ErrorStyle::Feishu,
            "bkflow" => ErrorStyle::Bkflow,
            _ => return None,
        })
    }
}

/// One proxied route.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Compiled pattern.
    pub pattern: Pattern,
    /// Allowed methods; any when `None`.
    pub methods: Option<Vec<Method>>,
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    /// Token needed or not.
    pub auth: AuthMode,
    /// Error body style.
    pub errors: ErrorStyle,
    /// `require`: what the token must hold.
    pub require: Requirements,
    /// Enforced or shadow.
    pub mode: RouteMode,
    /// `require_shadow`: a stricter requirement tried beside the enforced one, its outcome
    /// only logged and counted.
    pub shadow: Option<Requirements>,
    /// What the client certificate must say (with a token, or alone on `auth: client_cert`).
    pub client_cert: Option<CertRequirement>,
    /// Dialects and issuers whose tokens are accepted; all when `None`.
    pub dialects: Option<Vec<Origin>>,
    /// Claims of an external issuer's token forwarded as headers on this route.
    pub claims_to_headers: Vec<(String, http::HeaderName)>,
    /// Keep the presented credential when forwarding.
    pub forward_token: bool,
    /// Stored bkflow credential (space, name) sent upstream as `X-Bkapi-Authorization`.
    pub upstream_credential: Option<(u64, String)>,
    /// Where the resource's facts are read (`{lookup:field}` references).
    pub lookup: Option<LookupConfig>,
    /// `rate_limit:`: requests allowed per app or per client address.
    pub rate_limit: Option<RouteRate>,
}

/// A route's `rate_limit:`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteRate {
    /// What is counted.
    pub key: RateKey,
    /// The sustained rate.
    pub rate: crate::config::Rate,
    /// Requests allowed at once.
    pub burst: u32,
}

/// Whose requests a route's rate limit counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKey {
    /// The token's app (the route needs a token).
    App,
    /// The client address (IPv6 per /64).
    Ip,
}

/// One piece of a lookup path: text, or a route parameter filled in per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPart {
    /// Written as is.
    Lit(String),
    /// The value of this route parameter.
    Param(String),
}

/// `routes[].lookup: { upstream, path, ttl }`.
#[derive(Debug, Clone)]
pub struct LookupConfig {
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    /// The path, with the route's parameters to fill in.
    pub path: Vec<PathPart>,
    /// How long an answer is reused for the same resolved path.
    pub ttl: Duration,
}

impl LookupConfig {
    /// Parses `/internal/tasks/{task_id}/meta` into its pieces.
    pub fn parse_path(text: &str) -> Result<Vec<PathPart>, String> {
        if !text.starts_with('/') || text.contains(['?', '#', ' ', '%', '\\']) {
            return Err(format!("{text:?} must be a plain absolute path"));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(|| format!("{text:?}: unclosed {{"))?;
            if open > 0 {
                parts.push(PathPart::Lit(rest[..open].to_owned()));
            }
            parts.push(PathPart::Param(rest[open + 1..close].to_owned()));
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("{text:?}: unmatched }}"));
        }
        if !rest.is_empty() {
            parts.push(PathPart::Lit(rest.to_owned()));
        }
        Ok(parts)
    }
}

/// Where a requirement's value comes from in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRef {
    /// Written in the config.
    Literal(String),
    /// `{name}`: a parameter of the route pattern (only ever a resource id).
    Path(String),
    /// `{query:name}`.
    Query(String),
    /// `{header:Name}`.
    Header(http::HeaderName),
    /// `{lookup:field}`: a field of the route's lookup answer.
    Lookup(String),
}

impl ValueRef {
    /// Parses `literal`, `{param}`, `{query:name}`, `{header:Name}` or `{lookup:field}`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
            return Ok(ValueRef::Literal(s.to_owned()));
        };
        if let Some(f) = inner.strip_prefix("lookup:") {
            if f.is_empty() {
                return Err("{lookup:} needs a field name".into());
            }
            return Ok(ValueRef::Lookup(f.to_owned()));
        }
        if let Some(q) = inner.strip_prefix("query:") {
            return Ok(ValueRef::Query(q.to_owned()));
        }
        if let Some(h) = inner.strip_prefix("header:") {
            return http::HeaderName::from_bytes(h.as_bytes())
                .map(ValueRef::Header)
                .map_err(|_| format!("{h:?} is not a header name"));
        }
        Ok(ValueRef::Path(inner.to_owned()))
    }
}

/// As written in the config: `literal`, `{param}`, `{query:name}`, `{header:Name}`, `{lookup:field}`.
impl std::fmt::Display for ValueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueRef::Literal(s) => f.write_str(s),
            ValueRef::Path(p) => write!(f, "{{{p}}}"),
            ValueRef::Query(q) => write!(f, "{{query:{q}}}"),
            ValueRef::Header(h) => write!(f, "{{header:{h}}}"),
            ValueRef::Lookup(l) => write!(f, "{{lookup:{l}}}"),
        }
    }
}

/// `require: { resource, id, permission, space, scope, template }`.
#[derive(Debug, Clone)]
pub struct ResourceRequirement {
    /// Type.
    pub resource: Resource,
    /// The resource's id.
    pub id: ValueRef,
    /// Permission.
    pub perm: Perm,
    /// The SCOPE id the resource lives in.
    pub scope: Option<ValueRef>,
    /// The template a task came from.
    pub template: Option<ValueRef>,
    /// The space the resource belongs to; a token of another space never satisfies it
    /// (required by the config check; a requirement without one refuses every request).
    pub space: Option<ValueRef>,
    /// How a task was created: TEMPLATE MOCK implies task rights only on `MOCK` tasks.
    pub create_method: Option<ValueRef>,
}
