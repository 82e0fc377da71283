//! Issue 15, `POST /admin/explain`: for an open route, a missing token, a bad token, a token
//! short of a scope and a lattice pass, explain says what the real request then gets (status
//! and body), names the missing permission or the grant that implies it, and changes no
//! counter.

mod support;

use serde_json::{json, Value};
use support::{Gateway, TestClient, Upstream};

fn yaml(up: &str) -> String {
    format!(
        r#"apps:
  - {{ id: coupang, secret: "{}", oauth_scopes: [bailunApi], space_id: 3, user: admin,
       grants: [ {{ resource: TEMPLATE, id: "*", permission: EDIT }} ] }}
signing: {{ issuer: https://gw.test }}
dialects: {{ oauth: {{ path: /oauth/token/get }}, bkflow: {{}} }}
upstreams:
  api: {{ targets: ["{up}"] }}
routes:
  - {{ path: /open, upstream: api, auth: none }}
  - {{ path: /scoped, upstream: api, require: {{ oauth_scope: admin }} }}
  - {{ path: "/tpl/{{template_id}}", upstream: api, errors: bkflow,
       require: {{ resource: TEMPLATE, id: "{{template_id}}", permission: VIEW, space: "3" }} }}
"#,
        tollgate::issue::core::hash_secret(support::SECRET)
    )
}

async fn explain(gw: &Gateway, ask: Value) -> Value {
    let r = TestClient::plain()
        .post_json(&gw.admin_url("/admin/explain"), &[], &ask.to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn metrics(gw: &Gateway) -> String {
    let m = TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    // The process and byte series move on their own; the gateway's decisions must not.
    m.lines()
        .filter(|l| {
            l.starts_with("tollgate_")
                && !l.starts_with("tollgate_received_bytes")
                && !l.starts_with("tollgate_sent_bytes")
                && !l.contains("tollgate_http_request")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Explains `path` with `headers`, checks nothing moved, then sends it for real: the status
/// and body explain announced are the ones the client gets.
async fn compare(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Value {
    let before = metrics(gw).await;
    let h: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let e = explain(gw, json!({ "method": "GET", "path": path, "headers": h })).await;
    assert_eq!(metrics(gw).await, before, "explain moved a counter: {e}");
    let real = gw.get(path, headers).await;
    match e["status"].as_u64() {
        Some(s) => {
            assert_eq!(real.status.as_u16() as u64, s, "{e}\nreal: {}", real.body);
            assert_eq!(real.json(), e["body"], "{e}");
        }
        None => assert_eq!(real.status, 200, "{e}\nreal: {}", real.body),
    }
    e
}

#[tokio::test]
async fn explain_says_what_the_real_request_gets_and_why() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up.url())).await;
    // 1. An open route.
    let e = compare(&gw, "/open", &[]).await;
    assert_eq!(e["decision"], "allowed", "{e}");
    assert_eq!(e["route"], "/open");
    // 2. No token.
    let e = compare(&gw, "/scoped", &[]).await;
    assert_eq!(e["decision"], "missing", "{e}");
    // Every entry before the match, each with why it was passed over.
    let rs = e["routes"].as_array().unwrap();
    let (last, before) = (&rs[rs.len() - 1], &rs[rs.len() - 2]);
    assert_eq!(
        (&last["route"], &last["matched"]),
        (&json!("/scoped"), &json!(true)),
        "{e}"
    );
    assert_eq!(before["route"], "/open", "{e}");
    assert_eq!(before["why"], "path does not match", "{e}");
    // 3. A bad token.
    let e = compare(&gw, "/scoped", &[("authorization", "Bearer not.a.token")]).await;
    assert_eq!(e["decision"], "invalid", "{e}");
    // 4. A valid token short of the scope: the missing permission is named.
    let token = gw.token().await;
    let e = compare(&gw, "/scoped", &[("authorization", &token)]).await;
    assert_eq!(e["decision"], "forbidden", "{e}");
    assert_eq!(e["token"]["app"], "coupang");
    assert_eq!(e["token"]["dialect"], "oauth");
    let req = &e["requirements"];
    let scope = req
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["requirement"] == "oauth scope admin")
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(scope["met"], false, "{e}");
    // 5. The lattice: a TEMPLATE EDIT grant implies VIEW, and explain names the grant.
    let bk = gw.bkflow_template_token("42", "EDIT").await;
    let e = compare(&gw, "/tpl/42", &[("bkflow-token", &bk)]).await;
    assert_eq!(e["decision"], "allowed", "{e}");
    let last = e["requirements"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["met"], true, "{e}");
    assert_eq!(last["by"], "grant TEMPLATE:42:EDIT", "{e}");
    // A path explain normalises is said to be normalised; a refused one says why.
    let e = explain(&gw, json!({ "path": "//open/./" })).await;
    assert_eq!(e["normalised"]["changed"], true, "{e}");
    let e = explain(&gw, json!({ "path": "/open/%2e%2e/%2fadmin" })).await;
    assert_eq!(e["status"], 400, "{e}");
}

#[test]
fn tollgate_explain_answers_offline_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::bin::config_in(dir.path(), &yaml("http://127.0.0.1:9"));
    let out = std::process::Command::new(support::bin::exe())
        .args(["explain", "--config"])
        .arg(&path)
        .args(["--path", "/scoped", "-H", "Authorization: Bearer junk"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["route"], "/scoped", "{v}");
    assert_eq!(v["decision"], "invalid", "{v}");
    assert_eq!(v["status"], 401, "{v}");
}
