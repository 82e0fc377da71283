//! The edge refuses what an upstream would misread and holds up against floods and slow
//! clients: each finding of the attack run, reproduced over raw sockets on loopback.

mod support;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::{raw, raw_from, Gateway, Upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn yaml(up: &Upstream, extra: &str) -> String {
    format!(
        r#"apps:
  - {{ id: coupang, secret: coupangTest, oauth_scopes: [bailunApi] }}
  - {{ id: second, secret: secondSecret }}
dialects:
  oauth: {{ path: /oauth/token/get }}
signing: {{ issuer: https://gw.test }}
upstreams:
  api: {{ targets: ["{}"], max_idle: 4, idle_timeout: 1s }}
routes:
  - {{ path: "/open/*rest", upstream: api, auth: none }}
  - {{ path: /product/update, upstream: api }}
  - {{ path: "/guarded/*rest", upstream: api }}
{extra}"#,
        up.url()
    )
}

fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n{headers}Connection: close\r\n\r\n")
        .into_bytes()
}

fn status(resp: &str) -> u16 {
    resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn paths_an_upstream_reads_differently_are_refused() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "")).await;
    for p in [
        "/open/..;/product/update",
        "/open/%252e%252e/product/update",
        "/open/%252e%252e%252fproduct%252fupdate",
        "/open/%C0%AE%C0%AE/product/update",
        "/open/%E0%80%AE%E0%80%AE/product/update",
        "/open/.;/product/update",
        "/open/x%3B/../product/update",
    ] {
        let r = raw(gw.addr, &get(p, "")).await;
        assert_eq!(status(&r), 400, "{p}: {r}");
    }
    // The SPEC cases still reach their routes.
    let r = raw(gw.addr, &get("/open/%61b%2Ec", "")).await;
    assert!(r.contains(r#""path":"/open/ab.c""#), "{r}");
    let r = raw(gw.addr, &get("//product/%75pdate", "")).await;
    assert_eq!(status(&r), 401, "the guarded route, disguised: {r}");
}

#[tokio::test]
async fn identity_headers_under_another_spelling_never_reach_the_upstream() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "")).await;
    let token = gw.token().await;
    for path in ["/open/x", "/guarded/x"] {
        let headers = format!(
            "Authorization: {token}\r\nX_Tollgate_App: admin\r\nx_tollgate_scope: all\r\nx-tollgate_user: root\r\nX_Forwarded_For: 10.0.0.1\r\nX_Request_Id: forged\r\nX-Other_Name: dropped\r\nX-Kept: yes\r\n"
        );
        let r = raw(gw.addr, &get(path, &headers)).await;
        assert_eq!(status(&r), 200, "{r}");
        let body = &r[r.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
        let h = v["headers"].as_object().unwrap();
        assert!(h.keys().all(|k| !k.contains('_')), "{path}: {h:?}");
        assert_eq!(h["x-kept"], "yes");
        if path == "/guarded/x" {
            assert_eq!(h["x-tollgate-app"], "coupang");
        }
    }
    // `headers.underscores_in_headers: allow` keeps other names, never a spelling of ours.
    let gw = Gateway::start(&yaml(&up, "headers: { underscores_in_headers: allow }\n")).await;
    let r = raw(
        gw.addr,
        &get("/open/x", "X_Tollgate_App: admin\r\nX-Other_Name: kept\r\n"),
    )
    .await;
    assert!(r.contains(r#""x-other_name":"kept""#), "{r}");
    assert!(!r.to_ascii_lowercase().contains("x_tollgate_app"), "{r}");
}

#[tokio::test]
async fn bad_hosts_and_disagreeing_targets_are_refused() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "")).await;
    for host in [
        "user@evil.example",
        "127.0.0.1:99999",
        "evil.example/x",
        "ev il.example",
        "a:0",
    ] {
        let req = format!("GET /open/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let r = raw(gw.addr, req.as_bytes()).await;
        assert_eq!(status(&r), 400, "Host {host:?}: {r}");
    }
    let r = raw(
        gw.addr,
        b"GET http://a.example/open/x HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), 400, "{r}");
    let ok = raw(
        gw.addr,
        b"GET /open/x HTTP/1.1\r\nHost: [::1]:8443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&ok), 200, "{ok}");
}

#[tokio::test]
async fn the_clients_framing_errors_are_the_clients_400() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "")).await;
    let huge = b"POST /open/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nabc\r\n0\r\n\r\n";
    let r = raw(gw.addr, huge).await;
    assert_eq!(status(&r), 400, "{r}");
    assert!(r.to_ascii_lowercase().contains("connection: close"), "{r}");
    let ext = format!(
        "POST /open/x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n3;{}\r\nabc\r\n0\r\n\r\n",
        "e".repeat(20_000)
    );
    let r = raw(gw.addr, ext.as_bytes()).await;
    assert_eq!(status(&r), 400, "{}", &r[..r.len().min(300)]);
    // The upstream is fine afterwards.
    let r = raw(gw.addr, &get("/open/after", "")).await;
    assert_eq!(status(&r), 200, "{r}");
}

#[tokio::test]
async fn a_long_target_is_414_and_a_big_head_431() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "")).await;
    let long = format!("/open/{}", "a".repeat(16 * 1024));
    let r = raw(gw.addr, &get(&long, "")).await;
    assert_eq!(status(&r), 414, "{}", &r[..r.len().min(200)]);
    let query = format!("/open/x?q={}", "b".repeat(9 * 1024));
    assert_eq!(status(&raw(gw.addr, &get(&query, "")).await), 414);
    let big = format!("X-Big: {}\r\n", "c".repeat(17 * 1024));
    assert_eq!(status(&raw(gw.addr, &get("/open/x", &big)).await), 431);
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_with_408() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(
        &up,
        "limits: { body_read_timeout: 1s, token_body_timeout: 3s }\n",
    ))
    .await;
    for path in ["/oauth/token/get", "/open/upload"] {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let head = format!("POST {path} HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n0123456789");
        s.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "{path}: the connection is closed, not held");
        let r = String::from_utf8_lossy(&out);
        assert_eq!(status(&r), 408, "{path}: {r}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn wrong_secrets_from_one_ip_are_limited_while_others_go_on() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(
        &up,
        "limits: { token_rate: { per_ip: 5/s, per_ip_burst: 20, per_app_failures: 10/min } }\n",
    ))
    .await;
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let post = |secret: &str| {
        let body = format!(r#"{{"app_id":"coupang","app_secret":"{secret}"}}"#);
        format!(
            "POST /oauth/token/get HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // The app's own client has authenticated once (from another address).
    assert_eq!(
        status(&raw_from(other, gw.addr, &post("coupangTest")).await),
        200
    );
    let mut statuses = Vec::new();
    for i in 0..200 {
        statuses.push(status(&raw(gw.addr, &post(&format!("wrong{i}"))).await));
    }
    let first_429 = statuses.iter().position(|s| *s == 429).expect("limited");
    assert_eq!(
        first_429, 10,
        "per-app failures lock after 10: {statuses:?}"
    );
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = raw(gw.addr, &post("wrong")).await;
    assert!(
        limited.contains("Retry-After") || limited.contains("retry-after"),
        "{limited}"
    );
    assert!(
        limited.contains(r#""statusCode":429"#),
        "oauth envelope: {limited}"
    );
    // Another client (another IP, the right secret) keeps getting tokens; so does another app.
    for _ in 0..3 {
        assert_eq!(
            status(&raw_from(other, gw.addr, &post("coupangTest")).await),
            200
        );
    }
    let second = br#"{"app_id":"second","app_secret":"secondSecret"}"#;
    let req = format!(
        "POST /oauth/token/get HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        second.len(),
        String::from_utf8_lossy(second)
    );
    assert_eq!(status(&raw_from(other, gw.addr, req.as_bytes()).await), 200);
    // The flooding IP ran out of its burst, but a secret that verified before costs nothing:
    // a legitimate client behind the same address (a NAT) is neither charged nor locked out.
    assert_eq!(status(&raw(gw.addr, &post("coupangTest")).await), 200);
    let m = support::TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    assert!(
        m.contains(r#"tollgate_rate_limited_total{route="/oauth/token/get"}"#),
        "{m}"
    );
}

#[tokio::test]
async fn idle_upstream_connections_are_bounded_and_expire() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "")).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let addr = gw.addr;
        tasks.push(tokio::spawn(async move {
            status(&raw(addr, &get(&format!("/open/{i}/pause"), "")).await)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // max_idle 4: the rest are closed as they come back; idle_timeout 1s: then none is left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.open.load(Ordering::SeqCst) > 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up.open.load(Ordering::SeqCst) <= 4,
        "{}",
        up.open.load(Ordering::SeqCst)
    );
    let deadline = Instant::now() + Duration::from_secs(6);
    while up.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(up.open.load(Ordering::SeqCst), 0);
}
