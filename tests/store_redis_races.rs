//! Two replicas on one real Redis, pushed where replicas race: a revocation right after an
//! apply elsewhere, renewals racing a revocation, credentials created on both at once, a
//! refresh with the wrong access token, and a forged stream entry. Every race runs 20 times.

mod support;

use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use support::bin::{bkflow_status, write, Proc};
use support::redis::RedisServer;
use support::{TestClient, Upstream};

fn config(dir: &std::path::Path, redis: &RedisServer, up: &Upstream) -> String {
    let body = r#"signing: { issuer: https://gw.test, algorithm: ES256, key_file: {d}/jwt.pem }
apps:
  - { id: app, secret: app-secret, space_id: 3, user: admin, grants: [{ resource: TEMPLATE, id: "*", permission: MOCK }] }
  - { id: four, secret: four-secret, space_id: 4, user: bob }
dialects: { hosecloud: {}, bkflow: { prefix: "" } }
limits: { token_rate: { per_ip: 10000/s, per_ip_burst: 10000, per_app: 10000/s, per_app_burst: 10000 } }
"#;
    support::redis::replica_config(dir, redis, &up.url(), "", body)
}

/// The config with no signing key file and every dialect on (the master key beside it).
fn keyless(redis: &RedisServer, up: &Upstream) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(dir.path(), redis, up)
        .replace(
            &format!(
                ", algorithm: ES256, key_file: {}/jwt.pem",
                dir.path().display()
            ),
            "",
        )
        .replace(
            "dialects: { hosecloud: {}, bkflow: { prefix: \"\" } }",
            "dialects: { oauth: {}, hosecloud: {}, feishu: {}, bkflow: { prefix: \"\" } }",
        );
    assert!(
        yaml.contains("signing: { issuer: https://gw.test }") && yaml.contains("feishu: {}"),
        "{yaml}"
    );
    let cfg = write(dir.path(), "gw.yaml", &yaml);
    (dir, cfg)
}

struct Pair {
    a: Proc,
    b: Proc,
    c: TestClient,
    _dir: tempfile::TempDir,
    _up: Upstream,
}

async fn two_replicas(redis: &RedisServer) -> Pair {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwt.pem"), tollgate_test_key()).unwrap();
    let cfg = write(dir.path(), "gw.yaml", &config(dir.path(), redis, &up));
    let a = Proc::start(&cfg);
    let b = Proc::start(&cfg);
    Pair {
        a,
        b,
        c: TestClient::plain(),
        _dir: dir,
        _up: up,
    }
}

/// An ES256 key both replicas share.
fn tollgate_test_key() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem()
}

async fn post(c: &TestClient, p: &Proc, path: &str, body: Value) -> Value {
    c.post_json(&format!("http://{}{path}", p.addr), &[], &body.to_string())
        .await
        .json()
}

fn apply_body(id: &str) -> Value {
    json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": id, "permission_type": "VIEW"})
}

#[tokio::test]
async fn replicas_do_not_race() {
    let redis = RedisServer::start();
    let r = two_replicas(&redis).await;
    let (a, b, c) = (&r.a, &r.b, &r.c);
    for trial in 0..20 {
        // Applied on B, revoked on A at once: A sees B's token first.
        let id = format!("t{trial}");
        let t = post(c, b, "/space/3/apply_token/", apply_body(&id)).await["data"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut revoke = apply_body(&id);
        revoke["token"] = t.clone().into();
        let v = post(c, a, "/space/3/revoke_token/", revoke).await;
        assert_eq!(v["data"], "1 tokens revoke success", "trial {trial}: {v}");
        assert_eq!(bkflow_status(c, a, &t).await, 401, "trial {trial}");
    }
    for trial in 0..20 {
        // Renewals on B racing a revocation on A: the revocation sticks everywhere.
        let id = format!("r{trial}");
        let t = post(c, b, "/space/3/apply_token/", apply_body(&id)).await["data"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let renewals: Vec<_> = (0..6)
            .map(|_| {
                let (c, addr, body) = (c.clone(), b.addr, apply_body(&id));
                tokio::spawn(async move {
                    c.post_json(
                        &format!("http://{addr}/space/3/apply_token/"),
                        &[],
                        &body.to_string(),
                    )
                    .await
                })
            })
            .collect();
        let mut revoke = apply_body(&id);
        revoke["token"] = t.clone().into();
        post(c, a, "/space/3/revoke_token/", revoke).await;
        for h in renewals {
            h.await.unwrap();
        }
        let settled = support::eventually(std::time::Duration::from_secs(2), || async {
            bkflow_status(c, a, &t).await == 401 && bkflow_status(c, b, &t).await == 401
        })
        .await;
        assert!(settled, "trial {trial}: the revoked token came back");
    }
    for trial in 0..20 {
        // Credentials created on A (space 3) and B (space 4) back to back keep distinct ids.
        let cred = |app: &str, secret: &str, name: String| {
            json!({ "bk_app_code": app, "bk_app_secret": secret, "name": name, "type": "BK_APP",
                    "content": { "bk_app_code": "x", "bk_app_secret": "y" } })
        };
        let (x, y) = tokio::join!(
            post(
                c,
                a,
                "/space/3/create_credential/",
                cred("app", "app-secret", format!("a{trial}"))
            ),
            post(
                c,
                b,
                "/space/4/create_credential/",
                cred("four", "four-secret", format!("b{trial}"))
            ),
        );
        assert_ne!(x["data"]["id"], y["data"]["id"], "trial {trial}: {x} {y}");
    }
    // A refresh with the wrong access token leaves the refresh token usable.
    let login = post(
        c,
        a,
        "/auth/openApi/v3/getAccessToken",
        json!({"appKey": "app", "appSecurity": "app-secret"}),
    )
    .await;
    let other = post(
        c,
        a,
        "/auth/openApi/v3/getAccessToken",
        json!({"appKey": "app", "appSecurity": "app-secret"}),
    )
    .await;
    let refresh = login["data"]["refreshToken"].clone();
    let wrong = post(
        c,
        b,
        "/auth/openApi/v3/refreshToken",
        json!({"accessToken": other["data"]["accessToken"], "refreshToken": refresh}),
    )
    .await;
    assert_eq!(wrong["code"], "403");
    let right = post(
        c,
        b,
        "/auth/openApi/v3/refreshToken",
        json!({"accessToken": login["data"]["accessToken"], "refreshToken": refresh}),
    )
    .await;
    assert_eq!(right["code"], "200", "not burnt by the wrong pair: {right}");
}

/// Sends one command to Redis in RESP.
fn redis_cmd(port: u16, args: &[&str]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut msg = format!("*{}\r\n", args.len());
    for a in args {
        msg.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(msg.as_bytes()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_forged_stream_entry_is_refused_by_every_replica() {
    let redis = RedisServer::start();
    let r = two_replicas(&redis).await;
    let token = "deadbeefdeadbeefdeadbeefdeadbeef";
    let hash: Vec<u8> = tollgate::token::opaque::hash(token).to_vec();
    let far = 4_000_000_000_000u64;
    let row = json!([{ "Bk": { "id": 4242, "token_hash": hash, "space": 3, "app": "app", "user": "admin",
        "resource": "SCOPE", "resource_id": "project_3", "perm": "MOCK", "expires_ms": far } }]);
    let reply = redis_cmd(
        redis.port,
        &["XADD", "tollgate:ops", "*", "ops", &row.to_string()],
    );
    assert!(reply.starts_with('$'), "{reply}");
    let forged_mac = redis_cmd(
        redis.port,
        &[
            "XADD",
            "tollgate:ops",
            "*",
            "ops",
            &row.to_string(),
            "mac",
            "00",
        ],
    );
    assert!(forged_mac.starts_with('$'), "{forged_mac}");
    for p in [&r.a, &r.b] {
        assert_eq!(
            bkflow_status(&r.c, p, token).await,
            401,
            "the forged token is no token"
        );
    }
    // A replica started after the forgery replays the stream and refuses it too.
    let late = {
        let dir = r._dir.path();
        Proc::start(&dir.join("gw.yaml"))
    };
    assert_eq!(bkflow_status(&r.c, &late, token).await, 401);
    let m =
        r.c.send(
            "GET",
            &format!("http://{}/metrics", late.admin.unwrap()),
            &[],
            "",
        )
        .await
        .body;
    let line = m
        .lines()
        .find(|l| l.starts_with("tollgate_store_rejected_entries_total"))
        .unwrap_or("");
    let n: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(n >= 2, "both forged entries counted: {line:?}");
    let lag: f64 = m
        .lines()
        .find(|l| l.starts_with("tollgate_store_replication_lag_seconds"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("the lag gauge is exported");
    assert!(
        lag < 5.0,
        "a replica following the log is not behind: {lag}"
    );
    let ready =
        r.c.send(
            "GET",
            &format!("http://{}/readyz", late.admin.unwrap()),
            &[],
            "",
        )
        .await
        .json();
    assert_eq!(ready["ready"], true, "{ready}");
    assert!(
        ready["replication_lag_seconds"].as_f64().is_some(),
        "{ready}"
    );
}

#[tokio::test]
async fn replicas_with_no_key_file_make_one_signing_key_and_share_it() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    // The SPEC §2 shape: no signing.key_file; the key is made once and kept in the store.
    let (dir, cfg) = keyless(&redis, &up);
    // Both at the same instant: they must still agree on one key.
    let (cfg_a, cfg_b) = (cfg.clone(), cfg.clone());
    let ta = std::thread::spawn(move || Proc::start(&cfg_a));
    let tb = std::thread::spawn(move || Proc::start(&cfg_b));
    let (a, b) = (ta.join().unwrap(), tb.join().unwrap());
    let c = TestClient::plain();
    let jwks = |p: &Proc| {
        let (c, url) = (
            c.clone(),
            format!("http://{}/.well-known/jwks.json", p.addr),
        );
        async move { c.send("GET", &url, &[], "").await.json() }
    };
    let (ka, kb) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(ka["keys"][0]["kid"], kb["keys"][0]["kid"], "{ka} {kb}");
    let body = json!({ "app_id": "app", "app_secret": "app-secret" });
    for (issuer, checker) in [(&a, &b), (&b, &a)] {
        let t = post(&c, issuer, "/oauth/token/get", body.clone()).await;
        let token = t["accessToken"].as_str().unwrap_or_else(|| panic!("{t}"));
        let r = c
            .send(
                "GET",
                &format!("http://{}/api/x", checker.addr),
                &[("authorization", token)],
                "",
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert!(
        !dir.path().join("jwt-rs256.pem").exists(),
        "no key file is written beside anything"
    );
    // Rotation on A: B signs with the new key within a second; old tokens pass on both.
    let old = post(&c, &a, "/oauth/token/get", body.clone()).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = c
        .post_json(
            &format!("http://{}/admin/keys/rotate", a.admin.unwrap()),
            &[],
            "{}",
        )
        .await
        .json()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let picked_up = support::eventually(std::time::Duration::from_secs(1), || async {
        let t = post(&c, &b, "/oauth/token/get", body.clone()).await;
        let t = t["accessToken"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("Bearer ");
        t.contains('.') && support::jwt_parts(t).0["kid"] == kid.as_str()
    })
    .await;
    assert!(picked_up, "B signs with A's new key within a second");
    for p in [&a, &b] {
        let r = c
            .send(
                "GET",
                &format!("http://{}/api/x", p.addr),
                &[("authorization", &old)],
                "",
            )
            .await;
        assert_eq!(r.status, 200, "the old key still verifies: {}", r.body);
        assert_eq!(jwks(p).await["keys"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn introspection_and_revocation_on_one_replica_are_seen_on_the_other() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let (_dir, cfg) = keyless(&redis, &up);
    let (a, b) = (Proc::start(&cfg), Proc::start(&cfg));
    let c = TestClient::plain();
    let creds = json!({ "app_id": "app", "app_secret": "app-secret" });
    let oauth = post(&c, &a, "/oauth/token/get", creds.clone()).await["accessToken"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let hose = post(
        &c,
        &a,
        "/auth/openApi/v3/getAccessToken",
        json!({"appKey": "app", "appSecurity": "app-secret"}),
    )
    .await["data"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let bk = post(&c, &a, "/space/3/apply_token/", apply_body("intro")).await["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let fs = support::feishu_app_token(
        &c,
        &format!("http://{}", a.addr),
        &format!("http://{}", a.admin.unwrap()),
        "app",
        "app-secret",
    )
    .await;
    let form = |p: &Proc, path: &str, token: &str| {
        let (c, url, body) = (
            c.clone(),
            format!("http://{}{path}", p.admin.unwrap()),
            format!("token={token}"),
        );
        async move {
            c.send(
                "POST",
                &url,
                &[("content-type", "application/x-www-form-urlencoded")],
                &body,
            )
            .await
            .json()
        }
    };
    for (dialect, token) in [
        ("oauth", &oauth),
        ("hosecloud", &hose),
        ("bkflow", &bk),
        ("feishu", &fs),
    ] {
        // Issued on A, introspected on B.
        let v = form(&b, "/admin/introspect", token).await;
        assert_eq!(v["active"], true, "{dialect}: {v}");
        assert_eq!(v["dialect"], dialect);
        // Revoked on A, inactive on B within a second.
        assert_eq!(
            form(&a, "/admin/tokens/revoke", token).await["revoked"],
            true,
            "{dialect}"
        );
        let gone = support::eventually(std::time::Duration::from_secs(1), || async {
            form(&b, "/admin/introspect", token).await == json!({ "active": false })
        })
        .await;
        assert!(gone, "{dialect}: still active on B");
    }
}
