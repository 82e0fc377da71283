//! Token-issuing endpoints served by tollgate itself, one module per dialect around `core`.

pub mod bkflow;
pub mod core;
pub mod endpoint;
pub mod feishu;
pub mod hosecloud;
pub mod oauth;
pub mod revoke;
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

/// One issuing request and what serving it needs.
#[derive(Debug)]
pub struct Call<'a> {
    /// The request.
    pub req: http::Request<Incoming>,
    /// The normalised path it matched on.
    pub path: &'a str,
    /// The config in force.
    pub rt: &'a Runtime,
    /// Process-wide state.
    pub shared: &'a Shared,
    /// The client certificate the connection's handshake verified.
    pub client_cert: Option<std::sync::Arc<crate::tls::cert_info::ClientCert>>,
}

impl Call<'_> {
    /// The request head and its whole body (within the token-endpoint limits).
    pub async fn read(self) -> Result<(http::request::Parts, Bytes), Reject> {
        let (parts, body) = self.req.into_parts();
        let bytes = read_body(&parts, body, &self.rt.config.limits).await?;
        Ok((parts, bytes))
    }
}

/// What an issuing endpoint answers: its success, or a refusal in its envelope.
pub type Reply = Result<Response<Body>, Reject>;

/// What the issuing request being served carries beside its arguments: who sent it (for
/// the limits [`core::authenticate`] charges) and the app id it named (for the access log).
struct IssueScope {
    client: std::net::IpAddr,
    claimed: std::cell::RefCell<Option<Box<str>>>,
}

tokio::task_local! {
    static SCOPE: IssueScope;
}

/// The client address of the issuing request being served (unspecified outside [`serve`]).
pub fn client() -> std::net::IpAddr {
    SCOPE
        .try_with(|s| s.client)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Notes the app id an issuing request names, for its access-log line (at most 64 bytes of
/// it: the id is the client's word, not yet checked). Outside [`serve`] it does nothing.
pub fn note_claimed_app(id: &str) {
    let mut end = id.len().min(64);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    let _ = SCOPE.try_with(|s| *s.claimed.borrow_mut() = Some(id[..end].into()));
}

/// Serves one issuing request (`path` is the normalised path it matched on) from `client`;
/// also says which app id the request named, when it named one.
pub async fn serve(
    ep: Endpoint,
    req: http::Request<Incoming>,
    path: &str,
    rt: &Runtime,
    shared: &Shared,
    client: std::net::IpAddr,
    client_cert: Option<std::sync::Arc<crate::tls::cert_info::ClientCert>>,
) -> (Reply, Option<Box<str>>) {
    let call = Call {
        req,
        path,
        rt,
        shared,
        client_cert,
    };
    let scope = IssueScope {
        client,
        claimed: std::cell::RefCell::new(None),
    };
    SCOPE
        .scope(scope, async move {
            let reply = serve_endpoint(ep, call).await;
            (reply, SCOPE.with(|s| s.claimed.take()))
        })
        .await
}

async fn serve_endpoint(ep: Endpoint, call: Call<'_>) -> Reply {
    match ep {
        Endpoint::OauthSeed => oauth::seed(call).await,
        Endpoint::OauthRfc => oauth::rfc(call).await,
        Endpoint::OauthRevoke => oauth::revoke(call).await,
        Endpoint::HosecloudToken => hosecloud::get_access_token(call).await,
        Endpoint::HosecloudRefresh => hosecloud::refresh_v3(call).await,
        Endpoint::HosecloudRefreshV2 => hosecloud::refresh_v2(call).await,
        Endpoint::BkflowApply => bkflow::token::apply(call).await,
        Endpoint::BkflowRevoke => bkflow::token::revoke(call).await,
        Endpoint::BkflowCreateCredential => bkflow::credential::create(call).await,
        Endpoint::FeishuAppToken => feishu::app_access_token(call).await,
        Endpoint::FeishuAppTokenInternal => feishu::app_access_token_internal(call).await,
        Endpoint::FeishuTenantToken => feishu::tenant_access_token(call).await,
        Endpoint::FeishuTenantTokenInternal => feishu::tenant_access_token_internal(call).await,
        Endpoint::FeishuResend => feishu::resend(call).await,
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
