//! The closed set of issuing endpoints: where the config puts each, what each is called, and
//! the envelope its refusals use.

use crate::config::{Config, Dialect};

/// An issuing endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Seed 003 `POST /oauth/token/get`.
    OauthSeed,
    /// RFC 6749 client credentials `POST /oauth/token`.
    OauthRfc,
    /// RFC 7009 `POST /oauth/revoke`.
    OauthRevoke,
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
            Endpoint::OauthSeed | Endpoint::OauthRfc | Endpoint::OauthRevoke => ErrorStyle::Oauth,
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

    /// The dialect it issues.
    pub fn dialect(self) -> Dialect {
        match self.error_style() {
            crate::config::ErrorStyle::Oauth => Dialect::Oauth,
            crate::config::ErrorStyle::Hosecloud => Dialect::Hosecloud,
            crate::config::ErrorStyle::Feishu => Dialect::Feishu,
            crate::config::ErrorStyle::Bkflow => Dialect::Bkflow,
        }
    }

    /// One line for `tollgate check`.
    pub fn describe(self) -> &'static str {
        match self {
            Endpoint::OauthSeed => "oauth (seed 003)",
            Endpoint::OauthRfc => "oauth (RFC 6749 client credentials)",
            Endpoint::OauthRevoke => "oauth revocation (RFC 7009)",
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
        out.push((o.revoke_path.clone(), Endpoint::OauthRevoke));
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
