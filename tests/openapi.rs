//! Issue 15: `openapi.yaml` describes every endpoint tollgate serves itself. Real requests
//! to each (successes and refusals) are validated against the document's schema for their
//! path, method and status, and every operation in the document is exercised.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::{Gateway, TestClient, Upstream};

struct Spec {
    doc: Value,
    seen: BTreeSet<(String, String)>,
}

impl Spec {
    fn load() -> Self {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
        let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        Spec {
            doc,
            seen: BTreeSet::new(),
        }
    }

    /// Validates a real answer against the document's response for (path, method, status).
    fn check(&mut self, path: &str, method: &str, status: u16, body: &str) {
        let esc = path
            .replace('~', "~0")
            .replace('/', "~1")
            .replace('{', "%7B")
            .replace('}', "%7D");
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in openapi.yaml");
        self.seen.insert((path.to_owned(), method.to_owned()));
        let mut pointer = format!("#/paths/{esc}/{method}/responses/{status}");
        let mut resp = &op["responses"][status.to_string()];
        assert!(
            resp.is_object(),
            "{method} {path}: status {status} is not documented ({body})"
        );
        if let Some(r) = resp["$ref"].as_str() {
            pointer = r.to_owned();
            let name = r.rsplit('/').next().unwrap();
            resp = &self.doc["components"]["responses"][name];
        }
        let Some(content) = resp["content"].as_object() else {
            return;
        };
        if content.contains_key("text/plain") {
            return;
        }
        assert!(content.contains_key("application/json"), "{pointer}");
        let mut root = self.doc.clone();
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
        root["$ref"] = format!("{pointer}/content/application~1json/schema").into();
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("{pointer}: the schema does not compile: {e}"));
        let value: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{method} {path} {status}: not JSON ({e}): {body}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: {errors:?}\n{value}"
        );
    }

    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (p, ops) in self.doc["paths"].as_object().unwrap() {
            for m in ops.as_object().unwrap().keys() {
                out.insert((p.clone(), m.clone()));
            }
        }
        out
    }
}

fn yaml(up: &str) -> String {
    format!(
        r#"apps:
  - {{ id: coupang, secret: "{hash}", oauth_scopes: [bailunApi], scope: platform, space_id: 3, user: admin,
       grants: [ {{ resource: TEMPLATE, id: "*", permission: EDIT }} ] }}
  - {{ id: cli_a, secret: fs-secret }}
signing: {{ issuer: https://gw.test }}
dialects:
  oauth: {{ path: /oauth/token/get }}
  hosecloud: {{ ttl: 2h, refresh_ttl: 30d }}
  feishu: {{}}
  bkflow: {{}}
upstreams:
  api: {{ targets: ["{up}"] }}
routes:
  - {{ path: /p, upstream: api }}
"#,
        hash = tollgate::issue::core::hash_secret(support::SECRET)
    )
}

#[tokio::test]
async fn every_endpoint_answers_as_openapi_yaml_says() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up.url())).await;
    let mut spec = Spec::load();
    let c = TestClient::plain();
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let post =
        |path: &'static str, headers: &'static [(&'static str, &'static str)], body: String| {
            let url = gw.url(path);
            let c = TestClient::plain();
            async move { c.send("POST", &url, headers, &body).await }
        };
    let json_h: &'static [(&str, &str)] = &[("content-type", "application/json")];
    let form_h: &'static [(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];

    // oauth, both envelopes, success and refusal.
    let ok = post(
        "/oauth/token/get",
        json_h,
        json!({"app_id": "coupang", "app_secret": support::SECRET}).to_string(),
    )
    .await;
    spec.check("/oauth/token/get", "post", ok.status.as_u16(), &ok.body);
    let jwt = ok.json()["accessToken"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let bad = post(
        "/oauth/token/get",
        json_h,
        json!({"app_id": "coupang", "app_secret": "no"}).to_string(),
    )
    .await;
    spec.check("/oauth/token/get", "post", bad.status.as_u16(), &bad.body);
    let none = post("/oauth/token/get", json_h, "{}".into()).await;
    spec.check("/oauth/token/get", "post", none.status.as_u16(), &none.body);
    let rfc = post(
        "/oauth/token",
        form_h,
        format!(
            "grant_type=client_credentials&client_id=coupang&client_secret={}",
            support::SECRET
        ),
    )
    .await;
    spec.check("/oauth/token", "post", rfc.status.as_u16(), &rfc.body);
    let rfc_bad = post(
        "/oauth/token",
        form_h,
        "grant_type=client_credentials&client_id=coupang&client_secret=no".into(),
    )
    .await;
    spec.check(
        "/oauth/token",
        "post",
        rfc_bad.status.as_u16(),
        &rfc_bad.body,
    );
    let rfc_grant = post("/oauth/token", form_h, "grant_type=password".into()).await;
    spec.check(
        "/oauth/token",
        "post",
        rfc_grant.status.as_u16(),
        &rfc_grant.body,
    );

    // hosecloud: a pair, a refusal, a rotation.
    let pair = post(
        "/auth/openApi/v3/getAccessToken",
        json_h,
        json!({"appKey": "coupang", "appSecurity": support::SECRET}).to_string(),
    )
    .await;
    spec.check(
        "/auth/openApi/v3/getAccessToken",
        "post",
        pair.status.as_u16(),
        &pair.body,
    );
    let refused = post(
        "/auth/openApi/v3/getAccessToken",
        json_h,
        json!({"appKey": "coupang", "appSecurity": "no"}).to_string(),
    )
    .await;
    spec.check(
        "/auth/openApi/v3/getAccessToken",
        "post",
        refused.status.as_u16(),
        &refused.body,
    );
    let refresh = pair.json()["data"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = post(
        "/auth/openApi/v3/refreshToken",
        json_h,
        json!({"refreshToken": refresh}).to_string(),
    )
    .await;
    spec.check(
        "/auth/openApi/v3/refreshToken",
        "post",
        rotated.status.as_u16(),
        &rotated.body,
    );
    let reused = post(
        "/auth/openApi/v3/refreshToken",
        json_h,
        json!({"refreshToken": refresh}).to_string(),
    )
    .await;
    spec.check(
        "/auth/openApi/v3/refreshToken",
        "post",
        reused.status.as_u16(),
        &reused.body,
    );

    // feishu: internal, ticket-based, and a refusal.
    let internal = post(
        "/open-apis/auth/v3/app_access_token/internal",
        json_h,
        json!({"app_id": "cli_a", "app_secret": "fs-secret"}).to_string(),
    )
    .await;
    spec.check(
        "/open-apis/auth/v3/app_access_token/internal",
        "post",
        internal.status.as_u16(),
        &internal.body,
    );
    let wrong = post(
        "/open-apis/auth/v3/app_access_token/internal",
        json_h,
        json!({"app_id": "cli_a", "app_secret": "no"}).to_string(),
    )
    .await;
    spec.check(
        "/open-apis/auth/v3/app_access_token/internal",
        "post",
        wrong.status.as_u16(),
        &wrong.body,
    );
    let admin_base = format!("http://{}", gw.admin.unwrap());
    let public_base = gw.url("");
    let public_base = public_base.trim_end_matches('/');
    support::feishu_app_token(&c, public_base, &admin_base, "cli_a", "fs-secret").await;
    let ticket = c
        .send(
            "GET",
            &gw.admin_url("/admin/apps/cli_a/app_ticket"),
            &[],
            "",
        )
        .await
        .json()["app_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_ticket = post(
        "/open-apis/auth/v3/app_access_token",
        json_h,
        json!({"app_id": "cli_a", "app_secret": "fs-secret", "app_ticket": ticket}).to_string(),
    )
    .await;
    spec.check(
        "/open-apis/auth/v3/app_access_token",
        "post",
        with_ticket.status.as_u16(),
        &with_ticket.body,
    );

    // bkflow: a token and a refusal.
    let bk = post("/bkflow/space/3/apply_token/", json_h, json!({"bk_app_code": "coupang", "bk_app_secret": support::SECRET, "resource_type": "TEMPLATE", "resource_id": "42", "permission_type": "VIEW"}).to_string()).await;
    spec.check(
        "/bkflow/space/{space_id}/apply_token/",
        "post",
        bk.status.as_u16(),
        &bk.body,
    );
    let bk_bad = post("/bkflow/space/3/apply_token/", json_h, json!({"bk_app_code": "coupang", "bk_app_secret": "no", "resource_type": "TEMPLATE", "resource_id": "42", "permission_type": "VIEW"}).to_string()).await;
    spec.check(
        "/bkflow/space/{space_id}/apply_token/",
        "post",
        bk_bad.status.as_u16(),
        &bk_bad.body,
    );

    // Keys and metadata.
    for p in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = gw.get(p, &[]).await;
        spec.check(p, "get", r.status.as_u16(), &r.body);
    }

    // The admin listener.
    for p in ["/healthz", "/readyz", "/metrics"] {
        let r = c.send("GET", &gw.admin_url(p), &[], "").await;
        spec.check(p, "get", r.status.as_u16(), &r.body);
    }
    let admin_post = |p: &str, h: &[(&str, &str)], b: &str| {
        let url = gw.admin_url(p);
        let h: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let b = b.to_owned();
        async move {
            let hr: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            TestClient::plain().send("POST", &url, &hr, &b).await
        }
    };
    let active = admin_post("/admin/introspect", &form, &format!("token={jwt}")).await;
    spec.check(
        "/admin/introspect",
        "post",
        active.status.as_u16(),
        &active.body,
    );
    let inactive = admin_post("/admin/introspect", &form, "token=nope").await;
    spec.check(
        "/admin/introspect",
        "post",
        inactive.status.as_u16(),
        &inactive.body,
    );
    let explained = admin_post(
        "/admin/explain",
        json_h,
        &json!({"path": "/p", "token": jwt}).to_string(),
    )
    .await;
    spec.check(
        "/admin/explain",
        "post",
        explained.status.as_u16(),
        &explained.body,
    );
    let unexplained = admin_post("/admin/explain", json_h, "{}").await;
    spec.check(
        "/admin/explain",
        "post",
        unexplained.status.as_u16(),
        &unexplained.body,
    );
    let rotated = admin_post("/admin/keys/rotate", json_h, "").await;
    spec.check(
        "/admin/keys/rotate",
        "post",
        rotated.status.as_u16(),
        &rotated.body,
    );
    let revoked = admin_post(
        "/admin/tokens/revoke",
        json_h,
        &json!({"token": jwt}).to_string(),
    )
    .await;
    spec.check(
        "/admin/tokens/revoke",
        "post",
        revoked.status.as_u16(),
        &revoked.body,
    );
    let no_token = admin_post("/admin/tokens/revoke", json_h, "{}").await;
    spec.check(
        "/admin/tokens/revoke",
        "post",
        no_token.status.as_u16(),
        &no_token.body,
    );
    let rfc_revoke = post(
        "/oauth/revoke",
        form_h,
        format!(
            "token={jwt}&client_id=coupang&client_secret={}",
            support::SECRET
        ),
    )
    .await;
    spec.check(
        "/oauth/revoke",
        "post",
        rfc_revoke.status.as_u16(),
        &rfc_revoke.body,
    );

    let missing: Vec<_> = spec.operations().difference(&spec.seen).cloned().collect();
    assert!(
        missing.is_empty(),
        "documented but not exercised: {missing:?}"
    );
}
