//! Property: for random grants, random requirements and random reloads that shrink an app's
//! config, no request passes that the current config would not allow, and none is refused
//! that it would. The oracle is written independently of the guard: it asks whether a fresh
//! apply under the current config could have issued the token's grant, by brute force.

use super::require;
use crate::config::{App, AppSecret, Dialect, Level, ResourceRequirement, ValueRef};
use crate::permission::{implies_same, Grant, Perm, Resource};
use crate::principal::Principal;
use crate::route::Pattern;
use crate::secret::Secret;
use proptest::prelude::*;

const IDS: [&str; 3] = ["a", "b", "c"];
const SCOPES: [&str; 3] = ["s1", "s2", "s3"];

fn any_type_perm() -> impl Strategy<Value = (Resource, Perm)> {
    prop::sample::select(
        [Resource::Task, Resource::Template, Resource::Scope]
            .iter()
            .flat_map(|r| r.perms().iter().map(move |p| (*r, *p)))
            .collect::<Vec<_>>(),
    )
}

fn any_grant(ids: &'static [&'static str]) -> impl Strategy<Value = Grant> {
    (any_type_perm(), prop::sample::select(ids)).prop_map(|((resource, perm), id)| Grant {
        resource,
        id: id.into(),
        perm,
    })
}

#[derive(Debug, Clone)]
struct Cfg {
    present: bool,
    space: u64,
    level: Level,
    scopes: Vec<String>,
    grants: Vec<Grant>,
}

fn app(c: &Cfg) -> App {
    App {
        id: "app".into(),
        secret: AppSecret::Plain(Secret::new("x")),
        name: None,
        oauth_scopes: c.scopes.clone(),
        corp_id: None,
        level: c.level,
        space_id: Some(c.space),
        user: None,
        grants: c.grants.clone(),
        event_url: None,
        verification_token: None,
        self_built: false,
    }
}

/// One reload that only takes away: drops or lowers grants, drops scopes, lowers the level,
/// moves the app's space, or removes the app.
#[derive(Debug, Clone)]
enum Shrink {
    DropGrant(usize),
    LowerGrant(usize, usize),
    DropScope(usize),
    Tenant,
    MoveSpace,
    Remove,
}

fn any_shrink() -> impl Strategy<Value = Shrink> {
    prop_oneof![
        4 => (0usize..6).prop_map(Shrink::DropGrant),
        4 => (0usize..6, 0usize..4).prop_map(|(g, p)| Shrink::LowerGrant(g, p)),
        2 => (0usize..3).prop_map(Shrink::DropScope),
        1 => Just(Shrink::Tenant),
        1 => Just(Shrink::MoveSpace),
        1 => Just(Shrink::Remove),
    ]
}

fn shrink(mut c: Cfg, s: &Shrink) -> Cfg {
    match *s {
        Shrink::DropGrant(i) if i < c.grants.len() => {
            c.grants.remove(i);
        }
        Shrink::LowerGrant(i, p) if i < c.grants.len() => {
            let g = &mut c.grants[i];
            let lower: Vec<Perm> = g
                .resource
                .perms()
                .iter()
                .copied()
                .filter(|q| implies_same(g.resource, g.perm, *q))
                .collect();
            g.perm = lower[p % lower.len()];
        }
        Shrink::DropScope(i) if i < c.scopes.len() => {
            c.scopes.remove(i);
        }
        Shrink::Tenant => c.level = Level::Tenant,
        Shrink::MoveSpace => c.space += 1,
        Shrink::Remove => c.present = false,
        _ => {}
    }
    c
}

/// Could a fresh apply under `c` issue exactly `held` for space 3? (Brute force over ids and perms.)
fn issuable_now(c: &Cfg, held: &Grant) -> bool {
    c.present
        && c.space == 3
        && c.grants.iter().any(|g| {
            let ids: Vec<&str> = if g.id == "*" {
                IDS.to_vec()
            } else {
                vec![g.id.as_str()]
            };
            g.resource == held.resource
                && ids.contains(&held.id.as_str())
                && g.resource
                    .perms()
                    .iter()
                    .any(|p| *p == held.perm && implies_same(g.resource, g.perm, *p))
        })
}

/// SPEC §4's table written out case by case, independently of `permission::TABLE`: the oracle
/// the lattice is checked against. TEMPLATE MOCK reaches a task only when it was created `MOCK`.
fn spec_allows(
    g: &Grant,
    t: Resource,
    p: Perm,
    id: &str,
    scope: Option<&str>,
    template: Option<&str>,
    create_method: Option<&str>,
) -> bool {
    use Perm::*;
    use Resource::*;
    let on = |target: Option<&str>| target == Some(g.id.as_str());
    let holds = |r: Resource, ps: &[Perm]| g.resource == r && ps.contains(&g.perm);
    let mock_task = create_method == Some("MOCK");
    match (t, p) {
        (Template, View) => {
            (holds(Template, &[View, Edit, Mock]) && on(Some(id)))
                || (holds(Scope, &[View, Edit, Mock]) && on(scope))
        }
        (Template, Edit) => {
            (holds(Template, &[Edit, Mock]) && on(Some(id)))
                || (holds(Scope, &[Edit, Mock]) && on(scope))
        }
        (Template, Mock) => {
            (holds(Template, &[Mock]) && on(Some(id))) || (holds(Scope, &[Mock]) && on(scope))
        }
        (Task, View) => {
            (holds(Task, &[View, Operate]) && on(Some(id)))
                || (holds(Scope, &[View, Operate, Mock]) && on(scope))
                || (mock_task && holds(Template, &[Mock]) && on(template))
        }
        (Task, Operate) => {
            (holds(Task, &[Operate]) && on(Some(id)))
                || (holds(Scope, &[Operate, Mock]) && on(scope))
                || (mock_task && holds(Template, &[Mock]) && on(template))
        }
        (Scope, View) => holds(Scope, &[View, Mock]) && on(Some(id)),
        (Scope, Edit) => holds(Scope, &[Edit, Mock]) && on(Some(id)),
        (Scope, Operate) => holds(Scope, &[Operate, Mock]) && on(Some(id)),
        (Scope, Mock) => holds(Scope, &[Mock]) && on(Some(id)),
        _ => false,
    }
}

fn lit(s: Option<&str>) -> Option<ValueRef> {
    s.map(|s| ValueRef::Literal(s.into()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn no_request_passes_that_the_current_config_would_not_allow(
        grants in prop::collection::vec(any_grant(&["a", "b", "c", "*"]), 1..6),
        pick in 0usize..6,
        pick_id in 0usize..3,
        pick_perm in 0usize..4,
        token_scopes in prop::sample::subsequence(SCOPES.to_vec(), 0..=3),
        platform in any::<bool>(),
        reloads in prop::collection::vec(any_shrink(), 0..4),
        (need_type, need_perm) in any_type_perm(),
        need_id in prop::sample::select(IDS.to_vec()),
        need_scope in prop::option::of(prop::sample::select(IDS.to_vec())),
        need_template in prop::option::of(prop::sample::select(IDS.to_vec())),
        need_space in prop::option::of(prop::sample::select(vec!["3", "4"])),
        need_create_method in prop::option::of(prop::sample::select(vec!["MOCK", "API"])),
        need_oauth in prop::sample::select(SCOPES.to_vec()),
    ) {
        // The token: a grant the original config could issue, scopes it held, its level.
        let original = Cfg {
            present: true,
            space: 3,
            level: if platform { Level::Platform } else { Level::Tenant },
            scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
            grants,
        };
        let g = &original.grants[pick % original.grants.len()];
        let id = if g.id == "*" { IDS[pick_id].to_owned() } else { g.id.clone() };
        let perms: Vec<Perm> = g.resource.perms().iter().copied()
            .filter(|p| implies_same(g.resource, g.perm, *p)).collect();
        let token_grant = Grant { resource: g.resource, id, perm: perms[pick_perm % perms.len()] };
        prop_assert!(issuable_now(&original, &token_grant));
        let raw = || Principal::new("app".into(), Dialect::Bkflow, u64::MAX, "j".into())
            .with_bkflow(3, "u", token_grant.clone())
            .with_scopes(token_scopes.iter().map(|s| (*s).into()).collect())
            .with_level(Some(original.level));
        // Reload after reload; each generation holds the token's own facts to its config.
        let mut now = original.clone();
        let mut held = raw().held_to(Some(&app(&now)), 1).ok();
        for (generation, s) in reloads.iter().enumerate() {
            now = shrink(now, s);
            let current = app(&now);
            held = raw().held_to(now.present.then_some(&current), generation as u64 + 2).ok();
        }

        // bkflow requirement.
        let req = ResourceRequirement {
            resource: need_type,
            id: ValueRef::Literal(need_id.into()),
            perm: need_perm,
            scope: lit(need_scope),
            template: lit(need_template),
            space: lit(need_space),
            create_method: lit(need_create_method),
        };
        let parts = http::Request::get("/x").body(()).unwrap().into_parts().0;
        let pattern = Pattern::parse("/x").unwrap();
        let id = require::resource_id(&req, &parts, "/x", &pattern).unwrap();
        let passes = held.as_ref().is_some_and(|p| {
            require::check(&req, p, &id, None).is_ok()
        });
        let allowed = issuable_now(&now, &token_grant)
            && spec_allows(&token_grant, need_type, need_perm, need_id, need_scope, need_template, need_create_method)
            && need_space == Some("3");
        prop_assert_eq!(passes, allowed, "bkflow: token {:?} after {:?}", token_grant, reloads);

        // oauth scope and hosecloud level.
        let scope_passes = held.as_ref().is_some_and(|p| p.scopes.iter().any(|s| &**s == need_oauth));
        let scope_allowed = now.present && now.space == 3
            && token_scopes.contains(&need_oauth) && now.scopes.iter().any(|s| s == need_oauth);
        prop_assert_eq!(scope_passes, scope_allowed, "oauth scope {} after {:?}", need_oauth, reloads);
        let level_passes = held.as_ref().is_some_and(|p| p.level.is_some_and(|l| l.satisfies(Level::Platform)));
        let level_allowed = now.present && now.space == 3
            && original.level == Level::Platform && now.level == Level::Platform;
        prop_assert_eq!(level_passes, level_allowed, "platform level after {:?}", reloads);
    }
}
