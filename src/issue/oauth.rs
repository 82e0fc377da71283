//! The oauth dialect: seed 003's `POST /oauth/token/get` and RFC 6749's client-credentials
//! `POST /oauth/token`. Both mint the same JWT (`typ: at+jwt`, `kid`, `client_id`, `scope`).

use super::core::{authenticate, mint_jwt, AuthError, JwtSpec};
use crate::body::{self, Body};
use crate::issue::{Call, Ctx, Reply};
use crate::reject::{refused, Decision, Reject};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

/// A seed-003 refusal: the status mirrored in the envelope; the reason and decision follow it.
fn seed_error(status: StatusCode, app_id: Option<&str>, msg: &str) -> Reject {
    let res = body::json(
        status,
        &json!({ "appId": app_id, "accessToken": null, "expiresIn": 0, "statusCode": status.as_u16(), "errMsg": msg }),
    );
    let (reason, decision) = match status {
        StatusCode::UNAUTHORIZED => ("bad_credentials", Some(Decision::Invalid)),
        StatusCode::FORBIDDEN => ("forbidden", Some(Decision::Forbidden)),
        s if s.is_server_error() => ("internal", None),
        _ => ("bad_request", None),
    };
    refused(reason, decision, res)
}

/// Seed 003: JSON `{app_id, app_key | app_secret}` → camelCase envelope, status mirrored in HTTP.
pub async fn seed(call: Call<'_>) -> Reply {
    let (rt, shared, call_ctx) = (call.ctx.rt, call.ctx.shared, call.ctx);
    let dialect = rt.config.dialects.oauth.as_ref().ok_or(Reject::NotFound)?;
    let cert = bound_cert(dialect, &call);
    let (_, bytes) = call.read().await?;
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(seed_error(
            StatusCode::BAD_REQUEST,
            None,
            "request body must be a JSON object",
        ));
    };
    let Some(app_id) = doc
        .get("app_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(seed_error(
            StatusCode::BAD_REQUEST,
            None,
            "app_id is required",
        ));
    };
    // The seed's table says app_key, its example sends app_secret: both are the same secret.
    let secret = doc
        .get("app_key")
        .or_else(|| doc.get("app_secret"))
        .and_then(Value::as_str);
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Err(seed_error(
            StatusCode::BAD_REQUEST,
            Some(app_id),
            "app_key or app_secret is required",
        ));
    };
    let app = match authenticate(call_ctx, app_id, secret).await {
        Ok(app) => app,
        Err(AuthError::RateLimited(secs)) => return Err(Reject::RateLimited(secs)),
        Err(AuthError::Internal) => {
            return Err(seed_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(app_id),
                "server error",
            ))
        }
        Err(_) => return Err(seed_error(StatusCode::UNAUTHORIZED, Some(app_id), "非法id")),
    };
    let minted = match mint_jwt(
        rt,
        shared,
        &app,
        JwtSpec::oauth(dialect.ttl, app.oauth_scopes.clone()).bound_to(cert.as_deref()),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "signing failed");
            return Err(seed_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(app_id),
                "server error",
            ));
        }
    };
    let mut res = body::json(
        StatusCode::OK,
        &json!({
            "appId": app.id,
            "accessToken": format!("Bearer {}", minted.token),
            "expiresIn": minted.claims.exp - minted.claims.iat,
            "statusCode": 200,
            "errMsg": null,
        }),
    );
    no_store(&mut res);
    Ok(res)
}

/// The client certificate a token issued on this call is bound to (RFC 8705), when the
/// dialect binds and the connection presented a verified one.
fn bound_cert(
    dialect: &crate::config::OauthDialect,
    call: &Call<'_>,
) -> Option<std::sync::Arc<crate::tls::cert_info::ClientCert>> {
    dialect
        .certificate_bound
        .then(|| call.client_cert.clone())
        .flatten()
}

fn no_store(res: &mut Response<Body>) {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// An RFC 6749 §5.2 refusal; `invalid_client` is an auth decision.
fn rfc_error(status: StatusCode, error: &'static str, description: &str, basic: bool) -> Reject {
    let mut res = body::json(
        status,
        &json!({ "error": error, "error_description": description }),
    );
    no_store(&mut res);
    if basic {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tollgate\""),
        );
    }
    let decision = (error == "invalid_client").then_some(Decision::Invalid);
    refused(error, decision, res)
}

/// The app a client-credentials request authenticates: HTTP Basic or `client_id` /
/// `client_secret` in the form, never both (RFC 6749 §2.3.1).
async fn client(
    parts: &http::request::Parts,
    body_id: Option<String>,
    body_secret: Option<String>,
    ctx: &Ctx<'_>,
) -> Result<std::sync::Arc<crate::config::App>, Reject> {
    let basic = basic_credentials(parts);
    let used_basic = basic.is_some();
    let (id, secret) = match (basic, body_id, body_secret) {
        (Some(Ok(_)), Some(_), _) | (Some(Ok(_)), _, Some(_)) => {
            let msg = "use one client authentication method";
            return Err(rfc_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                msg,
                false,
            ));
        }
        (Some(Ok(pair)), None, None) => pair,
        (Some(Err(())), ..) => {
            return Err(rfc_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "malformed Basic credentials",
                true,
            ))
        }
        (None, Some(i), Some(s)) => (i, s),
        (None, ..) => {
            let msg = "client authentication is required";
            return Err(rfc_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                msg,
                true,
            ));
        }
    };
    let app = match authenticate(ctx, &id, &secret).await {
        Ok(app) => app,
        Err(AuthError::RateLimited(secs)) => return Err(Reject::RateLimited(secs)),
        Err(AuthError::Internal) => {
            return Err(rfc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again",
                false,
            ))
        }
        Err(_) => {
            return Err(rfc_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
                used_basic,
            ))
        }
    };
    Ok(app)
}

/// RFC 7009 `POST /oauth/revoke`: form `token=…`, the app's credentials as Basic or form
/// fields. An app revokes its own tokens; an unknown token, or another app's (which stays
/// valid), is answered 200 all the same.
pub async fn revoke(call: Call<'_>) -> Reply {
    let (rt, shared, call_ctx) = (call.ctx.rt, call.ctx.shared, call.ctx);
    let (parts, bytes) = call.read().await?;
    let (mut token, mut body_id, mut body_secret) = (None, None, None);
    for (k, v) in form_urlencoded::parse(&bytes) {
        match &*k {
            "token" => token = Some(v.into_owned()),
            "client_id" => body_id = Some(v.into_owned()),
            "client_secret" => body_secret = Some(v.into_owned()),
            _ => {}
        }
    }
    let app = client(&parts, body_id, body_secret, call_ctx).await?;
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(rfc_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
            false,
        ));
    };
    let token = token.strip_prefix("Bearer ").unwrap_or(&token);
    let owner = crate::guard::verify::principal(token, rt, shared).map(|p| p.app.clone());
    if owner.is_ok_and(|owner| *owner == *app.id) {
        crate::issue::revoke::revoke_any(shared, token).await?;
    }
    let mut res = body::json(StatusCode::OK, &json!({}));
    no_store(&mut res);
    Ok(res)
}

/// Client id and secret from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded, then base64).
fn basic_credentials(parts: &http::request::Parts) -> Option<Result<(String, String), ()>> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(()));
    };
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some(match (unescape(id), unescape(secret)) {
        (Some(i), Some(s)) => Ok((i, s)),
        _ => Err(()),
    })
}

/// RFC 6749 §4.4: form `grant_type=client_credentials`, Basic or body client authentication.
pub async fn rfc(call: Call<'_>) -> Reply {
    let (rt, shared, call_ctx) = (call.ctx.rt, call.ctx.shared, call.ctx);
    let dialect = rt.config.dialects.oauth.as_ref().ok_or(Reject::NotFound)?;
    let cert = bound_cert(dialect, &call);
    let (parts, bytes) = call.read().await?;
    let mut grant = None;
    let mut scope = None;
    let (mut body_id, mut body_secret) = (None, None);
    for (k, v) in form_urlencoded::parse(&bytes) {
        let slot = match &*k {
            "grant_type" => &mut grant,
            "scope" => &mut scope,
            "client_id" => &mut body_id,
            "client_secret" => &mut body_secret,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(rfc_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("{k} given twice"),
                false,
            ));
        }
    }
    match grant.as_deref() {
        None => {
            return Err(rfc_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
                false,
            ))
        }
        Some("client_credentials") => {}
        Some(_) => {
            let msg = "only client_credentials is supported";
            return Err(rfc_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                msg,
                false,
            ));
        }
    }
    let app = client(&parts, body_id, body_secret, call_ctx).await?;
    let scopes: Vec<String> = match scope.as_deref() {
        None => app.oauth_scopes.clone(),
        Some(s) => {
            let asked: Vec<String> = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = asked.iter().find(|x| !app.oauth_scopes.contains(x)) {
                let msg = format!("scope {bad} is not granted to this client");
                return Err(rfc_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &msg,
                    false,
                ));
            }
            asked
        }
    };
    let spec = JwtSpec::oauth(dialect.ttl, scopes).bound_to(cert.as_deref());
    let minted = match mint_jwt(rt, shared, &app, spec) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "signing failed");
            return Err(rfc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again",
                false,
            ));
        }
    };
    let mut res = body::json(
        StatusCode::OK,
        &json!({
            "access_token": minted.token,
            "token_type": "Bearer",
            "expires_in": minted.claims.exp - minted.claims.iat,
            "scope": minted.claims.scope.joined(),
        }),
    );
    no_store(&mut res);
    Ok(res)
}
