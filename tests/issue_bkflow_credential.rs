//! BKFlow credentials (seed 004, DIALECTS §5 and §9 items 17-18): create, validation, masking,
//! encryption, the admin API, and `upstream_credential` on routes, over real sockets.

mod support;

use serde_json::{json, Value};
use support::{Gateway, Resp, TestClient, Upstream};

const SEED_REQUEST: &str = include_str!("fixtures/seeds/004_create_credential.request.json");

async fn gw() -> (Gateway, Upstream) {
    let up = Upstream::echo().await;
    let yaml = format!(
        r#"apps:
  - {{ id: xxxx, secret: xxxx, space_id: 1 }}
  - {{ id: two, secret: two-secret, space_id: 2 }}
dialects:
  bkflow: {{ prefix: "" }}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: /with-credential, upstream: api, auth: none, upstream_credential: {{ space: 1, name: 测试凭证 }} }}
  - {{ path: /missing-credential, upstream: api, auth: none, upstream_credential: {{ space: 1, name: ghost }} }}
"#,
        up.url()
    );
    (Gateway::start(&yaml).await, up)
}

async fn create(gw: &Gateway, space: u64, body: &str) -> Resp {
    gw.client
        .send(
            "POST",
            &gw.url(&format!("/space/{space}/create_credential/")),
            &[("content-type", "application/json")],
            body,
        )
        .await
}

fn with(fields: Value) -> String {
    let mut b = json!({ "bk_app_code": "xxxx", "bk_app_secret": "xxxx", "name": "n", "type": "BK_APP",
                        "content": { "bk_app_code": "test_app", "bk_app_secret": "real-secret" } });
    for (k, v) in fields.as_object().unwrap() {
        b[k] = v.clone();
    }
    b.to_string()
}

#[tokio::test]
async fn the_seed_request_is_stored_masked_and_sent_upstream_for_routes_that_name_it() {
    let (gw, _up) = gw().await;
    let r = create(&gw, 1, SEED_REQUEST).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["result"], true);
    assert_eq!(v["code"], 0);
    assert_eq!(v["message"], "");
    let d = &v["data"];
    assert!(d["id"].is_u64());
    assert_eq!(d["space_id"], 1);
    assert_eq!(d["name"], "测试凭证");
    assert_eq!(d["desc"], "这是一个测试凭证");
    assert_eq!(d["type"], "BK_APP");
    assert_eq!(
        d["content"],
        json!({ "bk_app_code": "test_app", "bk_app_secret": "*********" })
    );
    assert!(!r.body.contains("test_secret"));

    // The route sends the real secret upstream, replacing what the client sent.
    let seen = gw
        .get(
            "/with-credential",
            &[("x-bkapi-authorization", r#"{"bk_app_code":"forged"}"#)],
        )
        .await
        .json();
    let sent: Value =
        serde_json::from_str(seen["headers"]["x-bkapi-authorization"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({ "bk_app_code": "test_app", "bk_app_secret": "test_secret" })
    );
    let missing = gw.get("/missing-credential", &[]).await;
    assert_eq!(missing.status, 502);
    assert!(missing.json()["errMsg"].as_str().unwrap().contains("ghost"));

    // The admin API lists, reads, updates and deletes it, always masked.
    let admin = TestClient::plain();
    let id = d["id"].as_u64().unwrap();
    let list = admin
        .send("GET", &gw.admin_url("/admin/spaces/1/credentials"), &[], "")
        .await
        .json();
    assert_eq!(
        list["credentials"][0]["content"]["bk_app_secret"],
        "*********"
    );
    let one = admin
        .send(
            "GET",
            &gw.admin_url(&format!("/admin/spaces/1/credentials/{id}")),
            &[],
            "",
        )
        .await;
    assert_eq!(one.json()["name"], "测试凭证");
    assert_eq!(
        admin
            .send(
                "GET",
                &gw.admin_url(&format!("/admin/spaces/2/credentials/{id}")),
                &[],
                ""
            )
            .await
            .status,
        404
    );
    let update = json!({ "name": "测试凭证", "desc": "rotated", "type": "BK_APP", "content": { "bk_app_code": "test_app", "bk_app_secret": "new_secret" } });
    let put = admin
        .send(
            "PUT",
            &gw.admin_url(&format!("/admin/spaces/1/credentials/{id}")),
            &[("content-type", "application/json")],
            &update.to_string(),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["desc"], "rotated");
    assert!(!put.body.contains("new_secret"));
    let seen = gw.get("/with-credential", &[]).await.json();
    assert!(seen["headers"]["x-bkapi-authorization"]
        .as_str()
        .unwrap()
        .contains("new_secret"));
    let del = admin
        .send(
            "DELETE",
            &gw.admin_url(&format!("/admin/spaces/1/credentials/{id}")),
            &[],
            "",
        )
        .await;
    assert_eq!(del.status, 204);
    assert_eq!(gw.get("/with-credential", &[]).await.status, 502);
    let metrics = admin
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    assert!(!metrics.contains("test_secret") && !metrics.contains("new_secret"));
}

#[tokio::test]
async fn invalid_credentials_are_refused_with_readable_messages() {
    let (gw, _up) = gw().await;
    let stars = create(
        &gw,
        1,
        &with(json!({ "content": { "bk_app_code": "a", "bk_app_secret": "****" } })),
    )
    .await
    .json();
    assert_eq!(stars["result"], false);
    assert!(stars["message"].as_str().unwrap().contains("bk_app_secret"));
    let long = create(&gw, 1, &with(json!({ "name": "x".repeat(33) })))
        .await
        .json();
    assert_eq!(long["code"], 400);
    assert!(long["message"].as_str().unwrap().starts_with("{\"name\": "));
    assert_eq!(
        create(&gw, 1, &with(json!({ "desc": "d".repeat(33) })))
            .await
            .json()["code"],
        400
    );
    let kind = create(&gw, 1, &with(json!({ "type": "BASIC_AUTH" })))
        .await
        .json();
    assert_eq!(
        (kind["result"].clone(), kind["code"].clone()),
        (json!(false), json!(500))
    );
    assert_eq!(
        create(&gw, 1, &with(json!({ "name": "dup" }))).await.json()["result"],
        true
    );
    let dup = create(&gw, 1, &with(json!({ "name": "dup" }))).await.json();
    assert_eq!(dup["result"], false);
    assert_eq!(dup["code"], 500);
    assert_eq!(
        dup["message"], "凭证名称已存在: name=dup",
        "readable, not a raw database error"
    );
    let other_space =
        with(json!({ "name": "dup", "bk_app_code": "two", "bk_app_secret": "two-secret" }));
    assert_eq!(
        create(&gw, 2, &other_space).await.json()["result"],
        true,
        "the same name in another space"
    );
    assert_eq!(
        create(&gw, 2, &with(json!({ "name": "z" }))).await.status,
        403,
        "xxxx does not own space 2"
    );
}
