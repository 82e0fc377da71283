//! Noisy neighbours (issue 26): legitimate clients at a steady rate beside each attack of the
//! isolation review in turn, and beside 10 concurrent key rotations. For every phase the same
//! legitimate load runs once alone and once with the attack; their success rate and latency
//! (p50, p99) are printed as a markdown table. Not a timed test: a measurement to read.
//!
//! `cargo bench --bench noisy_neighbour` (PHASE_SECS=5 by default; LEGIT_RPS=200).
//! Everything runs in this process over loopback sockets: the gateway (2 workers), echo and
//! early-answering upstreams, and a TLS identity provider with a JWKS and RFC 7662 endpoint.

#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::idp::{Idp, IdpKey};
use support::servers::early_answerer;
use support::{Gateway, TestCa, TestClient, Upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One legitimate request: `Ok(())` when it got the answer it should.
type Legit = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;
/// An attack, run until the flag says stop.
type Attack = Box<dyn FnOnce(Arc<AtomicBool>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Outcome {
    sent: usize,
    ok: usize,
    p50_ms: f64,
    p99_ms: f64,
}

/// The legitimate load for `secs`: `rps` requests a second, each on its own task at its time.
async fn steady(legit: &Legit, rps: u64, secs: u64) -> Outcome {
    let start = tokio::time::Instant::now();
    let n = rps * secs;
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        tokio::time::sleep_until(start + Duration::from_micros(i * 1_000_000 / rps)).await;
        let f = legit();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = tokio::time::timeout(Duration::from_secs(10), f)
                .await
                .unwrap_or(false);
            (ok, t.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut ok = 0;
    for t in tasks {
        let (good, d) = t.await.unwrap();
        ok += usize::from(good);
        lat.push(d.as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Outcome {
        sent: lat.len(),
        ok,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

async fn phase(name: &str, legit: Legit, attack: Attack, rps: u64, secs: u64) {
    let quiet = steady(&legit, rps, secs).await;
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(attack(Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loud = steady(&legit, rps, secs).await;
    stop.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    let pct = |o: &Outcome| 100.0 * o.ok as f64 / o.sent as f64;
    println!(
        "| {name} | {:.1} % | {:.2} | {:.2} | {:.1} % | {:.2} | {:.2} |",
        pct(&quiet),
        quiet.p50_ms,
        quiet.p99_ms,
        pct(&loud),
        loud.p50_ms,
        loud.p99_ms
    );
}

/// Runs `one` in `n` loops until `stop`.
fn flood<F, Fut>(n: usize, one: F) -> Attack
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let one = Arc::new(one);
    Box::new(move |stop| {
        Box::pin(async move {
            let mut loops = Vec::new();
            for k in 0..n {
                let (one, stop) = (Arc::clone(&one), Arc::clone(&stop));
                loops.push(tokio::spawn(async move {
                    let mut i = k * 1_000_000;
                    while !stop.load(Ordering::Relaxed) {
                        one(i).await;
                        i += 1;
                    }
                }));
            }
            for l in loops {
                let _ = l.await;
            }
        })
    })
}

async fn raw_once(addr: SocketAddr, bytes: Vec<u8>) {
    if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
        let _ = s.write_all(&bytes).await;
        let mut buf = [0u8; 512];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    }
}

fn get_ok(client: &TestClient, url: String, auth: Option<String>) -> Legit {
    let client = client.clone();
    Arc::new(move || {
        let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
        Box::pin(async move {
            let h: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            client.send("GET", &url, &h, "").await.status == 200
        })
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs = env_u64("PHASE_SECS", 5);
    let rps = env_u64("LEGIT_RPS", 200);
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let key = IdpKey::es256("k1");
    let idp = Idp::start(&ca, &[&key]).await;
    idp.answers.lock().unwrap().insert(
        "legit-opaque".into(),
        json!({"active": true, "client_id": "billing", "scope": "read", "exp": now() + 3600,
               "iss": "https://idp.bench", "aud": "api"}),
    );
    let up = Upstream::echo().await;
    let (early, _) = early_answerer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let yaml = format!(
        r#"{apps}issuers:
  - name: kc
    issuer: https://idp.bench
    jwks_url: {jwks}
    introspection_url: {intro}
    client_id: gw
    client_secret: gw-secret
    ca_file: {ca}
    audiences: [api]
    algorithms: [ES256]
upstreams:
  api: {{ targets: ["{up}"], passive: {{ failures: 5, eject_for: 10s }} }}
  early: {{ targets: ["http://{early}"] }}
routes:
  - {{ path: /api/*rest, upstream: api }}
  - {{ path: /open/*rest, upstream: api, auth: none }}
  - {{ path: /early/*rest, upstream: early, auth: none }}
"#,
        apps = support::app_yaml(),
        jwks = idp.url("/jwks"),
        intro = idp.url("/introspect"),
        ca = ca.ca_file.display(),
        up = up.url(),
    );
    let gw = Gateway::start(&yaml).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = TestClient::plain();
    let addr = gw.addr;
    let own = gw.token().await;
    let idp_jwt = key.sign(
        &json!({"iss": "https://idp.bench", "aud": "api", "client_id": "billing",
                                   "scope": "read", "exp": now() + 3600, "iat": now()}),
    );

    println!("Legitimate load: {rps} req/s for {secs} s per column; p50/p99 in ms.\n");
    println!("| attack | success alone | p50 | p99 | success beside it | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");

    // (1) Malformed chunked bodies on an auth: none route of the same upstream.
    let bad = b"POST /open/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nAAAAA\r\nZZ\r\n".to_vec();
    let attack = flood(4, move |_| raw_once(addr, bad.clone()));
    let legit = get_ok(&client, gw.url("/api/x"), Some(own.clone()));
    phase(
        "malformed chunked bodies (4 loops)",
        legit,
        attack,
        rps,
        secs,
    )
    .await;

    // (2) Trickling bodies to an upstream that answers early.
    let attack: Attack = Box::new(move |stop| {
        Box::pin(async move {
            let mut socks = Vec::new();
            for _ in 0..20 {
                if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                    let head =
                        b"POST /early/up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nx";
                    let _ = s.write_all(head).await;
                    socks.push(s);
                }
            }
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                for s in &mut socks {
                    let _ = s.write_all(b"x").await;
                }
            }
        })
    });
    let legit = get_ok(&client, gw.url("/early/x"), None);
    phase("20 trickling 100 KB bodies", legit, attack, rps, secs).await;

    // (3) Random opaque tokens: every one unknown to the introspecting IdP.
    let calls_before = idp.calls();
    let c2 = client.clone();
    let url = gw.url("/api/x");
    let attack = flood(8, move |i| {
        let (c, url) = (c2.clone(), url.clone());
        async move {
            let auth = format!("Bearer random-{i}-{}", i.wrapping_mul(7919));
            let _ = c.send("GET", &url, &[("authorization", &auth)], "").await;
        }
    });
    let legit = get_ok(
        &client,
        gw.url("/api/x"),
        Some("Bearer legit-opaque".into()),
    );
    phase("random opaque tokens (8 loops)", legit, attack, rps, secs).await;
    let introspections = idp.calls() - calls_before;

    // (4) Wrong secrets on the token endpoint from the legitimate clients' own address.
    let c3 = client.clone();
    let token_url = gw.url("/oauth/token/get");
    let attack = flood(4, move |i| {
        let (c, url) = (c3.clone(), token_url.clone());
        async move {
            let app = if i % 2 == 0 { "coupang" } else { "plain" };
            let body = format!(r#"{{"app_id":"{app}","app_secret":"wrong-{i}"}}"#);
            let _ = c.post_json(&url, &[], &body).await;
        }
    });
    let c4 = client.clone();
    let token_url = gw.url("/oauth/token/get");
    let legit: Legit = Arc::new(move || {
        let (c, url) = (c4.clone(), token_url.clone());
        Box::pin(async move {
            let body = format!(
                r#"{{"app_id":"coupang","app_secret":"{}"}}"#,
                support::SECRET
            );
            c.post_json(&url, &[], &body).await.status == 200
        })
    });
    phase(
        "wrong secrets from the same address",
        legit,
        attack,
        rps / 4,
        secs,
    )
    .await;

    // (5) Tokens signed under made-up kids.
    let fetches_before = idp.fetches();
    let stranger = Arc::new(IdpKey::es256("x"));
    let c5 = client.clone();
    let url = gw.url("/api/x");
    let attack = flood(4, move |i| {
        let (c, url, k) = (c5.clone(), url.clone(), Arc::clone(&stranger));
        async move {
            let t = k.sign_as(
                &format!("made-up-{i}"),
                &json!({"iss": "https://idp.bench", "aud": "api",
                                  "client_id": "x", "exp": now() + 600}),
            );
            let _ = c
                .send(
                    "GET",
                    &url,
                    &[("authorization", &format!("Bearer {t}"))],
                    "",
                )
                .await;
        }
    });
    let legit = get_ok(&client, gw.url("/api/x"), Some(format!("Bearer {idp_jwt}")));
    phase("made-up kids (4 loops)", legit, attack, rps, secs).await;
    let jwks_fetches = idp.fetches() - fetches_before;

    // (6) 10 concurrent signing-key rotations (RS256 generation), repeated.
    let admin = gw.admin_url("/admin/keys/rotate");
    let c6 = client.clone();
    let rotations = Arc::new(AtomicUsize::new(0));
    let r2 = Arc::clone(&rotations);
    let attack = flood(10, move |_| {
        let (c, url, n) = (c6.clone(), admin.clone(), Arc::clone(&r2));
        async move {
            if c.send("POST", &url, &[], "").await.status == 200 {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let legit = get_ok(&client, gw.url("/api/x"), Some(own.clone()));
    phase("10 concurrent key rotations", legit, attack, rps, secs).await;

    println!(
        "\nIdP introspection calls during the random-token phase: {introspections}; \
         JWKS fetches during the made-up-kid phase: {jwks_fetches}; \
         key rotations that went through: {}.",
        rotations.load(Ordering::Relaxed)
    );
    drop(gw);
}
