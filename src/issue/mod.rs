//! Token-issuing endpoints served by tollgate itself, one module per dialect around `core`.

pub mod core;
pub mod oauth;

use crate::body::Body;
use crate::reject::Reject;
use crate::state::{Runtime, Shared};
use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;

/// An issuing endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Seed 003 `POST /oauth/token/get`.
    OauthSeed,
    /// RFC 6749 client credentials `POST /oauth/token`.
    OauthRfc,
}

/// Serves one issuing request.
pub async fn serve(
    ep: Endpoint,
    req: http::Request<Incoming>,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Response<Body>, Reject> {
    match ep {
        Endpoint::OauthSeed => oauth::seed(req, rt, shared).await,
        Endpoint::OauthRfc => oauth::rfc(req, rt, shared).await,
    }
}

/// Reads a whole request body of at most `limit` bytes (413 beyond).
pub async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, Reject> {
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Reject::PayloadTooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Reject::PayloadTooLarge)
        }
        Err(_) => Err(Reject::BadRequest("could not read the request body".into())),
    }
}
