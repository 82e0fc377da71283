//! A route's `require: {resource, id, permission, space, scope, template, create_method}`
//! resolved against one request. The id is what the client asks for; the rest are facts about
//! the resource and come only from the config or the route's lookup (SPEC §4). A refusal says
//! which requirement is missing, never a fact the lookup returned.

use crate::config::{ResourceRequirement, ValueRef};
use crate::permission::{satisfies, Need};
use crate::principal::Principal;
use crate::reject::Reject;
use crate::route::Pattern;
use crate::upstream::lookup::Facts;
use http::request::Parts;
use std::borrow::Cow;

/// The id the request names. A referenced query key or header that appears twice is a
/// malformed request: the guard would check one value while the upstream may read the other.
/// Twice counts every spelling a common framework reads as the same name: query keys after
/// percent-decoding, in any case, with `.`, space and `[` read as `_` (PHP); header names with
/// `_` for `-` (CGI, WSGI, PHP, Rack).
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
            let want = fold_query_key(name);
            let same = |k: &str| query_key_folds_to(k, &want);
            let mut found = None;
            let mut seen = 0;
            // `;` separates pairs too for some frameworks (old Go, Rack, Python < 3.9.2).
            for piece in parts.uri.query().unwrap_or("").split(';') {
                for (k, v) in form_urlencoded::parse(piece.as_bytes()) {
                    // `task_id[]` / `task_id[a]` are task_id to PHP and Express's qs.
                    let base = k.split_once('[').map_or(&*k, |(b, _)| b);
                    if !same(&k) && !same(base) {
                        continue;
                    }
                    seen += 1;
                    if seen > 1 {
                        return Err(Reject::BadRequest(
                            format!("query parameter {name} appears more than once (under some spelling)").into(),
                        ));
                    }
                    if k == name.as_str() {
                        found = Some(Cow::Owned(v.into_owned()));
                    }
                }
            }
            found
        }
        ValueRef::Header(name) => {
            let mut spellings = parts
                .headers
                .iter()
                .filter(|(k, _)| crate::ident::folds_to(k.as_str(), name.as_str()));
            let first = spellings.next();
            if spellings.next().is_some() {
                return Err(Reject::BadRequest(
                    format!("header {name} appears more than once (under some spelling)").into(),
                ));
            }
            first
                .filter(|(k, _)| *k == name)
                .and_then(|(_, v)| v.to_str().ok())
                .map(Cow::Borrowed)
        }
        // Refused by the config check; never a source of the id.
        ValueRef::Lookup(_) => None,
    };
    Ok(value.filter(|v| !v.is_empty()))
}

/// Refuses what an upstream framework would run as another method than the route was matched
/// for: a method with a lower-case letter (Django, Symfony upper-case it) or a `_method` query
/// key (Laravel, Symfony, Rack).
pub fn no_method_override(method: &http::Method, uri: &http::Uri) -> Result<(), Reject> {
    if method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(Reject::BadRequest(
            "method names are case-sensitive and upper case here: some frameworks upper-case them"
                .into(),
        ));
    }
    if uri.query().is_some_and(overrides_method) {
        return Err(Reject::BadRequest(
            "a _method query parameter is a method override; send the method itself".into(),
        ));
    }
    Ok(())
}

/// True when the query carries a method override (`_method`, under any spelling a framework
/// folds into it): Laravel, Symfony and Rack would run another method than the route checked.
fn overrides_method(query: &str) -> bool {
    query.split(';').any(|piece| {
        form_urlencoded::parse(piece.as_bytes()).any(|(k, _)| {
            let base = k.split_once('[').map_or(&*k, |(b, _)| b);
            query_key_folds_to(base, "_method")
        })
    })
}

/// `k` read as [`fold_query_key`] does equals `want` (lower case), without allocating.
fn query_key_folds_to(k: &str, want: &str) -> bool {
    k.len() == want.len()
        && k.bytes().zip(want.bytes()).all(|(a, b)| {
            let a = match a {
                b'.' | b' ' | b'[' => b'_',
                a => a.to_ascii_lowercase(),
            };
            a == b
        })
}

/// A query key as the most lenient framework reads it: lower case, `.`, space and `[` as `_`.
fn fold_query_key(k: &str) -> String {
    k.chars()
        .map(|c| match c {
            '.' | ' ' | '[' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// A fact about the resource: a literal or a field of the lookup answer.
fn fact<'a>(r: &'a ValueRef, facts: Option<&'a Facts>) -> Option<&'a str> {
    match r {
        ValueRef::Literal(s) => Some(s.as_str()),
        ValueRef::Lookup(field) => facts?.get(field),
        // Refused by the config check: the client never states a fact, not even in the path.
        ValueRef::Path(_) | ValueRef::Query(_) | ValueRef::Header(_) => None,
    }
    .filter(|v| !v.is_empty())
}

/// `Ok` when the principal meets the requirement for this request; otherwise what is missing.
pub fn check<'a>(
    req: &'a ResourceRequirement,
    principal: &Principal,
    id: &Option<Cow<'_, str>>,
    facts: Option<&'a Facts>,
) -> Result<(), String> {
    let what = |id: &str| format!("{} {} on {id}", req.resource.as_str(), req.perm.as_str());
    let Some(id) = id.as_deref() else {
        return Err(format!(
            "{} (the request does not name the resource)",
            what("?")
        ));
    };
    // A token is only good in its own space, so a "*" grant means any id *in that space*.
    let space = req.space.as_ref().and_then(|r| fact(r, facts));
    let Some(space) = space else {
        return Err(format!("{} (the resource has no known space)", what(id)));
    };
    if principal.space.is_none_or(|held| held.to_string() != space) {
        // Which space it is would tell a token holder where every id lives: not said.
        return Err(format!("{} (not in the token's space)", what(id)));
    }
    let known = |r: &'a Option<ValueRef>| r.as_ref().and_then(|r| fact(r, facts));
    let need = Need {
        resource: req.resource,
        id,
        perm: req.perm,
        scope: known(&req.scope),
        template: known(&req.template),
        create_method: known(&req.create_method),
    };
    match &principal.grant {
        Some(g) if satisfies(g, &need) => Ok(()),
        _ => Err(what(id)),
    }
}
