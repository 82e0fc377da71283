//! Issue 15: `openapi.yaml` describes every endpoint tollgate serves itself. Real requests
//! to each (successes and refusals) are validated against the document's schema for their
//! path, method and status, and every operation in the document is exercised.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::{Gateway, Resp, TestClient, Upstream};

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

    /// Sends `method url` (`content-type: ct` when a body is given), checks the answer against
    /// the documented `path`, and returns it.
    async fn send(&mut self, method: &str, url: &str, path: &str, ct: &str, body: &str) -> Resp {
        let h = [("content-type", ct)];
        let h: &[(&str, &str)] = if ct.is_empty() { &[] } else { &h };
        let r = TestClient::plain().send(method, url, h, body).await;
        let m = method.to_ascii_lowercase();
        self.check(path, &m, r.status.as_u16(), &r.body);
        r
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

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn every_endpoint_answers_as_openapi_yaml_says() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up.url())).await;
    let mut spec = Spec::load();
    let secret = support::SECRET;
    let public = |p: &str| gw.url(p);
    let admin = |p: &str| gw.admin_url(p);
    let j = |v: Value| v.to_string();

    // oauth, both envelopes, successes and refusals.
    let p = "/oauth/token/get";
    let ok = spec
        .send(
            "POST",
            &public(p),
            p,
            JSON,
            &j(json!({"app_id": "coupang", "app_secret": secret})),
        )
        .await;
    let jwt = ok.json()["accessToken"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    spec.send(
        "POST",
        &public(p),
        p,
        JSON,
        &j(json!({"app_id": "coupang", "app_secret": "no"})),
    )
    .await;
    spec.send("POST", &public(p), p, JSON, "{}").await;
    let p = "/oauth/token";
    for body in [
        format!("grant_type=client_credentials&client_id=coupang&client_secret={secret}"),
        "grant_type=client_credentials&client_id=coupang&client_secret=no".into(),
        "grant_type=password".into(),
    ] {
        spec.send("POST", &public(p), p, FORM, &body).await;
    }

    // hosecloud: a pair, a refusal, a rotation and a reused refresh token.
    let p = "/auth/openApi/v3/getAccessToken";
    let pair = spec
        .send(
            "POST",
            &public(p),
            p,
            JSON,
            &j(json!({"appKey": "coupang", "appSecurity": secret})),
        )
        .await;
    spec.send(
        "POST",
        &public(p),
        p,
        JSON,
        &j(json!({"appKey": "coupang", "appSecurity": "no"})),
    )
    .await;
    let refresh = j(json!({"refreshToken": pair.json()["data"]["refreshToken"]}));
    let p = "/auth/openApi/v3/refreshToken";
    spec.send("POST", &public(p), p, JSON, &refresh).await;
    spec.send("POST", &public(p), p, JSON, &refresh).await;

    // feishu: internal, a refusal, and with the app's current ticket.
    let p = "/open-apis/auth/v3/app_access_token/internal";
    spec.send(
        "POST",
        &public(p),
        p,
        JSON,
        &j(json!({"app_id": "cli_a", "app_secret": "fs-secret"})),
    )
    .await;
    spec.send(
        "POST",
        &public(p),
        p,
        JSON,
        &j(json!({"app_id": "cli_a", "app_secret": "no"})),
    )
    .await;
    let ticket = TestClient::plain()
        .send("GET", &admin("/admin/apps/cli_a/app_ticket"), &[], "")
        .await
        .json()["app_ticket"]
        .clone();
    let p = "/open-apis/auth/v3/app_access_token";
    let t = spec
        .send(
            "POST",
            &public(p),
            p,
            JSON,
            &j(json!({"app_id": "cli_a", "app_secret": "fs-secret", "app_ticket": ticket})),
        )
        .await;
    assert_eq!(t.json()["code"], 0, "{}", t.body);

    // bkflow: a token and a refusal.
    let (p, url) = (
        "/bkflow/space/{space_id}/apply_token/",
        public("/bkflow/space/3/apply_token/"),
    );
    for s in [secret, "no"] {
        let body = json!({"bk_app_code": "coupang", "bk_app_secret": s, "resource_type": "TEMPLATE", "resource_id": "42", "permission_type": "VIEW"});
        spec.send("POST", &url, p, JSON, &j(body)).await;
    }

    // Keys and metadata; the admin listener.
    for p in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        spec.send("GET", &public(p), p, "", "").await;
    }
    for p in ["/healthz", "/readyz", "/metrics"] {
        spec.send("GET", &admin(p), p, "", "").await;
    }
    let p = "/admin/introspect";
    spec.send("POST", &admin(p), p, FORM, &format!("token={jwt}"))
        .await;
    spec.send("POST", &admin(p), p, FORM, "token=nope").await;
    let p = "/admin/explain";
    spec.send(
        "POST",
        &admin(p),
        p,
        JSON,
        &j(json!({"path": "/p", "token": jwt})),
    )
    .await;
    spec.send("POST", &admin(p), p, JSON, "{}").await;
    let p = "/admin/keys/rotate";
    spec.send("POST", &admin(p), p, JSON, "").await;
    let p = "/admin/tokens/revoke";
    spec.send("POST", &admin(p), p, JSON, &j(json!({"token": jwt})))
        .await;
    spec.send("POST", &admin(p), p, JSON, "{}").await;
    let p = "/oauth/revoke";
    let body = format!("token={jwt}&client_id=coupang&client_secret={secret}");
    spec.send("POST", &public(p), p, FORM, &body).await;

    let missing: Vec<_> = spec.operations().difference(&spec.seen).cloned().collect();
    assert!(
        missing.is_empty(),
        "documented but not exercised: {missing:?}"
    );
}
