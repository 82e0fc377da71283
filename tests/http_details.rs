//! Issue 16, HTTP details: a 405 says what is allowed and is counted under its route, HEAD is
//! served wherever GET is (routes and the admin probes), and the answer goes out in the
//! client's HTTP version whatever the upstream spoke; text logs in a file carry no colour;
//! `/metrics` has the process, build and upstream-error series.

mod support;

use std::net::SocketAddr;
use support::{app_yaml, dead_addr, raw, Gateway, TestClient, Upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn yaml(upstream: &str) -> String {
    format!(
        "{}upstreams:\n  api: {{ targets: [\"{upstream}\"] }}\nroutes:\n  - {{ path: /p, upstream: api, auth: none, methods: [GET] }}\n  - {{ path: /p, upstream: api, auth: none, methods: [POST] }}\n",
        app_yaml()
    )
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods_and_its_route() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up.url())).await;
    let r = gw.client.send("DELETE", &gw.url("/p"), &[], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "GET, POST, HEAD");
    let metrics = TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    assert!(
        metrics
            .contains(r#"tollgate_http_requests_total{method="DELETE",route="/p",status="405"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn head_is_served_where_get_is() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up.url())).await;
    let r = gw.client.send("HEAD", &gw.url("/p"), &[], "").await;
    assert_eq!(r.status, 200, "HEAD on a GET route");
    assert!(r.body.is_empty(), "no body in an answer to HEAD");
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = TestClient::plain()
            .send("HEAD", &gw.admin_url(path), &[], "")
            .await;
        assert_eq!(r.status, 200, "HEAD {path}");
    }
}

/// An upstream that answers every request in HTTP/1.0 and closes.
async fn http10_upstream() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp
                    .write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_http11_client_gets_an_http11_answer_from_an_http10_upstream() {
    let up = http10_upstream().await;
    let gw = Gateway::start(&yaml(&format!("http://{up}"))).await;
    let out = raw(
        gw.addr,
        b"GET /p HTTP/1.1\r\nhost: gw.test\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("{}"), "{out}");
}

#[test]
fn text_logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: {{ address: \"127.0.0.1:0\" }}\nstore: {{ path: {}/db }}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let log = dir.path().join("gw.log");
    let mut child = std::process::Command::new(support::bin::exe())
        .args(["run", "--config"])
        .arg(&cfg)
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape in a log file: {text:?}"
    );
}

#[tokio::test]
async fn metrics_carry_process_build_and_upstream_error_series() {
    let gw = Gateway::start(&yaml(&format!("http://{}", dead_addr()))).await;
    assert_eq!(gw.get("/p", &[]).await.status, 502);
    let metrics = TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    for series in [
        r#"tollgate_upstream_errors_total{kind="connect",upstream="api"} 1"#,
        "tollgate_build_info{revision=",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }
    // The 502 exchange crossed the client connection: at least a request line
    // (`GET /p HTTP/1.1\r\n`) and a status line each way.
    for name in ["tollgate_received_bytes_total", "tollgate_sent_bytes_total"] {
        let n = support::metric_value(&metrics, name).unwrap_or(0.0);
        assert!(n >= 17.0, "{name} = {n}:\n{metrics}");
    }
}

#[tokio::test]
async fn logs_say_what_started_and_each_request_names_its_upstream_and_client() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = support::bin::write(
        dir.path(),
        "gw.yaml",
        &format!(
            "listen: {{ address: \"127.0.0.1:0\" }}\nstore: {{ path: {}/db }}\nupstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /p, upstream: api, auth: none }}\n",
            dir.path().display(),
            up.url()
        ),
    );
    let gw = support::bin::Proc::start(&path);
    let start = gw
        .early
        .iter()
        .find(|l| l.contains("\"message\":\"starting\""))
        .unwrap_or_else(|| panic!("no start line in {:?}", gw.early));
    let start: serde_json::Value = serde_json::from_str(start).unwrap();
    assert_eq!(start["config"], path.display().to_string(), "{start}");
    assert!(start["store"].as_str().unwrap().ends_with("/db"), "{start}");
    assert_eq!(start["routes"], 1);
    assert_eq!(start["issuers"], 0);
    assert!(start["version"].is_string() && start["revision"].is_string());
    let r = TestClient::plain()
        .send(
            "GET",
            &format!("http://{}/p", gw.addr),
            &[("user-agent", "probe/1.0")],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let line = gw.wait_line("probe/1.0", 5);
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["upstream"], "api", "{line}");
    assert_eq!(line["upstream_target"], up.url(), "{line}");
    assert_eq!(line["user_agent"], "probe/1.0");
    assert!(
        line["response_bytes"]
            .as_str()
            .is_some_and(|b| !b.is_empty()),
        "{line}"
    );
    let ms = line["duration_ms"].as_f64().unwrap();
    assert_eq!(
        (ms * 1000.0).round() / 1000.0,
        ms,
        "whole microseconds: {ms}"
    );
}

#[test]
fn a_refused_token_request_logs_the_app_it_named_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::bin::config_in(dir.path(), &app_yaml());
    let gw = support::bin::Proc::start(&path);
    let url = format!("http://{}/oauth/token/get", gw.addr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(TestClient::plain().send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        r#"{"app_id":"coupang","app_key":"wrong"}"#,
    ));
    assert_eq!(r.status, 401, "{}", r.body);
    let line = gw.wait_line("/oauth/token/get", 5);
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["app"], "coupang", "{line}");
    assert_eq!(line["reason"], "bad_credentials", "{line}");
    assert_eq!(line["status"], 401, "{line}");
}
