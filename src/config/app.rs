//! `apps:` and the dialect a token comes from.

use crate::permission::Grant;
use crate::secret::Secret;

/// How an app proves itself.
#[derive(Debug, Clone)]
pub enum AppSecret {
    /// An argon2id PHC string.
    Argon2(String),
    /// A plain secret (accepted with a warning).
    Plain(Secret),
}

/// One app.
#[derive(Debug, Clone)]
pub struct App {
    /// Its id (`app_id`, `appKey`, `bk_app_code`).
    pub id: String,
    /// Its secret.
    pub secret: AppSecret,
    /// Display name.
    pub name: Option<String>,
    /// Values of the oauth `scope` claim.
    pub oauth_scopes: Vec<String>,
    /// Hosecloud corp id (`corpId`); the app id when not set.
    pub corp_id: Option<String>,
    /// Hosecloud level of its tokens (tenant by default).
    pub level: Level,
    /// BKFlow space it owns.
    pub space_id: Option<u64>,
    /// Default BKFlow user.
    pub user: Option<String>,
    /// What its BKFlow tokens may carry at most.
    pub grants: Vec<Grant>,
    /// Where feishu app_ticket events are pushed.
    pub event_url: Option<http::Uri>,
    /// The `token` of pushed feishu events.
    pub verification_token: Option<String>,
}

/// Hosecloud authorisation level; `platform` covers `tenant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One tenant.
    Tenant,
    /// The whole platform.
    Platform,
}

impl Level {
    /// Parses `tenant` / `platform`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tenant" => Some(Level::Tenant),
            "platform" => Some(Level::Platform),
            _ => None,
        }
    }

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Tenant => "tenant",
            Level::Platform => "platform",
        }
    }

    /// True when a token of this level meets a route requiring `need`.
    pub fn satisfies(self, need: Level) -> bool {
        self == Level::Platform || need == Level::Tenant
    }
}

#[cfg(test)]
mod level_tests {
    use super::Level;

    #[test]
    fn platform_covers_tenant_but_not_the_reverse() {
        assert!(Level::Platform.satisfies(Level::Tenant));
        assert!(Level::Platform.satisfies(Level::Platform));
        assert!(Level::Tenant.satisfies(Level::Tenant));
        assert!(!Level::Tenant.satisfies(Level::Platform));
    }
}

/// Which issuing API a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Seed 003 / RFC 6749.
    Oauth,
    /// Seed 001.
    Hosecloud,
    /// Seed 002.
    Feishu,
    /// Seeds 000, 004.
    Bkflow,
}

impl Dialect {
    /// Lower-case name as written in YAML and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Oauth => "oauth",
            Dialect::Hosecloud => "hosecloud",
            Dialect::Feishu => "feishu",
            Dialect::Bkflow => "bkflow",
        }
    }

    /// Parses a YAML name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oauth" => Some(Dialect::Oauth),
            "hosecloud" => Some(Dialect::Hosecloud),
            "feishu" => Some(Dialect::Feishu),
            "bkflow" => Some(Dialect::Bkflow),
            _ => None,
        }
    }
}
