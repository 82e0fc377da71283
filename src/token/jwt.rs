//! JWT access tokens: signing keys (generated once and kept), pinned verification, JWKS.
//!
//! Verification takes the algorithm and key from our own config, never from the token
//! header: `alg: none`, or HS256 signed with our RSA public key, fail on the algorithm check.

use crate::config::{Signing, SigningAlg};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use crate::config::JWT_LEEWAY_SECS as LEEWAY_SECS;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// The app the token was issued to.
    pub client_id: String,
    /// Token id (revocation key).
    pub jti: String,
    /// Issued at.
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expiry.
    pub exp: u64,
    /// oauth scopes (a list) or the hosecloud level (a string).
    #[serde(default)]
    pub scope: Scope,
    /// Issuing dialect.
    #[serde(default)]
    pub dialect: Option<String>,
    /// Dialect-specific claims (hosecloud's `corporationId`, `loginId`, ...), kept as issued.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `scope` claim: oauth writes a list (seed 003), hosecloud a level string (seed 001).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Scope {
    /// oauth scopes.
    List(Vec<String>),
    /// hosecloud `tenant` / `platform`.
    Level(String),
}

impl Default for Scope {
    fn default() -> Self {
        Scope::List(Vec::new())
    }
}

impl Scope {
    /// The scopes as one space-separated string (RFC 7662 / RFC 6749 form).
    pub fn joined(&self) -> String {
        match self {
            Scope::List(v) => v.join(" "),
            Scope::Level(l) => l.clone(),
        }
    }
}

/// Why a JWT was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Past `exp` (plus leeway).
    #[error("token expired")]
    Expired,
    /// Anything else: bad signature, wrong algorithm, malformed, wrong issuer, not yet valid.
    #[error("token invalid")]
    Invalid,
}

/// Problems with key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not hold a usable key.
    #[error("{path}: {reason}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The signing and verification keys of this gateway.
pub struct JwtKeys {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    jwks: bytes::Bytes,
    /// This key's JWK (none for HS256).
    jwk: Option<serde_json::Value>,
    /// Retired keys that still verify the tokens they signed, by `kid`.
    retired: Vec<(String, DecodingKey)>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish()
    }
}

fn file_name(alg: SigningAlg) -> &'static str {
    match alg {
        SigningAlg::RS256 => "jwt-rs256.pem",
        SigningAlg::ES256 => "jwt-es256.pem",
        SigningAlg::EdDSA => "jwt-eddsa.pem",
        SigningAlg::HS256 => "jwt-hs256.key",
    }
}

/// Where earlier versions kept a generated key for `signing`: beside the store file (read
/// once, to move it into the store).
pub fn generated_key_path(signing: &Signing, store_path: &Path) -> PathBuf {
    let dir = store_path.parent().unwrap_or(Path::new("."));
    dir.join(file_name(signing.alg))
}

/// New key material for `alg` (PKCS#8 PEM; 32 random bytes as hex for HS256).
pub fn generate(alg: SigningAlg) -> Result<String, String> {
    let kp = match alg {
        SigningAlg::RS256 => {
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        SigningAlg::ES256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        SigningAlg::EdDSA => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
        SigningAlg::HS256 => return Ok(hex::encode(super::opaque::random_bytes::<32>())),
    };
    kp.map(|k| k.serialize_pem()).map_err(|e| e.to_string())
}

/// Writes a new file readable by the owner only; fails if it exists.
/// Creates `dir` (and its parents) readable by the owner only; an existing one is left as is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a new file readable by the owner only (0600); refuses to replace one.
pub fn write_new_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

impl JwtKeys {
    /// Loads the configured key, or the generated one beside the store (generating it the first time).
    pub fn load_or_generate(signing: &Signing, store_path: &Path) -> Result<Self, KeyError> {
        let path = match &signing.key_file {
            Some(p) => p.clone(),
            None => {
                let p = generated_key_path(signing, store_path);
                if !p.exists() {
                    let text = generate(signing.alg).map_err(|reason| KeyError::Bad {
                        path: p.clone(),
                        reason,
                    })?;
                    match write_new_private(&p, &text) {
                        Ok(()) => {
                            tracing::info!(path = %p.display(), "generated a new JWT signing key")
                        }
                        // Another process won the race; use its key.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(source) => return Err(KeyError::Io { path: p, source }),
                    }
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_material(signing, &text).map_err(|reason| KeyError::Bad { path, reason })
    }

    /// Builds keys from PEM text (or, for HS256, a hex or raw secret).
    pub fn from_material(signing: &Signing, text: &str) -> Result<Self, String> {
        let (alg, encoding, decoding, public_der, jwk) = match signing.alg {
            SigningAlg::HS256 => {
                let secret =
                    hex::decode(text.trim()).unwrap_or_else(|_| text.trim().as_bytes().to_vec());
                if secret.len() < 32 {
                    return Err("an HS256 key must be at least 32 bytes".into());
                }
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &secret);
                (
                    Algorithm::HS256,
                    EncodingKey::from_secret(&secret),
                    DecodingKey::from_secret(&secret),
                    digest.as_ref().to_vec(),
                    None,
                )
            }
            alg => {
                let kp = rcgen::KeyPair::from_pem(text)
                    .map_err(|e| format!("not a PKCS#8 PEM private key: {e}"))?;
                let public_pem = kp.public_key_pem();
                let public_der = rcgen::PublicKeyData::subject_public_key_info(&kp);
                let (alg, enc, dec) = match alg {
                    SigningAlg::RS256 => (
                        Algorithm::RS256,
                        EncodingKey::from_rsa_pem(text.as_bytes()),
                        DecodingKey::from_rsa_pem(public_pem.as_bytes()),
                    ),
                    SigningAlg::ES256 => (
                        Algorithm::ES256,
                        EncodingKey::from_ec_pem(text.as_bytes()),
                        DecodingKey::from_ec_pem(public_pem.as_bytes()),
                    ),
                    _ => (
                        Algorithm::EdDSA,
                        EncodingKey::from_ed_pem(text.as_bytes()),
                        DecodingKey::from_ed_pem(public_pem.as_bytes()),
                    ),
                };
                let enc = enc.map_err(|e| format!("key does not suit {alg:?}: {e}"))?;
                let dec = dec.map_err(|e| format!("public key does not suit {alg:?}: {e}"))?;
                let jwk = public_jwk(alg, &enc, kp.public_key_raw())?;
                (alg, enc, dec, public_der, Some(jwk))
            }
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public_der);
        let kid = hex::encode_upper(&digest.as_ref()[..16]);
        let mut validation = Validation::new(alg);
        validation.leeway = signing.leeway.as_secs();
        // exp and nbf are checked against the gateway's clock in `verify_at`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&signing.issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
        let jwk = jwk.map(|mut k| {
            k["kid"] = kid.clone().into();
            k["use"] = "sig".into();
            k
        });
        let jwks = jwks_of(jwk.iter());
        Ok(JwtKeys {
            alg,
            kid,
            encoding,
            decoding,
            validation,
            jwks,
            jwk,
            retired: Vec::new(),
        })
    }

    /// Keys from the store's ring: its active key signs; its retired keys still in their time
    /// at `now` verify (and are published in the JWKS) until every token they signed expired.
    pub fn from_ring(
        signing: &Signing,
        ring: &super::ring::KeyRing,
        now: u64,
    ) -> Result<Self, String> {
        let mut keys = Self::from_material(signing, &ring.active().pem)?;
        let mut published: Vec<serde_json::Value> = keys.jwk.iter().cloned().collect();
        for k in ring
            .keys
            .iter()
            .filter(|k| k.until.is_some_and(|u| u > now))
        {
            let old = Self::from_material(signing, &k.pem)?;
            published.extend(old.jwk.clone());
            keys.retired.push((old.kid, old.decoding));
        }
        keys.jwks = jwks_of(published.iter());
        Ok(keys)
    }

    /// Signs `claims` with header `typ` (`at+jwt` for oauth) and our `kid`.
    pub fn sign(&self, claims: &AccessClaims, typ: &str) -> Result<String, String> {
        let mut header = Header::new(self.alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Verifies signature (pinned algorithm), `exp`, `nbf` and `iss` now.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.verify_at(token, crate::token::now_secs())
    }

    /// Verifies signature (pinned algorithm) and `iss`, and `exp` / `nbf` at `now` (seconds)
    /// with the configured leeway.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<AccessClaims, VerifyError> {
        // `kid` picks among our own keys only; an unknown one is refused, never fetched.
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::Invalid)?
            .kid;
        let key = match kid.as_deref() {
            None => &self.decoding,
            Some(k) if k == self.kid => &self.decoding,
            Some(k) => self
                .retired
                .iter()
                .find(|(kid, _)| kid == k)
                .map(|(_, d)| d)
                .ok_or(VerifyError::Invalid)?,
        };
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|_| VerifyError::Invalid)?
            .claims;
        let leeway = self.validation.leeway;
        if claims.exp.saturating_add(leeway) < now {
            return Err(VerifyError::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(VerifyError::Invalid);
        }
        Ok(claims)
    }

    /// Allowed clock skew, seconds.
    pub fn leeway(&self) -> u64 {
        self.validation.leeway
    }

    /// `kid` of the current key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document (`{"keys": [...]}`; empty for HS256, whose key is secret).
    pub fn jwks(&self) -> bytes::Bytes {
        self.jwks.clone()
    }
}

fn jwks_of<'a>(keys: impl Iterator<Item = &'a serde_json::Value>) -> bytes::Bytes {
    let keys: Vec<&serde_json::Value> = keys.collect();
    serde_json::to_vec(&serde_json::json!({ "keys": keys }))
        .expect("json")
        .into()
}

fn public_jwk(
    alg: Algorithm,
    enc: &EncodingKey,
    raw_public: &[u8],
) -> Result<serde_json::Value, String> {
    if alg == Algorithm::EdDSA {
        // jsonwebtoken cannot derive an OKP JWK; the raw Ed25519 public key is `x`.
        return Ok(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": URL_SAFE_NO_PAD.encode(raw_public)
        }));
    }
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(enc, alg).map_err(|e| e.to_string())?;
    serde_json::to_value(jwk).map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
