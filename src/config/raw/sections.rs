//! `dialects:`, `upstreams:` and `routes:` as written.

use crate::config::duration::ConfigDuration;
use serde::Deserialize;

/// `dialects:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDialects {
    /// Seed 003 and RFC 6749.
    #[serde(default)]
    pub oauth: Option<RawOauth>,
    /// Seed 001.
    #[serde(default)]
    pub hosecloud: Option<RawHosecloud>,
    /// Seed 002.
    #[serde(default)]
    pub feishu: Option<RawFeishu>,
    /// Seeds 000 and 004.
    #[serde(default)]
    pub bkflow: Option<RawBkflow>,
}

/// `dialects.oauth:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOauth {
    /// Seed 003 path.
    #[serde(default)]
    pub path: Option<String>,
    /// RFC 6749 client-credentials path.
    #[serde(default)]
    pub rfc_path: Option<String>,
    /// RFC 7009 revocation path.
    #[serde(default)]
    pub revoke_path: Option<String>,
    /// Only `jwt`.
    #[serde(default)]
    pub token: Option<String>,
    /// Token lifetime.
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
    /// Bind tokens issued over mutual TLS to the client certificate (RFC 8705).
    #[serde(default)]
    pub certificate_bound: bool,
}

/// `dialects.hosecloud:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHosecloud {
    /// getAccessToken path.
    #[serde(default)]
    pub path: Option<String>,
    /// refresh path (v3 JSON shape).
    #[serde(default)]
    pub refresh_path: Option<String>,
    /// documented v2 refresh path (query parameters).
    #[serde(default)]
    pub refresh_v2_path: Option<String>,
    /// Access token lifetime.
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
    /// Refresh token lifetime.
    #[serde(default)]
    pub refresh_ttl: Option<ConfigDuration>,
    /// How long a refresh chain may go on from the login that started it.
    #[serde(default)]
    pub refresh_max_lifetime: Option<ConfigDuration>,
}

/// `dialects.feishu:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeishu {
    /// app_access_token path.
    #[serde(default)]
    pub path: Option<String>,
    /// Token lifetime.
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
    /// Renewal window.
    #[serde(default)]
    pub renew_before: Option<ConfigDuration>,
    /// Lifetime of an app ticket.
    #[serde(default)]
    pub ticket_ttl: Option<ConfigDuration>,
}

/// `dialects.bkflow:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBkflow {
    /// Path prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Token lifetime.
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
    /// Whether a repeated apply renews.
    #[serde(default)]
    pub auto_renew: Option<bool>,
    /// `seed` or `iso8601`.
    #[serde(default)]
    pub time_format: Option<String>,
    /// Zone of `expired_time`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// One entry of `routes:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Pattern.
    pub path: String,
    /// Allowed methods; all when absent.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Upstream name.
    pub upstream: String,
    /// `none` or `bearer`.
    #[serde(default)]
    pub auth: Option<String>,
    /// Error body style.
    #[serde(default)]
    pub errors: Option<String>,
    /// Permission required.
    #[serde(default)]
    pub require: Option<RawRequire>,
    /// Dialects accepted.
    #[serde(default)]
    pub dialects: Option<Vec<String>>,
    /// Keep the client's credential when forwarding.
    #[serde(default)]
    pub forward_token: bool,
    /// Stored credential sent upstream.
    #[serde(default)]
    pub upstream_credential: Option<RawCredentialRef>,
    /// Where the facts about the resource (space, scope, template) are read.
    #[serde(default)]
    pub lookup: Option<RawLookup>,
    /// Claims of an external issuer's token forwarded as headers: `{ claim: header-name }`.
    #[serde(default)]
    pub claims_to_headers: std::collections::BTreeMap<String, String>,
    /// `enforce` (default) or `shadow`.
    #[serde(default)]
    pub mode: Option<String>,
    /// A stricter requirement tried beside `require`, only logged and counted.
    #[serde(default)]
    pub require_shadow: Option<RawRequire>,
    /// Requests allowed per app or per client address.
    #[serde(default)]
    pub rate_limit: Option<RawRouteRate>,
}

/// `routes[].rate_limit:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteRate {
    /// `app` (the token's) or `ip` (the client address).
    pub key: String,
    /// `100/s`, `600/min`, `10000/h`.
    pub rate: String,
    /// Requests allowed at once; the rate's count per second when absent.
    #[serde(default)]
    pub burst: Option<u32>,
}

/// `routes[].lookup:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLookup {
    /// Upstream name.
    pub upstream: String,
    /// Path with the route's `{param}`s.
    pub path: String,
    /// How long an answer is reused.
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
}

/// `routes[].require:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequire {
    /// TASK | TEMPLATE | SCOPE.
    #[serde(default)]
    pub resource: Option<String>,
    /// Resource id reference.
    #[serde(default)]
    pub id: Option<String>,
    /// Permission.
    #[serde(default)]
    pub permission: Option<String>,
    /// SCOPE id reference.
    #[serde(default)]
    pub scope: Option<String>,
    /// Template id reference.
    #[serde(default)]
    pub template: Option<String>,
    /// How a task was created (`MOCK` lets TEMPLATE MOCK grant task rights).
    #[serde(default)]
    pub create_method: Option<String>,
    /// Space reference.
    #[serde(default)]
    pub space: Option<String>,
    /// Hosecloud level.
    #[serde(default)]
    pub level: Option<String>,
    /// oauth scope name.
    #[serde(default)]
    pub oauth_scope: Option<String>,
    /// The client certificate's subject or SAN.
    #[serde(default)]
    pub client_cert: Option<RawCertRequirement>,
}

/// `routes[].upstream_credential:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentialRef {
    /// Space id.
    pub space: u64,
    /// Credential name.
    pub name: String,
}

/// `routes[].require.client_cert:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertRequirement {
    /// The subject (as `X-Tollgate-Client-Cert-Subject` writes it) or its CN.
    #[serde(default)]
    pub subject: Option<String>,
    /// One of its SAN DNS names or URIs.
    #[serde(default)]
    pub san: Option<String>,
}
