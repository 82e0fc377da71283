//! `dialects:`.

use super::Checker;
use crate::config::raw::RawConfig;
use crate::config::*;
use std::time::Duration;

fn check_path(c: &mut Checker, key: &str, p: &str) {
    if !p.starts_with('/') || p.contains(['?', '#', ' ', '{', '*']) {
        c.fail(key, format!("{p:?} must be a plain absolute path"));
    }
}

/// `dialects:`, each enabled by its presence, with its paths and lifetimes.
pub(super) fn check_dialects(raw: &RawConfig, c: &mut Checker) -> Dialects {
    let oauth = raw.dialects.oauth.as_ref().map(|o| {
        if let Some(t) = o.token.as_deref() {
            if t != "jwt" {
                c.fail(
                    "dialects.oauth.token",
                    format!("{t:?}: only jwt tokens are issued by this dialect"),
                );
            }
        }
        let d = OauthDialect {
            path: o
                .path
                .clone()
                .unwrap_or_else(|| "/oauth/token/get".to_owned()),
            rfc_path: o
                .rfc_path
                .clone()
                .unwrap_or_else(|| "/oauth/token".to_owned()),
            revoke_path: o
                .revoke_path
                .clone()
                .unwrap_or_else(|| "/oauth/revoke".to_owned()),
            ttl: o.ttl.map_or(Duration::from_secs(3600), |d| d.0),
            certificate_bound: o.certificate_bound,
        };
        check_path(c, "dialects.oauth.path", &d.path);
        check_path(c, "dialects.oauth.rfc_path", &d.rfc_path);
        check_path(c, "dialects.oauth.revoke_path", &d.revoke_path);
        if d.ttl.is_zero() {
            c.fail("dialects.oauth.ttl", "must be more than 0");
        }
        d
    });
    let hosecloud = raw.dialects.hosecloud.as_ref().map(|h| {
        let d = HosecloudDialect {
            path: h
                .path
                .clone()
                .unwrap_or_else(|| "/auth/openApi/v3/getAccessToken".to_owned()),
            refresh_path: h
                .refresh_path
                .clone()
                .unwrap_or_else(|| "/auth/openApi/v3/refreshToken".to_owned()),
            refresh_v2_path: h
                .refresh_v2_path
                .clone()
                .unwrap_or_else(|| "/api/openapi/v2/auth/refreshToken".to_owned()),
            ttl: h.ttl.map_or(Duration::from_secs(2 * 3600), |d| d.0),
            refresh_ttl: h
                .refresh_ttl
                .map_or(Duration::from_secs(30 * 86_400), |d| d.0),
            refresh_max_lifetime: h
                .refresh_max_lifetime
                .map_or(Duration::from_secs(90 * 86_400), |d| d.0),
        };
        if d.refresh_max_lifetime < d.refresh_ttl {
            c.fail(
                "dialects.hosecloud.refresh_max_lifetime",
                "must be at least refresh_ttl",
            );
        }
        check_path(c, "dialects.hosecloud.path", &d.path);
        check_path(c, "dialects.hosecloud.refresh_path", &d.refresh_path);
        check_path(c, "dialects.hosecloud.refresh_v2_path", &d.refresh_v2_path);
        if d.ttl.is_zero() || d.refresh_ttl < d.ttl {
            c.fail(
                "dialects.hosecloud.refresh_ttl",
                "ttl must be more than 0 and refresh_ttl at least ttl",
            );
        }
        d
    });
    let bkflow = raw.dialects.bkflow.as_ref().map(|b| {
        let prefix = b.prefix.clone().unwrap_or_else(|| "/bkflow".to_owned());
        let prefix = prefix.trim_end_matches('/').to_owned();
        if !prefix.is_empty() {
            check_path(c, "dialects.bkflow.prefix", &prefix);
        }
        let ttl = b.ttl.map_or(Duration::from_secs(3600), |d| d.0);
        if ttl.is_zero() {
            c.fail("dialects.bkflow.ttl", "must be more than 0");
        }
        let time_format = match b.time_format.as_deref() {
            None | Some("seed") => TimeFormat::Seed,
            Some("iso8601") => TimeFormat::Iso8601,
            Some(other) => {
                c.fail(
                    "dialects.bkflow.time_format",
                    format!("{other:?} is not seed or iso8601"),
                );
                TimeFormat::Seed
            }
        };
        let utc_offset = match b.time_zone.as_deref() {
            None | Some("UTC") | Some("Z") => 0,
            Some(z) => parse_offset(z).unwrap_or_else(|| {
                c.fail(
                    "dialects.bkflow.time_zone",
                    format!("{z:?} is not UTC or an offset such as +08:00"),
                );
                0
            }),
        };
        BkflowDialect {
            prefix,
            ttl,
            auto_renew: b.auto_renew.unwrap_or(true),
            time_format,
            utc_offset,
        }
    });
    let feishu = raw.dialects.feishu.as_ref().map(|f| {
        let d = FeishuDialect {
            path: f
                .path
                .clone()
                .unwrap_or_else(|| "/open-apis/auth/v3/app_access_token".to_owned()),
            ttl: f.ttl.map_or(Duration::from_secs(2 * 3600), |d| d.0),
            renew_before: f.renew_before.map_or(Duration::from_secs(30 * 60), |d| d.0),
            ticket_ttl: f.ticket_ttl.map_or(Duration::from_secs(3600), |d| d.0),
        };
        check_path(c, "dialects.feishu.path", &d.path);
        if d.ttl.is_zero() || d.renew_before >= d.ttl {
            c.fail(
                "dialects.feishu.renew_before",
                "ttl must be more than 0 and renew_before less than ttl",
            );
        }
        if d.ticket_ttl.is_zero() {
            c.fail("dialects.feishu.ticket_ttl", "must be more than 0");
        }
        d
    });
    Dialects {
        oauth,
        hosecloud,
        bkflow,
        feishu,
    }
}

/// `+08:00` / `-05:30` → seconds east of UTC.
fn parse_offset(z: &str) -> Option<i32> {
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60 && rest.len() == 5).then_some(sign * (h * 3600 + m * 60))
}
