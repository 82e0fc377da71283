//! Introspection and revocation for every dialect (RFC 7662 / 7009), the public `/oauth/revoke`
//! and the RFC 8414 metadata, over real sockets.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{Gateway, TestClient, Upstream};

fn yaml(up: &Upstream) -> String {
    format!(
        r#"apps:
  - id: coupang
    secret: coupangTest
    oauth_scopes: [bailunApi]
    corp_id: CORP1
    scope: platform
    space_id: 3
    user: admin
    grants: [ {{ resource: TEMPLATE, id: "*", permission: EDIT }} ]
  - {{ id: other, secret: otherSecret, oauth_scopes: [bailunApi] }}
signing: {{ issuer: "https://gw.test" }}
dialects: {{ oauth: {{}}, hosecloud: {{}}, feishu: {{}}, bkflow: {{}} }}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: /any, upstream: api }}
"#,
        up.url()
    )
}

async fn admin_form(gw: &Gateway, path: &str, body: &str) -> Value {
    TestClient::plain()
        .send(
            "POST",
            &gw.admin_url(path),
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
        .json()
}

async fn oauth(gw: &Gateway, app: &str, secret: &str) -> String {
    let r = gw
        .post(
            "/oauth/token/get",
            &[],
            &json!({ "app_id": app, "app_secret": secret }).to_string(),
        )
        .await
        .json();
    r["accessToken"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned()
}

#[tokio::test]
async fn every_dialect_is_introspected_and_revoked() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    let jwt = oauth(&gw, "coupang", "coupangTest").await;
    let hose = gw
        .post(
            "/auth/openApi/v3/getAccessToken",
            &[],
            r#"{"appKey":"coupang","appSecurity":"coupangTest"}"#,
        )
        .await
        .json()["data"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let bk = gw
        .post(
            "/bkflow/space/3/apply_token/",
            &[],
            r#"{"bk_app_code":"coupang","bk_app_secret":"coupangTest","resource_type":"TEMPLATE","resource_id":"t1","permission_type":"VIEW"}"#,
        )
        .await
        .json()["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = gw.admin_url("");
    let fs =
        support::feishu_app_token(&gw.client, &gw.url(""), &admin, "coupang", "coupangTest").await;
    let cases: [(&str, &str, Value); 4] = [
        (
            "oauth",
            &jwt,
            json!({ "scope": "bailunApi", "iss": "https://gw.test" }),
        ),
        (
            "hosecloud",
            &hose,
            json!({ "corp_id": "CORP1", "level": "platform" }),
        ),
        (
            "bkflow",
            &bk,
            json!({ "space_id": 3, "user": "admin", "resource_type": "TEMPLATE", "resource_id": "t1", "permission_type": "VIEW" }),
        ),
        ("feishu", &fs, json!({ "app_id": "coupang" })),
    ];
    for (dialect, token, fields) in &cases {
        let v = admin_form(&gw, "/admin/introspect", &format!("token={token}")).await;
        assert_eq!(v["active"], true, "{dialect}: {v}");
        assert_eq!(v["dialect"], *dialect);
        assert_eq!(v["client_id"], "coupang");
        assert_eq!(v["token_type"], "Bearer");
        assert!(v["exp"].as_u64().is_some(), "{v}");
        for (k, want) in fields.as_object().unwrap() {
            assert_eq!(&v[k], want, "{dialect}.{k}: {v}");
        }
        // Revoked through the RFC 7009 form body: inactive, and refused by the guard.
        let r = admin_form(&gw, "/admin/tokens/revoke", &format!("token={token}")).await;
        assert_eq!(r["revoked"], true, "{dialect}");
        let v = admin_form(&gw, "/admin/introspect", &format!("token={token}")).await;
        assert_eq!(v, json!({ "active": false }), "{dialect}");
        let call = gw
            .get("/any", &[("authorization", &format!("Bearer {token}"))])
            .await;
        assert_eq!(call.status, 401, "{dialect}");
    }
    assert_eq!(
        admin_form(&gw, "/admin/introspect", "token=garbage").await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn an_app_revokes_its_own_tokens_and_only_those() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    let mine = oauth(&gw, "coupang", "coupangTest").await;
    let theirs = oauth(&gw, "other", "otherSecret").await;
    let basic = |id: &str, secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let revoke = |token: String, auth: String| {
        let (client, url) = (gw.client.clone(), gw.url("/oauth/revoke"));
        async move {
            client
                .send(
                    "POST",
                    &url,
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("authorization", &auth),
                    ],
                    &format!("token={token}"),
                )
                .await
        }
    };
    let status = |t: String| {
        let gw = &gw;
        async move {
            gw.get("/any", &[("authorization", &format!("Bearer {t}"))])
                .await
                .status
        }
    };
    // Another app's token: 200, and it stays valid.
    let r = revoke(theirs.clone(), basic("coupang", "coupangTest")).await;
    assert_eq!(r.status, 200);
    assert_eq!(status(theirs.clone()).await, 200);
    // Bad credentials: 401.
    assert_eq!(
        revoke(mine.clone(), basic("coupang", "wrong")).await.status,
        401
    );
    assert_eq!(status(mine.clone()).await, 200);
    // Its own: revoked.
    assert_eq!(
        revoke(mine.clone(), basic("coupang", "coupangTest"))
            .await
            .status,
        200
    );
    assert_eq!(status(mine).await, 401);
    // An unknown token: 200 all the same.
    assert_eq!(
        revoke("nonsense".into(), basic("other", "otherSecret"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_authorization_server_metadata_says_where_things_are() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    let v = gw
        .get("/.well-known/oauth-authorization-server", &[])
        .await
        .json();
    assert_eq!(v["issuer"], "https://gw.test");
    assert_eq!(v["token_endpoint"], "https://gw.test/oauth/token");
    assert_eq!(v["jwks_uri"], "https://gw.test/.well-known/jwks.json");
    assert_eq!(v["revocation_endpoint"], "https://gw.test/oauth/revoke");
    assert_eq!(v["grant_types_supported"], json!(["client_credentials"]));
    assert!(v["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_secret_basic")));
}
