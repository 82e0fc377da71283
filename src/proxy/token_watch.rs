//! The check a tunnel runs on the token that opened it: the same verdict the guard would give
//! now (hot map, revocations, expiry, the config in force after a reload). A store or IdP that
//! cannot answer keeps the tunnel; only a verdict of invalid ends it.

use crate::config::Origin;
use crate::reject::Reject;
use crate::state::Gateway;
use crate::upstream::tunnel::StillValid;
use std::sync::Arc;

/// A check of `token` (accepted for the route's `admitted` dialects) against `gw`'s state.
pub fn still_valid(token: String, admitted: Option<Vec<Origin>>, gw: &Arc<Gateway>) -> StillValid {
    let token: Arc<str> = token.into();
    let admitted: Option<Arc<[Origin]>> = admitted.map(Into::into);
    let gw = Arc::clone(gw);
    Box::new(move || {
        let (token, admitted, gw) = (Arc::clone(&token), admitted.clone(), Arc::clone(&gw));
        Box::pin(async move {
            let rt = gw.runtime();
            let verdict = crate::guard::resolve(&token, admitted.as_deref(), &rt, &gw.shared).await;
            !matches!(verdict, Err(Reject::InvalidToken(_)))
        })
    })
}
