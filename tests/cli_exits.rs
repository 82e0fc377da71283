//! Issue 16: the CLI's exit paths are clean — a reader that closes the pipe early (`| head`)
//! ends `check`'s output without a panic.

mod support;

use std::process::{Command, Stdio};

#[test]
fn check_into_a_closed_pipe_exits_cleanly() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let mut child = Command::new(support::bin::exe())
        .args(["check", "--config", example])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written (loading the config takes longer).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn check_reads_sub_second_and_compound_durations_and_warns_of_an_open_admin_api() {
    let (code, _, stderr) = check_text(
        "listen: { address: \"127.0.0.1:0\" }\nadmin: { address: \"127.0.0.1:0\" }\nstore: { path: DIR/db }\nupstreams:\n  api: { targets: [\"http://127.0.0.1:9\"], connect_timeout: 500ms, timeout: 1m30s }\nroutes:\n  - { path: /x, upstream: api, auth: none }\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("admin: no token_file"),
        "an admin API without a token is said at start: {stderr}"
    );
}

#[test]
fn check_warns_of_a_shadowed_route_and_a_plain_secret_with_file_and_line() {
    let (code, _, stderr) = check_text(
        "listen: { address: \"127.0.0.1:0\" }\nstore: { path: DIR/db }\napps:\n  - id: a\n    secret: plainOne\n    oauth_scopes: []\nupstreams:\n  api: { targets: [\"http://127.0.0.1:9\"] }\nroutes:\n  - { path: /api/*rest, upstream: api, auth: none }\n  - { path: /api/users, upstream: api, auth: none }\n  - { path: \"/x/{id}\", upstream: api, auth: none, methods: [GET] }\n  - { path: /x/me, upstream: api, auth: none, methods: [POST] }\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("gw.yaml:11: routes[1].path: never reached: routes[0] (/api/*rest)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("routes[3]"),
        "a route with another method is reached: {stderr}"
    );
    assert!(
        stderr.contains("gw.yaml:5: apps[0].secret: app a: plain secret"),
        "{stderr}"
    );
}

/// `tollgate check` on `yaml` (DIR: a temp dir): exit code, stdout, stderr.
fn check_text(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.yaml");
    std::fs::write(&cfg, yaml.replace("DIR", &dir.path().display().to_string())).unwrap();
    let out = Command::new(support::bin::exe())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_names_every_unknown_key_with_the_one_meant() {
    let (code, _, err) = check_text(
        "listen: { adress: \"127.0.0.1:0\" }\nstore: { path: DIR/db, hot_tokns: 5 }\nupstreams:\n  api: { targets: [\"http://127.0.0.1:9\"] }\nroutes:\n  - { path: /x, upstream: api, auth: none, methdos: [GET] }\n",
    );
    assert_eq!(code, 1, "{err}");
    for (line, key, meant) in [
        (1, "listen.adress", "address"),
        (2, "store.hot_tokns", "hot_tokens"),
        (6, "routes[0].methdos", "methods"),
    ] {
        assert!(
            err.contains(&format!("gw.yaml:{line}: {key}: unknown field"))
                && err.contains(&format!("(did you mean `{meant}`?)")),
            "{key}: {err}"
        );
    }
    assert!(
        !err.contains("missing field"),
        "a typo is one problem: {err}"
    );
}

#[test]
fn merge_keys_and_x_anchors_are_read() {
    let (code, out, err) = check_text(
        "x-upstream: &up { timeout: 500ms, targets: [\"http://127.0.0.1:9\"] }\nlisten: { address: \"127.0.0.1:0\" }\nstore: { path: DIR/db }\nupstreams:\n  a: { <<: *up }\n  b: { <<: *up, targets: [\"http://127.0.0.1:10\"] }\nroutes:\n  - { path: /a, upstream: a, auth: none }\n  - { path: /b, upstream: b, auth: none }\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("-> a [http://127.0.0.1:9]"), "{out}");
    assert!(
        out.contains("-> b [http://127.0.0.1:10]"),
        "a key beside << wins: {out}"
    );
}

#[test]
fn each_flag_is_offered_only_where_it_applies_and_completions_print() {
    let help = |args: &[&str]| {
        let o = Command::new(support::bin::exe())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let check = help(&["check", "--help"]);
    assert!(check.contains("--config"), "{check}");
    assert!(
        !check.contains("--log-format"),
        "check writes no logs: {check}"
    );
    let demo = help(&["demo", "--help"]);
    assert!(
        !demo.contains("--config"),
        "demo runs its own config: {demo}"
    );
    let out = Command::new(support::bin::exe())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_tollgate()"));
    let version = help(&["--version"]);
    assert!(
        version.starts_with("tollgate ") && version.contains('('),
        "{version}"
    );
}
