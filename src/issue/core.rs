//! What every dialect shares: authenticate the app, mint the token, count it.
//!
//! App secrets are argon2id hashes checked on a blocking thread (a bounded number at once).
//! A secret that verified once is remembered as a keyed MAC, so a client asking again does
//! not pay the argon2 cost each time; a wrong secret always does.

use crate::config::{App, AppSecret, Dialect};
use crate::secret::ct_eq;
use crate::shared::Shared;
use crate::state::Runtime;
use crate::token::jwt::{AccessClaims, Scope};
use crate::token::opaque;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::Arc;
use std::time::Duration;

/// Why an app was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No such app id.
    UnknownApp,
    /// The secret does not match.
    BadSecret,
    /// Verification could not run.
    Internal,
    /// Too many failed attempts for this app id; retry after this many seconds.
    RateLimited(u64),
}

/// Hashes a secret for the `secret:` key of an app (what `tollgate hash-secret` prints).
pub fn hash_secret(secret: &str) -> String {
    let salt =
        SaltString::encode_b64(&opaque::random_bytes::<16>()).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// Checks `secret` for app `app_id` in constant time. Only what costs a verification is
/// limited: a secret that verified before passes at once and is never charged, even while its
/// app id is locked for an address that guessed wrong. Everything else is charged to the
/// client address (`token_rate.per_ip`, IPv6 per /64), and failures lock the app id for that
/// address only (`per_app_failures`), so a flood from one client locks out nobody else.
pub async fn authenticate(
    ctx: &super::Ctx<'_>,
    app_id: &str,
    secret: &str,
) -> Result<Arc<App>, AuthError> {
    let (rt, shared) = (ctx.rt, ctx.shared);
    ctx.note_claimed_app(app_id);
    let limit = rt.config.limits.token_rate;
    // An app's own budget: a client looping on a good secret slows only itself.
    let per_app = |app: Arc<App>| {
        shared
            .limits
            .per_app
            .take(
                &app.id.as_str().into(),
                limit.per_app,
                limit.per_app_burst,
                std::time::Instant::now(),
            )
            .map(|()| app)
            .map_err(AuthError::RateLimited)
    };
    if let Some(app) = known_good(rt, shared, app_id, secret) {
        return per_app(app);
    }
    let client = crate::client_addr::limit_key(ctx.client);
    let now = std::time::Instant::now();
    let burst = limit.per_app_failures.tokens.ceil() as u32;
    let key = (crate::limit::app_key(app_id), client);
    // Charged before any argon2 work, as if it failed (refunded when it does not): guesses at a
    // locked app id cost nothing, and concurrent guesses cannot all pass one check.
    shared
        .limits
        .failures
        .take(&key, limit.per_app_failures, burst, now)
        .map_err(AuthError::RateLimited)?;
    if let Err(wait) = shared
        .limits
        .per_ip
        .take(&client, limit.per_ip, limit.per_ip_burst, now)
    {
        shared.limits.failures.refund(&key, burst);
        return Err(AuthError::RateLimited(wait));
    }
    let result = verify(rt, shared, app_id, secret).await;
    if !matches!(result, Err(AuthError::UnknownApp | AuthError::BadSecret)) {
        shared.limits.failures.refund(&key, burst);
    }
    per_app(result?)
}

fn stored_secret(app: &App) -> &str {
    match &app.secret {
        AppSecret::Argon2(phc) => phc.as_str(),
        AppSecret::Plain(s) => s.expose(),
    }
}

/// The app, when `secret` is the one that verified last for it (a MAC compare, no argon2).
fn known_good(rt: &Runtime, shared: &Shared, app_id: &str, secret: &str) -> Option<Arc<App>> {
    let app = rt.apps.get(app_id)?;
    let cache = &shared.secrets;
    let mac = cache.mac(app, stored_secret(app), secret);
    cache
        .ok
        .get(app_id)
        .is_some_and(|known| ct_eq(&known[..], &mac[..]))
        .then(|| Arc::clone(app))
}

/// The argon2 check on a blocking thread (a bounded number at once).
async fn argon2_verify(shared: &Shared, phc: &str, secret: &str) -> Result<bool, AuthError> {
    let cache = &shared.secrets;
    let _slot = cache
        .slots
        .acquire()
        .await
        .map_err(|_| AuthError::Internal)?;
    cache
        .argon2_runs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (phc, presented) = (phc.to_owned(), secret.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(presented.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(|_| AuthError::Internal)
}

async fn verify(
    rt: &Runtime,
    shared: &Shared,
    app_id: &str,
    secret: &str,
) -> Result<Arc<App>, AuthError> {
    let Some(app) = rt.apps.get(app_id).cloned() else {
        // An unknown id costs what a wrong secret costs, so ids cannot be told apart by time.
        if let Some(dummy) = &rt.dummy_secret {
            argon2_verify(shared, dummy, secret).await?;
        }
        return Err(AuthError::UnknownApp);
    };
    let cache = &shared.secrets;
    let mac = cache.mac(&app, stored_secret(&app), secret);
    let good = match &app.secret {
        AppSecret::Plain(s) => s.matches(secret.as_bytes()),
        AppSecret::Argon2(phc) => argon2_verify(shared, phc, secret).await?,
    };
    if !good {
        return Err(AuthError::BadSecret);
    }
    cache.ok.insert(app_id.into(), mac);
    Ok(app)
}

/// Which secret `app` is configured with, as a keyed fingerprint: stored with refresh tokens
/// so that a changed secret ends their chains (SPEC §4).
pub fn secret_generation(shared: &Shared, app: &App) -> String {
    shared.master.fingerprint(&[
        b"app secret",
        app.id.as_bytes(),
        stored_secret(app).as_bytes(),
    ])
}

/// A signed access token and what it says.
#[derive(Debug)]
pub struct Minted {
    /// The compact JWT.
    pub token: String,
    /// Its claims.
    pub claims: AccessClaims,
}

/// What to put in a JWT besides the common claims.
#[derive(Debug, Clone)]
pub struct JwtSpec {
    /// Issuing dialect (the `dialect` claim and the metric label).
    pub dialect: Dialect,
    /// Lifetime.
    pub ttl: Duration,
    /// `scope` claim.
    pub scope: Scope,
    /// Header `typ`.
    pub typ: &'static str,
    /// Dialect-specific claims.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl JwtSpec {
    /// An oauth access token (`typ: at+jwt`, `scope` a list).
    pub fn oauth(ttl: Duration, scopes: Vec<String>) -> Self {
        JwtSpec {
            dialect: Dialect::Oauth,
            ttl,
            scope: Scope::List(scopes),
            typ: "at+jwt",
            extra: Default::default(),
        }
    }

    /// Bound to `cert` (RFC 8705: `cnf.x5t#S256`, its SHA-256 thumbprint), when there is one.
    pub fn bound_to(mut self, cert: Option<&crate::tls::cert_info::ClientCert>) -> Self {
        if let Some(c) = cert {
            self.extra.insert(
                "cnf".into(),
                serde_json::json!({ "x5t#S256": c.x5t_s256() }),
            );
        }
        self
    }
}

/// Signs a JWT for `app` as `spec` says, and counts it.
pub fn mint_jwt(rt: &Runtime, shared: &Shared, app: &App, spec: JwtSpec) -> Result<Minted, String> {
    let now = shared.clock.now_secs();
    let claims = AccessClaims {
        iss: rt.config.signing.issuer.clone(),
        client_id: app.id.clone(),
        jti: opaque::random_hex128().to_ascii_uppercase(),
        iat: now,
        nbf: now,
        exp: now + spec.ttl.as_secs(),
        scope: spec.scope,
        dialect: Some(spec.dialect.as_str().to_owned()),
        extra: spec.extra,
    };
    let token = shared.keys().sign(&claims, spec.typ)?;
    shared
        .metrics
        .tokens_issued
        .with_label_values(&[spec.dialect.as_str()])
        .inc();
    Ok(Minted { token, claims })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_secrets_verify_and_wrong_ones_do_not() {
        let phc = hash_secret("coupangTest");
        assert!(phc.starts_with("$argon2id$"));
        let h = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"coupangTest", &h)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"coupangTesT", &h)
            .is_err());
    }
}
