//! Issue 26: what one client does never costs another. Each test plays an attack over real
//! sockets beside a legitimate client and checks the legitimate one is unaffected.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::servers::{early_answerer, Switchable};
use support::{app_yaml, Gateway, TestClient};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn one_route(upstream: &str) -> String {
    format!(
        "{}upstreams:\n{upstream}routes:\n  - {{ path: /api/*rest, upstream: api, auth: none }}\n",
        app_yaml()
    )
}

/// Sends `bytes` on a new connection and returns the status line's code (0 when none came).
async fn status_of(addr: std::net::SocketAddr, bytes: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut head = [0u8; 12];
    match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut head)).await {
        Ok(Ok(_)) => String::from_utf8_lossy(&head[9..]).parse().unwrap_or(0),
        _ => 0,
    }
}

#[tokio::test]
async fn malformed_bodies_never_take_the_target_out_of_service() {
    let up = Switchable::start().await;
    // One target, ejected after 5 failures for 10 s: what the attack used to trigger.
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"{}\"], passive: {{ failures: 5, eject_for: 10s }} }}\n",
        up.url()
    )))
    .await;
    let bad = b"POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nAAAAA\r\nZZ\r\n";
    for _ in 0..20 {
        assert_eq!(status_of(gw.addr, bad).await, 400);
    }
    let m = gw.metrics().await;
    assert!(
        !m.contains("tollgate_upstream_errors_total{"),
        "a client's bad body is not the upstream's error:\n{m}"
    );
    assert!(m.contains(&format!(
        "tollgate_upstream_healthy{{target=\"{}\",upstream=\"api\"}} 1",
        up.url()
    )));
    // Another client, on its own connection, for 15 s: every request answered 200.
    let client = TestClient::plain();
    let until = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    while Instant::now() < until {
        let r = client.send("GET", &gw.url("/api/ok"), &[], "").await;
        assert_eq!(r.status, 200, "request {n}: {}", r.body);
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(n > 50);
}

#[tokio::test]
async fn a_trickling_body_never_holds_up_another_request() {
    let (up, conns) =
        early_answerer(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n").await;
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"http://{up}\"] }}\n"
    )))
    .await;
    // The attacker: 100 000 bytes announced, one byte every 4 s (inside body_read_timeout).
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nx")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    slow.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 401", "the upstream refused it early");
    let trickle = tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            if slow.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    // Everyone else: 20 requests, each answered at once.
    let client = TestClient::plain();
    for i in 0..20 {
        let started = Instant::now();
        let r = client.send("GET", &gw.url("/api/other"), &[], "").await;
        assert_eq!(r.status, 401, "request {i}: the upstream's own answer");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "request {i} waited {:?} behind another's body",
            started.elapsed()
        );
    }
    assert!(
        conns.load(Ordering::SeqCst) >= 2,
        "the streaming connection was not handed to anyone else"
    );
    trickle.abort();
}

#[tokio::test]
async fn a_web_page_cannot_drive_the_admin_api_and_rotations_are_bounded() {
    let up = Switchable::start().await;
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"{}\"] }}\n",
        up.url()
    )))
    .await;
    let admin = TestClient::plain();
    let url = |p: &str| gw.admin_url(p);
    let own = format!("http://{}", gw.admin.unwrap());
    let token = gw.token().await;
    let form = format!("token={}", token.trim_start_matches("Bearer "));
    // What a browser adds to a cross-site request, each alone.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("origin", "http://127.0.0.1"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = admin
            .send("POST", &url("/admin/keys/rotate"), &[(name, value)], "")
            .await;
        assert_eq!(r.status, 403, "{name}: {value}: {}", r.body);
        let r = admin
            .send(
                "POST",
                &url("/admin/tokens/revoke"),
                &[
                    (name, value),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                &form,
            )
            .await;
        assert_eq!(r.status, 403, "{name}: {value}: {}", r.body);
    }
    let jwks = gw.get("/.well-known/jwks.json", &[]).await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "nothing rotated");
    let r = admin
        .send(
            "POST",
            &url("/admin/introspect"),
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        )
        .await;
    assert_eq!(r.json()["active"], true, "nothing revoked: {}", r.body);
    // The operator's own tools: curl (no Origin), or a page served by the listener itself.
    let r = admin
        .send("POST", &url("/admin/keys/rotate"), &[], "")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin
        .send(
            "POST",
            &url("/admin/keys/rotate"),
            &[("origin", &own), ("sec-fetch-site", "same-origin")],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Many rotations: a few pass, the rest wait, the JWKS stays small.
    let mut limited = 0;
    for _ in 0..20 {
        let r = admin
            .send("POST", &url("/admin/keys/rotate"), &[], "")
            .await;
        if r.status == 429 {
            assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
            limited += 1;
        } else {
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    assert!(
        limited >= 18,
        "rotations are rate limited ({limited} of 20)"
    );
    let jwks = gw.get("/.well-known/jwks.json", &[]).await.json();
    assert!(jwks["keys"].as_array().unwrap().len() <= 5, "{jwks}");
}
