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
