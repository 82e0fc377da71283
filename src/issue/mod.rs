//! Token-issuing endpoints served by tollgate itself, one module per dialect around `core`.

pub mod bkflow;
pub mod core;
pub mod endpoint;
pub mod feishu;
pub mod hosecloud;
pub mod oauth;
pub mod verified;

use crate::body::Body;
use crate::reject::Reject;
use crate::shared::Shared;
use crate::state::Runtime;
use bytes::Bytes;
use endpoint::Endpoint;
use http::Response;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

/// Serves one issuing request (`path` is the normalised path it matched on).
pub async fn serve(
    ep: Endpoint,
    req: http::Request<Incoming>,
    path: &str,
    rt: &Runtime,
    shared: &Shared,
) -> Result<Response<Body>, Reject> {
    match ep {
        Endpoint::OauthSeed => oauth::seed(req, rt, shared).await,
        Endpoint::OauthRfc => oauth::rfc(req, rt, shared).await,
        Endpoint::HosecloudToken => hosecloud::get_access_token(req, rt, shared).await,
        Endpoint::HosecloudRefresh => hosecloud::refresh_v3(req, rt, shared).await,
        Endpoint::HosecloudRefreshV2 => hosecloud::refresh_v2(req, rt, shared).await,
        Endpoint::BkflowApply => bkflow::token::apply(req, path, rt, shared).await,
        Endpoint::BkflowRevoke => bkflow::token::revoke(req, path, rt, shared).await,
        Endpoint::BkflowCreateCredential => bkflow::credential::create(req, path, rt, shared).await,
        Endpoint::FeishuAppToken => feishu::app_access_token(req, rt, shared).await,
        Endpoint::FeishuAppTokenInternal => {
            feishu::app_access_token_internal(req, rt, shared).await
        }
        Endpoint::FeishuTenantToken => feishu::tenant_access_token(req, rt, shared).await,
        Endpoint::FeishuTenantTokenInternal => {
            feishu::tenant_access_token_internal(req, rt, shared).await
        }
        Endpoint::FeishuResend => feishu::resend(req, rt, shared).await,
    }
}

/// Reads a whole request body of at most `limits.token_body_bytes` (413 beyond), each piece
/// within `body_read_timeout` of the last and the whole within `token_body_timeout` (408 and
/// the connection closed beyond); a body that breaks its own framing is a 400.
pub async fn read_body(
    parts: &http::request::Parts,
    mut body: Incoming,
    limits: &crate::config::Limits,
) -> Result<Bytes, Reject> {
    let limit = limits.token_body_bytes;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Reject::PayloadTooLarge);
    }
    let read = async {
        let mut out = bytes::BytesMut::new();
        loop {
            let frame = tokio::time::timeout(limits.body_read_timeout, body.frame())
                .await
                .map_err(|_| Reject::BodyTimeout)?;
            match frame {
                None => return Ok(out.freeze()),
                Some(Err(_)) => return Err(Reject::BadBody),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        if out.len() + data.len() > limit {
                            return Err(Reject::PayloadTooLarge);
                        }
                        out.extend_from_slice(&data);
                    }
                }
            }
        }
    };
    tokio::time::timeout(limits.token_body_timeout, read)
        .await
        .map_err(|_| Reject::BodyTimeout)?
}
