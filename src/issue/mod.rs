//! Token-issuing endpoints served by tollgate itself, one module per dialect around `core`.

pub mod bkflow;
pub mod core;
pub mod feishu;
pub mod hosecloud;
pub mod oauth;

use crate::body::Body;
use crate::config::Config;
use crate::reject::Reject;
use crate::state::{Runtime, Shared};
use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

/// An issuing endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Seed 003 `POST /oauth/token/get`.
    OauthSeed,
    /// RFC 6749 client credentials `POST /oauth/token`.
    OauthRfc,
    /// Seed 001 `getAccessToken`.
    HosecloudToken,
    /// v3-shaped refresh (JSON body).
    HosecloudRefresh,
    /// Documented v2 refresh (query parameters).
    HosecloudRefreshV2,
    /// Seed 000 `apply_token`.
    BkflowApply,
    /// `revoke_token`.
    BkflowRevoke,
    /// Seed 004 `create_credential`.
    BkflowCreateCredential,
    /// Seed 002 `app_access_token`.
    FeishuAppToken,
    /// `app_access_token/internal`.
    FeishuAppTokenInternal,
    /// `tenant_access_token`.
    FeishuTenantToken,
    /// `tenant_access_token/internal`.
    FeishuTenantTokenInternal,
    /// `app_ticket/resend`.
    FeishuResend,
}

impl Endpoint {
    /// The envelope its refusals use.
    pub fn error_style(self) -> crate::config::ErrorStyle {
        use crate::config::ErrorStyle;
        match self {
            Endpoint::OauthSeed | Endpoint::OauthRfc => ErrorStyle::Oauth,
            Endpoint::HosecloudToken
            | Endpoint::HosecloudRefresh
            | Endpoint::HosecloudRefreshV2 => ErrorStyle::Hosecloud,
            Endpoint::BkflowApply | Endpoint::BkflowRevoke | Endpoint::BkflowCreateCredential => {
                ErrorStyle::Bkflow
            }
            Endpoint::FeishuAppToken
            | Endpoint::FeishuAppTokenInternal
            | Endpoint::FeishuTenantToken
            | Endpoint::FeishuTenantTokenInternal
            | Endpoint::FeishuResend => ErrorStyle::Feishu,
        }
    }

    /// One line for `tollgate check`.
    pub fn describe(self) -> &'static str {
        match self {
            Endpoint::OauthSeed => "oauth (seed 003)",
            Endpoint::OauthRfc => "oauth (RFC 6749 client credentials)",
            Endpoint::HosecloudToken => "hosecloud getAccessToken (seed 001)",
            Endpoint::HosecloudRefresh => "hosecloud refresh (v3 JSON shape)",
            Endpoint::HosecloudRefreshV2 => "hosecloud refresh (documented v2 query form)",
            Endpoint::BkflowApply => "bkflow apply_token (seed 000)",
            Endpoint::BkflowRevoke => "bkflow revoke_token",
            Endpoint::BkflowCreateCredential => "bkflow create_credential (seed 004)",
            Endpoint::FeishuAppToken => "feishu app_access_token (seed 002)",
            Endpoint::FeishuAppTokenInternal => "feishu app_access_token/internal",
            Endpoint::FeishuTenantToken => "feishu tenant_access_token",
            Endpoint::FeishuTenantTokenInternal => "feishu tenant_access_token/internal",
            Endpoint::FeishuResend => "feishu app_ticket/resend",
        }
    }
}

/// Every issuing endpoint the config enables, with its path pattern (all are `POST`).
pub fn endpoints(config: &Config) -> Vec<(String, Endpoint)> {
    let mut out = Vec::new();
    if let Some(o) = &config.dialects.oauth {
        out.push((o.path.clone(), Endpoint::OauthSeed));
        out.push((o.rfc_path.clone(), Endpoint::OauthRfc));
    }
    if let Some(h) = &config.dialects.hosecloud {
        out.push((h.path.clone(), Endpoint::HosecloudToken));
        out.push((h.refresh_path.clone(), Endpoint::HosecloudRefresh));
        out.push((h.refresh_v2_path.clone(), Endpoint::HosecloudRefreshV2));
    }
    if let Some(f) = &config.dialects.feishu {
        let base = f.base();
        out.push((f.path.clone(), Endpoint::FeishuAppToken));
        out.push((
            format!("{}/internal", f.path),
            Endpoint::FeishuAppTokenInternal,
        ));
        out.push((
            format!("{base}/tenant_access_token"),
            Endpoint::FeishuTenantToken,
        ));
        out.push((
            format!("{base}/tenant_access_token/internal"),
            Endpoint::FeishuTenantTokenInternal,
        ));
        out.push((format!("{base}/app_ticket/resend"), Endpoint::FeishuResend));
    }
    if let Some(b) = &config.dialects.bkflow {
        out.push((
            format!("{}/space/{{space_id}}/apply_token/", b.prefix),
            Endpoint::BkflowApply,
        ));
        out.push((
            format!("{}/space/{{space_id}}/revoke_token/", b.prefix),
            Endpoint::BkflowRevoke,
        ));
        out.push((
            format!("{}/space/{{space_id}}/create_credential/", b.prefix),
            Endpoint::BkflowCreateCredential,
        ));
    }
    out
}

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
