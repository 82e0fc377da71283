//! Issue 11, protocols: WebSocket through TLS after the guard, gRPC over h2c with trailers and
//! gRPC-shaped refusals, https upstreams verified against a test CA.

mod support;

use futures_util::{SinkExt as _, StreamExt as _};
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::servers::{grpc_health, tls_echo, WsEcho};
use support::{app_yaml, eventually, Gateway, TestCa, TestClient};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, Message};

/// Opens a WebSocket to `path` on a TLS gateway, with `token` when given.
async fn ws_connect(
    gw: &Gateway,
    path: &str,
    token: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let cfg = TestClient::tls_config(gw.ca_der.as_ref().unwrap());
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let mut req = format!("wss://localhost:{}{path}", gw.addr.port())
        .into_client_request()
        .unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", t.parse().unwrap());
    }
    tokio_tungstenite::client_async(req, tls)
        .await
        .map(|(ws, _)| ws)
}

/// A WebSocket on a TLS gateway opened with `token`, checked to echo `msg` once.
async fn echoing_tunnel(gw: &Gateway, token: &str, msg: &str) -> Ws {
    let mut sock = ws_connect(gw, "/ws", Some(token)).await.expect("upgraded");
    sock.send(Message::text(msg)).await.unwrap();
    assert_eq!(sock.next().await.unwrap().unwrap(), Message::text(msg));
    sock
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn metric(gw: &Gateway, name: &str) -> String {
    let m = TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await;
    m.body
        .lines()
        .filter(|l| l.starts_with(name))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn websocket_frames_cross_tls_after_a_valid_token_and_a_missing_one_gets_401() {
    let ws = WsEcho::start().await;
    let yaml = format!(
        r#"{}upstreams:
  chat: {{ targets: ["http://{}"] }}
  quiet: {{ targets: ["http://{}"], tunnel_idle_timeout: 1s }}
routes:
  - {{ path: /ws, upstream: chat, auth: bearer }}
  - {{ path: /quiet, upstream: quiet, auth: bearer }}
"#,
        app_yaml(),
        ws.addr,
        ws.addr
    );
    let gw = Gateway::with(&yaml).tls().start().await;

    // No token: 401 from the guard, and the upstream never sees an upgrade.
    match ws_connect(&gw, "/ws", None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected a 401, got {:?}", other.map(|_| ())),
    }
    assert_eq!(ws.upgraded.load(Ordering::SeqCst), 0);

    let token = gw.token().await;
    let mut sock = ws_connect(&gw, "/ws", Some(&token))
        .await
        .expect("upgraded");
    assert_eq!(ws.upgraded.load(Ordering::SeqCst), 1);
    sock.send(Message::text("hello")).await.unwrap();
    assert_eq!(sock.next().await.unwrap().unwrap(), Message::text("hello"));
    sock.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        sock.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    assert_eq!(
        metric(&gw, "tollgate_tunnels_active").await,
        "tollgate_tunnels_active 1"
    );
    sock.close(None).await.unwrap();
    assert!(
        eventually(Duration::from_secs(3), || async {
            metric(&gw, "tollgate_tunnels_active").await == "tollgate_tunnels_active 0"
        })
        .await
    );

    // A tunnel nothing crosses is closed after tunnel_idle_timeout.
    let mut idle = ws_connect(&gw, "/quiet", Some(&token))
        .await
        .expect("upgraded");
    let end = tokio::time::timeout(Duration::from_secs(5), idle.next())
        .await
        .expect("the gateway closes an idle tunnel");
    assert!(
        !matches!(end, Some(Ok(Message::Text(_)))),
        "nothing but the end: {end:?}"
    );
}

#[tokio::test]
async fn the_drain_closes_an_open_tunnel_after_the_grace() {
    let ws = WsEcho::start().await;
    let yaml = format!(
        r#"{}upstreams:
  chat: {{ targets: ["http://{}"] }}
routes:
  - {{ path: /ws, upstream: chat, auth: bearer }}
limits: {{ drain_grace: 1s }}
"#,
        app_yaml(),
        ws.addr
    );
    let gw = Gateway::with(&yaml).tls().start().await;
    let token = gw.token().await;
    let mut sock = echoing_tunnel(&gw, &token, "before").await;
    let stopping = tokio::spawn(gw.stop());
    // Within the grace the tunnel still works ...
    sock.send(Message::text("during")).await.unwrap();
    assert_eq!(sock.next().await.unwrap().unwrap(), Message::text("during"));
    // ... and after it, it is closed and the gateway has stopped.
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown ends after the grace")
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(3), sock.next())
        .await
        .expect("closed");
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
}

fn grpc_yaml(addr: std::net::SocketAddr) -> String {
    format!(
        r#"{}upstreams:
  health: {{ targets: ["http://{addr}"], protocol: h2c }}
routes:
  - {{ path: "/grpc.health.v1.Health/Watch", upstream: health, auth: bearer, require: {{ oauth_scope: bailunApi }} }}
  - {{ path: "/grpc.health.v1.Health/*rpc", upstream: health, auth: bearer }}
"#,
        app_yaml()
    )
}

async fn channel(gw: &Gateway) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", token.parse().unwrap());
    req
}

#[tokio::test]
async fn grpc_unary_and_server_streaming_calls_pass_with_trailers() {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let (addr, reporter, _task) = grpc_health().await;
    let gw = Gateway::start(&grpc_yaml(addr)).await;
    let token = gw.token().await;
    let mut client = HealthClient::new(channel(&gw).await);
    let ask = || HealthCheckRequest {
        service: "tollgate.test".into(),
    };
    let res = client.check(with_token(ask(), &token)).await.unwrap();
    assert_eq!(res.into_inner().status, 1, "SERVING");
    // An error status travels in the trailers too.
    let unknown = HealthCheckRequest {
        service: "nobody".into(),
    };
    let err = client.check(with_token(unknown, &token)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

    let mut stream = client
        .watch(with_token(ask(), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().status, 1);
    reporter
        .set_service_status("tollgate.test", tonic_health::ServingStatus::NotServing)
        .await;
    let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status, 2, "NOT_SERVING streamed through");

    // The trailers themselves, read off the wire with a plain HTTP/2 client.
    let (status, trailers) = raw_grpc_check(gw.addr, &token).await;
    assert_eq!(status, 200);
    assert_eq!(trailers.get("grpc-status").unwrap(), "0", "{trailers:?}");
}

/// `Check` with an empty request over h2c; the HTTP status and the trailers.
async fn raw_grpc_check(addr: std::net::SocketAddr, token: &str) -> (u16, http::HeaderMap) {
    use http_body_util::{BodyExt as _, Full};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", token)
        .body(Full::new(bytes::Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let collected = res.into_body().collect().await.unwrap();
    (status, collected.trailers().cloned().unwrap_or_default())
}

#[tokio::test]
async fn grpc_refusals_are_grpc_statuses() {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let (addr, _reporter, task) = grpc_health().await;
    let gw = Gateway::start(&grpc_yaml(addr)).await;
    let mut client = HealthClient::new(channel(&gw).await);
    let ask = || HealthCheckRequest {
        service: String::new(),
    };
    let missing = client.check(ask()).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated, "{missing:?}");
    assert!(missing.message().contains("no access token"), "{missing:?}");
    let bad = client
        .check(with_token(ask(), "Bearer not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::Unauthenticated);
    // A valid token without the route's scope: PERMISSION_DENIED.
    let plain = gw.plain_token().await;
    let denied = client.watch(with_token(ask(), &plain)).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("bailunApi"), "{denied:?}");
    // The upstream gone: UNAVAILABLE (HTTP 502 underneath).
    task.abort();
    let _ = task.await;
    let token = gw.token().await;
    let down = client.check(with_token(ask(), &token)).await.unwrap_err();
    assert_eq!(down.code(), tonic::Code::Unavailable, "{down:?}");
}

#[tokio::test]
async fn an_https_upstream_with_the_test_ca_works_and_an_untrusted_one_is_502() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = TestCa::new(&dir.path().join("a").tap_mkdir());
    let stranger = TestCa::new(&dir.path().join("b").tap_mkdir());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).unwrap();
    let (good, _g) = tls_echo(&trusted).await;
    let (bad, _b) = tls_echo(&stranger).await;
    let yaml = format!(
        r#"{}upstreams:
  good: {{ targets: ["https://{good}"], tls: {{ ca_file: {ca} }} }}
  named: {{ targets: ["https://{good}"], protocol: h2, tls: {{ ca_file: {ca}, server_name: localhost }} }}
  bad: {{ targets: ["https://{bad}"], tls: {{ ca_file: {ca} }} }}
routes:
  - {{ path: /good/*rest, upstream: good, auth: none }}
  - {{ path: /named/*rest, upstream: named, auth: none }}
  - {{ path: /bad/*rest, upstream: bad, auth: none }}
"#,
        app_yaml(),
        ca = ca_file.display()
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw.get("/good/x", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/good/x");
    assert_eq!(r.json()["version"], "HTTP/1.1");
    let r = gw.get("/named/y", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["version"], "HTTP/2.0", "h2 negotiated with ALPN");
    let r = gw.get("/bad/x", &[]).await;
    assert_eq!(r.status, 502);
    let msg = r.json()["errMsg"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with("upstream TLS handshake failed: invalid peer certificate"),
        "{msg}"
    );
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// Waits (at most `secs`) for the socket to end; true when it did.
async fn ends_within(sock: &mut Ws, secs: u64) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, sock.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test]
async fn a_tunnel_ends_within_a_second_of_its_token_being_revoked_or_expiring() {
    let ws = WsEcho::start().await;
    let yaml = format!(
        "{}upstreams:\n  chat: {{ targets: [\"http://{}\"] }}\nroutes:\n  - {{ path: /ws, upstream: chat, auth: bearer }}\n",
        app_yaml(),
        ws.addr
    );
    let gw = Gateway::with(&yaml).tls().start().await;
    // Revoked: closed within 2 s although it is busy.
    let token = gw.token().await;
    let mut sock = echoing_tunnel(&gw, &token, "hello").await;
    let form = format!("token={}", token.trim_start_matches("Bearer "));
    let r = TestClient::plain()
        .send(
            "POST",
            &gw.admin_url("/admin/tokens/revoke"),
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        )
        .await;
    assert_eq!(r.json()["revoked"], true, "{}", r.body);
    assert!(
        ends_within(&mut sock, 2).await,
        "the tunnel outlived its revoked token"
    );
    // Expired: the same.
    let token = gw.token().await;
    let mut sock = echoing_tunnel(&gw, &token, "still here").await;
    gw.advance(Duration::from_secs(3600 + 120));
    assert!(
        ends_within(&mut sock, 2).await,
        "the tunnel outlived its expired token"
    );
}
