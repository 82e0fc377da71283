//! `apply_token` (seed 000) and `revoke_token` under `{prefix}/space/{space_id}/`.

use super::{
    check_space, format_time, gateway_error, invalid_args, open_call, py_json_dumps, view,
    view_error, SpaceCall,
};
use crate::issue::{Call, Reply};
use crate::permission::{grant_covers, Grant, Perm, Resource};
use crate::reject::{refused, Decision, Reject};
use crate::store::bkflow::{Owner, RevokeFilter};
use crate::store::op::Op;
use crate::token::opaque;
use http::StatusCode;
use serde_json::{json, Map, Value};

const REQUIRED: &str = "该字段是必填项。";
const NOT_STRING: &str = "不是有效的字符串。";
const TOO_LONG: &str = "请确保这个字段不能超过 32 个字符。";

fn invalid_choice(v: &str) -> String {
    format!("\u{201c}{v}\u{201d} 不是合法选项。")
}

/// DRF CharField(max_length=32): strings, and numbers stringified; anything else refused.
fn char_field(v: Option<&Value>, required: bool) -> Result<Option<String>, &'static str> {
    match v {
        None | Some(Value::Null) if required => Err(REQUIRED),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() && required => Err("该字段不能为空。"),
        Some(Value::String(s)) if s.chars().count() > 32 => Err(TOO_LONG),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(NOT_STRING),
    }
}

fn choice<T>(
    v: Option<&Value>,
    required: bool,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    match v {
        None | Some(Value::Null) if required => Err(REQUIRED.into()),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse(s).map(Some).ok_or_else(|| invalid_choice(s)),
        Some(other) => Err(invalid_choice(&other.to_string())),
    }
}

/// The body as a JSON object, or the view's code-500 answer (`json.loads` failed).
fn json_object(bytes: &[u8], trace: &str) -> Result<Map<String, Value>, Reject> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(view_error(500, "request body must be a JSON object", trace)),
        Err(e) => Err(view_error(500, &e.to_string(), trace)),
    }
}

/// `POST {prefix}/space/{space_id}/apply_token/`.
pub async fn apply(call: Call<'_>) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let Some(cfg) = &rt.config.dialects.bkflow else {
        return Err(Reject::NotFound);
    };
    let SpaceCall {
        space,
        trace,
        bytes,
        creds,
        app,
        ..
    } = open_call(call).await?;
    // The user: bk_username, else the app's configured user (bk_token / access_token name
    // users of a BlueKing login we do not run, so they cannot stand for one here).
    let Some(user) = creds.username.clone().or_else(|| app.user.clone()) else {
        return Err(invalid_args(
            "user authentication failed, please provide a valid user identity, such as bk_username, bk_token, access_token",
        ));
    };
    // The user reaches the upstream in X-Tollgate-User: a plain name, nothing to split on.
    if !crate::ident::valid_user(&user) {
        return Err(invalid_args("bk_username is invalid"));
    }
    check_space(rt, &app, space)?;
    let fields = json_object(&bytes, &trace)?;
    let resource = choice(fields.get("resource_type"), true, Resource::parse);
    let resource_id = char_field(fields.get("resource_id"), true);
    let perm = choice(fields.get("permission_type"), true, Perm::parse);
    let mut errors: Vec<(&str, String)> = Vec::new();
    if let Err(e) = &resource {
        errors.push(("resource_type", e.clone()));
    }
    if let Err(e) = &resource_id {
        errors.push(("resource_id", (*e).to_owned()));
    }
    if let Err(e) = &perm {
        errors.push(("permission_type", e.clone()));
    }
    let (Ok(Some(resource)), Ok(Some(id)), Ok(Some(perm))) = (resource, resource_id, perm) else {
        return Err(view_error(400, &py_json_dumps(&errors), &trace));
    };
    if !resource.perms().contains(&perm) {
        let valid: Vec<&str> = resource.perms().iter().map(|p| p.as_str()).collect();
        let msg = format!(
            "\u{201c}{}\u{201d} 不是 {} 的合法选项（{}）。",
            perm.as_str(),
            resource.as_str(),
            valid.join(", ")
        );
        return Err(view_error(
            400,
            &py_json_dumps(&[("permission_type", msg)]),
            &trace,
        ));
    }
    // Ids reach the upstream inside X-Tollgate-Scope (`TYPE:id:PERM`); "*" is a grant's
    // wildcard, never an id a token can hold.
    if !crate::ident::valid_id(&id) {
        let msg = "resource_id must be 1 to 128 of A-Z a-z 0-9 _ . -".to_owned();
        return Err(view_error(
            400,
            &py_json_dumps(&[("resource_id", msg)]),
            &trace,
        ));
    }
    if resource == Resource::Scope && id.matches('_').count() != 1 {
        return Err(view_error(
            500,
            "创建Token失败: token申请失败，对应的资源不存在",
            &trace,
        ));
    }
    let want = Grant { resource, id, perm };
    if !app.grants.iter().any(|g| grant_covers(g, &want)) {
        return Err(refused(
            "forbidden",
            Some(Decision::Forbidden),
            gateway_error(
                StatusCode::FORBIDDEN,
                1_640_301,
                "APP_NO_PERMISSION",
                "App has no permission to the resource [reason=\"no permission\"]",
            ),
        ));
    }
    // Another replica may already hold this (app, user, resource, permission)'s token.
    shared.catch_up().await?;
    let now = shared.clock.now_millis();
    let applied = shared.bkflow.apply(
        Owner {
            space,
            app: &app.id,
            user: &user,
        },
        want,
        cfg.ttl.as_millis() as u64,
        cfg.auto_renew,
        now,
    );
    // Committed before the answer: a restart (or kill -9) keeps the token and its renewal.
    // A token returned again without renewal changed nothing.
    let op = match (applied.reused, cfg.auto_renew) {
        (false, _) => Some(Op::Bk(shared.bkflow.row(&applied.record))),
        (true, true) => Some(Op::BkExpiry {
            ids: vec![applied.record.id],
            expires_ms: applied.record.expires_ms,
        }),
        (true, false) => None,
    };
    if let Some(op) = op {
        shared.store.commit(vec![op]).await?;
    }
    if applied.reused {
        // The hot copy carries the old expiry; the next use reads the renewed record.
        shared.hot.forget_token(&applied.token, false);
    } else {
        shared
            .metrics
            .tokens_issued
            .with_label_values(&["bkflow"])
            .inc();
    }
    let rec = &applied.record;
    let expired = format_time(rec.expires_ms, cfg.time_format, cfg.utc_offset);
    let Value::Object(obj) = json!({
        "result": true,
        "code": 0,
        "message": "",
        "data": {
            "space_id": rec.space,
            "user": rec.user,
            "resource_type": rec.grant.resource.as_str(),
            "resource_id": rec.grant.id,
            "token": applied.token,
            "permission_type": rec.grant.perm.as_str(),
            "expired_time": expired,
            "expired": expired,
        },
    }) else {
        unreachable!("a json! object literal")
    };
    Ok(view(StatusCode::OK, obj, &trace))
}

/// `POST {prefix}/space/{space_id}/revoke_token/`: every still-valid token of the space that
/// matches all given fields expires now; `{}` revokes the whole space.
pub async fn revoke(call: Call<'_>) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let SpaceCall {
        space,
        trace,
        bytes,
        app,
        ..
    } = open_call(call).await?;
    check_space(rt, &app, space)?;
    let fields = json_object(&bytes, &trace)?;
    let token = char_field(fields.get("token"), false);
    let user = char_field(fields.get("user"), false);
    let resource_id = char_field(fields.get("resource_id"), false);
    let resource = choice(fields.get("resource_type"), false, Resource::parse);
    let perm = choice(fields.get("permission_type"), false, Perm::parse);
    let mut errors: Vec<(&str, String)> = Vec::new();
    for (k, r) in [
        ("token", &token),
        ("user", &user),
        ("resource_id", &resource_id),
    ] {
        if let Err(e) = r {
            errors.push((k, (*e).to_owned()));
        }
    }
    if let Err(e) = &resource {
        errors.push(("resource_type", e.clone()));
    }
    if let Err(e) = &perm {
        errors.push(("permission_type", e.clone()));
    }
    let (Ok(token), Ok(user), Ok(resource_id), Ok(resource), Ok(perm)) =
        (token, user, resource_id, resource, perm)
    else {
        return Err(view_error(400, &py_json_dumps(&errors), &trace));
    };
    let filter = RevokeFilter {
        token: token.as_deref().map(opaque::hash),
        user,
        resource,
        resource_id,
        perm,
    };
    let revoked = shared
        .revoke_bkflow(space, &filter, shared.clock.now_millis())
        .await?;
    let Value::Object(obj) = json!({
        "result": true,
        "data": format!("{revoked} tokens revoke success"),
        "message": "",
        "code": 0,
    }) else {
        unreachable!("a json! object literal")
    };
    Ok(view(StatusCode::OK, obj, &trace))
}
