//! Compaction of the shared store on a real redis-server: after many tokens have been issued
//! and expired, Redis holds the live records plus one period of log, and a new replica starts
//! from the snapshot with every live record (and revocation) intact.

mod support;

use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};
use support::bin::{write, Proc};
use support::redis::RedisServer;
use support::{TestClient, Upstream};

fn config(dir: &std::path::Path, redis: &RedisServer, up: &Upstream, every: &str) -> String {
    let body = r#"signing: { issuer: https://gw.test, algorithm: ES256, leeway: 0s }
apps:
  - { id: app, secret: app-secret, space_id: 3, user: admin, grants: [{ resource: TEMPLATE, id: "*", permission: VIEW }] }
dialects: { oauth: {}, hosecloud: { ttl: 1s, refresh_ttl: 2s }, bkflow: { prefix: "" } }
limits: { token_rate: { per_ip: 1000000/s, per_ip_burst: 1000000, per_app: 1000000/s, per_app_burst: 1000000 } }
"#;
    let extra = format!(", compact_every: {every}");
    support::redis::replica_config(dir, redis, &up.url(), &extra, body)
}

/// One Redis command in RESP; the reply as text.
fn redis_cmd(port: u16, args: &[&str]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut msg = format!("*{}\r\n", args.len());
    for a in args {
        msg.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(msg.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if n < buf.len() {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn int_reply(r: &str) -> u64 {
    r.trim_start_matches(':').trim().parse().unwrap_or(0)
}

fn used_memory(port: u16) -> u64 {
    let info = redis_cmd(port, &["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn post(c: &TestClient, p: &Proc, path: &str, body: &Value) -> Value {
    c.post_json(&format!("http://{}{path}", p.addr), &[], &body.to_string())
        .await
        .json()
}

/// Issues `n` hosecloud pairs (each a stored refresh token living 2 s), 8 at a time.
async fn churn(c: &TestClient, p: &Proc, n: usize) {
    let body = json!({ "appKey": "app", "appSecurity": "app-secret" });
    let mut left = n;
    while left > 0 {
        let k = left.min(8);
        let batch: Vec<_> = (0..k)
            .map(|_| {
                let (c, url, b) = (
                    c.clone(),
                    format!("http://{}/auth/openApi/v3/getAccessToken", p.addr),
                    body.to_string(),
                );
                tokio::spawn(async move { c.post_json(&url, &[], &b).await.status })
            })
            .collect();
        for h in batch {
            assert_eq!(h.await.unwrap(), 200);
        }
        left -= k;
    }
}

/// Issues `n` short-lived tokens with compaction every `every`; returns the stream length and
/// Redis memory after the churn (once compaction had its chance), and a new replica's start-up.
async fn compacted_run(n: usize, every: &str) -> (u64, u64, Duration) {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gw.yaml",
        &config(dir.path(), &redis, &up, every),
    );
    let a = Proc::start(&cfg);
    let c = TestClient::plain();
    // Live records that must survive compaction: a bkflow token and a revoked JWT.
    let bk = post(
        &c,
        &a,
        "/space/3/apply_token/",
        &json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": "live", "permission_type": "VIEW"}),
    )
    .await["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwt = post(
        &c,
        &a,
        "/oauth/token/get",
        &json!({"app_id": "app", "app_secret": "app-secret"}),
    )
    .await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .post_json(
            &format!("http://{}/admin/tokens/revoke", a.admin.unwrap()),
            &[],
            &json!({ "token": jwt }).to_string(),
        )
        .await;
    assert_eq!(r.json()["revoked"], true);
    // A credential (kept only in the log and the snapshots) and a rotated key ring.
    let cred = json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "name": "prod", "type": "BK_APP",
                      "content": {"bk_app_code": "up", "bk_app_secret": "s3cret"}});
    assert_eq!(
        post(&c, &a, "/space/3/create_credential/", &cred).await["result"],
        true
    );
    let rotated = c
        .send(
            "POST",
            &format!("http://{}/admin/keys/rotate", a.admin.unwrap()),
            &[],
            "",
        )
        .await
        .json()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    churn(&c, &a, n).await;
    let peak_len = int_reply(&redis_cmd(redis.port, &["XLEN", "tollgate:ops"]));
    if every == "1s" {
        // Refresh tokens expire after 2 s; compaction every 1 s keeps one period of log.
        let settled = support::eventually(Duration::from_secs(30), || async {
            int_reply(&redis_cmd(redis.port, &["XLEN", "tollgate:ops"])) < 50
        })
        .await;
        let len = int_reply(&redis_cmd(redis.port, &["XLEN", "tollgate:ops"]));
        assert!(
            settled,
            "the log was trimmed to the live state: {len} of {peak_len} entries left"
        );
    } else {
        // Let the tokens expire all the same, so both runs are measured on the same live set.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let len = int_reply(&redis_cmd(redis.port, &["XLEN", "tollgate:ops"]));
    let mem = used_memory(redis.port);
    // A new replica starts (from the snapshot, when there is one): live records intact.
    let t = Instant::now();
    let b = Proc::start(&cfg);
    let snap_start = t.elapsed();
    let call = |t: &str, h: &str| {
        let (c, url, t, h) = (
            c.clone(),
            format!("http://{}/api/x", b.addr),
            t.to_owned(),
            h.to_owned(),
        );
        async move {
            c.send("GET", &url, &[(h.as_str(), t.as_str())], "")
                .await
                .status
        }
    };
    assert_eq!(
        call(&bk, "bkflow-token").await,
        200,
        "a live token survives compaction"
    );
    assert_eq!(
        call(&jwt, "authorization").await,
        401,
        "a revocation survives compaction"
    );
    let list = c
        .send(
            "GET",
            &format!("http://{}/admin/spaces/3/credentials", b.admin.unwrap()),
            &[],
            "",
        )
        .await
        .json();
    assert_eq!(list["credentials"][0]["name"], "prod", "{list}");
    let jwks = c
        .send(
            "GET",
            &format!("http://{}/.well-known/jwks.json", b.addr),
            &[],
            "",
        )
        .await
        .json();
    assert!(
        jwks.to_string().contains(&rotated),
        "the rotated ring: {jwks}"
    );
    let _ = peak_len;
    (len, mem, snap_start)
}

#[tokio::test]
async fn compaction_keeps_what_is_live_and_drops_history() {
    let (left, _, _) = compacted_run(1500, "1s").await;
    assert!(left < 50, "{left}");
}

#[tokio::test]
#[ignore = "a measurement: cargo test --release --test store_compact -- --ignored --nocapture"]
async fn compaction_bound_for_100k_tokens() {
    let (len_off, mem_off, start_off) = compacted_run(100_000, "1h").await;
    let (len_on, mem_on, start_on) = compacted_run(100_000, "1s").await;
    println!(
        "100000 tokens issued and expired: stream entries {len_off} without compaction, {len_on} with; Redis used_memory {} KiB vs {} KiB; a new replica starts in {start_off:?} vs {start_on:?}",
        mem_off / 1024,
        mem_on / 1024
    );
}

#[tokio::test]
async fn a_replica_paused_past_the_trimmed_log_resynchronises_from_the_snapshot() {
    let redis = RedisServer::start();
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gw.yaml",
        &config(dir.path(), &redis, &up, "1s"),
    );
    let (a, b) = (Proc::start(&cfg), Proc::start(&cfg));
    let c = TestClient::plain();
    // B stops reading the log (SIGSTOP) while A issues, compacts and trims past it.
    b.signal("STOP");
    let apply = |id: &str| json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE", "resource_id": id, "permission_type": "VIEW"});
    let early = post(&c, &a, "/space/3/apply_token/", &apply("early")).await["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    churn(&c, &a, 200).await;
    let trimmed = support::eventually(Duration::from_secs(20), || async {
        redis_cmd(redis.port, &["GET", "tollgate:trimmed_to"]).starts_with('$')
            && int_reply(&redis_cmd(redis.port, &["XLEN", "tollgate:ops"])) < 50
    })
    .await;
    assert!(trimmed, "A compacted and trimmed while B was stopped");
    b.signal("CONT");
    // The token issued while B was away is known to B once it has resynchronised.
    let seen = support::eventually(Duration::from_secs(15), || async {
        c.send(
            "GET",
            &format!("http://{}/api/x", b.addr),
            &[("bkflow-token", early.as_str())],
            "",
        )
        .await
        .status
            == 200
    })
    .await;
    // Log lines reach stderr through a writer thread: wait a little for the one that matters.
    let mut all: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !all.iter().any(|l| l.contains("resynchronising")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match b.lines.recv_timeout(left) {
            Ok(l) if !l.contains("\"tollgate::access\"") => all.push(l),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let resynced = all.iter().any(|l| l.contains("resynchronising"));
    assert!(
        seen,
        "B knows a token issued while it was stopped\n{}",
        all.join("\n")
    );
    assert!(
        resynced,
        "B noticed the gap and started over from the snapshot"
    );
}
