//! Routes that can never be reached because an earlier route takes every request they would:
//! accepted (first match wins, as documented), but said at `check` and at start.

use super::Checker;
use crate::config::RouteConfig;
use crate::route::{Match, Pattern, Seg, Table};
use http::Method;

/// Paths only `p` and patterns at least as wide match: a parameter becomes a value no literal
/// segment equals, a catch-all one segment and then seven (a wider pattern matches both).
fn samples(p: &Pattern) -> [String; 2] {
    [1, 7].map(|rest| {
        let mut out = String::new();
        for seg in p.segs() {
            out.push('/');
            match seg {
                Seg::Lit(t) => out.push_str(t),
                Seg::Param(_) => out.push_str("\u{1}p"),
                Seg::CatchAll(_) => out.push_str(&vec!["\u{1}c"; rest].join("/")),
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    })
}

/// Warns about every route an earlier one shadows for all its methods.
pub(super) fn warn_shadowed(routes: &[RouteConfig], c: &mut Checker) {
    // A method no route lists: only routes open to every method match it.
    let any = Method::from_bytes(b"X-TOLLGATE-ANY-METHOD").expect("a valid extension method");
    let mut earlier: Table<usize> = Table::default();
    for (j, r) in routes.iter().enumerate() {
        let methods = r.methods.clone().unwrap_or_else(|| vec![any.clone()]);
        let mut by = None;
        let covered = methods.iter().all(|m| {
            samples(&r.pattern)
                .iter()
                .all(|path| match earlier.find(m, path) {
                    Match::Found(e) => {
                        by.get_or_insert(e.value);
                        true
                    }
                    _ => false,
                })
        });
        if let (true, Some(i)) = (covered, by) {
            c.warn(
                &format!("routes[{j}].path"),
                format_args!(
                    "never reached: routes[{i}] ({}) comes first and takes every request {} would",
                    routes[i].pattern.as_str(),
                    r.pattern.as_str()
                ),
            );
        }
        earlier.push(r.pattern.clone(), r.methods.clone(), j);
    }
}
