//! The feishu dialect (seed 002): `app_access_token` for store apps (`a-` tokens, flat
//! `{code, msg, app_access_token, expire}`), app tickets issued here and pushed to the app's
//! `event_url` (hourly and on `app_ticket/resend`), the 2 h / 30 min overlap rule, and the
//! neighbours DIALECTS §7 lists: `tenant_access_token` and the self-built `/internal` variants.

use super::core::{authenticate, AuthError};
use crate::body::{self, Body};
use crate::config::App;
use crate::issue::{Call, Ctx, Reply};
use crate::reject::{refused, Decision, Reject};
use crate::shared::Shared;
use crate::state::Runtime;
use crate::store::op::{FsRow, Op, TicketRow};
use crate::token::{now_secs, opaque};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

fn flat(code: u32, msg: &str) -> Response<Body> {
    body::json(StatusCode::OK, &json!({ "code": code, "msg": msg }))
}

/// A refusal in Feishu's flat envelope (HTTP 200 with the error code).
fn refuse(code: u32, msg: &str, reason: &'static str, decision: Option<Decision>) -> Reject {
    refused(reason, decision, flat(code, msg))
}

/// 10003: a missing or malformed field.
fn invalid_param() -> Reject {
    refuse(10003, "invalid param", "bad_request", None)
}

async fn json_body(call: Call<'_>) -> Result<Option<Map<String, Value>>, Reject> {
    let (_, bytes) = call.read().await?;
    Ok(match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    })
}

fn field<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `{app_id, app_secret}` checked: 10003 for a missing field or unknown app, 10014 for a bad secret.
async fn app_of(m: &Map<String, Value>, ctx: &Ctx<'_>) -> Result<Arc<App>, Reject> {
    let (Some(id), Some(secret)) = (field(m, "app_id"), field(m, "app_secret")) else {
        return Err(invalid_param());
    };
    match authenticate(ctx, id, secret).await {
        Ok(app) => Ok(app),
        Err(AuthError::RateLimited(secs)) => Err(Reject::RateLimited(secs)),
        // Feishu answers an unknown app as a bad parameter; it is still a credential refused.
        Err(AuthError::UnknownApp) => Err(refuse(
            10003,
            "invalid param",
            "bad_credentials",
            Some(Decision::Invalid),
        )),
        Err(AuthError::BadSecret) => Err(refuse(
            10014,
            "app secret invalid",
            "bad_credentials",
            Some(Decision::Invalid),
        )),
        Err(AuthError::Internal) => Err(refuse(10001, "internal error", "internal", None)),
    }
}

/// The JSON body and the app it authenticates (`{app_id, app_secret}`), or the flat refusal.
async fn authed(call: Call<'_>) -> Result<(Map<String, Value>, Arc<App>), Reject> {
    let ctx = call.ctx;
    let m = json_body(call).await?.ok_or_else(invalid_param)?;
    let app = app_of(&m, ctx).await?;
    Ok((m, app))
}

/// The feishu dialect's settings (its endpoints exist only when it is enabled).
fn config(rt: &Runtime) -> &crate::config::FeishuDialect {
    rt.config
        .dialects
        .feishu
        .as_ref()
        .expect("feishu endpoints exist only when enabled")
}

async fn obtain(
    rt: &Runtime,
    shared: &Shared,
    app: &str,
    kind: &str,
    prefix: &str,
) -> Result<(String, u64), Reject> {
    let cfg = config(rt);
    shared.catch_up().await?;
    let now = shared.clock.now_millis();
    let life = crate::store::feishu::Life {
        ttl_ms: cfg.ttl.as_millis() as u64,
        renew_before_ms: cfg.renew_before.as_millis() as u64,
    };
    let got = shared.feishu.obtain(app, kind, prefix, life, now);
    if got.fresh {
        let row = FsRow {
            token_hash: opaque::hash(&got.token),
            id: got.id,
            app: app.to_owned(),
            kind: kind.to_owned(),
            prefix: prefix.to_owned(),
            expires_ms: got.expires_ms,
        };
        shared.store.commit(vec![Op::Fs(row)]).await?;
        shared
            .metrics
            .tokens_issued
            .with_label_values(&["feishu"])
            .inc();
    }
    // `expire` is what is left, in whole seconds.
    Ok((got.token, got.expires_ms.saturating_sub(now) / 1000))
}

/// Issues a ticket for `app` and commits it (sealed) before it is handed out.
pub async fn new_ticket(
    shared: &Shared,
    app: &str,
    ttl: std::time::Duration,
) -> Result<(String, u64), Reject> {
    let (ticket, expires_ms) =
        shared
            .feishu
            .issue_ticket(app, ttl.as_millis() as u64, shared.clock.now_millis());
    let row = TicketRow {
        app: app.to_owned(),
        ticket_hash: opaque::hash(&ticket),
        sealed: shared.master.seal(&ticket, app.as_bytes()),
        expires_ms,
    };
    shared.store.commit(vec![Op::Ticket(row)]).await?;
    Ok((ticket, expires_ms))
}

/// `POST app_access_token` `{app_id, app_secret, app_ticket}` (store apps).
pub async fn app_access_token(call: Call<'_>) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let (m, app) = authed(call).await?;
    let Some(ticket) = field(&m, "app_ticket") else {
        return Err(invalid_param());
    };
    if !shared
        .feishu
        .ticket_valid(&app.id, ticket, shared.clock.now_millis())
    {
        return Err(refuse(
            10012,
            "app_ticket is invalid",
            "bad_ticket",
            Some(Decision::Invalid),
        ));
    }
    let (token, expire) = obtain(rt, shared, &app.id, "app", "a-").await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({ "code": 0, "msg": "success", "app_access_token": token, "expire": expire }),
    ))
}

/// `POST app_access_token/internal` `{app_id, app_secret}` (self-built apps): both tokens.
pub async fn app_access_token_internal(call: Call<'_>) -> Reply {
    internal(call, true).await
}

/// `POST tenant_access_token/internal` `{app_id, app_secret}`: the tenant token alone.
pub async fn tenant_access_token_internal(call: Call<'_>) -> Reply {
    internal(call, false).await
}

/// The self-built app's tenant token, and with `with_app_token` its app token too. A store
/// app (`feishu_type: store`, the default) must present its app_ticket: 10003 here, as Feishu
/// answers a store app on the self-built endpoints.
async fn internal(call: Call<'_>, with_app_token: bool) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let (_, app) = authed(call).await?;
    if !app.self_built {
        return Err(refuse(
            10003,
            "invalid param: not a self-built app (store apps use app_access_token with their app_ticket)",
            "bad_request",
            Some(Decision::Forbidden),
        ));
    }
    let (tenant_token, tenant_expire) =
        obtain(rt, shared, &app.id, "internal_tenant", "t-").await?;
    let mut answer = json!({ "code": 0, "msg": "ok", "tenant_access_token": tenant_token, "expire": tenant_expire });
    if with_app_token {
        let (app_token, expire) = obtain(rt, shared, &app.id, "internal_app", "t-").await?;
        answer["app_access_token"] = app_token.into();
        answer["expire"] = expire.into();
    }
    Ok(body::json(StatusCode::OK, &answer))
}

/// `POST tenant_access_token` `{app_access_token, tenant_key}` (store apps).
pub async fn tenant_access_token(call: Call<'_>) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let m = json_body(call).await?.ok_or_else(invalid_param)?;
    let (Some(app_token), Some(tenant)) = (field(&m, "app_access_token"), field(&m, "tenant_key"))
    else {
        return Err(invalid_param());
    };
    // The tenant reaches the upstream in X-Tollgate-Tenant and the store as a key: bounded.
    if !crate::ident::valid_tenant(tenant) {
        return Err(invalid_param());
    }
    let rec = shared
        .feishu
        .lookup(&opaque::hash(app_token), shared.clock.now_millis())
        // An app token of an app no longer configured makes no tenant tokens.
        .filter(|r| r.kind == "app" && rt.apps.contains_key(&r.app));
    let Some(rec) = rec else {
        return Err(refuse(
            99991664,
            "app_access_token is invalid",
            "invalid_token",
            Some(Decision::Invalid),
        ));
    };
    let (token, expire) = obtain(rt, shared, &rec.app, &format!("tenant:{tenant}"), "t-").await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({ "code": 0, "msg": "success", "tenant_access_token": token, "expire": expire }),
    ))
}

/// `POST app_ticket/resend` `{app_id, app_secret}`: a new ticket, pushed to the app's event URL.
pub async fn resend(call: Call<'_>) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let (_, app) = authed(call).await?;
    let cfg = config(rt);
    let (ticket, _) = new_ticket(shared, &app.id, cfg.ticket_ttl).await?;
    if app.event_url.is_some() {
        tokio::spawn(push_ticket(Arc::clone(&app), ticket));
    }
    Ok(flat(0, "success"))
}

/// The `app_ticket` event as Feishu sends it.
pub fn ticket_event(app: &App, ticket: &str) -> Value {
    json!({
        "ts": now_secs().to_string(),
        "uuid": opaque::random_hex128(),
        "token": app.verification_token.as_deref().unwrap_or(""),
        "type": "event_callback",
        "event": { "app_id": app.id, "app_ticket": ticket, "type": "app_ticket" },
    })
}

/// POSTs the `app_ticket` event to the app's `event_url` (bounded to 10 s; failures logged).
pub async fn push_ticket(app: Arc<App>, ticket: String) {
    let Some(url) = app.event_url.clone() else {
        return;
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let body = Bytes::from(ticket_event(&app, &ticket).to_string());
    let req = http::Request::post(url.clone())
        .header(
            http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(Full::new(body));
    let Ok(req) = req else { return };
    match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
        Ok(Ok(res)) if res.status().is_success() => {
            tracing::info!(app = %app.id, "app_ticket pushed")
        }
        Ok(Ok(res)) => {
            tracing::warn!(app = %app.id, status = res.status().as_u16(), "app_ticket push refused")
        }
        Ok(Err(e)) => tracing::warn!(app = %app.id, error = %e, "app_ticket push failed"),
        Err(_) => tracing::warn!(app = %app.id, "app_ticket push timed out"),
    }
}

/// Every hour: a fresh ticket for each app with an `event_url`, pushed to it.
pub async fn push_hourly(
    gw: Arc<crate::state::Gateway>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let rt = gw.runtime();
        let Some(cfg) = &rt.config.dialects.feishu else {
            continue;
        };
        for app in rt.apps.values().filter(|a| a.event_url.is_some()) {
            match new_ticket(&gw.shared, &app.id, cfg.ticket_ttl).await {
                Ok((ticket, _)) => {
                    tokio::spawn(push_ticket(Arc::clone(app), ticket));
                }
                Err(_) => {
                    tracing::warn!(app = %app.id, "no app_ticket pushed: the store is unavailable")
                }
            }
        }
    }
}
