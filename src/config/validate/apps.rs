//! `apps:`.

use super::Checker;
use crate::config::raw::RawConfig;
use crate::config::*;
use crate::permission::{Grant, Perm, Resource};
use crate::secret::Secret;
use std::collections::HashMap;

/// `apps:`: ids, secrets, scopes, spaces (one owner each), users and grants.
pub(super) fn check_apps(raw: &RawConfig, c: &mut Checker) -> Vec<App> {
    let mut seen = HashMap::new();
    let mut spaces = HashMap::new();
    let mut apps = Vec::new();
    for (i, a) in raw.apps.iter().enumerate() {
        let key = format!("apps[{i}]");
        // App ids reach the upstream in X-Tollgate-App: a plain token, nothing to misread.
        if a.id.is_empty()
            || a.id.len() > 64
            || !a
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            c.fail(format!("{key}.id"), "must be 1 to 64 of A-Z a-z 0-9 _ . -");
        }
        for (s, scope) in a.oauth_scopes.iter().enumerate() {
            // RFC 6749 §3.3 scope-token; they are joined with spaces in X-Tollgate-Scope.
            let ok = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
            if !ok {
                c.fail(
                    format!("{key}.oauth_scopes[{s}]"),
                    format!("{scope:?} is not an RFC 6749 scope token (visible ASCII, no space, quote or backslash)"),
                );
            }
        }
        if let Some(space) = a.space_id {
            // One owner per space: an owner revokes the space's tokens and manages its credentials.
            if let Some(other) = spaces.insert(space, i) {
                c.fail(
                    format!("{key}.space_id"),
                    format!(
                        "space {space} is already owned by apps[{other}] ({:?}); a space has one owner",
                        raw.apps[other].id
                    ),
                );
            }
        }
        if let Some(user) = &a.user {
            if !crate::ident::valid_user(user) {
                c.fail(
                    format!("{key}.user"),
                    "must be 1 to 64 of A-Z a-z 0-9 _ . @ -",
                );
            }
        }
        if seen.insert(a.id.clone(), i).is_some() {
            c.fail(
                format!("{key}.id"),
                format!("app id {:?} is defined twice", a.id),
            );
        }
        let secret = if a.secret.starts_with("$argon2") {
            if argon2::PasswordHash::new(&a.secret).is_err() {
                c.fail(
                    format!("{key}.secret"),
                    "not a valid argon2 PHC string (use `tollgate hash-secret`)",
                );
            }
            AppSecret::Argon2(a.secret.clone())
        } else {
            if a.secret.is_empty() {
                c.fail(format!("{key}.secret"), "must not be empty");
            }
            c.warn(
                &format!("{key}.secret"),
                format_args!(
                    "app {}: plain secret in config; store an argon2id hash from `tollgate hash-secret`",
                    a.id
                ),
            );
            AppSecret::Plain(Secret::new(a.secret.clone()))
        };
        let level = match a.scope.as_deref() {
            None => Level::Tenant,
            Some(s) => Level::parse(s).unwrap_or_else(|| {
                c.fail(
                    format!("{key}.scope"),
                    format!("{s:?} is not tenant or platform"),
                );
                Level::Tenant
            }),
        };
        let mut grants = Vec::new();
        for (g, grant) in a.grants.iter().enumerate() {
            let gk = format!("{key}.grants[{g}]");
            let Some(resource) = Resource::parse(&grant.resource) else {
                c.fail(
                    format!("{gk}.resource"),
                    format!("{:?} is not TASK, TEMPLATE or SCOPE", grant.resource),
                );
                continue;
            };
            match Perm::parse(&grant.permission).filter(|p| resource.perms().contains(p)) {
                Some(perm) => grants.push(Grant {
                    resource,
                    id: grant.id.clone(),
                    perm,
                }),
                None => {
                    let valid: Vec<&str> = resource.perms().iter().map(|p| p.as_str()).collect();
                    let msg = format!(
                        "{:?} is not one of {valid:?} for {}",
                        grant.permission, grant.resource
                    );
                    c.fail(format!("{gk}.permission"), msg);
                }
            }
            if grant.id != "*" && !crate::ident::valid_id(&grant.id) {
                c.fail(
                    format!("{gk}.id"),
                    "must be * or 1 to 128 of A-Z a-z 0-9 _ . -",
                );
            }
        }
        let event_url = a
            .event_url
            .as_deref()
            .and_then(|u| match u.parse::<http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.authority().is_some() =>
                {
                    Some(uri)
                }
                _ => {
                    c.fail(
                        format!("{key}.event_url"),
                        format!("{u:?} is not an http(s) URL"),
                    );
                    None
                }
            });
        if let Some(u) = &a.user {
            if u.is_empty() || u.len() > 32 {
                c.fail(format!("{key}.user"), "must be 1 to 32 characters");
            }
        }
        let self_built = c.choice(
            &format!("{key}.feishu_type"),
            a.feishu_type.as_deref(),
            false,
            &[("store", false), ("self_built", true)],
        );
        apps.push(App {
            id: a.id.clone(),
            secret,
            name: a.name.clone(),
            oauth_scopes: a.oauth_scopes.clone(),
            corp_id: a.corp_id.clone(),
            level,
            space_id: a.space_id,
            user: a.user.clone(),
            grants,
            event_url,
            verification_token: a.verification_token.clone(),
            self_built,
        });
    }
    apps
}
