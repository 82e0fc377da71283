//! A route's `require: {resource, id, permission, scope, template}` resolved against one request.

use super::permission::{satisfies, Grant, Need};
use crate::config::{ResourceRequirement, ValueRef};
use crate::route::Pattern;
use http::request::Parts;
use std::borrow::Cow;

fn resolve<'a>(
    r: &'a ValueRef,
    parts: &'a Parts,
    path: &'a str,
    pattern: &Pattern,
) -> Option<Cow<'a, str>> {
    match r {
        ValueRef::Literal(s) => Some(Cow::Borrowed(s.as_str())),
        ValueRef::Path(name) => pattern.param(path, name).map(Cow::Borrowed),
        ValueRef::Query(name) => form_urlencoded::parse(parts.uri.query()?.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Owned(v.into_owned())),
        ValueRef::Header(name) => parts.headers.get(name)?.to_str().ok().map(Cow::Borrowed),
    }
    .filter(|v| !v.is_empty())
}

/// `Ok` when `held` meets the requirement for this request; otherwise what is missing.
pub fn check(
    req: &ResourceRequirement,
    held: Option<&Grant>,
    parts: &Parts,
    path: &str,
    pattern: &Pattern,
) -> Result<(), String> {
    let what = |id: &str| format!("{} {} on {id}", req.resource.as_str(), req.perm.as_str());
    let Some(id) = resolve(&req.id, parts, path, pattern) else {
        return Err(format!(
            "{} (the request does not name the resource)",
            what("?")
        ));
    };
    let scope = req
        .scope
        .as_ref()
        .and_then(|r| resolve(r, parts, path, pattern));
    let template = req
        .template
        .as_ref()
        .and_then(|r| resolve(r, parts, path, pattern));
    let need = Need {
        resource: req.resource,
        id: &id,
        perm: req.perm,
        scope: scope.as_deref(),
        template: template.as_deref(),
    };
    match held {
        Some(g) if satisfies(g, &need) => Ok(()),
        _ => Err(what(&id)),
    }
}
