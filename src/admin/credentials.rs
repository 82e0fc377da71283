//! `/admin/spaces/{space_id}/credentials[/{id}]`: the stored bkflow credentials.

use super::refused;
use crate::body::{self, Body};
use crate::reject::Reject;
use crate::state::Gateway;
use http::{header, Method, Response, StatusCode};
use serde_json::{json, Value};

/// `/admin/spaces/{space_id}/credentials[/{id}]` (`path` is what follows `/admin/spaces/`):
/// list, get, update (PUT with the create fields), delete.
pub(super) async fn serve(
    gw: &Gateway,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response<Body> {
    use crate::store::op::Op;
    let not_found = || {
        body::json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "no such credential" }),
        )
    };
    let segs: Vec<&str> = path.split('/').collect();
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
                Ok(c) => match gw.shared.store.commit(vec![Op::Cred(store.row(&c))]).await {
                    Ok(()) => body::json(StatusCode::OK, &c.display()),
                    Err(e) => refused(Reject::from(e)),
                },
                Err(crate::store::credentials::CredentialError::NotFound) => not_found(),
                Err(e) => {
                    let (_, msg) = crate::issue::bkflow::credential::write_error(&e, &name);
                    body::json(StatusCode::CONFLICT, &json!({ "error": msg }))
                }
            }
        }
        (&Method::DELETE, Some(id)) => match store.delete(space, id) {
            true => match gw.shared.store.commit(vec![Op::CredDeleted { id }]).await {
                Ok(()) => {
                    let mut res = body::text(StatusCode::NO_CONTENT, "");
                    res.headers_mut().remove(header::CONTENT_TYPE);
                    res
                }
                Err(e) => refused(Reject::from(e)),
            },
            false => not_found(),
        },
        _ => body::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "method not allowed" }),
        ),
    }
}
