//! Issue 28: the shared store on Redis as production runs it, with two gateway replicas each.
//!
//! - TLS (`rediss://`): the server's certificate is checked against `store.tls.ca_file`, so a
//!   CA that did not sign it stops the gateway at start, saying so; a client certificate
//!   (`store.tls.cert`/`key`) is shown when Redis asks for one, and without it the start fails.
//! - ACL: a user of its own with the password read from `store.password_file`; the password is
//!   never printed (logs, start-up errors, `/readyz`), a wrong one stops the start.
//! - Sentinel: the primary is found through `sentinels`/`sentinel_master`; with
//!   `wait_replicas: 1` every acknowledged revocation is on a replica, so when the primary is
//!   killed the promoted replica still refuses those tokens, on the running replicas and on
//!   one started after the failover, and issuance resumes by itself.
//!
//! - `wait_replicas: 1` with no Redis replica to confirm: the issuance is answered 503, no
//!   token handed out.
//!
//! In every case a bkflow token issued on one replica works on the other and, revoked on the
//! first, is refused by the second.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::bin::{bkflow_status, write, Proc};
use support::redis::{
    redis_cmd_auth, redis_tls_files, replica_config_with_store, RedisServer, SentinelSet,
};
use support::{TestClient, Upstream};

/// Everything but `listen:`/`admin:`/`store:`/`upstreams:`/`routes:` (as in store_replay.rs,
/// with limits out of the way of the retries below).
const BODY: &str = r#"signing: { issuer: https://gw.test, algorithm: ES256 }
apps:
  - { id: app, secret: app-secret, space_id: 3, user: admin, grants: [{ resource: TEMPLATE, id: "*", permission: MOCK }] }
dialects: { oauth: {}, bkflow: { prefix: "" } }
limits: { token_rate: { per_ip: 1000000/s, per_ip_burst: 1000000, per_app: 1000000/s, per_app_burst: 1000000 } }
"#;

/// The ACL user's password (distinctive, so any printing of it is found).
const PASSWORD: &str = "Acl-pw-7c1e94d2b8";

/// `dir/name`: replicas on the store whose `store:` keys (one a line) are `store`.
fn config(dir: &Path, name: &str, store: &str, up: &Upstream) -> PathBuf {
    write(
        dir,
        name,
        &replica_config_with_store(dir, store, &up.url(), BODY),
    )
}

/// A path as a YAML string.
fn q(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// The `store:` keys for `redis` over TLS, trusting `ca`, with a client certificate and key.
fn tls_store(redis: &RedisServer, ca: &Path, client: Option<(&Path, &Path)>) -> String {
    let client = client
        .map(|(cert, key)| format!(", cert: {}, key: {}", q(cert), q(key)))
        .unwrap_or_default();
    format!(
        "url: \"{}\"\ntls: {{ ca_file: {}{client} }}\n",
        redis.tls_url(),
        q(ca)
    )
}

fn apply_body(id: &str) -> Value {
    json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE",
           "resource_id": id, "permission_type": "VIEW"})
}

/// The log lines `gw` printed so far (for failure messages).
fn logs(gw: &Proc) -> String {
    gw.lines.try_iter().collect::<Vec<_>>().join("\n")
}

/// A bkflow token for TEMPLATE `id` from `gw`, or what it answered instead.
async fn try_issue(c: &TestClient, gw: &Proc, id: &str) -> Result<String, String> {
    let url = format!("http://{}/space/3/apply_token/", gw.addr);
    let r = c.post_json(&url, &[], &apply_body(id).to_string()).await;
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    match v["data"]["token"].as_str() {
        Some(t) if r.status == 200 && v["result"] == true => Ok(t.to_owned()),
        _ => Err(format!("{} {}", r.status, r.body)),
    }
}

async fn issue(c: &TestClient, gw: &Proc, id: &str) -> String {
    match try_issue(c, gw, id).await {
        Ok(t) => t,
        Err(e) => panic!("apply_token {id} on {}: {e}\n{}", gw.addr, logs(gw)),
    }
}

/// Revokes `token` (TEMPLATE `id`) on `gw`; it must be acknowledged.
async fn revoke(c: &TestClient, gw: &Proc, id: &str, token: &str) {
    let mut body = apply_body(id);
    body["token"] = token.into();
    let url = format!("http://{}/space/3/revoke_token/", gw.addr);
    let r = c.post_json(&url, &[], &body.to_string()).await;
    assert_eq!(r.status, 200, "revoke_token {id}: {}\n{}", r.body, logs(gw));
    let v = r.json();
    assert_eq!(v["result"], true, "revoke_token {id}: {v}");
    assert_eq!(
        v["data"], "1 tokens revoke success",
        "revoke_token {id}: {v}"
    );
}

/// Calls through `gw` with `token` until it answers `want` or `limit` passes; the last status.
async fn status_within(c: &TestClient, gw: &Proc, token: &str, want: u16, limit: Duration) -> u16 {
    let deadline = Instant::now() + limit;
    loop {
        let s = bkflow_status(c, gw, token).await;
        if s == want || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `gw` answers `token` once it reaches its store: polled while it answers 503 (as while
/// it finds a new primary), up to `limit`. Any other answer is final: a revoked token must
/// never be let through, not even for a moment.
async fn settled_status(c: &TestClient, gw: &Proc, token: &str, limit: Duration) -> u16 {
    let deadline = Instant::now() + limit;
    loop {
        let s = bkflow_status(c, gw, token).await;
        if s != 503 || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(c: &TestClient, gw: &Proc) -> support::Resp {
    let admin = gw.admin.expect("an admin listener");
    c.send("GET", &format!("http://{admin}/readyz"), &[], "")
        .await
}

/// Polls `/readyz` of `gw` until 200 or `limit` passes; the last answer.
async fn ready_within(c: &TestClient, gw: &Proc, limit: Duration) -> support::Resp {
    let deadline = Instant::now() + limit;
    loop {
        let r = readyz(c, gw).await;
        if r.status == 200 || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn assert_ready(c: &TestClient, gws: &[&Proc]) {
    for gw in gws {
        let r = ready_within(c, gw, Duration::from_secs(5)).await;
        assert_eq!(r.status, 200, "{} not ready: {}", gw.addr, r.body);
    }
}

/// A token issued on `a` works on `b`; revoked on `a`, `b` refuses it within 3 s.
async fn issue_use_revoke(c: &TestClient, a: &Proc, b: &Proc, id: &str) {
    let token = issue(c, a, id).await;
    let s = status_within(c, b, &token, 200, Duration::from_secs(3)).await;
    assert_eq!(s, 200, "a token issued on A works on B\n{}", logs(b));
    revoke(c, a, id, &token).await;
    let s = status_within(c, b, &token, 401, Duration::from_secs(3)).await;
    assert_eq!(s, 401, "revoked on A, refused by B within 3 s\n{}", logs(b));
    assert_eq!(bkflow_status(c, a, &token).await, 401, "and by A");
}

/// `text` mentions one of `words` (case-insensitive).
fn assert_mentions(text: &str, words: &[&str]) {
    let lower = text.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(w)),
        "expected one of {words:?} in:\n{text}"
    );
}

/// Every line `gw` printed: stopped with SIGTERM, read until its stderr closes (up to 10 s).
fn all_lines(gw: Proc) -> Vec<String> {
    gw.signal("TERM");
    let mut lines = gw.early.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match gw.lines.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    lines
}

#[tokio::test]
async fn tls_redis_without_client_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let files = redis_tls_files(certs.path());
    let redis = RedisServer::start_tls(&files, false);
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "gw.yaml",
        &tls_store(&redis, &files.ca, None),
        &up,
    );
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    assert_ready(&c, &[&a, &b]).await;
    issue_use_revoke(&c, &a, &b, "tls").await;

    // A CA that did not sign Redis's certificate: the gateway refuses to start, saying why.
    let other = tempfile::tempdir().unwrap();
    let stranger = redis_tls_files(other.path());
    let wrong = config(
        dir.path(),
        "wrong-ca.yaml",
        &tls_store(&redis, &stranger.ca, None),
        &up,
    );
    let stderr = support::bin::start_refused(&wrong);
    assert_mentions(&stderr, &["tls", "certificate"]);
}

#[tokio::test]
async fn tls_redis_with_client_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let files = redis_tls_files(certs.path());
    let redis = RedisServer::start_tls(&files, true);
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let client = (files.client_cert.as_path(), files.client_key.as_path());
    let cfg = config(
        dir.path(),
        "gw.yaml",
        &tls_store(&redis, &files.ca, Some(client)),
        &up,
    );
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    assert_ready(&c, &[&a, &b]).await;
    issue_use_revoke(&c, &a, &b, "mtls").await;

    // Redis asks for a client certificate and none is configured: no start.
    let bare = config(
        dir.path(),
        "no-client-cert.yaml",
        &tls_store(&redis, &files.ca, None),
        &up,
    );
    support::bin::start_refused(&bare);
}

/// A Redis whose only user is `tollgate` (password `PASSWORD`) and a config naming that user,
/// its password in `password_file`.
async fn acl_setup() -> (RedisServer, Upstream, tempfile::TempDir, PathBuf) {
    let redis = RedisServer::start();
    redis.acl_only("tollgate", PASSWORD);
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let pass = write(dir.path(), "redis.pass", &format!("{PASSWORD}\n"));
    let store = format!(
        "url: \"redis://tollgate@127.0.0.1:{}/0\"\npassword_file: {}\n",
        redis.port,
        q(&pass)
    );
    let cfg = config(dir.path(), "gw.yaml", &store, &up);
    (redis, up, dir, cfg)
}

#[tokio::test]
async fn acl_user_with_password_file() {
    let (redis, up, dir, cfg) = acl_setup().await;
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    assert_ready(&c, &[&a, &b]).await;
    for gw in [&a, &b] {
        let r = readyz(&c, gw).await;
        assert!(!r.body.contains(PASSWORD), "/readyz: {}", r.body);
    }
    issue_use_revoke(&c, &a, &b, "acl").await;
    // The gateway wrote as that user (the default one is off).
    let exists = redis_cmd_auth(
        redis.port,
        "tollgate",
        PASSWORD,
        &["EXISTS", "tollgate:ops"],
    );
    assert_eq!(exists.trim(), ":1", "the stream was written");

    let mut printed = all_lines(a);
    printed.extend(all_lines(b));
    assert!(!printed.is_empty(), "the replicas printed their start");
    let leaks: Vec<&String> = printed.iter().filter(|l| l.contains(PASSWORD)).collect();
    assert!(leaks.is_empty(), "the password was printed: {leaks:?}");

    // A wrong password in the file: no start, and neither password in what it says.
    let wrong_password = "Wrong-pw-3f9a0c5e61";
    let wrong_file = write(dir.path(), "wrong.pass", &format!("{wrong_password}\n"));
    let store = format!(
        "url: \"redis://tollgate@127.0.0.1:{}/0\"\npassword_file: {}\n",
        redis.port,
        q(&wrong_file)
    );
    let wrong = config(dir.path(), "wrong-pass.yaml", &store, &up);
    let stderr = support::bin::start_refused(&wrong);
    assert!(!stderr.contains(wrong_password), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert_mentions(&stderr, &["auth", "password", "wrongpass"]);
}

#[tokio::test]
async fn readyz_names_an_auth_failure_without_the_password() {
    let (redis, _up, _dir, cfg) = acl_setup().await;
    let (a, c) = (Proc::start(&cfg), TestClient::plain());
    assert_ready(&c, &[&a]).await;

    // The password is changed on Redis and the gateway's connections are dropped: it can no
    // longer authenticate.
    let rotated = "Rotated-pw-d41c08e2";
    let r = redis_cmd_auth(
        redis.port,
        "tollgate",
        PASSWORD,
        &[
            "ACL",
            "SETUSER",
            "tollgate",
            "resetpass",
            &format!(">{rotated}"),
        ],
    );
    assert!(r.starts_with("+OK"), "{r}");
    let r = redis_cmd_auth(
        redis.port,
        "tollgate",
        rotated,
        &["CLIENT", "KILL", "USER", "tollgate"],
    );
    assert!(r.starts_with(':'), "{r}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    let last = loop {
        // Store traffic, so the failure is met, not only waited for.
        n += 1;
        let _ = try_issue(&c, &a, &format!("after-rotation-{n}")).await;
        let r = readyz(&c, &a).await;
        if r.status == 503 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(last.status, 503, "{}", last.body);
    let why = last.json()["store"].to_string();
    assert_mentions(&why, &["auth"]);
    for pw in [PASSWORD, rotated] {
        assert!(!last.body.contains(pw), "/readyz: {}", last.body);
    }
    let printed = all_lines(a);
    for pw in [PASSWORD, rotated] {
        assert!(
            !printed.iter().any(|l| l.contains(pw)),
            "the password was printed"
        );
    }
}

#[tokio::test]
async fn sentinel_failover_keeps_acknowledged_revocations() {
    let mut set = SentinelSet::start();
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "sentinels: {:?}\nsentinel_master: tollgate\nwait_replicas: 1\n",
        set.sentinel_addrs()
    );
    let cfg = config(dir.path(), "gw.yaml", &store, &up);
    let (a, b, c) = (Proc::start(&cfg), Proc::start(&cfg), TestClient::plain());
    assert_ready(&c, &[&a, &b]).await;

    // Five tokens from A, each also held by B.
    let mut tokens = Vec::new();
    for i in 0..5 {
        let id = format!("t{i}");
        let token = issue(&c, &a, &id).await;
        let s = status_within(&c, &b, &token, 200, Duration::from_secs(3)).await;
        assert_eq!(s, 200, "{id} issued on A works on B\n{}", logs(&b));
        tokens.push((id, token));
    }
    let (revoked, live) = tokens.split_at(3);
    for (id, token) in revoked {
        revoke(&c, &a, id, token).await;
    }

    // The primary dies right after the last acknowledgement.
    let old = set.primary_port();
    let killed = Instant::now();
    set.kill_primary();
    let promoted = set.wait_failover(old, Duration::from_secs(20));
    assert_ne!(promoted, old);

    // Issuance resumes by itself within 20 s of the kill, on either replica.
    let mut n = 0;
    let (fresh, on_a) = loop {
        n += 1;
        let id = format!("after-{n}");
        let on_a = n % 2 == 1;
        let gw = if on_a { &a } else { &b };
        match try_issue(&c, gw, &id).await {
            Ok(t) => break (t, on_a),
            Err(e) => assert!(
                killed.elapsed() < Duration::from_secs(20),
                "no token issued within 20 s of the failover; last answer: {e}\nA:\n{}\nB:\n{}",
                logs(&a),
                logs(&b)
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let other = if on_a { &b } else { &a };
    let s = status_within(&c, other, &fresh, 200, Duration::from_secs(5)).await;
    assert_eq!(
        s, 200,
        "a token issued after the failover works on the other replica"
    );

    // What was acknowledged survived; a 503 while a replica finds the new primary is allowed.
    let settle = Duration::from_secs(10);
    for (name, gw) in [("A", &a), ("B", &b)] {
        for (id, token) in revoked {
            let s = settled_status(&c, gw, token, settle).await;
            assert_eq!(s, 401, "{id} (revoked) on {name} after the failover");
        }
        for (id, token) in live {
            let s = settled_status(&c, gw, token, settle).await;
            assert_eq!(s, 200, "{id} (live) on {name} after the failover");
        }
        let r = ready_within(&c, gw, settle).await;
        assert_eq!(r.status, 200, "{name} ready after the failover: {}", r.body);
    }

    // A replica started now knows only what the promoted replica holds.
    let third = Proc::start(&cfg);
    assert_ready(&c, &[&third]).await;
    for (id, token) in revoked {
        let s = settled_status(&c, &third, token, settle).await;
        assert_eq!(
            s, 401,
            "{id} (revoked) on a replica started after the failover"
        );
    }
    for (id, token) in live {
        let s = settled_status(&c, &third, token, settle).await;
        assert_eq!(
            s, 200,
            "{id} (live) on a replica started after the failover"
        );
    }
}

#[tokio::test]
async fn a_write_no_replica_confirms_is_not_acknowledged() {
    let redis = RedisServer::start_with(&["--repl-diskless-sync-delay".to_owned(), "0".to_owned()]);
    let replica_dir = tempfile::tempdir().unwrap();
    let mut replica = RedisServer::start_with(&[
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        redis.port.to_string(),
        "--dir".to_owned(),
        replica_dir.path().display().to_string(),
    ]);
    let linked = support::eventually(Duration::from_secs(20), || async {
        let info = support::redis::redis_cmd(replica.port, &["INFO", "replication"]);
        support::redis::resp_field(&info, "master_link_status").as_deref() == Some("up")
    })
    .await;
    assert!(linked, "the replica follows the primary");
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("url: \"{}\"\nwait_replicas: 1\n", redis.url());
    let cfg = config(dir.path(), "gw.yaml", &store, &up);
    let (a, c) = (Proc::start(&cfg), TestClient::plain());
    // Confirmed while the replica is there.
    let confirmed = support::eventually(Duration::from_secs(10), || async {
        try_issue(&c, &a, "confirmed").await.is_ok()
    })
    .await;
    assert!(confirmed, "issued once the replica confirms\n{}", logs(&a));
    // The replica gone, `WAIT 1` cannot be satisfied: not acknowledged.
    replica.stop();
    let url = format!("http://{}/space/3/apply_token/", a.addr);
    let r = c
        .post_json(&url, &[], &apply_body("unconfirmed").to_string())
        .await;
    assert_eq!(r.status, 503, "not acknowledged: {}", r.body);
    assert!(
        !r.body.contains("\"token\""),
        "no token handed out: {}",
        r.body
    );
}
