//! A real `redis-server` on a free loopback port, persistence off, stopped when dropped; also
//! TLS and ACL set-ups and a Sentinel-watched primary with two replicas, for the production
//! store tests.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    /// The port clients use (the TLS port for a TLS server).
    pub port: u16,
    child: Option<Child>,
    /// Extra `redis-server` arguments, given again on each restart.
    extra: Vec<String>,
    /// Serving TLS only: readiness is a port that accepts, not a plain PING.
    tls: bool,
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

fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value after `flag` in `args`, as a port.
fn flag_port(args: &[String], flag: &str) -> Option<u16> {
    let i = args.iter().position(|a| a == flag)?;
    let v = args.get(i + 1)?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{flag} {v:?} is not a port")),
    )
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// As `start`, with more `redis-server` arguments (`--replicaof 127.0.0.1 P`, `--dir D`,
    /// or for TLS `--port 0 --tls-port P --tls-cert-file ... --tls-auth-clients no`).
    /// With `--tls-port P`, `port` is P and readiness is P accepting connections (a plain
    /// PING cannot be answered); with `--port P` (not 0), `port` is P; else a free port.
    /// `--port 0` is added for a TLS server that names no `--port`.
    pub fn start_with(args: &[String]) -> Self {
        let tls_port = flag_port(args, "--tls-port");
        let port = tls_port
            .or_else(|| flag_port(args, "--port").filter(|p| *p != 0))
            .unwrap_or_else(free_port);
        let mut r = RedisServer {
            port,
            child: None,
            extra: args.to_vec(),
            tls: tls_port.is_some(),
        };
        r.restart();
        r
    }

    /// A TLS-only server with the certificates of `files`; `client_certs`: clients must show
    /// a certificate signed by the CA (`--tls-auth-clients yes`).
    pub fn start_tls(files: &RedisTlsFiles, client_certs: bool) -> Self {
        let port = free_port();
        let args: Vec<String> = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &files.server_cert.display().to_string(),
            "--tls-key-file",
            &files.server_key.display().to_string(),
            "--tls-ca-cert-file",
            &files.ca.display().to_string(),
            "--tls-auth-clients",
            if client_certs { "yes" } else { "no" },
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Self::start_with(&args)
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !self.extra.iter().any(|a| a == "--port") {
            let plain = if self.tls {
                "0".to_owned()
            } else {
                self.port.to_string()
            };
            args.extend(["--port".to_owned(), plain]);
        }
        args.extend(self.extra.iter().cloned());
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        if self.tls {
            while !accepts(self.port) {
                assert!(
                    Instant::now() < deadline,
                    "redis-server (TLS) did not accept connections on {} within 10 s",
                    self.port
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            // The port is bound a moment before TLS is set up on it.
            std::thread::sleep(Duration::from_millis(200));
        } else {
            while !ping(self.port) {
                assert!(
                    Instant::now() < deadline,
                    "redis-server did not answer PING"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
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

    /// The URL for TLS clients.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }

    /// Production ACLs: `user` with `password` may use every command on `tollgate:*` keys,
    /// and the default user is off, so every connection must authenticate (a plain PING, and
    /// so `restart`, no longer works; use `redis_cmd_auth`).
    pub fn acl_only(&self, user: &str, password: &str) {
        let pass = format!(">{password}");
        let r = redis_cmd(
            self.port,
            &["ACL", "SETUSER", user, "on", &pass, "~tollgate:*", "+@all"],
        );
        assert!(r.starts_with("+OK"), "ACL SETUSER {user}: {r}");
        let r = redis_cmd(self.port, &["ACL", "SETUSER", "default", "off"]);
        assert!(r.starts_with("+OK"), "ACL SETUSER default off: {r}");
        let r = redis_cmd(self.port, &["PING"]);
        assert!(r.starts_with("-NOAUTH"), "the default user is off: {r}");
        let r = redis_cmd_auth(self.port, user, password, &["PING"]);
        assert!(r.starts_with("+PONG"), "{user} can authenticate: {r}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The length of the first complete RESP value at the start of `buf`, if it is all there.
fn resp_len(buf: &[u8]) -> Option<usize> {
    let line = buf.windows(2).position(|w| w == b"\r\n")?;
    if line == 0 {
        return Some(2); // not RESP: an empty line
    }
    let head = std::str::from_utf8(&buf[1..line]).ok()?;
    let after = line + 2;
    match buf[0] {
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let mut n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            if matches!(buf[0], b'%' | b'|') {
                n *= 2;
            }
            let mut at = after;
            for _ in 0..n {
                at += resp_len(&buf[at..])?;
            }
            Some(at)
        }
        // Simple strings, errors, integers and the other one-line types.
        _ => Some(after),
    }
}

/// Sends `cmds` on one connection; the reply to each as text (RESP as received).
fn exchange(port: u16, cmds: &[&[&str]]) -> std::io::Result<Vec<String>> {
    let mut s = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    let mut msg = String::new();
    for args in cmds {
        msg.push_str(&format!("*{}\r\n", args.len()));
        for a in *args {
            msg.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
    }
    s.write_all(msg.as_bytes())?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 65536]);
    loop {
        let (mut replies, mut at) = (Vec::new(), 0);
        while replies.len() < cmds.len() {
            let Some(n) = resp_len(&buf[at..]) else { break };
            replies.push(String::from_utf8_lossy(&buf[at..at + n]).into_owned());
            at += n;
        }
        if replies.len() == cmds.len() {
            return Ok(replies);
        }
        let partial = format!(
            "{} of {} replies; received {:?}",
            replies.len(),
            cmds.len(),
            String::from_utf8_lossy(&buf)
        );
        if Instant::now() > deadline {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, partial));
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                let e = format!("closed: {partial}");
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// One Redis command in RESP (plain TCP, the default user); the reply as text.
pub fn redis_cmd(port: u16, args: &[&str]) -> String {
    try_redis_cmd(port, args).unwrap_or_else(|e| panic!("redis {args:?} on {port}: {e}"))
}

/// As `redis_cmd`, an error when Redis cannot be reached or does not answer (for wait loops).
pub fn try_redis_cmd(port: u16, args: &[&str]) -> std::io::Result<String> {
    exchange(port, &[args]).map(|mut r| r.remove(0))
}

/// One command after `AUTH user pass` on the same connection; the command's reply as text.
pub fn redis_cmd_auth(port: u16, user: &str, pass: &str, args: &[&str]) -> String {
    let replies = exchange(port, &[&["AUTH", user, pass], args])
        .unwrap_or_else(|e| panic!("redis AUTH {user} + {args:?} on {port}: {e}"));
    assert!(
        replies[0].starts_with("+OK"),
        "AUTH {user} on {port}: {}",
        replies[0]
    );
    replies[1].clone()
}

/// The value after `name` in a flat RESP array of bulk strings (`SENTINEL master`), or in
/// `name:value` lines (`INFO`).
pub fn resp_field(reply: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = reply.lines().collect();
    if let Some(v) = lines
        .iter()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
    {
        return Some(v.trim().to_owned());
    }
    let i = lines.iter().position(|l| *l == name)?;
    lines.get(i + 2).map(|v| v.to_string())
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

/// As `replica_config`, with the `store:` block written in full: `store` holds its keys one
/// `key: value` a line (`url:`, `tls:`, `password_file:`, `sentinels:`, ...); `kind: redis`
/// and `master_key_file` (the key kept in `dir`, written here) are added.
pub fn replica_config_with_store(
    dir: &Path,
    store: &str,
    upstream_url: &str,
    body: &str,
) -> String {
    let key = dir.join("master.key");
    if !key.exists() {
        std::fs::write(&key, "7f".repeat(32)).unwrap();
    }
    let mut block = String::from("store:\n  kind: redis\n");
    for l in store.lines().map(str::trim).filter(|l| !l.is_empty()) {
        block.push_str(&format!("  {l}\n"));
    }
    block.push_str(&format!("  master_key_file: \"{}\"\n", key.display()));
    format!(
        "listen: {{ address: \"127.0.0.1:0\" }}\nadmin: {{ address: \"127.0.0.1:0\" }}\n{block}{}upstreams: {{ api: {{ targets: [\"{upstream_url}\"] }} }}\nroutes:\n  - {{ path: /api/*rest, upstream: api }}\n",
        body.replace("{d}", &dir.display().to_string()),
    )
}

/// PEM files for a TLS Redis: a CA made for the test, a server certificate it signed (SAN
/// 127.0.0.1 and localhost) and a client certificate it signed.
pub struct RedisTlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Makes a fresh CA and its server and client certificates in `dir` (`ca.pem`, `server.pem`,
/// `server.key`, `client.pem`, `client.key`; one set a directory).
pub fn redis_tls_files(dir: &Path) -> RedisTlsFiles {
    let ca = super::TestCa::new(dir);
    let (client_cert, client_key) =
        ca.client("tollgate", "spiffe://tollgate.test/gateway", dir, "client");
    RedisTlsFiles {
        ca: ca.ca_file.clone(),
        server_cert: ca.cert.clone(),
        server_key: ca.key.clone(),
        client_cert,
        client_key,
    }
}

/// The last `n` lines of the file at `path` (a log, for failure messages).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A primary, two replicas and three sentinels watching it as `tollgate` (quorum 2, down
/// after 1 s), all on loopback with their files in a temp dir; everything is killed on drop.
pub struct SentinelSet {
    pub primary: RedisServer,
    pub replicas: Vec<RedisServer>,
    sentinels: Vec<(u16, Child)>,
    primary_port: u16,
    dir: tempfile::TempDir,
}

/// How long each wait of the set-up may take.
const SET_UP: Duration = Duration::from_secs(20);

impl SentinelSet {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let common = |name: &str| -> Vec<String> {
            [
                "--dir",
                &d,
                "--logfile",
                &format!("{d}/{name}.log"),
                // Full syncs start at once, not after the default 5 s wait for more replicas.
                "--repl-diskless-sync-delay",
                "0",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let primary = RedisServer::start_with(&common("primary"));
        let primary_port = primary.port;
        let replicas: Vec<RedisServer> = (0..2)
            .map(|i| {
                let mut args = common(&format!("replica{i}"));
                args.extend(
                    ["--replicaof", "127.0.0.1", &primary_port.to_string()]
                        .iter()
                        .map(|s| s.to_string()),
                );
                RedisServer::start_with(&args)
            })
            .collect();
        let mut set = SentinelSet {
            primary,
            replicas,
            sentinels: Vec::new(),
            primary_port,
            dir,
        };
        for i in 0..3 {
            let port = free_port();
            let conf = set.dir.path().join(format!("sentinel{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {d}\nlogfile {d}/sentinel{i}.log\n\
                     sentinel resolve-hostnames no\n\
                     sentinel monitor tollgate 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds tollgate 1000\n\
                     sentinel failover-timeout tollgate 5000\n\
                     sentinel parallel-syncs tollgate 1\n"
                ),
            )
            .unwrap();
            // `redis-sentinel` is `redis-server --sentinel` (Debian's redis-server package
            // ships no redis-sentinel link).
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed (.ci/run installs it)");
            set.sentinels.push((port, child));
        }
        for (i, r) in set.replicas.iter().enumerate() {
            let port = r.port;
            set.wait(&format!("replica{i}"), "its link to the primary up", || {
                try_redis_cmd(port, &["INFO", "replication"])
                    .is_ok_and(|i| resp_field(&i, "master_link_status").as_deref() == Some("up"))
            });
        }
        let ports: Vec<u16> = set.sentinels.iter().map(|(p, _)| *p).collect();
        for (i, &port) in ports.iter().enumerate() {
            set.wait(&format!("sentinel{i}"), "the primary's address", || {
                try_redis_cmd(port, &["SENTINEL", "get-master-addr-by-name", "tollgate"])
                    .is_ok_and(|r| r.trim_end().ends_with(&primary_port.to_string()))
            });
        }
        // A failover needs the sentinels to know each other (quorum, leader election) and
        // the replicas (a candidate to promote).
        for (i, &port) in ports.iter().enumerate() {
            set.wait(
                &format!("sentinel{i}"),
                "2 replicas and 2 other sentinels",
                || {
                    try_redis_cmd(port, &["SENTINEL", "master", "tollgate"]).is_ok_and(|r| {
                        resp_field(&r, "num-slaves").as_deref() == Some("2")
                            && resp_field(&r, "num-other-sentinels").as_deref() == Some("2")
                    })
                },
            );
        }
        set
    }

    /// Polls `ok` every 100 ms up to `SET_UP`; fails naming `who` and `what` with its log.
    fn wait(&self, who: &str, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + SET_UP;
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "{who} did not report {what} within {} s; its log ends:\n{}",
                SET_UP.as_secs(),
                tail(&self.dir.path().join(format!("{who}.log")), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:P` of each sentinel.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The port of the primary the set started with.
    pub fn primary_port(&self) -> u16 {
        self.primary_port
    }

    /// Kills the primary with SIGKILL (no shutdown, nothing flushed).
    pub fn kill_primary(&mut self) {
        self.primary.stop();
    }

    /// The primary's port as the first sentinel that answers sees it.
    pub fn current_primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|(p, _)| {
            let r = try_redis_cmd(*p, &["SENTINEL", "get-master-addr-by-name", "tollgate"]).ok()?;
            r.lines().next_back()?.trim().parse().ok()
        })
    }

    /// Waits (up to `limit`) until the sentinels name a primary other than `old` and that one
    /// answers as a primary; its port.
    pub fn wait_failover(&self, old: u16, limit: Duration) -> u16 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(p) = self.current_primary_port().filter(|p| *p != old) {
                let role = try_redis_cmd(p, &["INFO", "replication"])
                    .ok()
                    .and_then(|i| resp_field(&i, "role"));
                if role.as_deref() == Some("master") {
                    return p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not fail over from {old} within {} s; sentinel0's log ends:\n{}",
                limit.as_secs(),
                tail(&self.dir.path().join("sentinel0.log"), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        // Sentinels first, so none reacts to the servers going away.
        for (_, c) in &mut self.sentinels {
            let _ = c.kill();
            let _ = c.wait();
        }
        for r in &mut self.replicas {
            r.stop();
        }
        self.primary.stop();
    }
}
