//! Forwarding: upstream failures, round robin, edge limits and request-head hygiene.

mod support;

use std::time::{Duration, Instant};
use support::{app_yaml, dead_addr, raw, Gateway, Upstream};

fn yaml(targets: &[String], timeout: &str) -> String {
    let list = targets
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"{}upstreams:
  product: {{ targets: [{list}], connect_timeout: 1s, timeout: {timeout} }}
routes:
  - {{ path: /open/*rest, upstream: product, auth: none }}
  - {{ path: /guarded, upstream: product, auth: bearer }}
limits: {{ token_body_bytes: 1024, header_read_timeout: 1s, max_headers: 20 }}
"#,
        app_yaml()
    )
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504_within_the_timeout() {
    let gw = Gateway::start(&yaml(&[format!("http://{}", dead_addr())], "1s")).await;
    let r = gw.get("/open/x", &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["errMsg"], "upstream unavailable");

    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&[up.url()], "1s")).await;
    let started = Instant::now();
    let r = gw.get("/open/slow", &[]).await;
    let took = started.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["errMsg"], "upstream timed out");
    assert!(
        took < Duration::from_secs(4),
        "answered after {took:?}, the upstream sleeps 5 s"
    );
}

#[tokio::test]
async fn round_robin_skips_a_target_that_refuses() {
    let a = Upstream::echo().await;
    let b = Upstream::echo().await;
    let dead = format!("http://{}", dead_addr());
    let gw = Gateway::start(&yaml(&[a.url(), dead, b.url()], "2s")).await;
    for _ in 0..9 {
        let r = gw.get("/open/rr", &[]).await;
        assert_eq!(
            r.status, 200,
            "a bodyless request is retried on the next target: {}",
            r.body
        );
    }
    let rid = gw.get("/open/rr", &[]).await;
    let host = rid.json()["headers"]["host"].as_str().unwrap().to_owned();
    assert!(host == a.addr.to_string() || host == b.addr.to_string());
}

#[tokio::test]
async fn hop_by_hop_and_host_rules_hold_on_the_wire() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&[up.url()], "2s")).await;
    let dup = raw(
        gw.addr,
        b"GET /open/x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(dup.starts_with("HTTP/1.1 400"), "{dup}");
    assert!(dup.contains("more than one Host"));
    let missing = raw(
        gw.addr,
        b"GET /open/x HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(missing.starts_with("HTTP/1.1 400"), "{missing}");
    // Absolute form: the path checked is the path forwarded, and the guard still applies.
    let abs = raw(
        gw.addr,
        b"GET http://evil.example/guarded HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(abs.starts_with("HTTP/1.1 401"), "{abs}");
    let abs = raw(
        gw.addr,
        b"GET http://evil.example/open/%61bc HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(abs.contains("\"path\":\"/open/abc\""), "{abs}");
    assert!(
        abs.contains("\"x-forwarded-host\":\"evil.example\""),
        "{abs}"
    );
    // An Upgrade request meets the guard like any other before anything is upgraded.
    let up_req = raw(
        gw.addr,
        b"GET /guarded HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert!(up_req.starts_with("HTTP/1.1 401"), "{up_req}");
    let open_up = raw(gw.addr, b"GET /open/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n").await;
    assert!(
        open_up.starts_with("HTTP/1.1 200") && open_up.contains("\"upgrade\":\"websocket\""),
        "{open_up}"
    );
    // h2c through a gateway is request smuggling: every request on the tunnel would bypass it.
    for proto in ["h2c", "websocket, h2c", "HTTP/2.0"] {
        let smuggle = raw(gw.addr, format!("GET /open/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: {proto}\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n").as_bytes()).await;
        assert!(smuggle.starts_with("HTTP/1.1 400"), "{proto}: {smuggle}");
        assert!(smuggle.contains("bypass the gateway"), "{smuggle}");
    }
}

#[tokio::test]
async fn oversized_heads_and_token_bodies_are_refused() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&[up.url()], "2s")).await;
    let mut many = String::from("GET /open/x HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let r = raw(gw.addr, many.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    let big = format!(
        "GET /open/x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let r = raw(gw.addr, big.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{}", &r[..r.len().min(200)]);
    let body = format!(
        r#"{{"app_id":"coupang","app_secret":"{}"}}"#,
        "x".repeat(2000)
    );
    let r = gw
        .client
        .send("POST", &gw.url("/oauth/token/get"), &[], &body)
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn a_slow_client_is_cut_off_by_the_header_read_timeout() {
    use tokio::io::AsyncWriteExt as _;
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&[up.url()], "2s")).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /open/x HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        read_until_closed(&mut s).await.is_some(),
        "the connection stayed open past the 1 s header timeout"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// Everything the gateway sends until it closes the connection; `None` if it is still open
/// after 5 s.
async fn read_until_closed(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    read.ok()?.expect("reading the gateway's answer");
    Some(buf)
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_cut_off_by_the_header_read_timeout() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&[up.url()], "2s")).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    let buf = read_until_closed(&mut s)
        .await
        .expect("a silent connection stayed open past the 1 s header timeout");
    assert!(buf.is_empty(), "nothing was asked, nothing is answered");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_client_that_shuts_its_side_after_the_request_still_gets_the_answer() {
    use tokio::io::AsyncWriteExt as _;
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&[up.url()], "2s")).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /open/half HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let buf = read_until_closed(&mut s)
        .await
        .expect("the gateway closes once it has answered");
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("/open/half"),
        "the upstream saw the request: {answer}"
    );
}

#[tokio::test]
async fn bodies_stream_to_the_upstream_unchanged() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&[up.url()], "2s")).await;
    // Not one byte repeated: a chunk lost, doubled or reordered on either way shows.
    let body: String = (0..60_000u32)
        .map(|i| format!("{:05}", i * 7 % 99_991))
        .collect();
    let r = gw
        .client
        .send(
            "POST",
            &gw.url("/open/upload"),
            &[("content-type", "text/plain")],
            &body,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"].as_str(), Some(body.as_str()));
    assert_eq!(r.json()["method"], "POST");
}
