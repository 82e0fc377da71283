//! Issue 12: plain HTTP/1.1 upstreams are reached over connections the gateway keeps and
//! reuses itself: one connection serves many requests, a connection the upstream closed is
//! skipped (the request is sent once, on a fresh one), and kept connections past
//! `idle_timeout` are closed.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{app_yaml, eventually, Gateway};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// What a test upstream saw: connections accepted, requests answered, connections the
/// gateway closed.
#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    answered: AtomicUsize,
    closed_by_peer: AtomicUsize,
}

/// A minimal HTTP/1.1 upstream for GETs without bodies: answers `{}` with a length; with
/// `close_after_answer` it closes the connection after each answer without saying so.
async fn upstream(close_after_answer: bool) -> (SocketAddr, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            s.accepted.fetch_add(1, Ordering::SeqCst);
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => {
                            s.closed_by_peer.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        s.answered.fetch_add(1, Ordering::SeqCst);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        if tcp.write_all(answer).await.is_err() {
                            return;
                        }
                        if close_after_answer {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn gateway_yaml(addr: SocketAddr, idle_timeout: &str) -> String {
    format!(
        "{}upstreams:\n  api: {{ targets: [\"http://{addr}\"], idle_timeout: {idle_timeout} }}\nroutes:\n  - {{ path: /api/*rest, upstream: api, auth: none }}\n",
        app_yaml()
    )
}

#[tokio::test]
async fn one_kept_connection_serves_many_requests() {
    let (addr, seen) = upstream(false).await;
    let gw = Gateway::start(&gateway_yaml(addr, "30s")).await;
    for _ in 0..20 {
        assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    }
    assert_eq!(seen.answered.load(Ordering::SeqCst), 20);
    assert_eq!(
        seen.accepted.load(Ordering::SeqCst),
        1,
        "twenty requests in a row share one upstream connection"
    );

    // Eight at a time: never more connections than requests in flight.
    let mut batch = tokio::task::JoinSet::new();
    let gw = Arc::new(gw);
    for _ in 0..8 {
        let gw = Arc::clone(&gw);
        batch.spawn(async move {
            for _ in 0..10 {
                assert_eq!(gw.get("/api/y", &[]).await.status, 200);
            }
        });
    }
    while let Some(r) = batch.join_next().await {
        r.unwrap();
    }
    assert_eq!(seen.answered.load(Ordering::SeqCst), 100);
    assert!(
        seen.accepted.load(Ordering::SeqCst) <= 9,
        "at most one per request in flight"
    );
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_skipped_and_the_request_sent_once() {
    let (addr, seen) = upstream(true).await;
    let gw = Gateway::start(&gateway_yaml(addr, "30s")).await;
    for i in 1..=5 {
        let r = gw.get("/api/x", &[]).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
        // Let the upstream's close reach the kept connection.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen.answered.load(Ordering::SeqCst),
        5,
        "each request sent once"
    );
    assert_eq!(
        seen.accepted.load(Ordering::SeqCst),
        5,
        "a fresh connection each time"
    );
}

#[tokio::test]
async fn kept_connections_past_the_idle_timeout_are_closed() {
    let (addr, seen) = upstream(false).await;
    let gw = Gateway::start(&gateway_yaml(addr, "300ms")).await;
    assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    let closed = eventually(Duration::from_secs(3), || async {
        seen.closed_by_peer.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(closed, "the idle connection is closed by the gateway");
    assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    assert_eq!(
        seen.accepted.load(Ordering::SeqCst),
        2,
        "a new connection after the close"
    );
}
