//! The BKFlow permission lattice (SPEC §4), written once as data.
//!
//! Two relations: `implies_same` (a permission covering another of the same resource type,
//! used when capping a token by its app's grants) and `satisfies` (the SPEC table: which
//! held grants meet a route's requirement, through the resource itself, its scope or its
//! template).

use std::fmt;

/// Resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A task (flow instance).
    Task,
    /// A template (flow definition).
    Template,
    /// A scope `<scope_type>_<scope_value>`.
    Scope,
}

/// Permission types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    /// Read.
    View,
    /// Change a template.
    Edit,
    /// Operate a task.
    Operate,
    /// Debug (mock) runs.
    Mock,
}

use Perm::*;
use Resource::*;

impl Resource {
    /// Parses `TASK` / `TEMPLATE` / `SCOPE`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TASK" => Task,
            "TEMPLATE" => Template,
            "SCOPE" => Scope,
            _ => return None,
        })
    }

    /// As written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Task => "TASK",
            Template => "TEMPLATE",
            Scope => "SCOPE",
        }
    }

    /// Permissions that exist for this type.
    pub fn perms(self) -> &'static [Perm] {
        match self {
            Task => &[View, Operate],
            Template => &[View, Edit, Mock],
            Scope => &[View, Edit, Operate, Mock],
        }
    }
}

impl Perm {
    /// Parses `VIEW` / `EDIT` / `OPERATE` / `MOCK`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "VIEW" => View,
            "EDIT" => Edit,
            "OPERATE" => Operate,
            "MOCK" => Mock,
            _ => return None,
        })
    }

    /// As written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            View => "VIEW",
            Edit => "EDIT",
            Operate => "OPERATE",
            Mock => "MOCK",
        }
    }
}

/// A permission on one resource (`id` may be `*` in an app's grants).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Type.
    pub resource: Resource,
    /// Id, or `*` for any id of the type (app grants only).
    pub id: String,
    /// Permission.
    pub perm: Perm,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} on {}",
            self.resource.as_str(),
            self.perm.as_str(),
            self.id
        )
    }
}

/// Same-type implication: TASK OPERATE ⊇ VIEW; TEMPLATE MOCK ⊇ EDIT ⊇ VIEW; SCOPE MOCK ⊇ all.
pub fn implies_same(resource: Resource, held: Perm, need: Perm) -> bool {
    held == need
        || matches!(
            (resource, held, need),
            (Task, Operate, View)
                | (Template, Mock, Edit | View)
                | (Template, Edit, View)
                | (Scope, Mock, _)
        )
}

/// True when an app grant allows applying for `want` (same type, id equal or `*`, permission implied).
pub fn grant_covers(grant: &Grant, want: &Grant) -> bool {
    grant.resource == want.resource
        && (grant.id == "*" || grant.id == want.id)
        && implies_same(want.resource, grant.perm, want.perm)
}

/// How a held grant relates to the required resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The resource itself.
    Itself,
    /// The scope the resource lives in.
    ScopeOf,
    /// The template a task was created from.
    TemplateOf,
}

/// One way to satisfy a requirement: a grant reached `Via` the resource, of this type, holding one of these.
type Way = (Via, Resource, &'static [Perm]);

/// SPEC §4: required (type, permission) → the ways that satisfy it.
const TABLE: &[(Resource, Perm, &[Way])] = &[
    (
        Template,
        View,
        &[
            (Via::Itself, Template, &[View, Edit, Mock]),
            (Via::ScopeOf, Scope, &[View, Edit, Mock]),
        ],
    ),
    (
        Template,
        Edit,
        &[
            (Via::Itself, Template, &[Edit, Mock]),
            (Via::ScopeOf, Scope, &[Edit, Mock]),
        ],
    ),
    (
        Template,
        Mock,
        &[
            (Via::Itself, Template, &[Mock]),
            (Via::ScopeOf, Scope, &[Mock]),
        ],
    ),
    (
        Task,
        View,
        &[
            (Via::Itself, Task, &[View, Operate]),
            (Via::ScopeOf, Scope, &[View, Operate, Mock]),
            (Via::TemplateOf, Template, &[Mock]),
        ],
    ),
    (
        Task,
        Operate,
        &[
            (Via::Itself, Task, &[Operate]),
            (Via::ScopeOf, Scope, &[Operate, Mock]),
            (Via::TemplateOf, Template, &[Mock]),
        ],
    ),
    (Scope, View, &[(Via::Itself, Scope, &[View, Mock])]),
    (Scope, Edit, &[(Via::Itself, Scope, &[Edit, Mock])]),
    (Scope, Operate, &[(Via::Itself, Scope, &[Operate, Mock])]),
    (Scope, Mock, &[(Via::Itself, Scope, &[Mock])]),
];

/// A route's requirement, resolved for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need<'a> {
    /// Type required.
    pub resource: Resource,
    /// Id of the resource.
    pub id: &'a str,
    /// Permission required.
    pub perm: Perm,
    /// The SCOPE id the resource lives in, when known.
    pub scope: Option<&'a str>,
    /// The template a task came from, when known.
    pub template: Option<&'a str>,
    /// How the task was created, when known: TEMPLATE MOCK reaches only `MOCK` tasks.
    pub create_method: Option<&'a str>,
}

/// True when `held` (a token's concrete grant) meets `need`.
pub fn satisfies(held: &Grant, need: &Need<'_>) -> bool {
    let Some((_, _, ways)) = TABLE
        .iter()
        .find(|(r, p, _)| *r == need.resource && *p == need.perm)
    else {
        return false;
    };
    ways.iter().any(|(via, resource, perms)| {
        let target = match via {
            Via::Itself => Some(need.id),
            Via::ScopeOf => need.scope,
            // The original server grants task rights through TEMPLATE MOCK only on the
            // tasks a mock run created.
            Via::TemplateOf => need.template.filter(|_| need.create_method == Some("MOCK")),
        };
        held.resource == *resource
            && perms.contains(&held.perm)
            && target.is_some_and(|t| t == held.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_pair() -> impl Strategy<Value = (Resource, Perm)> {
        prop::sample::select(
            [Task, Template, Scope]
                .iter()
                .flat_map(|r| r.perms().iter().map(move |p| (*r, *p)))
                .collect::<Vec<_>>(),
        )
    }

    fn g(resource: Resource, id: &str, perm: Perm) -> Grant {
        Grant {
            resource,
            id: id.into(),
            perm,
        }
    }

    proptest! {
        #[test]
        fn every_grant_satisfies_exactly_itself((r, p) in any_pair(), id in "[a-z0-9_]{1,8}") {
            let need = Need { resource: r, id: &id, perm: p, scope: None, template: None, create_method: None };
            prop_assert!(satisfies(&g(r, &id, p), &need));
            prop_assert!(implies_same(r, p, p));
        }

        #[test]
        fn same_type_implication_is_transitive((r, a) in any_pair(), b in 0usize..4, c in 0usize..4) {
            let perms = r.perms();
            let (b, c) = (perms[b % perms.len()], perms[c % perms.len()]);
            if implies_same(r, a, b) && implies_same(r, b, c) {
                prop_assert!(implies_same(r, a, c));
            }
        }

        #[test]
        fn a_grant_never_reaches_another_id_or_an_unrelated_resource(
            (hr, hp) in any_pair(), (nr, np) in any_pair(), held in "[a-z]{1,4}", other in "[A-Z]{1,4}"
        ) {
            // The held id matches none of the ids in the requirement: nothing may be granted.
            let need = Need { resource: nr, id: &other, perm: np, scope: Some(&other), template: Some(&other), create_method: Some("MOCK") };
            prop_assert!(!satisfies(&g(hr, &held, hp), &need));
        }

        #[test]
        fn task_grants_never_reach_templates_or_scopes((nr, np) in any_pair(), hp in prop::sample::select(vec![View, Operate])) {
            prop_assume!(nr != Task);
            let need = Need { resource: nr, id: "x", perm: np, scope: Some("x"), template: Some("x"), create_method: Some("MOCK") };
            prop_assert!(!satisfies(&g(Task, "x", hp), &need));
        }

        #[test]
        fn satisfying_through_the_table_never_exceeds_the_same_type_order((r, p) in any_pair(), (r2, p2) in any_pair()) {
            // Holding (r, p) on the resource itself satisfies (r, p2) only when p implies p2.
            if r == r2 {
                let need = Need { resource: r, id: "x", perm: p2, scope: None, template: None, create_method: None };
                prop_assert_eq!(satisfies(&g(r, "x", p), &need), implies_same(r, p, p2));
            }
        }
    }

    #[test]
    fn the_spec_table_row_by_row() {
        let need = |resource, perm| Need {
            resource,
            id: "t1",
            perm,
            scope: Some("project_3"),
            template: Some("tpl9"),
            create_method: Some("MOCK"),
        };
        let ok = |held: Grant, n: Need<'_>| satisfies(&held, &n);
        // TEMPLATE VIEW
        for p in [View, Edit, Mock] {
            assert!(ok(g(Template, "t1", p), need(Template, View)));
            assert!(ok(g(Scope, "project_3", p), need(Template, View)));
        }
        assert!(!ok(g(Scope, "project_3", Operate), need(Template, View)));
        // TEMPLATE EDIT
        assert!(!ok(g(Template, "t1", View), need(Template, Edit)));
        assert!(ok(g(Template, "t1", Mock), need(Template, Edit)));
        assert!(!ok(g(Scope, "project_3", View), need(Template, Edit)));
        // TEMPLATE MOCK
        assert!(!ok(g(Template, "t1", Edit), need(Template, Mock)));
        assert!(ok(g(Scope, "project_3", Mock), need(Template, Mock)));
        // TASK VIEW
        for held in [
            g(Task, "t1", View),
            g(Task, "t1", Operate),
            g(Scope, "project_3", Operate),
            g(Template, "tpl9", Mock),
        ] {
            assert!(ok(held, need(Task, View)));
        }
        assert!(
            !ok(g(Scope, "project_3", Edit), need(Task, View)),
            "SCOPE EDIT gives no task access"
        );
        assert!(!ok(g(Template, "tpl9", Edit), need(Task, View)));
        // TASK OPERATE
        assert!(!ok(g(Task, "t1", View), need(Task, Operate)));
        assert!(ok(g(Scope, "project_3", Mock), need(Task, Operate)));
        assert!(!ok(g(Scope, "project_3", View), need(Task, Operate)));
        assert!(ok(g(Template, "tpl9", Mock), need(Task, Operate)));
        // TEMPLATE MOCK reaches only the tasks a mock run created.
        for method in [None, Some("API"), Some("mock")] {
            let n = Need {
                create_method: method,
                ..need(Task, Operate)
            };
            assert!(!ok(g(Template, "tpl9", Mock), n), "{method:?}");
        }
    }

    #[test]
    fn app_grants_cap_by_type_id_and_order() {
        let app = g(Template, "*", Edit);
        assert!(grant_covers(&app, &g(Template, "42", View)));
        assert!(grant_covers(&app, &g(Template, "42", Edit)));
        assert!(!grant_covers(&app, &g(Template, "42", Mock)));
        assert!(!grant_covers(&app, &g(Task, "42", View)));
        let one = g(Scope, "project_3", Mock);
        assert!(grant_covers(&one, &g(Scope, "project_3", Operate)));
        assert!(!grant_covers(&one, &g(Scope, "project_4", View)));
    }
}
