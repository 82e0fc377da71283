//! Issue 11, resilience: active health checks take a failing target out of rotation and bring
//! it back, passive ejection, all targets down is 503 at once, and retries that go to the next
//! target for what is safe to repeat but never send a write twice.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;
use support::servers::{swallower, Switchable};
use support::{app_yaml, dead_addr, eventually, Gateway, TestClient};

async fn metrics(gw: &Gateway) -> String {
    TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body
}

/// The statuses of two requests (sorted): round robin starts one of them at each of two targets.
async fn two(gw: &Gateway, method: &str, path: &str, body: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let r = match method {
            "GET" => gw.get(path, &[]).await,
            _ => gw.post(path, &[], body).await,
        };
        statuses.push(r.status.as_u16());
    }
    statuses.sort();
    statuses
}

fn one_route(upstream: &str) -> String {
    format!(
        "{}upstreams:\n{upstream}routes:\n  - {{ path: /api/*rest, upstream: api, auth: none }}\n",
        app_yaml()
    )
}

#[tokio::test]
async fn an_unhealthy_target_leaves_the_rotation_within_interval_times_unhealthy_and_comes_back() {
    let (a, b) = (Switchable::start().await, Switchable::start().await);
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"{}\", \"{}\"], health: {{ path: /health, interval: 200ms, timeout: 100ms, healthy: 2, unhealthy: 2 }} }}\n",
        a.url(),
        b.url()
    )))
    .await;
    for _ in 0..4 {
        assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    }
    assert_eq!(
        (a.served(), b.served()),
        (2, 2),
        "round robin while both pass"
    );

    a.health.store(500, Ordering::SeqCst);
    // interval × unhealthy = 400 ms; the verdict lands within a few probe rounds.
    let out = eventually(Duration::from_secs(3), || async {
        metrics(&gw).await.contains(&format!(
            "tollgate_upstream_healthy{{target=\"{}\",upstream=\"api\"}} 0",
            a.url()
        ))
    })
    .await;
    assert!(out, "{}", metrics(&gw).await);
    let before = a.served();
    for _ in 0..6 {
        assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    }
    assert_eq!(
        a.served(),
        before,
        "no request reaches the unhealthy target"
    );

    a.health.store(200, Ordering::SeqCst);
    let back = eventually(Duration::from_secs(3), || async {
        let n = a.served();
        gw.get("/api/x", &[]).await;
        gw.get("/api/x", &[]).await;
        a.served() > n
    })
    .await;
    assert!(back, "the target is back after `healthy` passing probes");

    // Every target failing its checks: 503 at once, with Retry-After, and nothing sent.
    a.health.store(503, Ordering::SeqCst);
    b.health.store(503, Ordering::SeqCst);
    let down = eventually(Duration::from_secs(3), || async {
        gw.get("/api/x", &[]).await.status == 503
    })
    .await;
    assert!(down);
    let (sa, sb) = (a.served(), b.served());
    let r = gw.get("/api/x", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["errMsg"],
        "no healthy upstream target; try again later"
    );
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!((a.served(), b.served()), (sa, sb));
}

#[tokio::test]
async fn consecutive_failures_eject_a_target_for_a_while() {
    let (a, b) = (Switchable::start().await, Switchable::start().await);
    a.status.store(503, Ordering::SeqCst);
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"{}\", \"{}\"], passive: {{ failures: 2, eject_for: 1s }}, retries: {{ attempts: 1 }} }}\n",
        a.url(),
        b.url()
    )))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(gw.get("/api/x", &[]).await.status.as_u16());
    }
    assert_eq!(
        statuses,
        [503, 200, 503, 200],
        "no retry: the 503s pass through"
    );
    assert_eq!(a.served(), 2);
    // Two 503s in a row: out for 1 s.
    for _ in 0..4 {
        assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    }
    assert_eq!(a.served(), 2, "ejected");
    assert!(metrics(&gw).await.contains(&format!(
        "tollgate_upstream_healthy{{target=\"{}\",upstream=\"api\"}} 0",
        a.url()
    )));
    a.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    }
    assert_eq!(a.served(), 3, "back after eject_for");

    // A reload that drops a target drops its series too; the kept one stays.
    gw.reload(&one_route(&format!(
        "  api: {{ targets: [\"{}\"] }}\n",
        b.url()
    )));
    let m = metrics(&gw).await;
    assert!(!m.contains(&a.url()), "{m}");
    assert!(
        m.contains(&format!(
            "tollgate_upstream_healthy{{target=\"{}\",upstream=\"api\"}} 1",
            b.url()
        )),
        "{m}"
    );
}

#[tokio::test]
async fn a_get_and_an_unsent_post_go_to_the_next_target_when_the_connection_is_refused() {
    let b = Switchable::start().await;
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"http://{}\", \"{}\"], passive: {{ failures: 0 }} }}\n",
        dead_addr(),
        b.url()
    )))
    .await;
    // Round robin starts one of each pair at the dead target.
    for _ in 0..2 {
        assert_eq!(gw.get("/api/x", &[]).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(gw.post("/api/x", &[], "{\"n\":1}").await.status, 200);
    }
    assert_eq!(b.served(), 4);
    assert!(
        metrics(&gw)
            .await
            .contains("tollgate_upstream_retries_total{upstream=\"api\"} 2"),
        "{}",
        metrics(&gw).await
    );
    // A body over retry_body_bytes streams and is never held for a retry.
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"http://{}\", \"{}\"], passive: {{ failures: 0 }}, retry_body_bytes: 4 }}\n",
        dead_addr(),
        b.url()
    )))
    .await;
    let statuses = two(&gw, "POST", "/api/x", "{\"n\":12345}").await;
    assert_eq!(statuses, [200, 502]);
}

#[tokio::test]
async fn a_post_whose_body_was_sent_is_never_sent_again() {
    let (sink, swallowed, _task) = swallower().await;
    let b = Switchable::start().await;
    let gw = Gateway::start(&one_route(&format!(
        "  api: {{ targets: [\"http://{sink}\", \"{}\"], passive: {{ failures: 0 }}, retries: {{ attempts: 3, on: [connect-failure, refused-stream, 502, 503] }} }}\n",
        b.url()
    )))
    .await;
    let statuses = two(&gw, "POST", "/api/x", "{\"pay\":100}").await;
    assert_eq!(
        statuses,
        [200, 502],
        "the swallowed POST is reported, not repeated"
    );
    assert_eq!(swallowed.load(Ordering::SeqCst), 1);
    assert_eq!(b.served(), 1, "only the POST that started there");

    // A GET the same target swallows is safe to repeat... but only on the configured
    // outcomes: a broken exchange is not one of them, so it is not repeated either.
    let statuses = two(&gw, "GET", "/api/x", "").await;
    assert_eq!(statuses, [200, 502]);

    // A 503 is: a GET answered 503 goes to the next target, a POST does not.
    b.status.store(503, Ordering::SeqCst);
    let c = Switchable::start().await;
    gw.reload(&one_route(&format!(
        "  api: {{ targets: [\"{}\", \"{}\"], passive: {{ failures: 0 }}, retries: {{ attempts: 2, on: [503] }} }}\n",
        b.url(),
        c.url()
    )));
    let (b0, c0) = (b.served(), c.served());
    for _ in 0..2 {
        assert_eq!(gw.get("/api/y", &[]).await.status, 200);
    }
    assert_eq!((b.served() - b0, c.served() - c0), (1, 2));
    let statuses = two(&gw, "POST", "/api/y", "{}").await;
    assert_eq!(statuses, [200, 503]);
}
