//! `issuers:`: trusted external identity providers, and [`Origin`], who issued a token.

use super::Dialect;
use crate::secret::Secret;
use http::HeaderName;
use jsonwebtoken::Algorithm;
use std::path::PathBuf;
use std::time::Duration;

/// Who issued a token: tollgate in one of its dialects, or an external issuer (its index in
/// `Config::issuers`, which is only meaningful within one runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// One of tollgate's own dialects.
    Own(Dialect),
    /// An entry of `issuers:`.
    Issuer(u16),
}

impl Origin {
    /// The dialect, for tollgate's own tokens.
    pub fn dialect(self) -> Option<Dialect> {
        match self {
            Origin::Own(d) => Some(d),
            Origin::Issuer(_) => None,
        }
    }
}

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Fetched from this https URL, and refetched.
    Url(http::Uri),
    /// Read from this file (at start and on reload).
    File(PathBuf),
}

/// The JWT side of an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIssuer {
    /// The exact `iss`.
    pub issuer: String,
    /// Its keys.
    pub keys: KeySource,
    /// Signature algorithms accepted (never `none`, never a symmetric one).
    pub algorithms: Vec<Algorithm>,
    /// Time between two fetches when the JWKS answer has no `Cache-Control: max-age`.
    pub refresh: Duration,
    /// Least time between two fetches caused by an unknown `kid`.
    pub cooldown: Duration,
}

/// The RFC 7662 side of an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// The endpoint (https).
    pub url: http::Uri,
    /// The gateway's client id there.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
    /// Longest reuse of an active answer (never past the token's `exp`).
    pub cache_ttl: Duration,
    /// Reuse of an inactive answer.
    pub negative_ttl: Duration,
    /// The prefix every token it issues starts with, when declared.
    pub token_prefix: Option<String>,
    /// The length of every token it issues, when declared.
    pub token_length: Option<usize>,
}

impl Introspection {
    /// False for a token this issuer cannot have issued (its declared shape says so): such a
    /// token is never sent to it.
    pub fn may_have_issued(&self, token: &str) -> bool {
        self.token_prefix
            .as_deref()
            .is_none_or(|p| token.starts_with(p))
            && self.token_length.is_none_or(|n| token.len() == n)
    }
}

/// One trusted external issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// Name in metrics, logs, `dialects:` and `X-Tollgate-Dialect`.
    pub name: String,
    /// Its tokens' `iss`, when it is known (required for JWTs, checked in introspection answers).
    pub issuer: Option<String>,
    /// Signed tokens, checked against its keys.
    pub jwt: Option<JwtIssuer>,
    /// Opaque tokens, asked about at its endpoint.
    pub introspection: Option<Introspection>,
    /// PEM roots for its endpoints instead of the bundled web roots.
    pub ca_file: Option<PathBuf>,
    /// At least one must be in `aud` (required by the config check).
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` / `nbf`.
    pub leeway: Duration,
    /// Claims naming the app id, first present wins.
    pub app_claims: Vec<String>,
    /// Claims holding the scopes, first present wins.
    pub scope_claims: Vec<String>,
    /// Claims forwarded as headers on every route.
    pub claims_to_headers: Vec<(String, HeaderName)>,
    /// Time a fetch or an introspection call may take.
    pub timeout: Duration,
}

impl super::Config {
    /// The name of a token origin: the dialect's, or the issuer's as configured.
    pub fn origin_name(&self, o: Origin) -> &str {
        match o {
            Origin::Own(d) => d.as_str(),
            Origin::Issuer(i) => self
                .issuers
                .get(i as usize)
                .map_or("?", |c| c.name.as_str()),
        }
    }
}
