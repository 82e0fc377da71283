//! Issue 28: whoever can write to Redis cannot bring back what was revoked or roll the
//! signing-key ring back, by replaying authentic stream entries, deleting or cutting entries,
//! or putting an older snapshot back; and a renewal racing a revocation on the embedded store
//! never outlives a restart.

mod support;

use serde_json::{json, Value};
use support::bin::{bkflow_status, write, Proc};
use support::redis::RedisServer;
use support::{TestClient, Upstream};

fn replica_yaml(dir: &std::path::Path, redis: &RedisServer, up: &Upstream) -> String {
    let body = r#"signing: { issuer: https://gw.test, algorithm: ES256 }
apps:
  - { id: app, secret: app-secret, space_id: 3, user: admin, grants: [{ resource: TEMPLATE, id: "*", permission: MOCK }] }
dialects: { oauth: {}, hosecloud: {}, bkflow: { prefix: "" } }
"#;
    support::redis::replica_config(dir, redis, &up.url(), "", body)
}

/// The replicas' config file, in a temp dir kept with it.
fn config(redis: &RedisServer, up: &Upstream) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "gw.yaml", &replica_yaml(dir.path(), redis, up));
    (dir, cfg)
}

/// One stream entry as an attacker reads it with `XRANGE`.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    /// Every field and value, in order (`seq`, `ops`, `mac`).
    fields: Vec<(String, String)>,
}

impl Entry {
    fn ops(&self) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == "ops")
            .map_or("", |(_, v)| v)
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--raw"])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every stream entry, read with redis-cli.
fn stream(port: u16) -> Vec<Entry> {
    let text = cli(port, &["XRANGE", "tollgate:ops", "-", "+"]);
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let mut i = 0;
    // id, then field/value pairs: seq, ops, mac.
    while i + 6 < lines.len() + 1 {
        if lines[i + 1] == "seq" && lines[i + 3] == "ops" && lines[i + 5] == "mac" {
            let fields = (0..3)
                .map(|k| {
                    (
                        lines[i + 1 + 2 * k].to_owned(),
                        lines[i + 2 + 2 * k].to_owned(),
                    )
                })
                .collect();
            entries.push(Entry {
                id: lines[i].to_owned(),
                fields,
            });
            i += 7;
        } else {
            i += 1;
        }
    }
    entries
}

/// Appends an entry as a writer to Redis would (what an attacker with Redis access can do).
fn replay(port: u16, e: &Entry) {
    let mut args = vec!["XADD", "tollgate:ops", "*"];
    for (k, v) in &e.fields {
        args.push(k);
        args.push(v);
    }
    cli(port, &args);
}

/// A bkflow apply (and, with `token` added, revoke) body for TEMPLATE `id`.
fn apply(id: &str) -> Value {
    json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE",
           "resource_id": id, "permission_type": "VIEW"})
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
        .filter(|e| e.ops().contains("\"Bk\""))
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
    replay(redis.port, &issued[0]);
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
        .filter(|e| e.ops().contains("\"Meta\""))
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
    replay(redis.port, &rings[0]);
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

async fn metrics_of(c: &TestClient, p: &Proc) -> String {
    let url = format!("http://{}/metrics", p.admin.unwrap());
    c.send("GET", &url, &[], "").await.body
}

/// Waits (up to 10 s) until no replica asks for a snapshot any more: one was written.
async fn snapshot_written(port: u16) {
    let done = support::eventually(std::time::Duration::from_secs(10), || async {
        cli(port, &["EXISTS", "tollgate:snapshot_wanted"]).trim() == "0"
    })
    .await;
    assert!(done, "a running replica wrote the snapshot asked for");
}

#[tokio::test]
async fn deleted_revocations_cut_logs_and_old_snapshots_never_revive_a_token() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let (dir, cfg) = config(&redis, &up);
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    let _dir = dir;
    let (mut tokens, base) = (Vec::new(), format!("http://{}", a.addr));
    for id in ["t1", "t2", "t3"] {
        let t = post(&c, format!("{base}/space/3/apply_token/"), apply(id)).await;
        let token = t["data"]["token"].as_str().unwrap().to_owned();
        assert_eq!(bkflow_status(&c, &b, &token).await, 200);
        tokens.push(token);
    }
    let revoke = |i: usize| {
        let mut body = apply(["t1", "t2", "t3"][i]);
        body["token"] = tokens[i].clone().into();
        let (c, url) = (c.clone(), format!("{base}/space/3/revoke_token/"));
        async move { post(&c, url, body).await }
    };
    let revocation = |port: u16| {
        stream(port)
            .into_iter()
            .rfind(|e| e.ops().contains("BkRevoked"))
            .expect("the revocation's entry")
    };

    // 1. The revocation's entry deleted (XDEL): the replicas that read it keep it; a new one
    //    refuses a log with a hole until a running replica writes the snapshot it asks for.
    assert_eq!(revoke(0).await["result"], true);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let e = revocation(redis.port);
    cli(redis.port, &["XDEL", "tollgate:ops", &e.id]);
    let refused = support::bin::start_refused(&cfg);
    assert!(refused.contains("log gap"), "{refused}");
    snapshot_written(redis.port).await;
    let late = Proc::start(&cfg);
    assert_eq!(
        bkflow_status(&c, &late, &tokens[0]).await,
        401,
        "t1 stays revoked"
    );
    assert_eq!(
        bkflow_status(&c, &late, &tokens[1]).await,
        200,
        "t2 is live"
    );
    drop(late);
    // Whichever replica looks first restores the head: count across both.
    let counted_now =
        || async { rejected(&metrics_of(&c, &a).await) + rejected(&metrics_of(&c, &b).await) };
    let before = counted_now().await;

    // 2. The log's tail cut and its counter set back (a shorter, consistent-looking log): the
    //    running replicas notice within a second, restore the head and rewrite the snapshot.
    //    The attacker puts back the head (counter and its MAC) as it was before.
    let (old_seq, old_head) = (
        cli(redis.port, &["GET", "tollgate:seq"]),
        cli(redis.port, &["GET", "tollgate:head"]),
    );
    assert_eq!(revoke(1).await["result"], true);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let e = revocation(redis.port);
    cli(redis.port, &["XDEL", "tollgate:ops", &e.id]);
    cli(redis.port, &["SET", "tollgate:seq", old_seq.trim_end()]);
    cli(redis.port, &["SET", "tollgate:head", old_head.trim_end()]);
    let counted = support::eventually(std::time::Duration::from_secs(5), || async {
        counted_now().await > before
    })
    .await;
    assert!(counted, "the cut is counted");
    snapshot_written(redis.port).await;
    let old_snapshot = cli(redis.port, &["GET", "tollgate:snapshot"]);
    let late = Proc::start(&cfg);
    assert_eq!(
        bkflow_status(&c, &late, &tokens[1]).await,
        401,
        "t2 stays revoked"
    );
    drop(late);

    // 3. An older snapshot put back (one from before t3's revocation), t3's entry deleted.
    assert_eq!(revoke(2).await["result"], true);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let e = revocation(redis.port);
    cli(redis.port, &["XDEL", "tollgate:ops", &e.id]);
    cli(
        redis.port,
        &["SET", "tollgate:snapshot", old_snapshot.trim_end()],
    );
    let refused = support::bin::start_refused(&cfg);
    assert!(refused.contains("log gap"), "{refused}");
    snapshot_written(redis.port).await;
    let late = Proc::start(&cfg);
    for (i, token) in tokens.iter().enumerate() {
        for p in [&a, &b, &late] {
            assert_eq!(
                bkflow_status(&c, p, token).await,
                401,
                "t{} stays revoked",
                i + 1
            );
        }
    }
}

#[tokio::test]
async fn a_spent_refresh_token_never_comes_back() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let (dir, cfg) = config(&redis, &up);
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    let _dir = dir;
    let h = post(
        &c,
        format!("http://{}/auth/openApi/v3/getAccessToken", a.addr),
        json!({"appKey": "app", "appSecurity": "app-secret"}),
    )
    .await;
    let pair =
        json!({"accessToken": h["data"]["accessToken"], "refreshToken": h["data"]["refreshToken"]});
    let issued = stream(redis.port);
    let first = post(
        &c,
        format!("http://{}/auth/openApi/v3/refreshToken", a.addr),
        pair.clone(),
    )
    .await;
    assert_eq!(first["code"], "200", "{first}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = rejected(&metrics_of(&c, &b).await);
    // The attack: the refresh token's own entries again, its single-use mark deleted.
    for e in &issued {
        replay(redis.port, e);
    }
    let marks = cli(redis.port, &["KEYS", "tollgate:once:*"]);
    for key in marks.lines().filter(|l| !l.is_empty()) {
        cli(redis.port, &["DEL", key]);
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let late = Proc::start(&cfg);
    for p in [&a, &b, &late] {
        let again = post(
            &c,
            format!("http://{}/auth/openApi/v3/refreshToken", p.addr),
            pair.clone(),
        )
        .await;
        assert_eq!(again["code"], "403", "spent stays spent: {again}");
    }
    assert!(
        rejected(&metrics_of(&c, &b).await) > before,
        "the replay is counted"
    );
}

#[tokio::test]
async fn a_counter_set_by_hand_stops_nobody() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let (dir, cfg) = config(&redis, &up);
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    let _dir = dir;
    // The counter moved up by one, to a huge number, to text, deleted, or set back to an
    // older genuine value: writers check it (and the log's last entry) by MAC, so none of it
    // stops them or makes one take a place already taken; readers put the head back. After
    // each, a token issued on A works on B, and revoked on B it is refused by A.
    let old = [
        cli(redis.port, &["GET", "tollgate:seq"]),
        cli(redis.port, &["GET", "tollgate:head"]),
    ];
    let set_back = [
        "MSET",
        "tollgate:seq",
        old[0].trim_end(),
        "tollgate:head",
        old[1].trim_end(),
    ];
    let forgeries: [&[&str]; 5] = [
        &["INCR", "tollgate:seq"],
        &["SET", "tollgate:seq", "99999999999999999"],
        &["SET", "tollgate:seq", "not a number"],
        &["DEL", "tollgate:seq", "tollgate:head"],
        &set_back,
    ];
    let mut revoked = Vec::new();
    for (i, forge) in forgeries.iter().enumerate() {
        cli(redis.port, forge);
        let id = format!("f{i}");
        let t = post(
            &c,
            format!("http://{}/space/3/apply_token/", a.addr),
            apply(&id),
        )
        .await;
        let token = t["data"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{t}"))
            .to_owned();
        let seen = support::eventually(std::time::Duration::from_secs(3), || async {
            bkflow_status(&c, &b, &token).await == 200
        })
        .await;
        assert!(
            seen,
            "after {forge:?} a new token still works on the other replica"
        );
        cli(redis.port, forge);
        let mut body = apply(&id);
        body["token"] = token.clone().into();
        let v = post(&c, format!("http://{}/space/3/revoke_token/", b.addr), body).await;
        assert_eq!(v["result"], true, "{v}");
        let gone = support::eventually(std::time::Duration::from_secs(3), || async {
            bkflow_status(&c, &a, &token).await == 401
        })
        .await;
        assert!(gone, "after {forge:?} a revocation on B reaches A");
        revoked.push(token);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for p in [&a, &b] {
        let r = c
            .send(
                "GET",
                &format!("http://{}/readyz", p.admin.unwrap()),
                &[],
                "",
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let late = Proc::start(&cfg);
    let t = post(
        &c,
        format!("http://{}/space/3/apply_token/", late.addr),
        apply("late"),
    )
    .await;
    assert_eq!(t["result"], true, "{t}");
    for token in &revoked {
        assert_eq!(
            bkflow_status(&c, &late, token).await,
            401,
            "revoked on a new replica"
        );
    }
}
