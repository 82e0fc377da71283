//! A real `redis-server` on a free loopback port, persistence off, stopped when dropped.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = RedisServer { port, child: None };
        r.restart();
        r
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A replica's config on `redis`: listeners on port 0, the shared store (`store_extra` added
/// to its keys) with the master key kept in `dir` (written here), `body` (signing, apps,
/// dialects, limits ...) and one upstream `api` at `/api/*rest`.
pub fn replica_config(
    dir: &std::path::Path,
    redis: &RedisServer,
    upstream_url: &str,
    store_extra: &str,
    body: &str,
) -> String {
    let key = dir.join("master.key");
    if !key.exists() {
        std::fs::write(&key, "7f".repeat(32)).unwrap();
    }
    format!(
        "listen: {{ address: \"127.0.0.1:0\" }}\nadmin: {{ address: \"127.0.0.1:0\" }}\nstore: {{ kind: redis, url: \"{}\", master_key_file: {}{store_extra} }}\n{}upstreams: {{ api: {{ targets: [\"{upstream_url}\"] }} }}\nroutes:\n  - {{ path: /api/*rest, upstream: api }}\n",
        redis.url(),
        key.display(),
        body.replace("{d}", &dir.display().to_string()),
    )
}
