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
    for line in out.lines().map_while(Result::ok) {
        if line.contains("Ctrl-C stops") {
            break;
        }
        let t = line.trim();
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
    let _ = demo.kill();
    let _ = demo.wait();
}
