//! Two gateway processes on one real Redis: tokens issued by one work on the other,
//! revocations reach the other within a second, refresh tokens are spent once, and while
//! Redis is down hot tokens keep working, unknown ones get 503, and service comes back.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::bin::{write, Proc};
use support::eventually;
use support::redis::RedisServer;
use support::{TestClient, Upstream};

fn config(dir: &std::path::Path, redis: &RedisServer, up: &Upstream) -> String {
    let body = r#"signing: { issuer: https://gw.test, key_file: {d}/jwt.pem }
apps:
  - { id: app, secret: app-secret, space_id: 3, user: admin, grants: [{ resource: TEMPLATE, id: "*", permission: MOCK }] }
dialects: { oauth: {}, hosecloud: {}, bkflow: { prefix: "" } }
"#;
    support::redis::replica_config(dir, redis, &up.url(), "", body)
}

async fn post(c: &TestClient, url: String, body: Value) -> support::Resp {
    c.post_json(&url, &[], &body.to_string()).await
}

async fn call(c: &TestClient, gw: &Proc, token: &str) -> support::Resp {
    c.send(
        "GET",
        &format!("http://{}/api/x", gw.addr),
        &[("authorization", &format!("Bearer {token}"))],
        "",
    )
    .await
}

async fn bk_token(c: &TestClient, gw: &Proc, id: &str) -> String {
    let body = json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": id, "permission_type": "VIEW"});
    let r = post(c, format!("http://{}/space/3/apply_token/", gw.addr), body)
        .await
        .json();
    r["data"]["token"]
        .as_str()
        .unwrap_or_else(|| {
            let logs: Vec<String> = gw.lines.try_iter().collect();
            panic!("{r}\n{}", logs.join("\n"))
        })
        .to_owned()
}

#[tokio::test]
async fn two_replicas_act_as_one_and_survive_a_redis_outage() {
    let mut redis = RedisServer::start();
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("master.key"), hex_key()).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    std::fs::write(dir.path().join("jwt.pem"), key.serialize_pem()).unwrap();
    let yaml = config(dir.path(), &redis, &up).replace(
        "issuer: https://gw.test,",
        "issuer: https://gw.test, algorithm: ES256,",
    );
    let path = write(dir.path(), "gw.yaml", &yaml);
    let a = Proc::start(&path);
    let b = Proc::start(&path);
    let c = TestClient::plain();

    // Issued on A, accepted by B at once (B reads the shared stream on an unknown token).
    let bk = bk_token(&c, &a, "1").await;
    assert_eq!(
        call(&c, &b, &bk).await.status,
        200,
        "bkflow token from A on B"
    );
    let oauth = post(
        &c,
        format!("http://{}/oauth/token/get", a.addr),
        json!({"app_id": "app", "app_secret": "app-secret"}),
    )
    .await
    .json();
    let jwt = oauth["accessToken"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    assert_eq!(call(&c, &b, &jwt).await.status, 200, "JWT from A on B");
    // The same apply on B returns A's token.
    assert_eq!(bk_token(&c, &b, "1").await, bk);

    // Revoked on one replica: refused by the other within a second, though it holds it hot.
    for (on, other, token) in [(&a, &b, &bk), (&b, &a, &jwt)] {
        assert_eq!(revoke(&c, on, token).await["revoked"], true);
        let refused = eventually(Duration::from_secs(1), || async {
            call(&c, other, token).await.status == 401
        });
        assert!(refused.await, "the revocation reached the other replica");
    }

    // A hosecloud refresh token is spent once across replicas.
    let h = post(
        &c,
        format!("http://{}/auth/openApi/v3/getAccessToken", a.addr),
        json!({"appKey": "app", "appSecurity": "app-secret"}),
    )
    .await
    .json();
    let pair =
        json!({"accessToken": h["data"]["accessToken"], "refreshToken": h["data"]["refreshToken"]});
    let first = post(
        &c,
        format!("http://{}/auth/openApi/v3/refreshToken", b.addr),
        pair.clone(),
    )
    .await
    .json();
    assert_eq!(first["code"], "200", "{first}");
    let second = post(
        &c,
        format!("http://{}/auth/openApi/v3/refreshToken", a.addr),
        pair,
    )
    .await
    .json();
    assert_eq!(second["code"], "403", "{second}");

    // A stream trimmed outside tollgate (no snapshot covers what went) is a hole in the log:
    // a new replica refuses to start on it rather than miss what was there. (The running
    // ones read everything first: an entry trimmed before they read it is a hole for them too.)
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let trimmed = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "XTRIM",
            "tollgate:ops",
            "MAXLEN",
            "0",
        ])
        .output()
        .unwrap();
    assert!(trimmed.status.success());
    let refused = support::bin::start_refused(&path);
    assert!(refused.contains("log gap"), "{refused}");

    // Redis goes away: hot tokens keep working, unknown ones are refused with 503.
    let hot = bk_token(&c, &a, "2").await;
    let r = call(&c, &b, &hot).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // B is paused while "3" is issued and Redis goes, so it cannot have read "3" first.
    b.signal("STOP");
    let cold = bk_token(&c, &a, "3").await;
    redis.stop();
    b.signal("CONT");
    assert_eq!(
        call(&c, &b, &hot).await.status,
        200,
        "a hot token survives the outage"
    );
    let refused = call(&c, &b, &cold).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), "1");
    let ready = c
        .send(
            "GET",
            &format!("http://{}/readyz", b.admin.unwrap()),
            &[],
            "",
        )
        .await;
    assert_eq!(ready.status, 503);
    let metrics = c
        .send(
            "GET",
            &format!("http://{}/metrics", b.admin.unwrap()),
            &[],
            "",
        )
        .await
        .body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tollgate_store_unavailable_total") && !l.ends_with(" 0")),
        "counted"
    );
    let body = json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": "4", "permission_type": "VIEW"});
    assert_eq!(
        post(&c, format!("http://{}/space/3/apply_token/", a.addr), body)
            .await
            .status,
        503,
        "issuance refused, not half-written"
    );

    // Redis returns (empty: persistence is off): service recovers by itself.
    redis.restart();
    let back = eventually(Duration::from_secs(10), || async {
        c.send(
            "GET",
            &format!("http://{}/readyz", b.admin.unwrap()),
            &[],
            "",
        )
        .await
        .status
            == 200
    })
    .await;
    assert!(back, "B is ready again");
    let a_back = eventually(Duration::from_secs(10), || async {
        c.send(
            "GET",
            &format!("http://{}/readyz", a.admin.unwrap()),
            &[],
            "",
        )
        .await
        .status
            == 200
    })
    .await;
    assert!(a_back, "A is ready again");
    // B missed what the empty Redis lost ("3"): a hole it reports until A, which holds it,
    // writes the snapshot B asks for.
    let fresh = bk_token(&c, &a, "5").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            call(&c, &b, &fresh).await.status == 200
        })
        .await
    );
}

fn hex_key() -> String {
    "7f".repeat(32)
}

async fn revoke(c: &TestClient, gw: &Proc, token: &str) -> Value {
    let url = format!("http://{}/admin/tokens/revoke", gw.admin.unwrap());
    c.send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        &json!({ "token": token }).to_string(),
    )
    .await
    .json()
}
