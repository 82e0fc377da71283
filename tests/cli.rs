//! The binary: `check` messages and exit codes, `hash-secret`, SIGHUP reload, SIGTERM drain.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use support::bin::{exe, write, Proc};
use support::{TestClient, Upstream};

fn check(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(exe())
        .args(["check", "--config"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_example_config_checks_clean() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    let (code, out, err) = check(&example);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/product/get"), "{out}");
    assert!(out.contains("/oauth/token/get"), "{out}");
    // Requirements read as written in the YAML.
    assert!(
        out.contains("OPERATE TASK on {task_id} space {lookup:space_id} scope {lookup:scope}"),
        "{out}"
    );
    assert!(
        !err.contains("plain secret"),
        "the example uses an argon2 hash: {err}"
    );
}

#[test]
fn check_names_file_line_and_key_of_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"listen:
  address: "127.0.0.1:0"
  tls: { cert: missing.pem, key: missing.key }
upstreams:
  product: { targets: ["http://127.0.0.1:1"], timeout: 5x }
routes:
  - path: /a
    upstream: product
  - path: /b
    upstream: nowhere
"#;
    let p = write(dir.path(), "bad.yaml", text);
    let (code, _, err) = check(&p);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.yaml:5: upstreams.product.timeout"),
        "{err}"
    );

    let text = text.replace("timeout: 5x", "timeout: 5s");
    let p = write(dir.path(), "bad.yaml", &text);
    let (code, _, err) = check(&p);
    assert_eq!(code, 1);
    let file = p.display().to_string();
    assert!(
        err.contains(&format!("{file}:3: listen.tls.cert: cannot read")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:3: listen.tls.key: cannot read")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:10: routes[1].upstream: no upstream named \"nowhere\""
        )),
        "{err}"
    );

    let p = write(
        dir.path(),
        "unknown.yaml",
        "listen:\n  address: \"127.0.0.1:0\"\n  colour: blue\n",
    );
    let (code, _, err) = check(&p);
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown.yaml:3: listen.colour: unknown field `colour`"),
        "{err}"
    );
}

#[test]
fn check_names_every_bad_upstream_and_runtime_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"listen:
  address: "127.0.0.1:0"
upstreams:
  grpc:
    targets: ["http://127.0.0.1:1"]
    protocol: h2
  mixed:
    targets: ["http://127.0.0.1:1", "https://127.0.0.1:2"]
  plain:
    targets: ["http://127.0.0.1:1"]
    protocol: spdy
    tls: { ca_file: ca.pem }
    health: { path: health, unhealthy: 0, expect_status: [700] }
    retries: { attempts: 9, on: [timeout], per_try_timeout: 1h }
  secure:
    targets: ["https://127.0.0.1:2"]
    tls: { client_cert: c.pem, server_name: "not a name" }
workers: 0
runtime: fibers
"#;
    let p = write(dir.path(), "up.yaml", text);
    let (code, _, err) = check(&p);
    assert_eq!(code, 1);
    let file = p.display().to_string();
    for (line, key) in [
        (6, "upstreams.grpc.protocol: h2 is HTTP/2 over TLS"),
        (8, "upstreams.mixed.targets: mixes http:// and https://"),
        (
            11,
            "upstreams.plain.protocol: \"spdy\" is not http1 or h2c or h2",
        ),
        (12, "upstreams.plain.tls: applies to https:// targets only"),
        (
            13,
            "upstreams.plain.health.path: \"health\" is not an absolute path",
        ),
        (13, "upstreams.plain.health.unhealthy: must be at least 1"),
        (
            13,
            "upstreams.plain.health.expect_status[0]: 700 is not an HTTP status",
        ),
        (14, "upstreams.plain.retries.attempts: must be 1 to 5"),
        (
            14,
            "upstreams.plain.retries.on[0]: \"timeout\" is not one of connect-failure",
        ),
        (
            14,
            "upstreams.plain.retries.per_try_timeout: must be more than 0 and at most",
        ),
        (
            17,
            "upstreams.secure.tls.client_cert: needs client_key as well",
        ),
        (
            17,
            "upstreams.secure.tls.server_name: \"not a name\" is not a DNS name",
        ),
    ] {
        assert!(
            err.contains(&format!("{file}:{line}: {key}")),
            "{line} {key}\n{err}"
        );
    }
}

#[test]
fn run_refuses_a_bad_config_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bad.yaml",
        "listen: { address: \"127.0.0.1:0\" }\nroutes:\n  - { path: /a, upstream: ghost }\n",
    );
    let out = Command::new(exe())
        .args(["run", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes[0].upstream"), "{err}");
    assert!(!err.contains("listening"), "{err}");
}

#[test]
fn hash_secret_prints_an_argon2id_string() {
    let mut child = Command::new(exe())
        .arg("hash-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"coupangTest\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("$argon2id$v=19$"), "{line}");
    let code = Command::new(exe())
        .arg("hash-secret")
        .stdin(Stdio::null())
        .status()
        .unwrap()
        .code();
    assert_eq!(code, Some(1), "an empty secret is refused");
}

fn config(up: &Upstream, dir: &std::path::Path, extra_route: &str) -> String {
    format!(
        "listen: {{ address: \"127.0.0.1:0\" }}\nstore: {{ path: {}/db }}\nupstreams:\n  product: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /one/*rest, upstream: product, auth: none }}\n{extra_route}",
        dir.display(),
        up.url()
    )
}

#[tokio::test]
async fn sighup_reload_adds_a_route_and_a_broken_file_keeps_the_old_ones() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "gw.yaml", &config(&up, dir.path(), ""));
    let gw = Proc::start(&path);
    let client = TestClient::plain();
    let url = |p: &str| format!("http://{}{p}", gw.addr);
    assert_eq!(
        client.send("GET", &url("/one/x"), &[], "").await.status,
        200
    );
    assert_eq!(
        client.send("GET", &url("/two/x"), &[], "").await.status,
        404
    );

    write(
        dir.path(),
        "gw.yaml",
        &config(
            &up,
            dir.path(),
            "  - { path: /two/*rest, upstream: product, auth: none }\n",
        ),
    );
    gw.signal("HUP");
    gw.wait_line("configuration reloaded", 10);
    assert_eq!(
        client.send("GET", &url("/two/x"), &[], "").await.status,
        200
    );

    write(
        dir.path(),
        "gw.yaml",
        "routes: [ {path: /oops, upstream: nowhere} ]\nlisten: { address: x }\n",
    );
    gw.signal("HUP");
    gw.wait_line("reload refused", 10);
    assert_eq!(
        client.send("GET", &url("/one/x"), &[], "").await.status,
        200
    );
    assert_eq!(
        client.send("GET", &url("/two/x"), &[], "").await.status,
        200
    );
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "gw.yaml", &config(&up, dir.path(), ""));
    let mut gw = Proc::start(&path);
    let client = TestClient::plain();
    let url = format!("http://{}/one/linger", gw.addr);
    let in_flight = tokio::spawn(async move { client.send("GET", &url, &[], "").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    gw.signal("TERM");
    let res = tokio::time::timeout(Duration::from_secs(20), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        res.status, 200,
        "the request started before SIGTERM completes: {}",
        res.body
    );
    let status = tokio::task::spawn_blocking(move || gw.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn an_admin_api_open_to_the_network_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "open.yaml",
        "listen: { address: \"127.0.0.1:0\" }\nadmin:\n  address: \"0.0.0.0:9090\"\n",
    );
    let (code, _, err) = check(&p);
    assert_eq!(code, 1);
    assert!(
        err.contains("open.yaml:3: admin.address: the admin API is open to the network"),
        "{err}"
    );
}

#[tokio::test]
async fn workers_and_runtime_shape_the_runtime_it_serves_on() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    for (extra, workers, flavour) in [
        ("runtime: current_thread\n", 1, "CurrentThread"),
        ("workers: 3\n", 3, "MultiThread"),
        ("workers: 1\n", 1, "CurrentThread"),
        ("workers: 1\nruntime: multi_thread\n", 1, "MultiThread"),
    ] {
        let text = format!("{}{extra}", config(&up, dir.path(), ""));
        let path = write(dir.path(), "gw.yaml", &text);
        let gw = Proc::start(&path);
        let said = gw
            .early
            .iter()
            .find(|l| l.contains("\"message\":\"runtime\""))
            .unwrap_or_else(|| panic!("a runtime line: {:?}", gw.early))
            .clone();
        let v: serde_json::Value = serde_json::from_str(&said).unwrap();
        assert_eq!(v["workers"], workers, "{said}");
        assert_eq!(v["runtime"], flavour, "{said}");
        let url = format!("http://{}/one/x", gw.addr);
        assert_eq!(
            TestClient::plain().send("GET", &url, &[], "").await.status,
            200
        );
    }
}
