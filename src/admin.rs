//! The admin listener: `/metrics`, `/healthz`, `/readyz`, and the admin API (token revoke,
//! RFC 7662 introspection). The admin API requires `admin.token_file`'s token when set.

use crate::body::{self, Body};
use crate::issue::read_body;
use crate::state::Gateway;
use crate::token::jwt::VerifyError;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;

const BODY_LIMIT: usize = 64 * 1024;

/// Serves one admin request.
pub async fn handle(
    req: Request<Incoming>,
    gw: Arc<Gateway>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let res = match (req.method(), path.as_str()) {
        (&Method::GET, "/metrics") => {
            let mut res = body::text(StatusCode::OK, gw.shared.metrics.render());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        (&Method::GET, "/healthz") => body::json(StatusCode::OK, &json!({ "status": "ok" })),
        (&Method::GET, "/readyz") => readyz(&gw).await,
        (_, p) if p.starts_with("/admin/") => match authorized(&req, &gw) {
            false => {
                let mut res = body::json(
                    StatusCode::UNAUTHORIZED,
                    &json!({ "error": "admin token required" }),
                );
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tollgate-admin\""),
                );
                res
            }
            true => admin_api(req, &gw).await,
        },
        _ => body::json(StatusCode::NOT_FOUND, &json!({ "error": "not found" })),
    };
    Ok(res)
}

fn authorized<B>(req: &Request<B>, gw: &Gateway) -> bool {
    let rt = gw.runtime();
    let Some(token) = rt.config.admin.as_ref().and_then(|a| a.token.as_ref()) else {
        return true;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    presented.is_some_and(|t| token.matches(t.as_bytes()))
}

async fn admin_api(req: Request<Incoming>, gw: &Gateway) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = match read_body(&parts, body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(r) => return body::json(r.status(), &json!({ "error": r.message() })),
    };
    let rt = gw.runtime();
    match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/admin/tokens/revoke") => {
            let token = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("token")?.as_str().map(str::to_owned));
            let Some(token) = token else {
                return body::json(
                    StatusCode::BAD_REQUEST,
                    &json!({ "error": "body must be {\"token\": \"...\"}" }),
                );
            };
            let token = token.strip_prefix("Bearer ").unwrap_or(&token);
            let revoked = match revoke_any(gw, token).await {
                Ok(r) => r,
                Err(r) => return body::json(r.status(), &json!({ "error": r.message() })),
            };
            body::json(StatusCode::OK, &json!({ "revoked": revoked }))
        }
        (&Method::POST, "/admin/introspect") => {
            let token = form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned());
            let Some(token) = token else {
                return body::json(
                    StatusCode::BAD_REQUEST,
                    &json!({ "error": "form field token is required" }),
                );
            };
            let token = token.strip_prefix("Bearer ").unwrap_or(&token);
            match rt.keys.verify(token) {
                Ok(c) if !gw.shared.revoked.contains(&c.jti) => body::json(
                    StatusCode::OK,
                    &json!({
                        "active": true, "client_id": c.client_id, "dialect": c.dialect, "exp": c.exp, "iat": c.iat,
                        "nbf": c.nbf, "iss": c.iss, "jti": c.jti, "scope": c.scope.joined(), "token_type": "Bearer",
                    }),
                ),
                Ok(_) | Err(VerifyError::Expired | VerifyError::Invalid) => {
                    body::json(StatusCode::OK, &json!({ "active": false }))
                }
            }
        }
        (m, p) if p.starts_with("/admin/spaces/") => credentials_api(gw, m, p, &bytes).await,
        (&Method::GET, p) if p.starts_with("/admin/apps/") && p.ends_with("/app_ticket") => {
            let app = &p["/admin/apps/".len()..p.len() - "/app_ticket".len()];
            app_ticket(gw, app).await
        }
        _ => body::json(StatusCode::NOT_FOUND, &json!({ "error": "not found" })),
    }
}

/// `GET /admin/apps/{app_id}/app_ticket`: the app's current feishu ticket (one is issued when none is live).
async fn app_ticket(gw: &Gateway, app: &str) -> Response<Body> {
    let rt = gw.runtime();
    let (Some(cfg), true) = (&rt.config.dialects.feishu, rt.apps.contains_key(app)) else {
        return body::json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "no such app, or feishu is not enabled" }),
        );
    };
    let now = crate::token::now_millis();
    let current = match gw.shared.feishu.current_ticket(app, now) {
        Some(t) => t,
        None => match crate::issue::feishu::new_ticket(&gw.shared, app, cfg.ticket_ttl).await {
            Ok(t) => t,
            Err(r) => return body::json(r.status(), &json!({ "error": r.message() })),
        },
    };
    let (ticket, expires) = current;
    body::json(
        StatusCode::OK,
        &json!({ "app_ticket": ticket, "expire": expires.saturating_sub(now) / 1000 }),
    )
}

/// `/admin/spaces/{space_id}/credentials[/{id}]`: list, get, update (PUT with the create fields), delete.
async fn credentials_api(gw: &Gateway, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    use crate::store::sqlite::Op;
    let not_found = || {
        body::json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "no such credential" }),
        )
    };
    let segs: Vec<&str> = path
        .trim_start_matches("/admin/spaces/")
        .split('/')
        .collect();
    let (space, id) = match segs.as_slice() {
        [space, "credentials"] => (space.parse::<u64>().ok(), None),
        [space, "credentials", id] => (
            space.parse::<u64>().ok(),
            id.parse::<u64>().ok().map(Some).unwrap_or(Some(0)),
        ),
        _ => return not_found(),
    };
    let Some(space) = space else {
        return not_found();
    };
    let store = &gw.shared.credentials;
    match (method, id) {
        (&Method::GET, None) => {
            let list: Vec<Value> = store.list(space).iter().map(|c| c.display()).collect();
            body::json(StatusCode::OK, &json!({ "credentials": list }))
        }
        (&Method::GET, Some(id)) => store
            .get(space, id)
            .map_or_else(not_found, |c| body::json(StatusCode::OK, &c.display())),
        (&Method::PUT, Some(id)) => {
            let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
                return body::json(
                    StatusCode::BAD_REQUEST,
                    &json!({ "error": "body must be a JSON object" }),
                );
            };
            let fields = match crate::issue::bkflow::credential::parse_fields(&m) {
                Ok(f) => f,
                Err((_, msg)) => {
                    return body::json(StatusCode::BAD_REQUEST, &json!({ "error": msg }))
                }
            };
            let name = fields.name.clone();
            match store.update(space, id, fields) {
                Ok(c) => match gw.shared.commit(vec![Op::Cred(store.row(&c))]).await {
                    Ok(()) => body::json(StatusCode::OK, &c.display()),
                    Err(r) => body::json(r.status(), &json!({ "error": r.message() })),
                },
                Err(crate::store::credentials::CredentialError::NotFound) => not_found(),
                Err(e) => {
                    let (_, msg) = crate::issue::bkflow::credential::write_error(&e, &name);
                    body::json(StatusCode::CONFLICT, &json!({ "error": msg }))
                }
            }
        }
        (&Method::DELETE, Some(id)) => match store.delete(space, id) {
            true => match gw.shared.commit(vec![Op::CredDeleted(id)]).await {
                Ok(()) => {
                    let mut res = body::text(StatusCode::NO_CONTENT, "");
                    res.headers_mut().remove(header::CONTENT_TYPE);
                    res
                }
                Err(r) => body::json(r.status(), &json!({ "error": r.message() })),
            },
            false => not_found(),
        },
        _ => body::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "method not allowed" }),
        ),
    }
}

/// Revokes a token of any dialect, committed before answering; false when it was not live.
async fn revoke_any(gw: &Gateway, token: &str) -> Result<bool, crate::reject::Reject> {
    use crate::store::sqlite::Op;
    let shared = &gw.shared;
    let rt = gw.runtime();
    shared.catch_up().await?;
    let hash = crate::token::opaque::hash(token);
    let now = crate::token::now_millis();
    let live = if token.contains('.') {
        match rt.keys.verify(token) {
            Ok(claims) if !shared.revoked.contains(&claims.jti) => {
                let until = claims.exp + rt.keys.leeway();
                shared
                    .commit(vec![Op::Revoked(claims.jti.clone(), until)])
                    .await?;
                shared.revoked.add(&claims.jti, until);
                shared.hot.revoke_jti(&claims.jti);
                true
            }
            _ => false,
        }
    } else if let Some(rec) = shared.bkflow.lookup(&hash, now) {
        let filter = crate::store::bkflow::RevokeFilter {
            token: Some(hash),
            ..Default::default()
        };
        let gone = shared.bkflow.revoke(rec.space, &filter, now);
        let ids = gone.iter().map(|(id, _)| *id).collect();
        shared
            .commit(vec![Op::BkExpiry(ids, now.saturating_sub(1))])
            .await?;
        !gone.is_empty()
    } else if let Some(rec) = shared.feishu.lookup(&hash, now) {
        shared.feishu.revoke(&hash, now);
        let (id, prefix) = (rec.id, rec.prefix);
        let row = crate::store::sqlite::FsRow {
            token_hash: hash,
            id,
            app: rec.app,
            kind: rec.kind,
            prefix,
            expires_ms: now,
        };
        shared.commit(vec![Op::Fs(row)]).await?;
        true
    } else {
        false
    };
    if live {
        if let Some(p) = shared.hot.get(&hash) {
            p.mark_revoked();
        }
        shared.hot.remove(&hash);
        tracing::info!(token = %crate::secret::fingerprint(token), "token revoked");
    }
    Ok(live)
}

/// Ready when the config is loaded (it is, or nothing would listen) and the store answers.
async fn readyz(gw: &Gateway) -> Response<Body> {
    let store = gw.shared.store_ready().await;
    let status = if store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    body::json(
        status,
        &json!({ "ready": store, "config": "loaded", "store": if store { "ok" } else { "unreachable" } }),
    )
}
