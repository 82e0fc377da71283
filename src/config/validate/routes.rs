//! `routes:`: patterns, methods, auth, requirements and lookups.

use super::Checker;
use crate::config::raw::RawRoute;
use crate::config::*;
use crate::route::Pattern;
use http::Method;
use std::collections::HashMap;
use std::time::Duration;

/// What every route is checked against: the upstreams by name, the issuers, and whether the
/// listener asks for client certificates.
pub(super) struct Known<'a> {
    /// `upstreams:` names and their indexes.
    pub by_name: &'a HashMap<String, usize>,
    /// `issuers:`.
    pub issuers: &'a [IssuerConfig],
    /// `listen.tls.client_auth` is set.
    pub mtls: bool,
}

/// One entry of `routes:`; `None` when it cannot be compiled (problems are recorded).
pub(super) fn check_route(
    i: usize,
    r: &RawRoute,
    known: &Known<'_>,
    c: &mut Checker,
) -> Option<RouteConfig> {
    let Known {
        by_name,
        issuers,
        mtls,
    } = *known;
    let key = format!("routes[{i}]");
    let pattern = Pattern::parse(&r.path)
        .map_err(|e| c.fail(format!("{key}.path"), e))
        .ok();
    let upstream = by_name.get(&r.upstream).copied();
    if upstream.is_none() {
        c.fail(
            format!("{key}.upstream"),
            format!("no upstream named {:?}", r.upstream),
        );
    }
    let methods = r.methods.as_ref().map(|ms| {
        ms.iter()
            .enumerate()
            .filter_map(|(m, name)| match Method::from_bytes(name.as_bytes()) {
                Ok(method) if name.chars().all(|ch| ch.is_ascii_uppercase()) => Some(method),
                _ => {
                    c.fail(
                        format!("{key}.methods[{m}]"),
                        format!("{name:?} is not an HTTP method"),
                    );
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let auth = match r.auth.as_deref().unwrap_or("bearer") {
        "none" => AuthMode::None,
        "bearer" => AuthMode::Bearer,
        "client_cert" => AuthMode::ClientCert,
        other => {
            c.fail(
                format!("{key}.auth"),
                format!("{other:?} is not none, bearer or client_cert"),
            );
            AuthMode::Bearer
        }
    };
    let client_cert = r
        .require
        .as_ref()
        .and_then(|q| q.client_cert.as_ref())
        .map(|q| {
            if q.subject.is_none() && q.san.is_none() {
                c.fail(
                    format!("{key}.require.client_cert"),
                    "name a subject or a san",
                );
            }
            let subject = q.subject.as_ref().and_then(|t| {
                if !t.contains('=') {
                    return Some(SubjectMatch::Cn(t.clone()));
                }
                match crate::config::dn::parse(t) {
                    Ok(attrs) => Some(SubjectMatch::Dn(attrs)),
                    Err(e) => {
                        c.fail(format!("{key}.require.client_cert.subject"), e);
                        None
                    }
                }
            });
            CertRequirement {
                subject,
                san: q.san.clone(),
            }
        });
    if (auth == AuthMode::ClientCert || client_cert.is_some()) && !mtls {
        c.fail(
            format!("{key}.auth"),
            "client certificates need listen.tls.client_auth: { ca_file, mode }",
        );
    }
    let errors = match r.errors.as_deref() {
        None => ErrorStyle::Oauth,
        Some(s) => ErrorStyle::parse(s).unwrap_or_else(|| {
            c.fail(
                format!("{key}.errors"),
                format!("{s:?} is not oauth, hosecloud, feishu or bkflow"),
            );
            ErrorStyle::Oauth
        }),
    };
    let dialects = r.dialects.as_ref().map(|ds| {
        ds.iter()
            .enumerate()
            .filter_map(|(d, name)| {
                let found = Dialect::parse(name).map(Origin::Own).or_else(|| {
                    issuers
                        .iter()
                        .position(|i| i.name == *name)
                        .map(|i| Origin::Issuer(i as u16))
                });
                found.or_else(|| {
                    c.fail(
                        format!("{key}.dialects[{d}]"),
                        format!("{name:?} is neither a dialect (oauth, hosecloud, feishu, bkflow) nor the name of an entry of issuers:"),
                    );
                    None
                })
            })
            .collect()
    });
    let claims_to_headers = super::issuers::check_claim_headers(&key, &r.claims_to_headers, c);
    let check_reqs = |rk: String, req: &crate::config::raw::RawRequire, c: &mut Checker| {
        if auth == AuthMode::None {
            c.fail(rk.clone(), "a requirement needs auth: bearer");
        }
        let level = req.level.as_deref().and_then(|l| {
            Level::parse(l).or_else(|| {
                c.fail(
                    format!("{rk}.level"),
                    format!("{l:?} is not tenant or platform"),
                );
                None
            })
        });
        Requirements {
            oauth_scope: req.oauth_scope.clone(),
            level,
            resource: super::require::check_requirement(&rk, req, pattern.as_ref(), c),
        }
    };
    let require = r
        .require
        .as_ref()
        .map(|req| check_reqs(format!("{key}.require"), req, c))
        .unwrap_or_default();
    let shadow = r
        .require_shadow
        .as_ref()
        .map(|req| check_reqs(format!("{key}.require_shadow"), req, c));
    let mode = c.choice(
        &format!("{key}.mode"),
        r.mode.as_deref(),
        RouteMode::Enforce,
        &[
            ("enforce", RouteMode::Enforce),
            ("shadow", RouteMode::Shadow),
        ],
    );
    if mode == RouteMode::Shadow && auth == AuthMode::None {
        c.fail(
            format!("{key}.mode"),
            "shadow mode needs a route that checks something (auth: bearer or client_cert)",
        );
    }
    let lookup = r.lookup.as_ref().and_then(|l| {
        let lk = format!("{key}.lookup");
        let upstream = by_name.get(&l.upstream).copied();
        if upstream.is_none() {
            c.fail(
                format!("{lk}.upstream"),
                format!("no upstream named {:?}", l.upstream),
            );
        }
        let path = match LookupConfig::parse_path(&l.path) {
            Ok(parts) => {
                for part in &parts {
                    if let PathPart::Param(name) = part {
                        if pattern.as_ref().is_some_and(|p| !p.has_param(name)) {
                            c.fail(
                                format!("{lk}.path"),
                                format!("the route path has no parameter {{{name}}}"),
                            );
                        } else if pattern.as_ref().is_some_and(|p| p.is_catch_all(name)) {
                            c.fail(
                                format!("{lk}.path"),
                                format!("{{{name}}} is a catch-all: a lookup path takes one-segment parameters only"),
                            );
                        }
                    }
                }
                Some(parts)
            }
            Err(e) => {
                c.fail(format!("{lk}.path"), e);
                None
            }
        };
        let ttl = l.ttl.map_or(Duration::from_secs(30), |d| d.0);
        if ttl > Duration::from_secs(3600) {
            c.fail(
                format!("{lk}.ttl"),
                "at most 1h: a resource that moves must not keep its old facts for long",
            );
        }
        Some(LookupConfig {
            upstream: upstream?,
            path: path?,
            ttl,
        })
    });
    let shadow_resource = shadow.as_ref().and_then(|s| s.resource.as_ref());
    for (req, which) in [
        (require.resource.as_ref(), "require"),
        (shadow_resource, "require_shadow"),
    ] {
        let Some(req) = req else { continue };
        let uses_lookup = [&req.space, &req.scope, &req.template, &req.create_method]
            .into_iter()
            .flatten()
            .any(|v| matches!(v, ValueRef::Lookup(_)));
        if uses_lookup && r.lookup.is_none() {
            c.fail(
                format!("{key}.{which}"),
                "a {lookup:field} reference needs the route's lookup: { upstream, path, ttl }",
            );
        }
        // The facts must be about the resource the id names: the lookup path carries the id's
        // own path parameter (a lookup keyed on anything else tells the same facts for any id).
        let keyed = match (&req.id, &lookup) {
            (ValueRef::Path(id), Some(l)) => l
                .path
                .iter()
                .any(|p| matches!(p, PathPart::Param(n) if n == id)),
            _ => false,
        };
        if uses_lookup && lookup.is_some() && !keyed {
            c.fail(
                format!("{key}.{which}.id"),
                "facts from a lookup need an id that is a {path_param} the lookup's path carries: otherwise the lookup says the same for whatever id the client names",
            );
        }
    }
    let upstream_credential = r.upstream_credential.as_ref().map(|u| {
        if u.name.is_empty() || u.name.chars().count() > 32 {
            c.fail(
                format!("{key}.upstream_credential.name"),
                "must be 1 to 32 characters",
            );
        }
        (u.space, u.name.clone())
    });
    let rate_limit = super::limits::check_route_rate(&key, r.rate_limit.as_ref(), auth, c);
    Some(RouteConfig {
        pattern: pattern?,
        methods,
        upstream: upstream?,
        auth,
        errors,
        require,
        dialects,
        mode,
        shadow,
        client_cert,
        claims_to_headers,
        forward_token: r.forward_token,
        upstream_credential,
        lookup,
        rate_limit,
    })
}
