//! A route's `upstream_credential`: the stored BlueKing credential sent upstream in
//! `X-Bkapi-Authorization` (replacing whatever the client sent), for the forwarded request and
//! the route's lookups alike.

use crate::reject::Reject;
use crate::shared::Shared;
use crate::state::CompiledRoute;
use crate::store::credentials::X_BKAPI_AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

/// The header value of the route's credential; `None` when the route names none, 502 when
/// it names one that is not stored.
pub fn header(route: &CompiledRoute, shared: &Shared) -> Result<Option<HeaderValue>, Reject> {
    let Some((space, name)) = &route.config.upstream_credential else {
        return Ok(None);
    };
    shared
        .credentials
        .header_for(*space, name)
        .map(Some)
        .ok_or_else(|| Reject::CredentialMissing(*space, name.clone()))
}

/// Puts the route's credential on `headers`, or removes the client's: an upstream must never
/// read an `X-Bkapi-Authorization` the gateway did not put there (BlueKing's SDK sends the
/// app's own secret in it on every call).
pub fn attach(
    headers: &mut HeaderMap,
    route: &CompiledRoute,
    shared: &Shared,
) -> Result<(), Reject> {
    match header(route, shared)? {
        Some(value) => {
            headers.insert(X_BKAPI_AUTHORIZATION.clone(), value);
        }
        None => {
            headers.remove(&X_BKAPI_AUTHORIZATION);
        }
    }
    Ok(())
}
