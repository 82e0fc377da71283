//! The shared store's costs (issue 28), as same-run ratios:
//!
//! 1. `wait_replicas: 1`: latency of bkflow issuance and revocation through the real binary on a
//!    real Redis primary with one replica, with and without `WAIT 1`, in alternating rounds.
//! 2. The sequence check: a new replica starting on a stream of 100 000 entries (wall time to
//!    its listening line), and in-process the check of those 100 000 entries (MAC over sequence
//!    and content, then the place) against a MAC over the content alone, the same entries.
//!
//! `cargo bench --bench store_redis` (ROUNDS=3, N=500 writes a round, ENTRIES=100000). Not a
//! timed test: a table to read.

#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::bin::{write, Proc};
use support::redis::RedisServer;
use support::{TestClient, Upstream};
use tollgate::store::credentials::MasterKey;
use tollgate::store::op::{BkRow, Op};
use tollgate::store::redis::log;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const BODY: &str = r#"signing: { issuer: https://gw.test, algorithm: ES256 }
apps:
  - { id: app, secret: app-secret, space_id: 3, user: admin, grants: [{ resource: TEMPLATE, id: "*", permission: MOCK }] }
dialects: { bkflow: { prefix: "" } }
limits: { token_rate: { per_ip: 1000000/s, per_ip_burst: 1000000, per_app: 1000000/s, per_app_burst: 1000000 } }
"#;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// `n` issuances then `n` revocations, one at a time; their latencies (ms).
async fn writes(c: &TestClient, gw: &Proc, n: usize, round: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut issue, mut revoke) = (Vec::new(), Vec::new());
    let mut tokens = Vec::new();
    for i in 0..n {
        let body = json!({"bk_app_code": "app", "bk_app_secret": "app-secret", "resource_type": "TEMPLATE",
                          "resource_id": format!("r{round}-{i}"), "permission_type": "VIEW"});
        let t = Instant::now();
        let r = c
            .post_json(
                &format!("http://{}/space/3/apply_token/", gw.addr),
                &[],
                &body.to_string(),
            )
            .await;
        issue.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.status, 200, "{}", r.body);
        tokens.push((body, r.json()["data"]["token"].as_str().unwrap().to_owned()));
    }
    for (mut body, token) in tokens {
        body["token"] = token.into();
        let t = Instant::now();
        let r = c
            .post_json(
                &format!("http://{}/space/3/revoke_token/", gw.addr),
                &[],
                &body.to_string(),
            )
            .await;
        revoke.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    (issue, revoke)
}

async fn wait_cost(rounds: usize, n: usize) {
    let primary =
        RedisServer::start_with(&["--repl-diskless-sync-delay".to_owned(), "0".to_owned()]);
    let dir = tempfile::tempdir().unwrap();
    let replica = RedisServer::start_with(&[
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        primary.port.to_string(),
        "--dir".to_owned(),
        dir.path().display().to_string(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while support::redis::resp_field(
        &support::redis::redis_cmd(replica.port, &["INFO", "replication"]),
        "master_link_status",
    )
    .as_deref()
        != Some("up")
    {
        assert!(Instant::now() < deadline, "the replica did not link");
        std::thread::sleep(Duration::from_millis(100));
    }
    let up = Upstream::echo().await;
    let c = TestClient::plain();
    let cfg = |wait: u32| {
        let extra = format!(", wait_replicas: {wait}");
        let yaml = support::redis::replica_config(dir.path(), &primary, &up.url(), &extra, BODY);
        write(dir.path(), &format!("gw{wait}.yaml"), &yaml)
    };
    let (no_wait, wait1) = (Proc::start(&cfg(0)), Proc::start(&cfg(1)));
    let mut rows: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let gw = if which == 0 { &no_wait } else { &wait1 };
            let (i, r) = writes(&c, gw, n, round * 2 + which).await;
            rows[which].0.extend(i);
            rows[which].1.extend(r);
        }
    }
    println!("| setting | issue p50 ms | issue p99 ms | revoke p50 ms | revoke p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut p50s = Vec::new();
    for (name, (i, r)) in ["wait_replicas: 0", "wait_replicas: 1"]
        .iter()
        .zip(rows.iter_mut())
    {
        let (i50, i99, r50, r99) = (pct(i, 0.5), pct(i, 0.99), pct(r, 0.5), pct(r, 0.99));
        p50s.push((i50, r50));
        println!("| {name} | {i50:.2} | {i99:.2} | {r50:.2} | {r99:.2} |");
    }
    println!(
        "\nissue p50 ×{:.2}, revoke p50 ×{:.2} with WAIT 1 ({} writes of each kind per setting)\n",
        p50s[1].0 / p50s[0].0,
        p50s[1].1 / p50s[0].1,
        rounds * n
    );
}

/// `entries` bkflow-token entries: (sequence, ops JSON).
fn entries(n: usize) -> Vec<(u64, String)> {
    let far = 4_000_000_000_000u64;
    (0..n)
        .map(|i| {
            let mut token_hash = [0u8; 32];
            token_hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let op = Op::Bk(BkRow {
                id: i as u128 + 1,
                token_hash,
                space: 3,
                app: "app".into(),
                user: "admin".into(),
                resource: "TEMPLATE".into(),
                resource_id: format!("r{i}"),
                perm: "VIEW".into(),
                expires_ms: far,
            });
            (i as u64 + 1, serde_json::to_string(&[op]).unwrap())
        })
        .collect()
}

/// Writes `list` to `redis`'s stream as the gateway would (sequence, MAC, head).
fn fill(redis: &RedisServer, master: &MasterKey, list: &[(u64, String)]) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    for chunk in list.chunks(1000) {
        let mut p = redis::pipe();
        for (seq, json) in chunk {
            p.cmd("XADD")
                .arg("tollgate:ops")
                .arg("*")
                .arg("seq")
                .arg(seq)
                .arg("ops")
                .arg(json)
                .arg("mac")
                .arg(log::entry_tag(master, *seq, json))
                .ignore();
        }
        p.query::<()>(&mut con).unwrap();
    }
    let last = list.len() as u64;
    redis::pipe()
        .cmd("SET")
        .arg("tollgate:seq")
        .arg(last)
        .ignore()
        .cmd("SET")
        .arg("tollgate:head")
        .arg(log::head_tag(master, last))
        .ignore()
        .query::<()>(&mut con)
        .unwrap();
}

async fn catch_up_cost(rounds: usize, n: usize) {
    let up = Upstream::echo().await;
    let master = MasterKey::parse(&"7f".repeat(32)).unwrap();
    let list = entries(n);
    let macs: Vec<String> = list
        .iter()
        .map(|(seq, json)| log::entry_tag(&master, *seq, json))
        .collect();
    let plain: Vec<String> = list
        .iter()
        .map(|(_, json)| master.fingerprint(&[b"content only", json.as_bytes()]))
        .collect();
    let (mut start, mut with_seq, mut without) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // In process: the same entries checked both ways, in alternating order.
        for first in [round % 2 == 0, round % 2 == 1] {
            let t = Instant::now();
            let mut held = 0;
            if first {
                for ((seq, json), mac) in list.iter().zip(&macs) {
                    let ok = log::entry_tag(&master, *seq, json) == *mac;
                    assert!(ok && log::step(held, *seq) == log::Step::Apply);
                    held = *seq;
                }
                with_seq.push(t.elapsed().as_secs_f64() * 1000.0);
            } else {
                for ((_, json), mac) in list.iter().zip(&plain) {
                    let ok = master.fingerprint(&[b"content only", json.as_bytes()]) == *mac;
                    assert!(ok);
                }
                without.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let yaml = support::redis::replica_config(dir.path(), &redis, &up.url(), "", BODY);
        let cfg = write(dir.path(), "gw.yaml", &yaml);
        fill(&redis, &master, &list);
        let t = Instant::now();
        let gw = Proc::start(&cfg);
        start.push(t.elapsed().as_secs_f64());
        drop(gw);
    }
    let (s, w, o) = (
        pct(&mut start, 0.5),
        pct(&mut with_seq, 0.5),
        pct(&mut without, 0.5),
    );
    println!("| {n} entries (median of {rounds}) | time |");
    println!("|---|---:|");
    println!("| a new replica reads them all and listens | {s:.2} s |");
    println!("| in process: MAC over sequence + content, and the place checked | {w:.1} ms |");
    println!("| in process: MAC over the content alone | {o:.1} ms |");
    println!(
        "\nsequence check: ×{:.2} the check without it; {:.1}% of the start-up\n",
        w / o,
        (w - o).max(0.0) / (s * 1000.0) * 100.0
    );
}

#[tokio::main]
async fn main() {
    let rounds = env_usize("ROUNDS", 3);
    wait_cost(rounds, env_usize("N", 500)).await;
    catch_up_cost(rounds, env_usize("ENTRIES", 100_000)).await;
}
