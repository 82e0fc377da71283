//! The validated config: the whole file, its `listen:`, `admin:`, `store:`, `signing:`,
//! `apps:` and `dialects:` sections, and the dialect a token comes from.

use super::TlsFiles;
use super::{Limits, RouteConfig, UpstreamConfig};
use crate::permission::Grant;
use crate::secret::Secret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A validated configuration; holding one means every check passed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// Public listener.
    pub listen: Listen,
    /// Admin listener.
    pub admin: Option<Admin>,
    /// Durable state.
    pub store: StoreConfig,
    /// JWT signing.
    pub signing: Signing,
    /// Apps allowed to ask for tokens.
    pub apps: Vec<App>,
    /// Issuing dialects.
    pub dialects: Dialects,
    /// Trusted external issuers, referred to by index from `Origin::Issuer`.
    pub issuers: Vec<super::IssuerConfig>,
    /// Upstream pools, referred to by index from routes.
    pub upstreams: Vec<UpstreamConfig>,
    /// Proxied routes in order; first match wins.
    pub routes: Vec<RouteConfig>,
    /// Edge limits.
    pub limits: Limits,
    /// What the path normaliser lets through.
    pub paths: crate::route::PathRules,
    /// Keep client header names that contain `_` (nginx's `underscores_in_headers on`).
    pub underscore_headers: bool,
    /// The async runtime the gateway runs on (read at start; a reload does not change it).
    pub runtime: RuntimeConfig,
    /// Things accepted but worth saying (plain secrets, dialects not served yet).
    pub warnings: Vec<String>,
}

/// `workers:` and `runtime:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Worker threads.
    pub workers: usize,
    /// Scheduler.
    pub flavour: RuntimeFlavour,
}

/// `runtime:`: tokio's scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFlavour {
    /// Work-stealing across `workers` threads.
    MultiThread,
    /// Everything on the one thread that runs `main` (`workers: 1`).
    CurrentThread,
}

/// `listen:`
#[derive(Debug, Clone)]
pub struct Listen {
    /// Bind address.
    pub address: SocketAddr,
    /// TLS files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Every connection opens with a PROXY protocol header naming the client.
    pub proxy_protocol: bool,
    /// The proxies in front: only from these is `X-Forwarded-For` read for the client address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `admin:`
#[derive(Debug, Clone)]
pub struct Admin {
    /// Bind address.
    pub address: SocketAddr,
    /// Bearer token required by the admin API.
    pub token: Option<Secret>,
    /// `Host` values accepted besides the listener's own address (lower-case).
    pub hosts: Vec<String>,
}

/// `store:`
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Embedded store file; generated keys live beside it.
    pub path: PathBuf,
    /// Bound of the hot-token map.
    pub hot_tokens: usize,
    /// File holding the master key (32 bytes, hex or base64); `TOLLGATE_MASTER_KEY` overrides it;
    /// generated beside the store file when neither is given.
    pub master_key_file: Option<PathBuf>,
    /// `store.kind: redis`: how to reach it (the embedded file is not used then).
    pub redis: Option<RedisSettings>,
    /// How often the shared store is compacted.
    pub compact_every: Duration,
}

/// `store:` for `kind: redis`.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` URL (with sentinels: only user, password and db are used).
    pub url: Option<String>,
    /// TLS files: CA, client certificate, client key.
    pub tls: Option<RedisTls>,
    /// File holding the password (never logged).
    pub password_file: Option<PathBuf>,
    /// Sentinel addresses; empty: connect to `url` directly.
    pub sentinels: Vec<String>,
    /// The primary's name at the sentinels.
    pub sentinel_master: Option<String>,
    /// Replicas that must confirm (`WAIT`) each write before it is acknowledged; 0: none.
    pub wait_replicas: u32,
}

/// `store.tls:`
#[derive(Debug, Clone)]
pub struct RedisTls {
    /// CA file; none: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key files.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// JWT signing algorithm; the only one accepted on verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// RSA PKCS#1 v1.5 with SHA-256.
    RS256,
    /// ECDSA P-256.
    ES256,
    /// Ed25519.
    EdDSA,
    /// HMAC-SHA-256 (no public JWKS).
    HS256,
}

/// `signing:`
#[derive(Debug, Clone)]
pub struct Signing {
    /// Algorithm.
    pub alg: SigningAlg,
    /// Key file; generated beside the store when `None`.
    pub key_file: Option<PathBuf>,
    /// `iss` claim and the only issuer accepted.
    pub issuer: String,
    /// Allowed clock skew on `exp` / `nbf`.
    pub leeway: Duration,
    /// Make a new active key this often (off when `None`).
    pub rotate_every: Option<Duration>,
}

/// How an app proves itself.
#[derive(Debug, Clone)]
pub enum AppSecret {
    /// An argon2id PHC string.
    Argon2(String),
    /// A plain secret (accepted with a warning).
    Plain(Secret),
}

/// One app.
#[derive(Debug, Clone)]
pub struct App {
    /// Its id (`app_id`, `appKey`, `bk_app_code`).
    pub id: String,
    /// Its secret.
    pub secret: AppSecret,
    /// Display name.
    pub name: Option<String>,
    /// Values of the oauth `scope` claim.
    pub oauth_scopes: Vec<String>,
    /// Hosecloud corp id (`corpId`); the app id when not set.
    pub corp_id: Option<String>,
    /// Hosecloud level of its tokens (tenant by default).
    pub level: Level,
    /// BKFlow space it owns.
    pub space_id: Option<u64>,
    /// Default BKFlow user.
    pub user: Option<String>,
    /// What its BKFlow tokens may carry at most.
    pub grants: Vec<Grant>,
    /// Where feishu app_ticket events are pushed.
    pub event_url: Option<http::Uri>,
    /// The `token` of pushed feishu events.
    pub verification_token: Option<String>,
    /// A Feishu self-built app (served by the ticket-less `/internal` endpoints) or a store
    /// app (the default: it presents its app_ticket).
    pub self_built: bool,
}

/// Hosecloud authorisation level; `platform` covers `tenant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One tenant.
    Tenant,
    /// The whole platform.
    Platform,
}

impl Level {
    /// Parses `tenant` / `platform`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tenant" => Some(Level::Tenant),
            "platform" => Some(Level::Platform),
            _ => None,
        }
    }

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Tenant => "tenant",
            Level::Platform => "platform",
        }
    }

    /// True when a token of this level meets a route requiring `need`.
    pub fn satisfies(self, need: Level) -> bool {
        self == Level::Platform || need == Level::Tenant
    }
}

#[cfg(test)]
mod level_tests {
    use super::Level;

    #[test]
    fn platform_covers_tenant_but_not_the_reverse() {
        assert!(Level::Platform.satisfies(Level::Tenant));
        assert!(Level::Platform.satisfies(Level::Platform));
        assert!(Level::Tenant.satisfies(Level::Tenant));
        assert!(!Level::Tenant.satisfies(Level::Platform));
    }
}

/// Which issuing API a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Seed 003 / RFC 6749.
    Oauth,
    /// Seed 001.
    Hosecloud,
    /// Seed 002.
    Feishu,
    /// Seeds 000, 004.
    Bkflow,
}

impl Dialect {
    /// Lower-case name as written in YAML and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Oauth => "oauth",
            Dialect::Hosecloud => "hosecloud",
            Dialect::Feishu => "feishu",
            Dialect::Bkflow => "bkflow",
        }
    }

    /// Parses a YAML name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oauth" => Some(Dialect::Oauth),
            "hosecloud" => Some(Dialect::Hosecloud),
            "feishu" => Some(Dialect::Feishu),
            "bkflow" => Some(Dialect::Bkflow),
            _ => None,
        }
    }
}

/// `dialects:`
#[derive(Debug, Clone, Default)]
pub struct Dialects {
    /// The oauth dialect, when enabled.
    pub oauth: Option<OauthDialect>,
    /// The hosecloud dialect, when enabled.
    pub hosecloud: Option<HosecloudDialect>,
    /// The bkflow dialect, when enabled.
    pub bkflow: Option<BkflowDialect>,
    /// The feishu dialect, when enabled.
    pub feishu: Option<FeishuDialect>,
}

/// `dialects.feishu:`
#[derive(Debug, Clone)]
pub struct FeishuDialect {
    /// `.../auth/v3/app_access_token`; its siblings (`app_ticket/resend`, `tenant_access_token`,
    /// the `/internal` variants) live beside it.
    pub path: String,
    /// Token lifetime (at most).
    pub ttl: Duration,
    /// Asking again with less than this left yields a new token.
    pub renew_before: Duration,
    /// Lifetime of an app ticket.
    pub ticket_ttl: Duration,
}

impl FeishuDialect {
    /// The folder of `path` (`/open-apis/auth/v3`).
    pub fn base(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(b, _)| b)
    }
}

/// How bkflow writes `expired_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `YYYY-MM-DD HH:MM:SS` as the seed shows (DIALECTS decision 2).
    Seed,
    /// ISO-8601 with milliseconds and `Z`, as the real server sends.
    Iso8601,
}

/// `dialects.bkflow:`
#[derive(Debug, Clone)]
pub struct BkflowDialect {
    /// Path prefix of `/space/{space_id}/...`.
    pub prefix: String,
    /// Token lifetime.
    pub ttl: Duration,
    /// A repeated apply renews the token's lifetime.
    pub auto_renew: bool,
    /// `expired_time` format.
    pub time_format: TimeFormat,
    /// Offset of the zone `expired_time` is written in (seed format), seconds east of UTC.
    pub utc_offset: i32,
}

/// `dialects.hosecloud:`
#[derive(Debug, Clone)]
pub struct HosecloudDialect {
    /// getAccessToken.
    pub path: String,
    /// v3-shaped refresh (JSON body).
    pub refresh_path: String,
    /// The documented v2 refresh (query parameters).
    pub refresh_v2_path: String,
    /// Access token lifetime.
    pub ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// A refresh chain ends this long after the login that started it.
    pub refresh_max_lifetime: Duration,
}

/// `dialects.oauth:`
#[derive(Debug, Clone)]
pub struct OauthDialect {
    /// Seed 003 endpoint.
    pub path: String,
    /// RFC 6749 endpoint.
    pub rfc_path: String,
    /// RFC 7009 revocation endpoint.
    pub revoke_path: String,
    /// Token lifetime.
    pub ttl: Duration,
    /// Tokens issued over a connection with a verified client certificate are bound to it
    /// (RFC 8705 `cnf.x5t#S256`).
    pub certificate_bound: bool,
}
