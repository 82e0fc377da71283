//! A route's `require:` resource requirement (SPEC §4): the id is what the client asks for
//! (a literal, a one-segment `{param}`, `{query:name}` or `{header:Name}`); `space`, `scope`,
//! `template` and `create_method` are facts about the resource and take only a literal or a
//! `{lookup:field}` — the path is written by the client as much as a header is. Every
//! resource requirement names its `space`.

use super::Checker;
use crate::config::raw::RawRequire;
use crate::config::*;
use crate::permission::{Perm, Resource};
use crate::route::Pattern;

fn check_ref(
    key: &str,
    text: &str,
    pattern: Option<&Pattern>,
    c: &mut Checker,
) -> Option<ValueRef> {
    match ValueRef::parse(text) {
        Err(e) => {
            c.fail(key, e);
            None
        }
        Ok(ValueRef::Path(name)) if pattern.is_some_and(|p| !p.has_param(&name)) => {
            c.fail(key, format!("the route path has no parameter {{{name}}}"));
            None
        }
        Ok(ValueRef::Path(name)) if pattern.is_some_and(|p| p.is_catch_all(&name)) => {
            c.fail(
                key,
                format!("{{{name}}} is a catch-all: a resource id is one path segment"),
            );
            None
        }
        Ok(v) => Some(v),
    }
}

pub(super) fn check_requirement(
    rk: &str,
    req: &RawRequire,
    pattern: Option<&Pattern>,
    c: &mut Checker,
) -> Option<ResourceRequirement> {
    let any = req.resource.is_some()
        || req.id.is_some()
        || req.permission.is_some()
        || req.scope.is_some()
        || req.template.is_some()
        || req.create_method.is_some()
        || req.space.is_some();
    if !any {
        return None;
    }
    let resource = match req.resource.as_deref().map(|r| (r, Resource::parse(r))) {
        Some((_, Some(r))) => Some(r),
        Some((r, None)) => {
            c.fail(
                format!("{rk}.resource"),
                format!("{r:?} is not TASK, TEMPLATE or SCOPE"),
            );
            None
        }
        None => {
            c.fail(
                format!("{rk}.resource"),
                "resource is required with id and permission",
            );
            None
        }
    };
    let perm = match req.permission.as_deref() {
        None => {
            c.fail(
                format!("{rk}.permission"),
                "permission is required with resource",
            );
            None
        }
        Some(p) => match (Perm::parse(p), resource) {
            (Some(perm), Some(r)) if r.perms().contains(&perm) => Some(perm),
            _ => {
                c.fail(
                    format!("{rk}.permission"),
                    format!(
                        "{p:?} is not a permission of {}",
                        req.resource.as_deref().unwrap_or("?")
                    ),
                );
                None
            }
        },
    };
    let id = match req.id.as_deref() {
        Some(t) => check_ref(&format!("{rk}.id"), t, pattern, c),
        None => {
            c.fail(format!("{rk}.id"), "id is required with resource");
            None
        }
    };
    if matches!(id, Some(ValueRef::Lookup(_))) {
        c.fail(
            format!("{rk}.id"),
            "id names the resource asked for: a literal, {param}, {query:name} or {header:Name}",
        );
    }
    // Facts about the resource are never the client's to state (SPEC §4).
    let mut fact = |name: &str, text: Option<&String>| {
        let key = format!("{rk}.{name}");
        let v = check_ref(&key, text?, pattern, c)?;
        if !matches!(v, ValueRef::Literal(_) | ValueRef::Lookup(_)) {
            c.fail(
                key,
                format!("{name} is a fact about the resource, not the client's to state: use a literal or {{lookup:field}}, never a path parameter, header or query reference (path parameters fill in the lookup's path)"),
            );
            return None;
        }
        Some(v)
    };
    let space = fact("space", req.space.as_ref());
    let scope = fact("scope", req.scope.as_ref());
    let template = fact("template", req.template.as_ref());
    let create_method = fact("create_method", req.create_method.as_ref());
    if req.space.is_none() {
        c.fail(
            format!("{rk}.space"),
            "every resource requirement names its space (a literal or {lookup:field}): a bkflow token is bound to the space it was applied in",
        );
    }
    if let Some(ValueRef::Literal(s)) = &space {
        if s.parse::<u64>().is_err() {
            c.fail(
                format!("{rk}.space"),
                format!("{s:?} is not a space id (a number)"),
            );
        }
    }
    Some(ResourceRequirement {
        resource: resource?,
        id: id?,
        perm: perm?,
        scope,
        template,
        space,
        create_method,
    })
}
