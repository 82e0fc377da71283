//! The real `tollgate` binary on a temp config: reads the bound address from its first log line.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_tollgate")
}

/// A running `tollgate run` process; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener, when the config has one.
    pub admin: Option<SocketAddr>,
    pub lines: mpsc::Receiver<String>,
    /// The log lines printed before the listening line.
    pub early: Vec<String>,
}

impl Proc {
    #[allow(clippy::zombie_processes)] // Drop kills and waits
    pub fn start(config: &Path) -> Self {
        let mut child = Command::new(exe())
            .args(["run", "--config"])
            .arg(config)
            .args(["--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut early = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("tollgate printed its listening line");
            let v: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) => {
                    early.push(line);
                    continue;
                }
            };
            if v["message"] == "listening" && v["role"] == "public" {
                let addr = v["address"].as_str().unwrap().parse().unwrap();
                // The admin listener, if any, is announced right after.
                let admin = rx.recv_timeout(Duration::from_secs(2)).ok().and_then(|l| {
                    let v: serde_json::Value = serde_json::from_str(&l).ok()?;
                    (v["role"] == "admin").then(|| v["address"].as_str()?.parse().ok())?
                });
                return Proc {
                    child,
                    addr,
                    admin,
                    lines: rx,
                    early,
                };
            }
            early.push(line);
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits until a log line contains `needle`, up to `secs`.
    pub fn wait_line(&self, needle: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => continue,
                Err(_) => panic!("no log line containing {needle:?} within {secs}s"),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tollgate run` on `config` expecting it to refuse to start (exit non-zero, not a
/// panic, within 20 s): returns its stderr.
#[allow(dead_code)]
pub fn start_refused(config: &Path) -> String {
    let mut child = Command::new(exe())
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on a thread: a chatty process must not block on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tollgate did not refuse to start within 20 s:\n{}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap();
    assert!(
        !status.success(),
        "tollgate started and exited cleanly:\n{text}"
    );
    assert!(
        !text.contains("panicked"),
        "a refusal, not a panic:\n{text}"
    );
    text
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `dir/gw.yaml`: a public listener on a free loopback port, the store in `dir`, then `body`.
pub fn config_in(dir: &Path, body: &str) -> PathBuf {
    let text = format!(
        "listen: {{ address: \"127.0.0.1:0\" }}\nstore: {{ path: {}/db }}\n{body}",
        dir.display()
    );
    write(dir, "gw.yaml", &text)
}

/// The status `p` answers `GET /api/x` with `token` in `BKFlow-Token`.
pub async fn bkflow_status(c: &super::TestClient, p: &Proc, token: &str) -> u16 {
    c.send(
        "GET",
        &format!("http://{}/api/x", p.addr),
        &[("bkflow-token", token)],
        "",
    )
    .await
    .status
    .as_u16()
}
