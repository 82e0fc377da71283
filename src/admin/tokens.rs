//! Token operations of the admin API: revocation of any dialect, and feishu app tickets.

use crate::body::{self, Body};
use crate::config::Dialect;
use crate::state::Gateway;
use http::{Response, StatusCode};
use serde_json::json;

/// `GET /admin/apps/{app_id}/app_ticket`: the app's current feishu ticket (one is issued when none is live).
pub(super) async fn app_ticket(gw: &Gateway, app: &str) -> Response<Body> {
    let rt = gw.runtime();
    let (Some(cfg), true) = (&rt.config.dialects.feishu, rt.apps.contains_key(app)) else {
        return body::json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "no such app, or feishu is not enabled" }),
        );
    };
    let now = gw.shared.clock.now_millis();
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

/// RFC 7662 introspection of a token of any dialect, judged as the guard judges it (held to
/// the current config, revocations seen): the standard fields plus the dialect's own.
pub(super) async fn introspect(gw: &Gateway, token: &str) -> serde_json::Value {
    let (rt, shared) = (gw.runtime(), &gw.shared);
    // A token another replica issued a moment ago is known once its stream entry is read.
    if shared.catch_up().await.is_err() {
        return json!({ "active": false });
    }
    let Ok(p) = crate::guard::resolve(token, None, &rt, shared).await else {
        return json!({ "active": false });
    };
    let scope = match (&p.grant, p.level) {
        (Some(g), _) => format!("{}:{}:{}", g.resource.as_str(), g.id, g.perm.as_str()),
        (None, Some(l)) => l.as_str().to_owned(),
        (None, None) => p.scopes.join(" "),
    };
    let mut v = json!({
        "active": true, "client_id": &*p.app, "dialect": p.identity.dialect.as_ref().and_then(|v| v.to_str().ok()), "exp": p.exp,
        "scope": scope, "token_type": "Bearer",
    });
    if crate::token::is_jwt(token) {
        if let Ok(c) = shared.keys().verify_at(token, shared.clock.now_secs()) {
            for (k, val) in [
                ("iat", json!(c.iat)),
                ("nbf", json!(c.nbf)),
                ("iss", json!(c.iss)),
                ("jti", json!(c.jti)),
            ] {
                v[k] = val;
            }
        }
    }
    match p.dialect() {
        Some(Dialect::Bkflow) => {
            if let Some(g) = &p.grant {
                v["space_id"] = json!(p.space);
                v["user"] = json!(p.user.as_deref());
                v["resource_type"] = json!(g.resource.as_str());
                v["resource_id"] = json!(g.id);
                v["permission_type"] = json!(g.perm.as_str());
            }
        }
        Some(Dialect::Feishu) => {
            v["app_id"] = json!(&*p.app);
            if let Some(t) = &p.tenant {
                v["tenant_key"] = json!(&**t);
            }
        }
        Some(Dialect::Hosecloud) => {
            let corp = rt.apps.get(&*p.app).and_then(|a| a.corp_id.clone());
            v["corp_id"] = json!(corp.unwrap_or_else(|| p.app.to_string()));
            v["level"] = json!(p.level.map(|l| l.as_str()));
        }
        Some(Dialect::Oauth) | None => {}
    }
    v
}
