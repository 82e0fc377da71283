//! The embedded store over real processes: a restart (clean or `kill -9`) keeps every token
//! of every dialect, every revocation, the feishu overlap state and the credentials; the
//! store file never holds a credential secret in clear.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::bin::{write, Proc};
use support::{TestClient, Upstream};

fn config(dir: &std::path::Path, up: &Upstream) -> String {
    format!(
        r#"listen: {{ address: "127.0.0.1:0" }}
admin: {{ address: "127.0.0.1:0" }}
store: {{ path: {dir}/data/tollgate.db }}
signing: {{ issuer: https://gw.test }}
apps:
  - id: app
    secret: app-secret
    oauth_scopes: [read]
    space_id: 3
    user: admin
    grants: [{{ resource: TEMPLATE, id: "*", permission: MOCK }}]
dialects:
  oauth: {{}}
  hosecloud: {{}}
  feishu: {{}}
  bkflow: {{ prefix: /bkflow }}
upstreams:
  api: {{ targets: ["{up}"] }}
routes:
  - {{ path: /api/*rest, upstream: api }}
  - {{ path: /cred, upstream: api, auth: none, upstream_credential: {{ space: 3, name: prod }} }}
"#,
        dir = dir.display(),
        up = up.url()
    )
}

struct Tokens {
    oauth: String,
    revoked: String,
    hosecloud: String,
    refresh: String,
    bkflow: String,
    feishu: String,
    ticket: String,
}

async fn post(c: &TestClient, url: String, body: Value) -> Value {
    c.post_json(&url, &[], &body.to_string()).await.json()
}

async fn issue_everything(gw: &Proc, c: &TestClient) -> Tokens {
    let base = format!("http://{}", gw.addr);
    let admin = format!("http://{}", gw.admin.unwrap());
    let oauth = post(
        c,
        format!("{base}/oauth/token/get"),
        json!({"app_id": "app", "app_secret": "app-secret"}),
    )
    .await;
    let revoked = post(
        c,
        format!("{base}/oauth/token/get"),
        json!({"app_id": "app", "app_secret": "app-secret"}),
    )
    .await;
    let r = c
        .send(
            "POST",
            &format!("{admin}/admin/tokens/revoke"),
            &[("content-type", "application/json")],
            &json!({"token": revoked["accessToken"]}).to_string(),
        )
        .await;
    assert_eq!(r.json()["revoked"], true);
    let hose = post(
        c,
        format!("{base}/auth/openApi/v3/getAccessToken"),
        json!({"appKey": "app", "appSecurity": "app-secret"}),
    )
    .await;
    let bk = post(
        c,
        format!("{base}/bkflow/space/3/apply_token/"),
        json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": "1", "permission_type": "VIEW"}),
    )
    .await;
    let ticket = c
        .send(
            "GET",
            &format!("{admin}/admin/apps/app/app_ticket"),
            &[],
            "",
        )
        .await
        .json()["app_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let fs = post(
        c,
        format!("{base}/open-apis/auth/v3/app_access_token"),
        json!({"app_id": "app", "app_secret": "app-secret", "app_ticket": ticket}),
    )
    .await;
    let cred = post(
        c,
        format!("{base}/bkflow/space/3/create_credential/"),
        json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "name": "prod", "type": "BK_APP",
               "content": {"bk_app_code": "upstream-app", "bk_app_secret": "Sup3r-Secret-Value"}}),
    )
    .await;
    assert_eq!(cred["result"], true, "{cred}");
    Tokens {
        oauth: oauth["accessToken"].as_str().unwrap().to_owned(),
        revoked: revoked["accessToken"].as_str().unwrap().to_owned(),
        hosecloud: hose["data"]["accessToken"].as_str().unwrap().to_owned(),
        refresh: hose["data"]["refreshToken"].as_str().unwrap().to_owned(),
        bkflow: bk["data"]["token"].as_str().unwrap().to_owned(),
        feishu: fs["app_access_token"].as_str().unwrap().to_owned(),
        ticket,
    }
}

async fn status(c: &TestClient, gw: &Proc, auth: &str) -> u16 {
    c.send(
        "GET",
        &format!("http://{}/api/x", gw.addr),
        &[("authorization", auth)],
        "",
    )
    .await
    .status
    .as_u16()
}

async fn check_after_restart(gw: &Proc, c: &TestClient, t: &Tokens) {
    let base = format!("http://{}", gw.addr);
    assert_eq!(status(c, gw, &t.oauth).await, 200, "oauth JWT");
    assert_eq!(
        status(c, gw, &t.revoked).await,
        401,
        "a revoked token stays revoked"
    );
    assert_eq!(
        status(c, gw, &format!("Bearer {}", t.hosecloud)).await,
        200,
        "hosecloud JWT"
    );
    assert_eq!(
        status(c, gw, &format!("Bearer {}", t.bkflow)).await,
        200,
        "bkflow opaque token"
    );
    assert_eq!(
        status(c, gw, &format!("Bearer {}", t.feishu)).await,
        200,
        "feishu opaque token"
    );
    // Feishu's overlap state: asking again returns the same token.
    let again = post(
        c,
        format!("{base}/open-apis/auth/v3/app_access_token"),
        json!({"app_id": "app", "app_secret": "app-secret", "app_ticket": t.ticket}),
    )
    .await;
    assert_eq!(again["app_access_token"], t.feishu.as_str(), "{again}");
    // Bkflow: the same apply returns the same token.
    let bk = post(
        c,
        format!("{base}/bkflow/space/3/apply_token/"),
        json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": "1", "permission_type": "VIEW"}),
    )
    .await;
    assert_eq!(bk["data"]["token"], t.bkflow.as_str());
    // The credential is intact and still sent upstream.
    let seen = c.send("GET", &format!("{base}/cred"), &[], "").await.json();
    assert!(seen["headers"]["x-bkapi-authorization"]
        .as_str()
        .unwrap()
        .contains("Sup3r-Secret-Value"));
}

#[tokio::test]
async fn a_restart_loses_nothing_and_the_file_holds_no_secret_in_clear() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "gw.yaml", &config(dir.path(), &up));
    let c = TestClient::plain();
    let gw = Proc::start(&path);
    let t = issue_everything(&gw, &c).await;
    gw.signal("TERM");
    let (logs_tx, logs) = std::sync::mpsc::channel();
    while let Ok(line) = gw.lines.recv_timeout(Duration::from_secs(10)) {
        let stopped = line.contains("\"stopped\"");
        let _ = logs_tx.send(line);
        if stopped {
            break;
        }
    }
    drop(gw);
    let gw = Proc::start(&path);
    check_after_restart(&gw, &c, &t).await;
    // The refresh token survives too, and is still single use.
    let base = format!("http://{}", gw.addr);
    let body = json!({"accessToken": t.hosecloud, "refreshToken": t.refresh});
    assert_eq!(
        post(
            &c,
            format!("{base}/auth/openApi/v3/refreshToken"),
            body.clone()
        )
        .await["code"],
        "200"
    );
    assert_eq!(
        post(&c, format!("{base}/auth/openApi/v3/refreshToken"), body).await["code"],
        "403"
    );
    drop(gw);
    // Nor in any log line of either run (JSON logs on stderr).
    let mut logged = String::new();
    while let Ok(line) = logs.try_recv() {
        logged.push_str(&line);
    }
    assert!(logged.contains("credential created"), "the logs were read");
    assert!(
        !logged.contains("Sup3r-Secret-Value") && !logged.contains(&t.bkflow),
        "a secret in the logs"
    );
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("Sup3r-Secret-Value"),
            "a credential secret in clear on disk"
        );
        assert!(
            !text.contains(&t.bkflow) && !text.contains(&t.feishu) && !text.contains(&t.refresh),
            "an opaque token in clear on disk"
        );
        assert!(!text.contains(&t.ticket), "a ticket in clear on disk");
    }
}

#[tokio::test]
async fn a_token_answered_just_before_kill_9_works_after_restart() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "gw.yaml", &config(dir.path(), &up));
    let c = TestClient::plain();
    let mut gw = Proc::start(&path);
    let base = format!("http://{}", gw.addr);
    let bk = post(
        &c,
        format!("{base}/bkflow/space/3/apply_token/"),
        json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": "9", "permission_type": "EDIT"}),
    )
    .await;
    let token = bk["data"]["token"].as_str().unwrap().to_owned();
    gw.child.kill().unwrap(); // SIGKILL, no chance to flush anything
    gw.child.wait().unwrap();
    drop(gw);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gw = Proc::start(&path);
    assert_eq!(status(&c, &gw, &format!("Bearer {token}")).await, 200);
}
