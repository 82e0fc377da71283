//! Serde structs mirroring the YAML one to one; unknown keys are refused.

mod issuer;
mod sections;
mod upstream;

pub use issuer::{OneOrMany, RawClaims, RawIssuer};
pub use sections::{
    RawBkflow, RawCertRequirement, RawCredentialRef, RawDialects, RawFeishu, RawHosecloud,
    RawLookup, RawOauth, RawRequire, RawRoute, RawRouteRate,
};
pub use upstream::{RawHealth, RawPassive, RawRetries, RawUpstream, RawUpstreamTls};

use super::duration::ConfigDuration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Public listener.
    pub listen: RawListen,
    /// Admin listener (metrics, health, admin API).
    #[serde(default)]
    pub admin: Option<RawAdmin>,
    /// Durable state.
    #[serde(default)]
    pub store: RawStore,
    /// JWT signing.
    #[serde(default)]
    pub signing: RawSigning,
    /// Clients allowed to ask for tokens.
    #[serde(default)]
    pub apps: Vec<RawApp>,
    /// Trusted external identity providers.
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    /// Issuing dialects, each enabled by its presence.
    #[serde(default)]
    pub dialects: RawDialects,
    /// Named upstream pools.
    #[serde(default)]
    pub upstreams: BTreeMap<String, RawUpstream>,
    /// Proxied routes, first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Edge limits and timeouts.
    #[serde(default)]
    pub limits: RawLimits,
    /// Path rules beyond the safe default.
    #[serde(default)]
    pub paths: RawPaths,
    /// Header rules.
    #[serde(default)]
    pub headers: RawHeaders,
    /// Worker threads (default: the cores the process may use).
    #[serde(default)]
    pub workers: Option<usize>,
    /// `multi_thread` (default) or `current_thread`.
    #[serde(default)]
    pub runtime: Option<String>,
}

/// `paths:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    /// `refuse` (default) or `allow` `;` in segments.
    #[serde(default)]
    pub matrix_params: Option<String>,
}

/// `headers:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// `drop` (default) or `allow` client header names with `_`.
    #[serde(default)]
    pub underscores_in_headers: Option<String>,
}

/// `listen:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// `host:port`.
    pub address: String,
    /// TLS files; plain HTTP when absent.
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// Every connection opens with a PROXY protocol v1 or v2 header.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// CIDRs of the proxies in front, whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `listen.tls:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain (the default certificate).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// More certificates, picked by the name the client asks for (SNI).
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// Refuse the handshake of a client that names no served name (or none).
    #[serde(default)]
    pub sni_strict: bool,
    /// Client certificates (mutual TLS).
    #[serde(default)]
    pub client_auth: Option<RawClientAuth>,
}

/// `listen.tls.certificates[]:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Names served (default: the certificate's DNS names).
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

/// `listen.tls.client_auth:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// PEM roots client certificates must chain to.
    pub ca_file: PathBuf,
    /// `optional` (default) or `required`.
    #[serde(default)]
    pub mode: Option<String>,
    /// PEM certificate revocation lists.
    #[serde(default)]
    pub crl_file: Option<PathBuf>,
}

/// `admin:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `host:port`.
    pub address: String,
    /// File holding the bearer token the admin API requires.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// `Host` values the admin API answers besides its own address.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// `store:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `embedded` or `redis`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Embedded store file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Redis URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Master key file.
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// Bound of the hot-token map.
    #[serde(default)]
    pub hot_tokens: Option<usize>,
    /// How often the shared store is compacted.
    #[serde(default)]
    pub compact_every: Option<ConfigDuration>,
    /// Redis over TLS: CA and client certificate files.
    #[serde(default)]
    pub tls: Option<RawRedisTls>,
    /// File holding the Redis (ACL) password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Redis Sentinel addresses (`host:port`).
    #[serde(default)]
    pub sentinels: Vec<String>,
    /// The name Sentinel knows the primary by.
    #[serde(default)]
    pub sentinel_master: Option<String>,
    /// Redis replicas that must hold a write before it is acknowledged.
    #[serde(default)]
    pub wait_replicas: Option<u32>,
}

/// `store.tls:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisTls {
    /// CA certificates (PEM) the Redis server's certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// `signing:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigning {
    /// RS256 | ES256 | EdDSA | HS256.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// PEM key (or HS256 secret) file; generated when absent.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `iss` claim.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Allowed clock skew on `exp` / `nbf`.
    #[serde(default)]
    pub leeway: Option<ConfigDuration>,
    /// How often a new active signing key is made (off when absent).
    #[serde(default)]
    pub rotate_every: Option<ConfigDuration>,
}

/// One entry of `apps:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    /// app_id / appKey / bk_app_code.
    pub id: String,
    /// argon2id PHC string, or a plain secret (warned about).
    pub secret: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Hosecloud corp id.
    #[serde(default)]
    pub corp_id: Option<String>,
    /// Hosecloud scope: tenant | platform.
    #[serde(default)]
    pub scope: Option<String>,
    /// BKFlow space owned.
    #[serde(default)]
    pub space_id: Option<u64>,
    /// Feishu event URL.
    #[serde(default)]
    pub event_url: Option<String>,
    /// Feishu verification token sent in pushed events.
    #[serde(default)]
    pub verification_token: Option<String>,
    /// Feishu app type: `store` (default: needs its app_ticket) or `self_built` (`/internal`).
    #[serde(default)]
    pub feishu_type: Option<String>,
    /// Default BKFlow user.
    #[serde(default)]
    pub user: Option<String>,
    /// oauth `scope` claim values.
    #[serde(default)]
    pub oauth_scopes: Vec<String>,
    /// What this app may apply for.
    #[serde(default)]
    pub grants: Vec<RawGrant>,
}

/// One grant of an app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// TASK | TEMPLATE | SCOPE.
    pub resource: String,
    /// Resource id or `*`.
    pub id: String,
    /// VIEW | EDIT | OPERATE | MOCK.
    pub permission: String,
}

/// `limits:` (edge defaults; every key optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Simultaneous client connections.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Time to read a request head.
    #[serde(default)]
    pub header_read_timeout: Option<ConfigDuration>,
    /// Time to finish a TLS handshake.
    #[serde(default)]
    pub tls_handshake_timeout: Option<ConfigDuration>,
    /// Most header fields in a request.
    #[serde(default)]
    pub max_headers: Option<usize>,
    /// Most bytes of a request head.
    #[serde(default)]
    pub max_header_bytes: Option<usize>,
    /// Most bytes of a token-endpoint body.
    #[serde(default)]
    pub token_body_bytes: Option<usize>,
    /// HTTP/2 concurrent streams per connection.
    #[serde(default)]
    pub h2_max_streams: Option<u32>,
    /// Grace period of a SIGTERM drain.
    #[serde(default)]
    pub drain_grace: Option<ConfigDuration>,
    /// Longest request target.
    #[serde(default)]
    pub max_uri_bytes: Option<usize>,
    /// Longest wait between two pieces of a request body.
    #[serde(default)]
    pub body_read_timeout: Option<ConfigDuration>,
    /// Longest time to read a whole token-endpoint body.
    #[serde(default)]
    pub token_body_timeout: Option<ConfigDuration>,
    /// Rate limits of the token endpoints.
    #[serde(default)]
    pub token_rate: Option<RawTokenRate>,
    /// Introspection calls an unknown opaque token may cost per client address.
    #[serde(default)]
    pub introspection_rate: Option<String>,
    /// Burst of `introspection_rate`.
    #[serde(default)]
    pub introspection_burst: Option<u32>,
}

/// `limits.token_rate:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenRate {
    /// Requests per client IP, as `N/s` or `N/min`.
    #[serde(default)]
    pub per_ip: Option<String>,
    /// Burst per client IP.
    #[serde(default)]
    pub per_ip_burst: Option<u32>,
    /// Failed authentications per app id, as `N/s` or `N/min`.
    #[serde(default)]
    pub per_app_failures: Option<String>,
    /// Authenticated requests per app, as `N/s` or `N/min`.
    #[serde(default)]
    pub per_app: Option<String>,
    /// Burst of `per_app`.
    #[serde(default)]
    pub per_app_burst: Option<u32>,
}
