//! The admin listener: metrics, health, revocation, introspection, admin token.

mod support;

use support::{app_yaml, Gateway, TestClient, Upstream};

async fn gateway(extra: &str) -> (Gateway, Upstream) {
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}upstreams:\n  product: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /product/get, upstream: product }}\n{extra}",
        app_yaml(),
        up.url()
    );
    (Gateway::start(&yaml).await, up)
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_never_carry_tokens() {
    let (gw, _up) = gateway("").await;
    let token = gw.token().await;
    assert_eq!(
        gw.get("/product/get?id=1", &[("authorization", &token)])
            .await
            .status,
        200
    );
    assert_eq!(
        gw.get("/product/get?id=2", &[("authorization", &token)])
            .await
            .status,
        200
    );
    assert_eq!(gw.get("/product/get?id=3", &[]).await.status, 401);
    assert_eq!(
        gw.get("/product/get?id=4", &[("authorization", "Bearer junk")])
            .await
            .status,
        401
    );
    assert_eq!(gw.get("/nowhere/secret-path", &[]).await.status, 404);
    let admin = TestClient::plain();
    let m = admin.send("GET", &gw.admin_url("/metrics"), &[], "").await;
    assert_eq!(m.status, 200);
    let text = m.body;
    for needle in [
        r#"tollgate_http_requests_total{method="GET",route="/product/get",status="200"} 2"#,
        r#"tollgate_http_requests_total{method="GET",route="/product/get",status="401"} 2"#,
        r#"tollgate_auth_decisions_total{decision="allowed",dialect="oauth",mode="enforce",route="/product/get"} 2"#,
        r#"tollgate_auth_decisions_total{decision="missing",dialect="none",mode="enforce",route="/product/get"} 1"#,
        r#"tollgate_auth_decisions_total{decision="invalid",dialect="none",mode="enforce",route="/product/get"} 1"#,
        r#"tollgate_tokens_issued_total{dialect="oauth"} 1"#,
        r#"tollgate_token_cache_hits_total 1"#,
        "tollgate_http_request_duration_seconds_bucket",
        "tollgate_upstream_request_duration_seconds_bucket{status=\"2xx\",upstream=\"product\"",
        "tollgate_connections_active",
        "tollgate_hot_tokens",
        "tollgate_tls_handshake_errors_total 0",
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    let jwt = token.strip_prefix("Bearer ").unwrap();
    assert!(!text.contains(&jwt[..20]) && !text.contains("secret-path") && !text.contains("junk"));
    assert_eq!(
        admin
            .send("GET", &gw.admin_url("/healthz"), &[], "")
            .await
            .status,
        200
    );
    assert_eq!(
        admin
            .send("GET", &gw.admin_url("/readyz"), &[], "")
            .await
            .json()["ready"],
        true
    );
    assert_eq!(
        gw.get("/metrics", &[]).await.status,
        404,
        "metrics are never on the public port"
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_even_when_hot() {
    let (gw, _up) = gateway("").await;
    let token = gw.token().await;
    assert_eq!(
        gw.get("/product/get", &[("authorization", &token)])
            .await
            .status,
        200
    );
    let admin = TestClient::plain();
    let intro = admin
        .send(
            "POST",
            &gw.admin_url("/admin/introspect"),
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("token={}", token.strip_prefix("Bearer ").unwrap()),
        )
        .await
        .json();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "coupang");
    assert_eq!(intro["dialect"], "oauth");
    assert_eq!(intro["scope"], "bailunApi");
    let body = serde_json::json!({ "token": token }).to_string();
    let r = admin
        .send(
            "POST",
            &gw.admin_url("/admin/tokens/revoke"),
            &[("content-type", "application/json")],
            &body,
        )
        .await;
    assert_eq!(r.json()["revoked"], true);
    let again = admin
        .send(
            "POST",
            &gw.admin_url("/admin/tokens/revoke"),
            &[("content-type", "application/json")],
            &body,
        )
        .await;
    assert_eq!(again.json()["revoked"], false, "already revoked");
    let refused = gw.get("/product/get", &[("authorization", &token)]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["errMsg"], "access token revoked");
    let intro = admin
        .send(
            "POST",
            &gw.admin_url("/admin/introspect"),
            &[("content-type", "application/x-www-form-urlencoded")],
            "token=garbage",
        )
        .await
        .json();
    assert_eq!(intro, serde_json::json!({ "active": false }));
    let other = gw.token().await;
    assert_eq!(
        gw.get("/product/get", &[("authorization", &other)])
            .await
            .status,
        200,
        "other tokens unaffected"
    );
}

#[tokio::test]
async fn the_admin_api_requires_its_token_when_configured() {
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}upstreams:\n  product: {{ targets: [\"{}\"] }}\n",
        app_yaml(),
        up.url()
    );
    let gw = Gateway::with(&yaml)
        .admin_token("s3cret-admin")
        .start()
        .await;
    let admin = TestClient::plain();
    let body = r#"{"token":"x"}"#;
    let url = gw.admin_url("/admin/tokens/revoke");
    let none = admin
        .send("POST", &url, &[("content-type", "application/json")], body)
        .await;
    assert_eq!(none.status, 401);
    assert_eq!(
        admin
            .send(
                "POST",
                &url,
                &[
                    ("authorization", "Bearer wrong"),
                    ("content-type", "application/json")
                ],
                body,
            )
            .await
            .status,
        401
    );
    let ok = admin
        .send(
            "POST",
            &url,
            &[
                ("authorization", "Bearer s3cret-admin"),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["revoked"], false);
    assert_eq!(
        admin
            .send("GET", &gw.admin_url("/metrics"), &[], "")
            .await
            .status,
        200,
        "metrics stay open to scrapers"
    );
}
