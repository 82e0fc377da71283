//! One refusal path: an issuing endpoint's refusal keeps its dialect's envelope (often HTTP
//! 200) and still reaches the access log's reason and the decision metric.

mod support;

use support::{Gateway, TestClient, Upstream};

#[tokio::test]
async fn dialect_refusals_are_counted_as_decisions() {
    let up = Upstream::echo().await;
    let yaml = format!(
        "apps:\n  - {{ id: cli_a, secret: right }}\ndialects:\n  feishu: {{}}\n  hosecloud: {{}}\nupstreams:\n  api: {{ targets: [\"{}\"] }}\n",
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    let post = |path: &str, body: &str| {
        let (client, url, body) = (gw.client.clone(), gw.url(path), body.to_owned());
        async move {
            client
                .send("POST", &url, &[("content-type", "application/json")], &body)
                .await
        }
    };
    let r = post(
        "/open-apis/auth/v3/app_access_token",
        r#"{"app_id":"cli_a","app_secret":"wrong","app_ticket":"t"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "feishu answers on HTTP 200");
    assert_eq!(r.json()["code"], 10014);
    let r = post(
        "/auth/openApi/v3/getAccessToken",
        r#"{"appKey":"cli_a","appSecurity":"wrong"}"#,
    )
    .await;
    assert_eq!(r.json()["code"], "403");
    let m = TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    for (route, dialect) in [
        ("/open-apis/auth/v3/app_access_token", "feishu"),
        ("/auth/openApi/v3/getAccessToken", "hosecloud"),
    ] {
        let line = format!(
            r#"tollgate_auth_decisions_total{{decision="invalid",dialect="{dialect}",mode="enforce",route="{route}"}} 1"#
        );
        assert!(m.contains(&line), "{line}\n{m}");
    }
}
