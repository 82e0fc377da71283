//! A route's `require: {resource, id, permission, space, scope, template}` resolved against one
//! request. The id is what the client asks for; space, scope and template are facts about the
//! resource and come only from the config, the path or the route's lookup (SPEC §4).

use super::lookup::Facts;
use super::principal::Principal;
use crate::config::{ResourceRequirement, ValueRef};
use crate::permission::{satisfies, Need};
use crate::reject::Reject;
use crate::route::Pattern;
use http::request::Parts;
use std::borrow::Cow;

/// The id the request names. A referenced query key (compared after percent-decoding) or
/// header that appears twice is a malformed request: the guard would check one value while
/// the upstream may read the other.
pub fn resource_id<'a>(
    req: &'a ResourceRequirement,
    parts: &'a Parts,
    path: &'a str,
    pattern: &Pattern,
) -> Result<Option<Cow<'a, str>>, Reject> {
    let value = match &req.id {
        ValueRef::Literal(s) => Some(Cow::Borrowed(s.as_str())),
        ValueRef::Path(name) => pattern.param(path, name).map(Cow::Borrowed),
        ValueRef::Query(name) => {
            let mut found = None;
            if let Some(q) = parts.uri.query() {
                for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                    if k == name.as_str() {
                        if found.is_some() {
                            return Err(Reject::BadRequest(
                                format!("query parameter {name} appears more than once").into(),
                            ));
                        }
                        found = Some(Cow::Owned(v.into_owned()));
                    }
                }
            }
            found
        }
        ValueRef::Header(name) => {
            let mut all = parts.headers.get_all(name).iter();
            let first = all.next();
            if all.next().is_some() {
                return Err(Reject::BadRequest(
                    format!("header {name} appears more than once").into(),
                ));
            }
            first.and_then(|v| v.to_str().ok()).map(Cow::Borrowed)
        }
        // Refused by the config check; never a source of the id.
        ValueRef::Lookup(_) => None,
    };
    Ok(value.filter(|v| !v.is_empty()))
}

/// A fact about the resource: a literal, a path parameter, or a field of the lookup answer.
fn fact<'a>(
    r: &'a ValueRef,
    path: &'a str,
    pattern: &Pattern,
    facts: Option<&'a Facts>,
) -> Option<&'a str> {
    match r {
        ValueRef::Literal(s) => Some(s.as_str()),
        ValueRef::Path(name) => pattern.param(path, name),
        ValueRef::Lookup(field) => facts?.get(field),
        // Refused by the config check: the client never states a fact.
        ValueRef::Query(_) | ValueRef::Header(_) => None,
    }
    .filter(|v| !v.is_empty())
}

/// `Ok` when the principal meets the requirement for this request; otherwise what is missing.
pub fn check(
    req: &ResourceRequirement,
    principal: &Principal,
    id: &Option<Cow<'_, str>>,
    path: &str,
    pattern: &Pattern,
    facts: Option<&Facts>,
) -> Result<(), String> {
    let what = |id: &str| format!("{} {} on {id}", req.resource.as_str(), req.perm.as_str());
    let Some(id) = id.as_deref() else {
        return Err(format!(
            "{} (the request does not name the resource)",
            what("?")
        ));
    };
    if let Some(space_ref) = &req.space {
        // A token is only good in its own space, so a "*" grant means any id *in that space*.
        let Some(space) = fact(space_ref, path, pattern, facts) else {
            return Err(format!("{} (the resource has no known space)", what(id)));
        };
        if principal.space.is_none_or(|held| held.to_string() != space) {
            return Err(format!("{} in space {space}", what(id)));
        }
    }
    let need = Need {
        resource: req.resource,
        id,
        perm: req.perm,
        scope: req
            .scope
            .as_ref()
            .and_then(|r| fact(r, path, pattern, facts)),
        template: req
            .template
            .as_ref()
            .and_then(|r| fact(r, path, pattern, facts)),
    };
    match &principal.grant {
        Some(g) if satisfies(g, &need) => Ok(()),
        _ => Err(what(id)),
    }
}
