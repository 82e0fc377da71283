//! Issue 15, shadow rules: a `mode: shadow` route forwards what its rule would refuse and
//! counts the decision with `mode="shadow"`; `require_shadow` tries a stricter requirement
//! beside the enforced one; switching a route from shadow to enforce is a reload.

mod support;

use support::{Gateway, TestClient, Upstream};

fn yaml(up: &str, mode: &str) -> String {
    format!(
        "{}upstreams:\n  api: {{ targets: [\"{up}\"] }}\nroutes:\n  - {{ path: /s, upstream: api, mode: {mode}, require: {{ oauth_scope: admin }} }}\n  - {{ path: /r, upstream: api, require: {{ oauth_scope: bailunApi }}, require_shadow: {{ oauth_scope: admin }} }}\n",
        support::app_yaml()
    )
}

async fn metrics(gw: &Gateway) -> String {
    TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body
}

fn assert_series(m: &str, series: &[&str]) {
    for s in series {
        assert!(m.contains(s), "{s} missing from:\n{m}");
    }
}

#[tokio::test]
async fn a_shadow_route_forwards_what_its_rule_would_refuse_and_counts_it() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up.url(), "shadow")).await;
    // No token: forwarded, counted as a shadow "missing".
    let r = gw.get("/s", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A valid token without the scope: forwarded with its identity, the token stripped.
    let token = gw.token().await;
    let r = gw.get("/s", &[("authorization", &token)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h = &r.json()["headers"];
    assert_eq!(h["x-tollgate-app"], "coupang", "{h}");
    assert!(h.get("authorization").is_none());
    let m = metrics(&gw).await;
    assert_series(
        &m,
        &[
            r#"tollgate_auth_decisions_total{decision="missing",dialect="none",mode="shadow",route="/s"} 1"#,
            r#"tollgate_auth_decisions_total{decision="forbidden",dialect="oauth",mode="shadow",route="/s"} 1"#,
        ],
    );
    assert!(
        !m.contains(r#"mode="enforce",route="/s""#),
        "a shadow route enforces nothing:\n{m}"
    );
    // Enforced by a reload: the same requests are refused.
    gw.reload(&yaml(&up.url(), "enforce"));
    assert_eq!(gw.get("/s", &[]).await.status, 401);
    assert_eq!(gw.get("/s", &[("authorization", &token)]).await.status, 403);
}

#[tokio::test]
async fn require_shadow_counts_a_stricter_rule_beside_the_enforced_one() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up.url(), "enforce")).await;
    let token = gw.token().await;
    assert_eq!(gw.get("/r", &[("authorization", &token)]).await.status, 200);
    // The enforced rule still refuses what it refuses.
    assert_eq!(gw.get("/r", &[]).await.status, 401);
    let m = metrics(&gw).await;
    assert_series(
        &m,
        &[
            r#"tollgate_auth_decisions_total{decision="allowed",dialect="oauth",mode="enforce",route="/r"} 1"#,
            r#"tollgate_auth_decisions_total{decision="forbidden",dialect="oauth",mode="shadow",route="/r"} 1"#,
            r#"tollgate_auth_decisions_total{decision="missing",dialect="none",mode="enforce",route="/r"} 1"#,
        ],
    );
}

#[test]
fn a_shadow_refusal_is_logged_as_shadow_decision() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = rt.block_on(Upstream::echo());
    let dir = tempfile::tempdir().unwrap();
    let path = support::bin::config_in(dir.path(), &yaml(&up.url(), "shadow"));
    let gw = support::bin::Proc::start(&path);
    let r = rt.block_on(TestClient::plain().send("GET", &format!("http://{}/s", gw.addr), &[], ""));
    assert_eq!(r.status, 200);
    let line = gw.wait_line("shadow_decision", 5);
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["shadow_decision"], "missing", "{line}");
    assert_eq!(line["route"], "/s");
    assert_eq!(line["status"], 401);
}

#[tokio::test]
async fn require_shadow_reads_the_routes_lookup_for_its_own_facts() {
    let meta: support::Meta = [(
        "/internal/templates/42".to_owned(),
        serde_json::json!({ "space_id": 4 }),
    )]
    .into_iter()
    .collect();
    let up = Upstream::with_meta(meta).await;
    let yaml = format!(
        r#"apps:
  - {{ id: coupang, secret: "{}", space_id: 3, user: admin, grants: [ {{ resource: TEMPLATE, id: "*", permission: EDIT }} ] }}
dialects: {{ bkflow: {{}} }}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: "/tpl/{{template_id}}", upstream: api, errors: bkflow,
       require: {{ resource: TEMPLATE, id: "{{template_id}}", permission: VIEW, space: "3" }},
       require_shadow: {{ resource: TEMPLATE, id: "{{template_id}}", permission: VIEW, space: "{{lookup:space_id}}" }},
       lookup: {{ upstream: api, path: "/internal/templates/{{template_id}}", ttl: 30s }} }}
"#,
        tollgate::issue::core::hash_secret(support::SECRET),
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    let token = gw.bkflow_template_token("42", "VIEW").await;
    // Enforced: passes. Shadow: the template lives in space 4, not the token's 3.
    assert_eq!(
        gw.get("/tpl/42", &[("bkflow-token", &token)]).await.status,
        200
    );
    assert_eq!(
        up.lookup_count(),
        1,
        "the shadow rule read the route's lookup"
    );
    let m = metrics(&gw).await;
    assert_series(
        &m,
        &[
            r#"tollgate_auth_decisions_total{decision="allowed",dialect="bkflow",mode="enforce",route="/tpl/{template_id}"} 1"#,
            r#"tollgate_auth_decisions_total{decision="forbidden",dialect="bkflow",mode="shadow",route="/tpl/{template_id}"} 1"#,
        ],
    );
}
