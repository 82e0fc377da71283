//! The admin listener: `/metrics`, `/healthz`, `/readyz`, and the admin API (token revoke,
//! RFC 7662 introspection). The admin API requires `admin.token_file`'s token when set.

use crate::body::{self, Body};
use crate::issue::read_body;
use crate::reject::Reject;
use crate::state::Gateway;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What an admin request asks for, read from its method and path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRoute<'a> {
    /// `GET /metrics`.
    Metrics,
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `POST /admin/tokens/revoke`.
    Revoke,
    /// `POST /admin/introspect`.
    Introspect,
    /// `POST /admin/explain`.
    Explain,
    /// `POST /admin/keys/rotate`.
    RotateKeys,
    /// `/admin/spaces/{space_id}/credentials[/{id}]` (the segments as sent).
    Credentials(&'a str),
    /// `GET /admin/apps/{app_id}/app_ticket`.
    AppTicket(&'a str),
    /// Another `/admin/` path: authenticated, then 404.
    OtherAdmin,
    /// Anything else.
    NotFound,
}

impl<'a> AdminRoute<'a> {
    /// Classifies a request; total over every method and path (never panics).
    pub fn of(method: &Method, path: &'a str) -> Self {
        // HEAD is answered wherever GET is (hyper sends the head without the body).
        let method = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match (method, path) {
            (&Method::GET, "/metrics") => AdminRoute::Metrics,
            (&Method::GET, "/healthz") => AdminRoute::Healthz,
            (&Method::GET, "/readyz") => AdminRoute::Readyz,
            (&Method::POST, "/admin/tokens/revoke") => AdminRoute::Revoke,
            (&Method::POST, "/admin/introspect") => AdminRoute::Introspect,
            (&Method::POST, "/admin/explain") => AdminRoute::Explain,
            (&Method::POST, "/admin/keys/rotate") => AdminRoute::RotateKeys,
            (_, p) if p.starts_with("/admin/spaces/") => {
                AdminRoute::Credentials(&p["/admin/spaces/".len()..])
            }
            (&Method::GET, p) => match p
                .strip_prefix("/admin/apps/")
                .and_then(|r| r.strip_suffix("/app_ticket"))
            {
                Some(app) if !app.is_empty() && !app.contains('/') => AdminRoute::AppTicket(app),
                _ if p.starts_with("/admin/") => AdminRoute::OtherAdmin,
                _ => AdminRoute::NotFound,
            },
            (_, p) if p.starts_with("/admin/") => AdminRoute::OtherAdmin,
            _ => AdminRoute::NotFound,
        }
    }

    #[cfg(test)]
    fn is_admin_api(self) -> bool {
        !matches!(
            self,
            AdminRoute::Metrics | AdminRoute::Healthz | AdminRoute::Readyz | AdminRoute::NotFound
        )
    }
}

fn refused(r: Reject) -> Response<Body> {
    error(r.status(), &r.message())
}

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    body::json(status, &json!({ "error": msg }))
}

/// Serves one admin request; `local` is the address the admin listener is bound to.
pub async fn handle(
    req: Request<Incoming>,
    gw: Arc<Gateway>,
    local: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let route = AdminRoute::of(req.method(), &path);
    let res = match route {
        AdminRoute::Metrics => {
            let mut res = body::text(StatusCode::OK, gw.shared.metrics.render());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        AdminRoute::Healthz => body::json(StatusCode::OK, &json!({ "status": "ok" })),
        AdminRoute::Readyz => readyz(&gw).await,
        AdminRoute::NotFound => error(StatusCode::NOT_FOUND, "not found"),
        // A page in the operator's browser can reach a loopback port under a rebound name:
        // the admin API answers only to its own address (or admin.hosts).
        _ if !origin::host_allowed(&req, local, &gw) => error(
            StatusCode::MISDIRECTED_REQUEST,
            "Host is not this admin listener's address; add it to admin.hosts to allow it",
        ),
        // A page in a browser: its Origin or Sec-Fetch-Site says so, whatever it sends.
        _ if origin::from_a_web_page(&req, local, &gw) => error(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the admin API is not for web pages",
        ),
        _ if !authorized(&req, &gw) => {
            let mut res = error(StatusCode::UNAUTHORIZED, "admin token required");
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tollgate-admin\""),
            );
            res
        }
        _ => match media_error(&req, route) {
            Some(res) => res,
            None => admin_api(req, route, &gw).await,
        },
    };
    Ok(res)
}

/// State-changing admin calls need the body type they read: a cross-site form or `text/plain`
/// post (which a browser sends without asking) is refused with 415.
fn media_error<B>(req: &Request<B>, route: AdminRoute<'_>) -> Option<Response<Body>> {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return None;
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let ok = match route {
        AdminRoute::Revoke => ct == "application/json" || ct == FORM,
        AdminRoute::Introspect => ct == FORM,
        AdminRoute::RotateKeys => ct == "application/json" || ct.is_empty(),
        _ => ct == "application/json",
    };
    (!ok).then(|| {
        let want = match route {
            AdminRoute::Revoke => "application/json or application/x-www-form-urlencoded",
            AdminRoute::Introspect => "application/x-www-form-urlencoded",
            _ => "application/json",
        };
        error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("content-type must be {want}"),
        )
    })
}

mod credentials;
pub mod explain;
mod origin;
pub mod probe;
mod tokens;

const FORM: &str = "application/x-www-form-urlencoded";

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

/// The `token` of a JSON `{"token": ...}` or form `token=...` body.
fn token_field(bytes: &[u8], json_ok: bool) -> Option<String> {
    if json_ok {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            return v.get("token")?.as_str().map(str::to_owned);
        }
    }
    form_urlencoded::parse(bytes)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

async fn admin_api(req: Request<Incoming>, route: AdminRoute<'_>, gw: &Gateway) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let rt = gw.runtime();
    let bytes = match read_body(&parts, body, &rt.config.limits).await {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    match route {
        AdminRoute::Revoke => {
            let Some(token) = token_field(&bytes, true) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "body must be {\"token\": \"...\"} or the form token=...",
                );
            };
            let token = token.strip_prefix("Bearer ").unwrap_or(&token);
            let revoked = match crate::issue::revoke::revoke_any(&gw.shared, token).await {
                Ok(r) => r,
                Err(r) => return refused(r),
            };
            // An external issuer's token is revoked at its IdP; here it leaves the caches.
            let evicted = !revoked && crate::guard::external::evict(token, &rt, &gw.shared);
            let mut answer = json!({ "revoked": revoked });
            if evicted {
                answer["evicted"] = true.into();
            }
            body::json(StatusCode::OK, &answer)
        }
        AdminRoute::Explain => match serde_json::from_slice::<explain::Ask>(&bytes) {
            Ok(ask) => body::json(
                StatusCode::OK,
                &explain::explain(&ask, &rt, &gw.shared).await,
            ),
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                &format!("body must be {{\"method\", \"path\", \"headers\", \"token\"}}: {e}"),
            ),
        },
        AdminRoute::Introspect => {
            let Some(token) = token_field(&bytes, false) else {
                return error(StatusCode::BAD_REQUEST, "form field token is required");
            };
            let token = token.strip_prefix("Bearer ").unwrap_or(&token);
            body::json(StatusCode::OK, &tokens::introspect(gw, token).await)
        }
        AdminRoute::RotateKeys => {
            let rotations = &gw.shared.limits.rotations;
            let every = crate::config::Rate {
                tokens: 1.0,
                per: crate::limit::ROTATION_EVERY,
            };
            if let Err(wait) =
                rotations.take(&(), every, crate::limit::ROTATION_BURST, Instant::now())
            {
                let mut res = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "key rotations are limited; try again later",
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(wait));
                return res;
            }
            match gw.shared.rotate_keys(key_keep_secs(&rt.config)).await {
                Ok(kid) => body::json(StatusCode::OK, &json!({ "kid": kid })),
                Err(Reject::RateLimited(wait)) => {
                    let msg = "the key ring is full of retired keys still verifying live tokens; rotate again later";
                    let mut res = error(StatusCode::TOO_MANY_REQUESTS, msg);
                    res.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
                    res
                }
                Err(r) => refused(r),
            }
        }
        AdminRoute::Credentials(rest) => credentials::serve(gw, &parts.method, rest, &bytes).await,
        AdminRoute::AppTicket(app) => tokens::app_ticket(gw, app).await,
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Ready when the config is loaded (it is, or nothing would listen) and the store answers.
/// How long a retired signing key keeps verifying: the longest JWT lifetime plus the leeway.
pub fn key_keep_secs(config: &crate::config::Config) -> u64 {
    let d = &config.dialects;
    let longest = [
        d.oauth.as_ref().map(|o| o.ttl),
        d.hosecloud.as_ref().map(|h| h.ttl),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or_default();
    (longest + config.signing.leeway).as_secs()
}

/// Most a replica may lag the shared log and still take traffic.
const MAX_LAG_SECS: f64 = 5.0;

async fn readyz(gw: &Gateway) -> Response<Body> {
    let problem = gw.shared.store.not_ready().await;
    let lag = gw.shared.store.lag_seconds();
    gw.shared.metrics.replication_lag.set(lag);
    let ready = problem.is_none() && lag <= MAX_LAG_SECS;
    let state = match (problem, lag <= MAX_LAG_SECS) {
        (Some(why), _) => why,
        (None, false) => "catching up".to_owned(),
        (None, true) => "ok".to_owned(),
    };
    // An issuer whose keys were never fetched cannot check its tokens: not ready, and why.
    let rt = gw.runtime();
    let issuers: serde_json::Map<String, Value> = rt
        .issuers
        .iter()
        .map(|i| {
            let why = i.not_ready();
            (
                i.cfg.name.clone(),
                why.map_or("ok".into(), |w| format!("no keys: {w}")).into(),
            )
        })
        .collect();
    let issuers_ready = rt.issuers.iter().all(|i| i.not_ready().is_none());
    let ready = ready && issuers_ready;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut doc = json!({ "ready": ready, "config": "loaded", "store": state, "replication_lag_seconds": lag });
    if !issuers.is_empty() {
        doc["issuers"] = Value::Object(issuers);
    }
    body::json(status, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_and_odd_paths_are_classified_without_panicking() {
        let get = Method::GET;
        for (path, route) in [
            ("/admin/apps/app_ticket", AdminRoute::OtherAdmin),
            ("/admin/apps//app_ticket", AdminRoute::OtherAdmin),
            ("/admin/apps/cli/app_ticket", AdminRoute::AppTicket("cli")),
            ("/admin/apps/a/b/app_ticket", AdminRoute::OtherAdmin),
            ("/admin/spaces/", AdminRoute::Credentials("")),
            ("/nothing", AdminRoute::NotFound),
        ] {
            assert_eq!(AdminRoute::of(&get, path), route, "{path}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn every_method_and_path_is_classified(
            m in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "X"]),
            tail in "[a-z_/%.0-9]{0,40}",
            prefix in prop::sample::select(vec!["/admin/", "/admin/apps/", "/admin/spaces/", "/", "/metrics"]),
        ) {
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            let path = format!("{prefix}{tail}");
            let r = AdminRoute::of(&method, &path);
            if !path.starts_with("/admin/") {
                prop_assert!(!r.is_admin_api());
            }
        }
    }
}
