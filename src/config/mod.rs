//! Configuration: YAML file → raw serde structs → validated, typed `Config`.
//!
//! `run`, `check`, `demo` and reload all go through [`load`]. Every semantic problem is
//! collected and reported at once, each with file, line and key.

pub mod duration;
pub mod locate;
pub mod raw;
mod validate;

pub use validate::validate;

use crate::permission::{Grant, Perm, Resource};
use crate::route::Pattern;
use crate::secret::Secret;
use http::Method;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// Things accepted but worth saying (plain secrets, dialects not served yet).
    pub warnings: Vec<String>,
}

/// `listen:`
#[derive(Debug, Clone)]
pub struct Listen {
    /// Bind address.
    pub address: SocketAddr,
    /// TLS files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
}

/// Certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
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
    /// `store.kind: redis`: its URL (the embedded file is not used then).
    pub redis_url: Option<String>,
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
mod fuzz {
    use proptest::prelude::*;

    /// Lines of a real config, to be shuffled, cut and mangled.
    const LINES: &[&str] = &[
        "listen:",
        "  address: \"127.0.0.1:0\"",
        "apps:",
        "  - id: a",
        "    secret: s",
        "    space_id: 3",
        "    grants: [{ resource: TASK, id: \"*\", permission: VIEW }]",
        "dialects:",
        "  oauth: {}",
        "  bkflow: { ttl: 0 }",
        "upstreams:",
        "  api: { targets: [\"http://127.0.0.1:1\"] }",
        "routes:",
        "  - path: \"/t/{id}\"",
        "    upstream: api",
        "    require: { resource: TASK, id: \"{id}\", permission: VIEW, scope: \"{lookup:s}\" }",
        "    lookup: { upstream: api, path: \"/m/{id}\", ttl: 2h }",
        "limits: { token_rate: { per_ip: 0/s } }",
        "paths: { matrix_params: maybe }",
        "  - [",
        "{",
        ": :",
        "\t",
        "&a *a",
        "!!binary x",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_loader_never_panics(lines in prop::collection::vec(prop::sample::select(LINES), 0..14), noise in "[ -~]{0,12}") {
            let text = format!("{}\n{noise}", lines.join("\n"));
            // Ok or an error naming the file: never a panic.
            if let Err(e) = super::load_str(&text, std::path::Path::new("f.yaml")) {
                prop_assert!(e.to_string().contains("f.yaml"));
            }
        }
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
    /// Token lifetime.
    pub ttl: Duration,
}

/// One upstream pool.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Its name.
    pub name: String,
    /// `host:port` of each target (http).
    pub targets: Vec<http::uri::Authority>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed until the response head arrives.
    pub timeout: Duration,
    /// Idle connections kept per target.
    pub max_idle: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
}

/// `auth:` of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No token needed.
    None,
    /// A valid bearer token needed.
    Bearer,
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
    /// oauth scope the token must hold.
    pub oauth_scope: Option<String>,
    /// Hosecloud level the token must hold.
    pub level: Option<Level>,
    /// BKFlow resource permission the token must hold.
    pub resource: Option<ResourceRequirement>,
    /// Dialects whose tokens are accepted; all when `None`.
    pub dialects: Option<Vec<Dialect>>,
    /// Keep the presented credential when forwarding.
    pub forward_token: bool,
    /// Stored bkflow credential (space, name) sent upstream as `X-Bkapi-Authorization`.
    pub upstream_credential: Option<(u64, String)>,
    /// Where the resource's facts are read (`{lookup:field}` references).
    pub lookup: Option<LookupConfig>,
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
    /// `{name}`: a parameter of the route pattern.
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

    /// True when the client states the value (a query parameter or a header).
    pub fn client_controlled(&self) -> bool {
        matches!(self, ValueRef::Query(_) | ValueRef::Header(_))
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
    /// The space the resource belongs to; a token of another space never satisfies it.
    pub space: Option<ValueRef>,
}

/// `limits:` with defaults filled in.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Simultaneous client connections.
    pub max_connections: usize,
    /// Time to read a request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Time to finish a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Most header fields in a request.
    pub max_headers: usize,
    /// Most bytes of a request head.
    pub max_header_bytes: usize,
    /// Most bytes of a token-endpoint body.
    pub token_body_bytes: usize,
    /// HTTP/2 concurrent streams per connection.
    pub h2_max_streams: u32,
    /// Grace period of a SIGTERM drain.
    pub drain_grace: Duration,
    /// Longest request target (414 beyond).
    pub max_uri_bytes: usize,
    /// Longest wait between two pieces of a request body (408 and close beyond).
    pub body_read_timeout: Duration,
    /// Longest time to read a whole token-endpoint body.
    pub token_body_timeout: Duration,
    /// Token-endpoint rate limits.
    pub token_rate: TokenRate,
}

/// A rate: `tokens` per `per`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// How many.
    pub tokens: f64,
    /// In how long.
    pub per: Duration,
}

impl Rate {
    /// Parses `20/s`, `10/min`, `100/h`.
    pub fn parse(s: &str) -> Option<Self> {
        let (n, unit) = s.trim().split_once('/')?;
        let tokens: f64 = n
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| *n > 0.0 && n.is_finite())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Rate { tokens, per })
    }

    /// Tokens per second.
    pub fn per_sec(self) -> f64 {
        self.tokens / self.per.as_secs_f64()
    }
}

/// `limits.token_rate:` with defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenRate {
    /// Token-endpoint requests per client IP.
    pub per_ip: Rate,
    /// Burst per client IP.
    pub per_ip_burst: u32,
    /// Failed authentications per app id (the burst is the same number).
    pub per_app_failures: Rate,
}

impl Default for TokenRate {
    fn default() -> Self {
        TokenRate {
            per_ip: Rate {
                tokens: 20.0,
                per: Duration::from_secs(1),
            },
            per_ip_burst: 40,
            per_app_failures: Rate {
                tokens: 10.0,
                per: Duration::from_secs(60),
            },
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_headers: 100,
            max_header_bytes: 16 * 1024,
            token_body_bytes: 64 * 1024,
            h2_max_streams: 200,
            drain_grace: Duration::from_secs(30),
            max_uri_bytes: 8 * 1024,
            body_read_timeout: Duration::from_secs(10),
            token_body_timeout: Duration::from_secs(60),
            token_rate: TokenRate::default(),
        }
    }
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path such as `routes[2].upstream`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A refused config: every problem found, each with file, line and key.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong, in file order where known.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let file = self.file.display();
            match p.line {
                Some(line) => write!(f, "{file}:{line}: {}: {}", p.key, p.message)?,
                None => write!(f, "{file}: {}: {}", p.key, p.message)?,
            }
        }
        Ok(())
    }
}

impl ConfigError {
    /// One problem with no known line.
    pub fn single(file: &Path, key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            problems: vec![Problem {
                line: None,
                key: key.to_owned(),
                message: message.into(),
            }],
        }
    }
}

/// Reads, parses and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::single(path, "(file)", format!("cannot read: {e}")))?;
    load_str(&text, path)
}

/// Parses and validates `text` as if read from `file` (relative paths resolve against its folder).
pub fn load_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let raw = parse_raw(text, file)?;
    validate(raw, text, file)
}

/// YAML → raw structs; a syntax or type error names its line and key path.
pub fn parse_raw(text: &str, file: &Path) -> Result<raw::RawConfig, ConfigError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line());
        let mut message = inner.to_string();
        // serde_yaml appends " at line L column C"; we print the line ourselves.
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        // serde_yaml also prefixes the path of the enclosing value; the key already says it.
        if let Some((prefix, rest)) = message.split_once(": ") {
            if !prefix.contains(' ') && key.starts_with(prefix) {
                message = rest.to_owned();
            }
        }
        let key = if key == "." {
            "(document)".to_owned()
        } else {
            key
        };
        ConfigError {
            file: file.to_owned(),
            problems: vec![Problem { line, key, message }],
        }
    })
}
