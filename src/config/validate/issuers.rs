//! `issuers:`: trusted external identity providers, and the header names claims may fill.

use super::Checker;
use crate::config::raw::{RawConfig, RawIssuer};
use crate::config::*;
use crate::secret::Secret;
use http::HeaderName;
use jsonwebtoken::Algorithm;
use std::collections::BTreeMap;
use std::time::Duration;

/// Headers a claim may never fill: tollgate's own, the proxy's, framing and credentials.
fn reserved(name: &str) -> bool {
    name.starts_with("x-tollgate-")
        || name.starts_with("x-forwarded-")
        || name.starts_with("proxy-")
        || matches!(
            name,
            "host"
                | "authorization"
                | "cookie"
                | "bkflow-token"
                | "x-request-id"
                | "x-bkapi-authorization"
                | "connection"
                | "keep-alive"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
                | "content-length"
                | "content-type"
                | "forwarded"
        )
}

/// `claims_to_headers:` of an issuer or a route at `key`: valid, unreserved header names
/// without `_` (which nginx-style upstreams drop or read as `-`).
pub(super) fn check_claim_headers(
    key: &str,
    map: &BTreeMap<String, String>,
    c: &mut Checker,
) -> Vec<(String, HeaderName)> {
    let mut out = Vec::new();
    for (claim, header) in map {
        let k = format!("{key}.claims_to_headers.{claim}");
        let lower = header.to_ascii_lowercase();
        match HeaderName::from_bytes(lower.as_bytes()) {
            Ok(_) if reserved(&lower) => c.fail(
                k,
                format!("{header} is a header tollgate sets or strips itself; pick another name"),
            ),
            Ok(_) if lower.contains('_') => c.fail(
                k,
                format!("{header}: write header names with '-', not '_' (upstreams read '_' as '-' or drop it)"),
            ),
            Ok(name) => out.push((claim.clone(), name)),
            Err(_) => c.fail(k, format!("{header:?} is not a header name")),
        }
    }
    out
}

fn https_url(key: &str, text: &str, c: &mut Checker) -> Option<http::Uri> {
    match text.parse::<http::Uri>() {
        Ok(u) if u.scheme_str() == Some("https") && u.host().is_some() => Some(u),
        Ok(u) if u.scheme_str() == Some("http") && u.host().is_some_and(is_loopback) => Some(u),
        Ok(_) => {
            c.fail(key, format!("{text:?}: keys and introspection are only fetched over https:// (http:// only on loopback)"));
            None
        }
        Err(e) => {
            c.fail(key, format!("{text:?} is not a URL: {e}"));
            None
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn algorithms(key: &str, names: Option<&Vec<String>>, c: &mut Checker) -> Vec<Algorithm> {
    let Some(names) = names else {
        return vec![Algorithm::RS256];
    };
    if names.is_empty() {
        c.fail(key, "name at least one algorithm");
    }
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let k = format!("{key}[{i}]");
        match n.parse::<Algorithm>() {
            Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => c.fail(
                k,
                format!(
                    "{n}: a symmetric algorithm cannot be checked against a JWKS of public keys"
                ),
            ),
            Ok(a) => out.push(a),
            Err(_) if n.eq_ignore_ascii_case("none") => {
                c.fail(k, "\"none\" (an unsigned token) is never accepted")
            }
            Err(_) => c.fail(
                k,
                format!(
                    "{n:?} is not one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA"
                ),
            ),
        }
    }
    out
}

fn duration(d: Option<&duration::ConfigDuration>, default: Duration) -> Duration {
    d.map_or(default, |d| d.0)
}

/// `issuers:`, in order; names are unique and differ from the dialects' names.
pub(super) fn check_issuers(raw: &RawConfig, c: &mut Checker) -> Vec<IssuerConfig> {
    let mut out: Vec<IssuerConfig> = Vec::new();
    for (i, r) in raw.issuers.iter().enumerate() {
        let key = format!("issuers[{i}]");
        let name_ok = !r.name.is_empty()
            && r.name.len() <= 64
            && r.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !name_ok {
            c.fail(
                format!("{key}.name"),
                "1 to 64 letters, digits, '-', '_' or '.'",
            );
        } else if Dialect::parse(&r.name.to_ascii_lowercase()).is_some()
            || r.name.eq_ignore_ascii_case("none")
        {
            c.fail(
                format!("{key}.name"),
                format!("{:?} is taken by tollgate's own dialects", r.name),
            );
        } else if out.iter().any(|o| o.name == r.name) {
            c.fail(
                format!("{key}.name"),
                format!("{:?} is named twice", r.name),
            );
        }
        out.push(check_issuer(&key, r, c));
    }
    if out.len() > u16::MAX as usize {
        c.fail("issuers", "too many issuers");
    }
    out
}

fn check_issuer(key: &str, r: &RawIssuer, c: &mut Checker) -> IssuerConfig {
    let keys = match (&r.jwks_url, &r.jwks_file) {
        (Some(_), Some(_)) => {
            c.fail(
                format!("{key}.jwks_file"),
                "set jwks_url or jwks_file, not both",
            );
            None
        }
        (Some(u), None) => https_url(&format!("{key}.jwks_url"), u, c).map(KeySource::Url),
        (None, Some(f)) => {
            let p = c.path(f);
            c.readable(&format!("{key}.jwks_file"), &p);
            Some(KeySource::File(p))
        }
        (None, None) => None,
    };
    let signed = r.jwks_url.is_some() || r.jwks_file.is_some();
    // Checked whenever keys are named, so a bad URL does not hide a bad algorithm.
    let algorithms =
        signed.then(|| algorithms(&format!("{key}.algorithms"), r.algorithms.as_ref(), c));
    let jwt = keys.map(|keys| {
        if r.issuer.as_deref().is_none_or(str::is_empty) {
            c.fail(
                format!("{key}.issuer"),
                "required with jwks_url or jwks_file: the exact iss of its tokens",
            );
        }
        JwtIssuer {
            issuer: r.issuer.clone().unwrap_or_default(),
            keys,
            algorithms: algorithms.clone().unwrap_or_default(),
            refresh: duration(r.jwks_refresh.as_ref(), Duration::from_secs(600))
                .clamp(Duration::from_secs(1), Duration::from_secs(86_400)),
            cooldown: duration(r.jwks_cooldown.as_ref(), Duration::from_secs(30)),
        }
    });
    let introspection = r.introspection_url.as_ref().and_then(|u| {
        let url = https_url(&format!("{key}.introspection_url"), u, c)?;
        let client_id = r.client_id.clone().unwrap_or_default();
        if client_id.is_empty() {
            c.fail(
                format!("{key}.client_id"),
                "required with introspection_url: the gateway's client id at the IdP",
            );
        }
        let secret = match (&r.client_secret, &r.client_secret_file) {
            (Some(_), Some(_)) => {
                c.fail(
                    format!("{key}.client_secret_file"),
                    "set client_secret or client_secret_file, not both",
                );
                String::new()
            }
            (Some(s), None) => {
                c.warn(
                    &format!("{key}.client_secret"),
                    "secret written in the config; prefer client_secret_file",
                );
                s.clone()
            }
            (None, Some(f)) => {
                let p = c.path(f);
                match std::fs::read_to_string(&p) {
                    Ok(s) => s.trim().to_owned(),
                    Err(e) => {
                        c.fail(
                            format!("{key}.client_secret_file"),
                            format!("cannot read {}: {e}", p.display()),
                        );
                        String::new()
                    }
                }
            }
            (None, None) => {
                c.fail(
                    format!("{key}.client_secret"),
                    "required with introspection_url (or client_secret_file)",
                );
                String::new()
            }
        };
        Some(Introspection {
            url,
            client_id,
            client_secret: Secret::new(secret),
            cache_ttl: duration(r.cache_ttl.as_ref(), Duration::from_secs(300)),
            negative_ttl: duration(r.negative_ttl.as_ref(), Duration::from_secs(10)),
            token_prefix: r.token_prefix.clone().filter(|p| !p.is_empty()),
            token_length: r.token_length,
        })
    });
    if !signed && r.introspection_url.is_none() {
        c.fail(
            format!("{key}.jwks_url"),
            "an issuer needs jwks_url, jwks_file or introspection_url",
        );
    }
    let ca_file = r.ca_file.as_ref().map(|f| {
        let p = c.path(f);
        c.readable(&format!("{key}.ca_file"), &p);
        p
    });
    let claims = r.claims.clone().unwrap_or_default();
    let names = |v: Option<&raw::OneOrMany>, default: &[&str]| {
        v.map_or_else(
            || default.iter().map(|s| s.to_string()).collect(),
            raw::OneOrMany::names,
        )
    };
    // The app is the client the token was issued to (RFC 9068 `client_id`, OIDC `azp`), never
    // the user it speaks for: a user whose `sub` equals a local app id is not that app.
    let app_claims = match &r.app_id_claim {
        Some(one) => vec![one.clone()],
        None => names(claims.app_id.as_ref(), &["client_id", "azp"]),
    };
    let scope_claims = names(claims.scopes.as_ref(), &["scope", "scp"]);
    let app_key = if r.app_id_claim.is_some() {
        format!("{key}.app_id_claim")
    } else {
        format!("{key}.claims.app_id")
    };
    if app_claims.is_empty() || app_claims.iter().any(String::is_empty) {
        c.fail(app_key, "name at least one claim");
    } else if app_claims.iter().any(|n| n == "sub") {
        c.fail(
            app_key,
            "sub names the user, not the client: use client_id, azp or the claim your IdP puts the client in",
        );
    }
    if r.audiences.is_empty() {
        c.fail(
            format!("{key}.audiences"),
            "required: only tokens whose aud names one of these pass (without it any token of the realm, meant for any other service, would)",
        );
    }
    IssuerConfig {
        name: r.name.clone(),
        issuer: r.issuer.clone().filter(|s| !s.is_empty()),
        jwt,
        introspection,
        ca_file,
        audiences: r.audiences.clone(),
        leeway: duration(r.leeway.as_ref(), Duration::from_secs(30)),
        app_claims,
        scope_claims,
        claims_to_headers: check_claim_headers(key, &r.claims_to_headers, c),
        timeout: duration(r.timeout.as_ref(), Duration::from_secs(5)),
    }
}

/// With more than one introspecting issuer, a bearer route that does not narrow `dialects:`
/// sends an unknown opaque token to each of them in turn: say so.
pub(super) fn warn_shared_introspection(
    issuers: &[IssuerConfig],
    routes: &[RouteConfig],
    c: &mut Checker,
) {
    let introspecting = issuers.iter().filter(|i| i.introspection.is_some()).count();
    if introspecting < 2 {
        return;
    }
    for (i, r) in routes.iter().enumerate() {
        if r.auth == AuthMode::Bearer && r.dialects.is_none() {
            c.warn(
                &format!("routes[{i}]"),
                format!("{introspecting} issuers introspect opaque tokens and this route does not narrow dialects:, so an unknown opaque token is sent to each of them in turn"),
            );
        }
    }
}
