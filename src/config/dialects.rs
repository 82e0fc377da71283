//! `dialects:`: each issuing API with its paths and lifetimes.

use std::time::Duration;

/// `dialects:`
#[derive(Debug, Clone, Default)]
pub struct Dialects {
    /// The oauth dialect, when enabled.
    pub oauth: Option<OauthDialect>,
    /// The hosecloud dialect, when enabled.
    pub hosecloud: Option<HosecloudDialect>,
    /// The bkflow dialect, when enabled.
    pub bkflow: Option<BkflowDialect>,
    /// The feishu dialect, when enabled.
    pub feishu: Option<FeishuDialect>,
}

/// `dialects.feishu:`
#[derive(Debug, Clone)]
pub struct FeishuDialect {
    /// `.../auth/v3/app_access_token`; its siblings (`app_ticket/resend`, `tenant_access_token`,
    /// the `/internal` variants) live beside it.
    pub path: String,
    /// Token lifetime (at most).
    pub ttl: Duration,
    /// Asking again with less than this left yields a new token.
    pub renew_before: Duration,
    /// Lifetime of an app ticket.
    pub ticket_ttl: Duration,
}

impl FeishuDialect {
    /// The folder of `path` (`/open-apis/auth/v3`).
    pub fn base(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(b, _)| b)
    }
}

/// How bkflow writes `expired_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `YYYY-MM-DD HH:MM:SS` as the seed shows (DIALECTS decision 2).
    Seed,
    /// ISO-8601 with milliseconds and `Z`, as the real server sends.
    Iso8601,
}

/// `dialects.bkflow:`
#[derive(Debug, Clone)]
pub struct BkflowDialect {
    /// Path prefix of `/space/{space_id}/...`.
    pub prefix: String,
    /// Token lifetime.
    pub ttl: Duration,
    /// A repeated apply renews the token's lifetime.
    pub auto_renew: bool,
    /// `expired_time` format.
    pub time_format: TimeFormat,
    /// Offset of the zone `expired_time` is written in (seed format), seconds east of UTC.
    pub utc_offset: i32,
}

/// `dialects.hosecloud:`
#[derive(Debug, Clone)]
pub struct HosecloudDialect {
    /// getAccessToken.
    pub path: String,
    /// v3-shaped refresh (JSON body).
    pub refresh_path: String,
    /// The documented v2 refresh (query parameters).
    pub refresh_v2_path: String,
    /// Access token lifetime.
    pub ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// A refresh chain ends this long after the login that started it.
    pub refresh_max_lifetime: Duration,
}

/// `dialects.oauth:`
#[derive(Debug, Clone)]
pub struct OauthDialect {
    /// Seed 003 endpoint.
    pub path: String,
    /// RFC 6749 endpoint.
    pub rfc_path: String,
    /// Token lifetime.
    pub ttl: Duration,
}
