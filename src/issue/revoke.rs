//! Revocation of a token of any dialect, committed before it is acknowledged (the admin API
//! and RFC 7009's `/oauth/revoke` both use it).

use crate::reject::Reject;
use crate::shared::Shared;
use crate::store::op::Op;

/// Revokes a token of any dialect, committed before answering; false when it was not live.
pub async fn revoke_any(shared: &Shared, token: &str) -> Result<bool, Reject> {
    shared.catch_up().await?;
    let hash = crate::token::opaque::hash(token);
    let now = shared.clock.now_millis();
    let live = if crate::token::is_jwt(token) {
        match shared.keys().verify_at(token, shared.clock.now_secs()) {
            Ok(claims) if !shared.revoked.contains(&claims.jti) => {
                let until = claims.exp + shared.keys().leeway();
                // Committed first: a failed commit leaves nothing marked here, so a retry
                // commits again (one that failed after its append, `WAIT` short, is read back
                // from the log like another replica's).
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
        shared.hot.forget_token(token, true);
        tracing::info!(token = %crate::secret::fingerprint(token), "token revoked");
    }
    Ok(live)
}
