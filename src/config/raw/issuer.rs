//! `issuers:` as written: trusted external identity providers.

use crate::config::duration::ConfigDuration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One entry of `issuers:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Name in metrics, logs, routes' `dialects:` and `X-Tollgate-Dialect`.
    pub name: String,
    /// The exact `iss` of its tokens.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Where its JWKS is served (https).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// A JWKS file instead of a URL.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// PEM roots for its https endpoints instead of the bundled web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// At least one must be in a token's `aud`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Signature algorithms accepted.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed on `exp` / `nbf`.
    #[serde(default)]
    pub leeway: Option<ConfigDuration>,
    /// Time between two JWKS fetches when the answer says nothing (`Cache-Control`).
    #[serde(default)]
    pub jwks_refresh: Option<ConfigDuration>,
    /// Least time between two fetches caused by unknown `kid`s.
    #[serde(default)]
    pub jwks_cooldown: Option<ConfigDuration>,
    /// Where the app id and scopes come from.
    #[serde(default)]
    pub claims: Option<RawClaims>,
    /// Claims forwarded as headers: `{ claim: header-name }`.
    #[serde(default)]
    pub claims_to_headers: BTreeMap<String, String>,
    /// RFC 7662 endpoint for opaque tokens (https).
    #[serde(default)]
    pub introspection_url: Option<String>,
    /// The gateway's client id at the introspection endpoint.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its secret, written in the config.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Its secret, read from a file.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Longest time an active introspection answer is reused.
    #[serde(default)]
    pub cache_ttl: Option<ConfigDuration>,
    /// Time an inactive answer is reused.
    #[serde(default)]
    pub negative_ttl: Option<ConfigDuration>,
    /// Every opaque token it issues starts with this (others are never sent to it).
    #[serde(default)]
    pub token_prefix: Option<String>,
    /// Every opaque token it issues has this many characters (others are never sent to it).
    #[serde(default)]
    pub token_length: Option<usize>,
    /// Time a fetch or an introspection call may take.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// The one claim that names the client (instead of `client_id`, then `azp`).
    #[serde(default)]
    pub app_id_claim: Option<String>,
}

/// `issuers[].claims:`: claim names, the first present wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    /// Where the app id is (default `[client_id, azp]`; never `sub`).
    #[serde(default)]
    pub app_id: Option<OneOrMany>,
    /// Where the scopes are (default `[scope, scp]`): a space-separated string or an array.
    #[serde(default)]
    pub scopes: Option<OneOrMany>,
}

/// A claim name or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One name.
    One(String),
    /// Names in order.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names in order.
    pub fn names(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}
