//! Issue 26 (4): who the client is. Limits charge only secret verifications, per client
//! address; failures lock an app id only for the address that failed; `X-Forwarded-For` is
//! believed only from `listen.trusted_proxies`; a PROXY protocol header names the client.

mod support;

use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use support::{app_yaml, raw_from, Gateway, Upstream, SECRET};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn yaml(up: &Upstream) -> String {
    format!(
        "{}upstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /api/*rest, upstream: api, auth: none }}\n",
        app_yaml(),
        up.url()
    )
}

/// Asks for an oauth token from source address `from` (127.0.0.x), with `extra` header lines.
async fn token_from(gw: &Gateway, from: &str, app: &str, secret: &str, extra: &str) -> u16 {
    let body = format!(r#"{{"app_id":"{app}","app_secret":"{secret}"}}"#);
    let req = format!(
        "POST /oauth/token/get HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let from: IpAddr = from.parse().unwrap();
    let text = raw_from(from, gw.addr, req.as_bytes()).await;
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_flood_of_wrong_secrets_from_one_address_locks_out_nobody_else() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    // The app's own client verified its secret once (say before the attack began).
    assert_eq!(
        token_from(&gw, "127.0.0.1", "plain", "plainSecret", "").await,
        200
    );
    // The attacker, behind the same NAT address: wrong secrets for both apps, past every limit.
    let mut limited = 0;
    for i in 0..60 {
        let app = if i % 2 == 0 { "plain" } else { "coupang" };
        match token_from(&gw, "127.0.0.1", app, "wrong", "").await {
            429 => limited += 1,
            s => assert!(s == 401 || s == 400, "{s}"),
        }
    }
    assert!(limited > 0, "the attacker is limited");
    // The legitimate client, same address: its verified secret is never charged nor locked.
    for _ in 0..5 {
        assert_eq!(
            token_from(&gw, "127.0.0.1", "plain", "plainSecret", "").await,
            200
        );
    }
    // Another address, first time: coupang's failures were locked to 127.0.0.1 only.
    assert_eq!(
        token_from(&gw, "127.0.0.2", "coupang", SECRET, "").await,
        200
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let up = Upstream::echo().await;
    let gw = Gateway::with(&yaml(&up))
        .listen("trusted_proxies: [127.0.0.2/32]")
        .start()
        .await;
    let get = |from: &'static str| {
        let addr = gw.addr;
        async move {
            let req = "GET /api/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 9.9.9.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nForwarded: for=8.8.8.8\r\nX-Real-IP: 7.7.7.7\r\nConnection: close\r\n\r\n";
            let text = raw_from(from.parse().unwrap(), addr, req.as_bytes()).await;
            let body = text.split_once("\r\n\r\n").unwrap().1;
            let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{text}"));
            v["headers"].clone()
        }
    };
    let h = get("127.0.0.2").await;
    assert_eq!(h["x-forwarded-for"], "9.9.9.9, 127.0.0.2", "{h}");
    // The balancer terminated TLS for shop.example: its word on how the client came is kept.
    assert_eq!(h["x-forwarded-proto"], "https", "{h}");
    assert_eq!(h["x-forwarded-host"], "shop.example", "{h}");
    assert!(
        h.get("forwarded").is_none() && h.get("x-real-ip").is_none(),
        "{h}"
    );
    let h = get("127.0.0.3").await;
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.3",
        "a stranger's XFF is replaced: {h}"
    );

    // The limit follows the address the trusted proxy names: 9.9.9.9 spends its own bucket,
    // 8.8.8.8 behind the same proxy is untouched.
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    let mut limited = false;
    for _ in 0..60 {
        if token_from(&gw, "127.0.0.2", "coupang", "wrong", &xff("9.9.9.9")).await == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "9.9.9.9 is limited");
    assert_eq!(
        token_from(&gw, "127.0.0.2", "coupang", SECRET, &xff("8.8.8.8")).await,
        200
    );
    // A stranger cannot pick a fresh bucket by writing XFF: its own address is counted.
    let mut limited = false;
    for i in 0..60 {
        let spoof = xff(&format!("10.0.0.{i}"));
        if token_from(&gw, "127.0.0.3", "coupang", "wrong", &spoof).await == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "XFF from an untrusted peer changes nothing");
}

/// Sends `head` then an HTTP request on one connection; the upstream's view of it.
async fn through_proxy_header(addr: SocketAddr, head: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(b"GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    s.write_all(&bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn v2_header(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x11); // TCP over IPv4
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h
}

#[tokio::test]
async fn a_proxy_protocol_header_names_the_client_and_a_connection_without_one_is_closed() {
    let up = Upstream::echo().await;
    let gw = Gateway::with(&yaml(&up))
        .listen("proxy_protocol: true")
        .start()
        .await;
    let text = through_proxy_header(gw.addr, b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains(r#""x-forwarded-for":"203.0.113.7""#),
        "{text}"
    );
    let text = through_proxy_header(gw.addr, &v2_header([198, 51, 100, 9], [10, 0, 0, 1])).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains(r#""x-forwarded-for":"198.51.100.9""#),
        "{text}"
    );
    // No header: closed without an answer.
    let text = through_proxy_header(gw.addr, b"").await;
    assert_eq!(text, "", "a connection without the header is closed");
    let text = through_proxy_header(gw.addr, b"PROXY TCP4 nonsense\r\n").await;
    assert_eq!(text, "");
    // A client that sends one byte and goes quiet is cut off by the head read timeout.
    let mut quiet = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    quiet.write_all(b"P").await.unwrap();
    let mut buf = [0u8; 1];
    let closed =
        tokio::time::timeout(std::time::Duration::from_secs(15), quiet.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0) | Err(_))), "{closed:?}");
}

#[tokio::test]
async fn with_trusted_proxies_only_they_may_send_a_proxy_header() {
    let up = Upstream::echo().await;
    let gw = Gateway::with(&yaml(&up))
        .listen("proxy_protocol: true\ntrusted_proxies: [127.0.0.2/32]")
        .start()
        .await;
    let req = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\nGET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let from_lb = raw_from("127.0.0.2".parse().unwrap(), gw.addr, req).await;
    assert!(
        from_lb.contains(r#""x-forwarded-for":"203.0.113.7""#),
        "{from_lb}"
    );
    let from_anyone = raw_from("127.0.0.3".parse().unwrap(), gw.addr, req).await;
    assert_eq!(
        from_anyone, "",
        "a PROXY header from a stranger is not believed"
    );
}

#[tokio::test]
async fn one_bkflow_client_runs_200_credential_calls_without_a_429() {
    let gw = Gateway::start(
        r#"apps:
  - { id: xxxx, secret: xxxx, space_id: 1 }
dialects:
  bkflow: { prefix: "" }
"#,
    )
    .await;
    for i in 0..200 {
        let body = format!(
            r#"{{"bk_app_code":"xxxx","bk_app_secret":"xxxx","name":"n{i}","type":"BK_APP","content":{{"bk_app_code":"a","bk_app_secret":"s"}}}}"#
        );
        let r = gw.post("/space/1/create_credential/", &[], &body).await;
        assert_eq!(r.status, 200, "call {i}: {}", r.body);
    }
}

#[tokio::test]
async fn concurrent_guesses_cannot_all_pass_the_failure_lock() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    // 40 wrong secrets at once for one app from one address: at most 10 are verified (the
    // failure lock's burst), the rest wait without costing argon2.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let body = format!(r#"{{"app_id":"coupang","app_secret":"wrong{i}"}}"#);
        let req = format!(
            "POST /oauth/token/get HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let addr = gw.addr;
        tasks.push(tokio::spawn(async move {
            let text = raw_from("127.0.0.4".parse().unwrap(), addr, req.as_bytes()).await;
            text.split(' ')
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or(0)
        }));
    }
    let mut verified = 0;
    for t in tasks {
        match t.await.unwrap() {
            401 => verified += 1,
            429 => {}
            s => panic!("{s}"),
        }
    }
    assert!(verified <= 10, "{verified} guesses were verified");
    // Locked for that address only.
    assert_eq!(
        token_from(&gw, "127.0.0.5", "coupang", SECRET, "").await,
        200
    );
}
