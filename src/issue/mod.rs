//! Token-issuing endpoints served by tollgate itself, one module per dialect around `core`.

pub mod bkflow;
pub mod core;
pub mod feishu;
pub mod hosecloud;
pub mod oauth;
pub mod revoke;

use crate::body::Body;
use crate::reject::Reject;
use crate::shared::Shared;
use crate::state::endpoint::Endpoint;
use crate::state::Runtime;
use bytes::Bytes;
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
    /// What it is served with, and who asks.
    pub ctx: &'a Ctx<'a>,
    /// The client certificate the connection's handshake verified.
    pub client_cert: Option<std::sync::Arc<crate::tls::cert_info::ClientCert>>,
}

/// What an issuing request is served with: the config in force, the process-wide state, who
/// sent it (the address [`core::authenticate`] charges) and the app id it named (for the
/// access log: the client's word, not yet checked).
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The config in force.
    pub rt: &'a Runtime,
    /// Process-wide state.
    pub shared: &'a Shared,
    /// The client address (a trusted proxy's forwarded one, if any).
    pub client: std::net::IpAddr,
    // A lock, not a cell: the request's future is sent between threads.
    claimed: std::sync::Mutex<Option<Box<str>>>,
}

impl<'a> Ctx<'a> {
    /// The surroundings of one issuing request from `client`.
    pub fn new(rt: &'a Runtime, shared: &'a Shared, client: std::net::IpAddr) -> Self {
        Ctx {
            rt,
            shared,
            client,
            claimed: std::sync::Mutex::new(None),
        }
    }

    /// The app id the request named, if it named one (taken: for the access log).
    pub fn claimed(&self) -> Option<Box<str>> {
        self.claimed.lock().ok().and_then(|mut c| c.take())
    }

    /// Notes the app id the request names (at most 64 bytes of it).
    pub fn note_claimed_app(&self, id: &str) {
        let mut end = id.len().min(64);
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        if let Ok(mut c) = self.claimed.lock() {
            *c = Some(id[..end].into());
        }
    }
}

impl Call<'_> {
    /// The request head and its whole body (within the token-endpoint limits).
    pub async fn read(self) -> Result<(http::request::Parts, Bytes), Reject> {
        let (parts, body) = self.req.into_parts();
        let bytes = read_body(&parts, body, &self.ctx.rt.config.limits).await?;
        Ok((parts, bytes))
    }
}

/// What an issuing endpoint answers: its success, or a refusal in its envelope.
pub type Reply = Result<Response<Body>, Reject>;

/// Serves one issuing request (`path` is the normalised path it matched on); `ctx` then
/// holds the app id it named, if it named one.
pub async fn serve(
    ep: Endpoint,
    req: http::Request<Incoming>,
    path: &str,
    ctx: &Ctx<'_>,
    client_cert: Option<std::sync::Arc<crate::tls::cert_info::ClientCert>>,
) -> Reply {
    let call = Call {
        req,
        path,
        ctx,
        client_cert,
    };
    serve_endpoint(ep, call).await
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
