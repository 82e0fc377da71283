//! Issue 28 (partly): whoever can write to Redis cannot bring back what was revoked or roll the
//! signing-key ring back by replaying authentic stream entries, and a renewal racing a
//! revocation on the embedded store never outlives a restart.

mod support;

use serde_json::{json, Value};
use support::bin::{bkflow_status, write, Proc};
use support::redis::RedisServer;
use support::{TestClient, Upstream};

fn replica_yaml(dir: &std::path::Path, redis: &RedisServer, up: &Upstream) -> String {
    let body = r#"signing: { issuer: https://gw.test, algorithm: ES256 }
apps:
  - { id: app, secret: app-secret, space_id: 3, user: admin, grants: [{ resource: TEMPLATE, id: "*", permission: MOCK }] }
dialects: { oauth: {}, bkflow: { prefix: "" } }
"#;
    support::redis::replica_config(dir, redis, &up.url(), "", body)
}

/// The replicas' config file, in a temp dir kept with it.
fn config(redis: &RedisServer, up: &Upstream) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "gw.yaml", &replica_yaml(dir.path(), redis, up));
    (dir, cfg)
}

/// Every stream entry: (id, ops JSON, mac), read with redis-cli.
fn stream(port: u16) -> Vec<(String, String, String)> {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "--raw",
            "XRANGE",
            "tollgate:ops",
            "-",
            "+",
        ])
        .output()
        .expect("redis-cli runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let mut i = 0;
    while i + 4 < lines.len() + 1 && i < lines.len() {
        // id, "ops", json, "mac", mac
        if lines.get(i + 1) == Some(&"ops") && lines.get(i + 3) == Some(&"mac") {
            entries.push((
                lines[i].to_owned(),
                lines[i + 2].to_owned(),
                lines[i + 4].to_owned(),
            ));
            i += 5;
        } else {
            i += 1;
        }
    }
    entries
}

/// Appends an entry as a writer to Redis would (what an attacker with Redis access can do).
fn replay(port: u16, ops: &str, mac: &str) {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "XADD",
            "tollgate:ops",
            "*",
            "ops",
            ops,
            "mac",
            mac,
        ])
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{out:?}");
}

async fn post(c: &TestClient, url: String, body: Value) -> Value {
    c.post_json(&url, &[], &body.to_string()).await.json()
}

fn rejected(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("tollgate_store_rejected_entries_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_replayed_token_entry_never_revives_a_revoked_token() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let (dir, cfg) = config(&redis, &up);
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    let _dir = dir;
    let apply = json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE",
                       "resource_id": "t1", "permission_type": "VIEW"});
    let t = post(
        &c,
        format!("http://{}/space/3/apply_token/", a.addr),
        apply.clone(),
    )
    .await;
    let token = t["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(bkflow_status(&c, &b, &token).await, 200);
    let issued: Vec<_> = stream(redis.port)
        .into_iter()
        .filter(|(_, ops, _)| ops.contains("\"Bk\""))
        .collect();
    assert_eq!(issued.len(), 1, "{issued:?}");
    let mut revoke = apply.clone();
    revoke["token"] = token.clone().into();
    let v = post(
        &c,
        format!("http://{}/space/3/revoke_token/", a.addr),
        revoke,
    )
    .await;
    assert_eq!(v["data"], "1 tokens revoke success", "{v}");
    // The attack: the token's own authentic entry appended again.
    let (_, ops, mac) = &issued[0];
    replay(redis.port, ops, mac);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    for p in [&a, &b] {
        assert_eq!(
            bkflow_status(&c, p, &token).await,
            401,
            "revoked stays revoked"
        );
    }
    let late = Proc::start(&cfg);
    assert_eq!(
        bkflow_status(&c, &late, &token).await,
        401,
        "also on a replica started afterwards"
    );
    // Introspection agrees.
    let i = c
        .send(
            "POST",
            &format!("http://{}/admin/introspect", late.admin.unwrap()),
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("token={token}"),
        )
        .await
        .json();
    assert_eq!(i["active"], false, "{i}");
}

#[tokio::test]
async fn a_replayed_key_ring_never_rolls_the_ring_back() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let (dir, cfg) = config(&redis, &up);
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    let _dir = dir;
    let rotate = |p: &Proc| {
        let (c, url) = (
            c.clone(),
            format!("http://{}/admin/keys/rotate", p.admin.unwrap()),
        );
        async move { c.send("POST", &url, &[], "").await.json() }
    };
    let first = rotate(&a).await;
    assert!(first["kid"].is_string(), "{first}");
    let rings: Vec<_> = stream(redis.port)
        .into_iter()
        .filter(|(_, ops, _)| ops.contains("\"Meta\""))
        .collect();
    assert_eq!(rings.len(), 1, "{rings:?}");
    let newest = rotate(&a).await["kid"].as_str().unwrap().to_owned();
    let kids = |p: &Proc| {
        let (c, url) = (
            c.clone(),
            format!("http://{}/.well-known/jwks.json", p.addr),
        );
        async move {
            let j = c.send("GET", &url, &[], "").await.json();
            j["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(
        support::eventually(std::time::Duration::from_secs(3), || async {
            kids(&b).await.contains(&newest)
        })
        .await
    );
    // The attack: the older ring's authentic entry appended again.
    let (_, ops, mac) = &rings[0];
    replay(redis.port, ops, mac);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    for p in [&a, &b] {
        assert!(kids(p).await.contains(&newest), "the ring did not go back");
        let m = c
            .send(
                "GET",
                &format!("http://{}/metrics", p.admin.unwrap()),
                &[],
                "",
            )
            .await
            .body;
        assert!(rejected(&m) >= 1, "the replay is counted");
    }
    // New tokens still verify on both.
    let body = json!({ "app_id": "app", "app_secret": "app-secret" });
    let t = post(&c, format!("http://{}/oauth/token/get", a.addr), body).await;
    let token = t["accessToken"].as_str().unwrap();
    let r = c
        .send(
            "GET",
            &format!("http://{}/api/x", b.addr),
            &[("authorization", token)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn renewals_racing_revocations_never_outlive_a_restart() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"listen: {{ address: "127.0.0.1:0" }}
admin: {{ address: "127.0.0.1:0" }}
store: {{ path: {d}/tollgate.db }}
apps:
  - {{ id: app, secret: app-secret, space_id: 3, user: admin, grants: [{{ resource: TEMPLATE, id: "*", permission: MOCK }}] }}
dialects: {{ bkflow: {{ prefix: "", auto_renew: true }} }}
limits: {{ token_rate: {{ per_app: 100000/s, per_app_burst: 100000 }} }}
upstreams:
  api: {{ targets: ["{up}"] }}
routes:
  - {{ path: /api/x, upstream: api }}
"#,
        d = dir.path().display(),
        up = up.url()
    );
    let cfg = write(dir.path(), "gw.yaml", &yaml);
    let c = TestClient::plain();
    let gw = Proc::start(&cfg);
    let base = format!("http://{}", gw.addr);
    let apply = |id: &str| {
        json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE",
               "resource_id": id, "permission_type": "VIEW"})
    };
    let mut revoked = Vec::new();
    for i in 0..200 {
        let id = format!("t{i}");
        let t = post(&c, format!("{base}/space/3/apply_token/"), apply(&id)).await;
        let token = t["data"]["token"].as_str().unwrap().to_owned();
        // A renewal (the same apply again) and the revocation at once.
        let mut revoke = apply(&id);
        revoke["token"] = token.clone().into();
        let (renew, gone) = tokio::join!(
            post(&c, format!("{base}/space/3/apply_token/"), apply(&id)),
            post(&c, format!("{base}/space/3/revoke_token/"), revoke),
        );
        assert_eq!(renew["result"], true, "{renew}");
        assert_eq!(gone["result"], true, "{gone}");
        revoked.push(token);
    }
    for token in &revoked {
        assert_eq!(bkflow_status(&c, &gw, token).await, 401, "{token} revoked");
    }
    gw.signal("TERM");
    while let Ok(line) = gw.lines.recv_timeout(std::time::Duration::from_secs(10)) {
        if line.contains("\"stopped\"") {
            break;
        }
    }
    drop(gw);
    let gw = Proc::start(&cfg);
    for token in &revoked {
        assert_eq!(
            bkflow_status(&c, &gw, token).await,
            401,
            "{token} came back after a restart"
        );
    }
}
