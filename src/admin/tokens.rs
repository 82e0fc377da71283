//! Token operations of the admin API: revocation of any dialect, and feishu app tickets.

use crate::body::{self, Body};
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

/// Revokes a token of any dialect, committed before answering; false when it was not live.
pub(super) async fn revoke_any(gw: &Gateway, token: &str) -> Result<bool, crate::reject::Reject> {
    use crate::store::op::Op;
    let shared = &gw.shared;
    let rt = gw.runtime();
    shared.catch_up().await?;
    let hash = crate::token::opaque::hash(token);
    let now = gw.shared.clock.now_millis();
    let live = if crate::token::is_jwt(token) {
        match rt.keys.verify_at(token, gw.shared.clock.now_secs()) {
            Ok(claims) if !shared.revoked.contains(&claims.jti) => {
                let until = claims.exp + rt.keys.leeway();
                shared
                    .store
                    .commit(vec![Op::Revoked {
                        jti: claims.jti.clone(),
                        until,
                    }])
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
        shared.revoke_bkflow(rec.space, &filter, now).await? > 0
    } else if let Some(rec) = shared.feishu.lookup(&hash, now) {
        shared.feishu.revoke(&hash, now);
        let (id, prefix) = (rec.id, rec.prefix);
        let row = crate::store::op::FsRow {
            token_hash: hash,
            id,
            app: rec.app,
            kind: rec.kind,
            prefix,
            expires_ms: now,
        };
        shared.store.commit(vec![Op::Fs(row)]).await?;
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
