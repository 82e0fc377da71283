//! The hosecloud dialect (seed 001): `getAccessToken` with `{appKey, appSecurity}`, the
//! `{code: "200", msg, data}` envelope (code a string, errors on HTTP 200), a JWT whose
//! `exp` × 1000 is `expiresTime`, and single-use refresh tokens that rotate both tokens,
//! through a v3-shaped JSON endpoint and the documented v2 query form (DIALECTS decision 5).

use super::core::{authenticate, mint_jwt, secret_generation, AuthError, JwtSpec, Minted};
use crate::body::{self, Body};
use crate::config::{App, Dialect};
use crate::issue::{Call, Reply};
use crate::reject::{refused, Decision, Reject};
use crate::shared::Shared;
use crate::state::Runtime;
use crate::store::op::Op;
use crate::store::refresh::RefreshRecord;
use crate::token::jwt::Scope;
use crate::token::opaque;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

fn ok(data: Value) -> Response<Body> {
    body::json(
        StatusCode::OK,
        &json!({ "code": "200", "msg": "操作成功", "data": data }),
    )
}

/// A bad app key or secret (HTTP 200, `code: "403"`).
fn bad_key() -> Reject {
    let res = body::json(
        StatusCode::OK,
        &json!({ "code": "403", "msg": "密钥无效", "data": "" }),
    );
    refused("bad_credentials", Some(Decision::Invalid), res)
}

/// Hosecloud's answer to missing fields and internal failures alike (HTTP 200, `code: "500"`).
fn system_error(reason: &'static str) -> Reject {
    let res = body::json(
        StatusCode::OK,
        &json!({ "code": "500", "msg": "system error", "data": null, "traceId": opaque::random_hex128() }),
    );
    refused(reason, None, res)
}

/// A refresh refused (v3 shape, HTTP 200).
fn unauthorized_v3() -> Reject {
    let res = body::json(
        StatusCode::OK,
        &json!({ "code": "403", "msg": "未授权", "data": "" }),
    );
    refused("refresh_refused", Some(Decision::Invalid), res)
}

/// A refresh refused (v2 shape, HTTP 403).
fn unauthorized_v2() -> Reject {
    let res = body::json(
        StatusCode::FORBIDDEN,
        &json!({ "code": "403", "msg": "未授权" }),
    );
    refused("refresh_refused", Some(Decision::Invalid), res)
}

/// A fresh access + refresh pair.
struct Pair {
    app: Arc<App>,
    minted: Minted,
    refresh: String,
}

impl Pair {
    fn corp_id(&self) -> &str {
        self.app.corp_id.as_deref().unwrap_or(&self.app.id)
    }

    fn expires_ms(&self) -> u64 {
        self.minted.claims.exp * 1000
    }

    fn v3_data(&self) -> Value {
        json!({
            "corpId": self.corp_id(),
            "accessToken": self.minted.token,
            "refreshToken": self.refresh,
            "expiresTime": self.expires_ms(),
            "scope": self.app.level.as_str(),
        })
    }
}

/// Mints a pair; the returned write must be committed before the pair is handed out.
/// `chain_start` is when the login behind a refresh happened (`None`: this is the login).
fn issue_pair(
    rt: &Runtime,
    shared: &Shared,
    app: Arc<App>,
    chain_start: Option<u64>,
) -> Result<(Pair, Op), String> {
    let cfg = (rt.config.dialects.hosecloud.as_ref()).ok_or("hosecloud is not enabled")?;
    let corp = app.corp_id.clone().unwrap_or_else(|| app.id.clone());
    let login_id = format!("0-{}", app.id);
    let mut extra = serde_json::Map::new();
    // Sa-Token-style claims as in the seed's decoded token.
    extra.insert("loginType".into(), "login".into());
    extra.insert("loginId".into(), login_id.clone().into());
    extra.insert("rnStr".into(), opaque::random_alnum(32).into());
    extra.insert("corporationId".into(), corp.into());
    extra.insert("userId".into(), login_id.into());
    extra.insert("extInfo".into(), json!({}));
    extra.insert("version".into(), 1.into());
    extra.insert("shortTermToken".into(), false.into());
    let spec = JwtSpec {
        dialect: Dialect::Hosecloud,
        ttl: cfg.ttl,
        scope: Scope::Level(app.level.as_str().to_owned()),
        typ: "JWT",
        extra,
    };
    let minted = mint_jwt(rt, shared, &app, spec)?;
    let refresh = opaque::random_alnum(60);
    let now = shared.clock.now_secs();
    let chain_start = chain_start.unwrap_or(now);
    // A chain ends refresh_max_lifetime after its login, however often it is refreshed.
    let chain_end = chain_start + cfg.refresh_max_lifetime.as_secs();
    let record = RefreshRecord {
        app: app.id.clone(),
        access_jti: minted.claims.jti.clone(),
        expires: (now + cfg.refresh_ttl.as_secs()).min(chain_end),
        secret_gen: secret_generation(shared, &app),
        chain_start,
    };
    let hash = opaque::hash(&refresh);
    shared.refresh.put(hash, record.clone());
    let op = Op::Refresh { hash, record };
    Ok((
        Pair {
            app,
            minted,
            refresh,
        },
        op,
    ))
}

/// The body as JSON (`null` when it is not).
async fn json_doc(call: Call<'_>) -> Result<Value, Reject> {
    let (_, bytes) = call.read().await?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn str_field<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `POST getAccessToken` `{appKey, appSecurity}`.
pub async fn get_access_token(call: Call<'_>) -> Reply {
    let (rt, shared, call_ctx) = (call.ctx.rt, call.ctx.shared, call.ctx);
    let doc = json_doc(call).await?;
    let (Some(key), Some(secret)) = (str_field(&doc, "appKey"), str_field(&doc, "appSecurity"))
    else {
        return Err(system_error("bad_request"));
    };
    let app = match authenticate(call_ctx, key, secret).await {
        Ok(app) => app,
        Err(AuthError::RateLimited(secs)) => return Err(Reject::RateLimited(secs)),
        Err(AuthError::Internal) => return Err(system_error("internal")),
        Err(_) => return Err(bad_key()),
    };
    match issue_pair(rt, shared, app, None) {
        Ok((pair, op)) => match shared.store.commit(vec![op]).await {
            Ok(()) => Ok(ok(pair.v3_data())),
            Err(_) => Err(system_error("store_unavailable")),
        },
        Err(e) => {
            tracing::error!(error = %e, "hosecloud issue failed");
            Err(system_error("internal"))
        }
    }
}

/// Checks an access/refresh pair, consumes the refresh token, revokes the old access token
/// and issues a new pair. An expired access token cannot be refreshed.
async fn rotate(
    rt: &Runtime,
    shared: &Shared,
    access: &str,
    refresh: &str,
) -> Result<Option<Pair>, Reject> {
    // Read what other replicas wrote (the pair may come from one of them).
    shared.catch_up().await?;
    // Check the pair before spending anything: a wrong access token must not burn the
    // refresh token on any replica.
    let pair_ok = shared
        .keys()
        .verify_at(access, shared.clock.now_secs())
        .is_ok_and(|c| {
            c.dialect.as_deref() == Some(Dialect::Hosecloud.as_str())
                && !shared.revoked.contains(&c.jti)
                && shared.refresh.matches(
                    &opaque::hash(refresh),
                    &c.jti,
                    &c.client_id,
                    shared.clock.now_secs(),
                )
        });
    if !pair_ok {
        return Ok(None);
    }
    // Replicas each hold the refresh token; only one may spend it.
    let once = format!("refresh:{}", hex::encode(opaque::hash(refresh)));
    if !shared
        .store
        .claim_once(
            &once,
            rt.config
                .dialects
                .hosecloud
                .as_ref()
                .map_or(86_400, |h| h.refresh_ttl.as_secs()),
        )
        .await?
    {
        return Ok(None);
    }
    let Some((pair, ops)) = rotate_in_memory(rt, shared, access, refresh) else {
        return Ok(None);
    };
    shared.store.commit(ops).await?;
    Ok(Some(pair))
}

fn rotate_in_memory(
    rt: &Runtime,
    shared: &Shared,
    access: &str,
    refresh: &str,
) -> Option<(Pair, Vec<Op>)> {
    let claims = shared
        .keys()
        .verify_at(access, shared.clock.now_secs())
        .ok()?;
    if claims.dialect.as_deref() != Some(Dialect::Hosecloud.as_str())
        || shared.revoked.contains(&claims.jti)
    {
        return None;
    }
    let used = opaque::hash(refresh);
    let now = shared.clock.now_secs();
    let record = shared.refresh.take(&used, &claims.jti, now)?;
    // A refresh token only ever renews its own app's tokens.
    if record.app != claims.client_id {
        return None;
    }
    let app = rt.apps.get(&record.app).cloned()?;
    // The chain ends when the app's secret changed or its absolute lifetime is over.
    let max = rt.config.dialects.hosecloud.as_ref()?.refresh_max_lifetime;
    if !crate::secret::ct_eq(
        record.secret_gen.as_bytes(),
        secret_generation(shared, &app).as_bytes(),
    ) || now >= record.chain_start + max.as_secs()
    {
        tracing::info!(app = %app.id, "refresh chain ended (secret changed or chain too old)");
        return None;
    }
    let until = claims.exp + shared.keys().leeway();
    shared.revoked.add(&claims.jti, until);
    shared.hot.revoke_jti(&claims.jti);
    let (pair, op) = issue_pair(rt, shared, app, Some(record.chain_start))
        .map_err(|e| tracing::error!(error = %e, "hosecloud refresh failed"))
        .ok()?;
    Some((
        pair,
        vec![
            Op::RefreshUsed { hash: used },
            Op::Revoked {
                jti: claims.jti,
                until,
            },
            op,
        ],
    ))
}

/// `POST refreshToken` (v3 shape, our own): JSON `{accessToken, refreshToken}`.
pub async fn refresh_v3(call: Call<'_>) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let doc = json_doc(call).await?;
    let (Some(access), Some(refresh)) = (
        str_field(&doc, "accessToken"),
        str_field(&doc, "refreshToken"),
    ) else {
        return Err(system_error("bad_request"));
    };
    match rotate(rt, shared, access, refresh).await? {
        Some(pair) => Ok(ok(pair.v3_data())),
        None => Err(unauthorized_v3()),
    }
}

/// `POST /api/openapi/v2/auth/refreshToken?accessToken=..&refreshToken=..&powerCode=..`
/// → `{"value": {accessToken, refreshToken, expireTime, corporationId}}`; HTTP 403 when refused.
pub async fn refresh_v2(call: Call<'_>) -> Reply {
    let (req, rt, shared) = (call.req, call.ctx.rt, call.ctx.shared);
    let query = req.uri().query().unwrap_or("");
    let mut access = None;
    let mut refresh = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "accessToken" => access = Some(v.into_owned()),
            "refreshToken" => refresh = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(access), Some(refresh)) = (access, refresh) else {
        return Err(unauthorized_v2());
    };
    match rotate(rt, shared, &access, &refresh).await? {
        Some(pair) => Ok(body::json(
            StatusCode::OK,
            &json!({ "value": {
                "accessToken": pair.minted.token,
                "refreshToken": pair.refresh,
                "expireTime": pair.expires_ms(),
                "corporationId": pair.corp_id(),
            }}),
        )),
        None => Err(unauthorized_v2()),
    }
}
