//! `tollgate demo` as a new user meets it: every printed command, run as printed, does what it says.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use support::bin::exe;

#[test]
fn the_printed_walkthrough_works_as_printed() {
    if Command::new("curl").arg("--version").output().is_err() {
        panic!("curl is needed for this test (.ci/run installs it)");
    }
    let mut demo = Command::new(exe())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(demo.stdout.take().unwrap());
    let mut commands = Vec::new();
    let mut state_dir = None;
    for line in out.lines().map_while(Result::ok) {
        if line.contains("Ctrl-C stops") {
            break;
        }
        if let Some(rest) = line.strip_prefix("# state (certificate, store, keys) in ") {
            state_dir = rest.split(", removed").next().map(std::path::PathBuf::from);
        }
        let t = line.trim();
        // Paste-safe: every line is a comment, a command, or empty.
        assert!(
            t.is_empty() || t.starts_with('#') || t.starts_with("curl ") || t.starts_with("TOKEN="),
            "a printed line a shell would run: {t:?}"
        );
        if t.starts_with("curl ") || t.starts_with("TOKEN=") {
            commands.push(t.to_owned());
        }
    }
    assert_eq!(commands.len(), 5, "{commands:?}");
    let run = |script: &str| {
        let o = Command::new("bash").args(["-c", script]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(run(&commands[0]).starts_with("Products:"));
    let step2 = run(&commands[1]);
    assert!(
        step2.starts_with("HTTP/2 401") || step2.starts_with("HTTP/1.1 401"),
        "{step2}"
    );
    let step3 = run(&commands[2]);
    assert!(step3.contains(r#""accessToken":"Bearer ey"#), "{step3}");
    let step4 = run(&format!("{}\n{}", commands[3], commands[4]));
    assert_eq!(step4, "Ok!You successfully caught me. The Id is 1");
    let state_dir = state_dir.expect("the demo says where its state is");
    assert!(
        state_dir.join("master.key").exists(),
        "{}",
        state_dir.display()
    );
    // Its own directory, nobody else's to read: a random name (not guessable from the pid),
    // mode 0700, the TLS key 0600.
    use std::os::unix::fs::PermissionsExt as _;
    let name = state_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(!name.ends_with(&demo.id().to_string()), "{name}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state_dir), 0o700);
    assert_eq!(mode(&state_dir.join("server.key")), 0o600);
    // Stopped as a user would (Ctrl-C / SIGTERM): it exits 0 and leaves nothing behind.
    let term = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = demo.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!state_dir.exists(), "{} left behind", state_dir.display());
}

#[test]
fn demo_refuses_a_config_it_would_not_use() {
    let out = Command::new(exe())
        .args(["demo", "--config", "x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tollgate run --config"));
}
