//! The validated config: the whole file and its `listen:`, `admin:`, `store:` and `signing:`.

use super::{App, Dialects, Limits, RouteConfig, UpstreamConfig};
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
