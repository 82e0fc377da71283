//! Test harness: a gateway on port 0 (plain or TLS with a CA made per test), echo upstreams,
//! clients that trust the test CA, raw sockets, and the real binary for CLI and signal tests.
#![allow(dead_code, missing_docs)]

pub mod bin;
pub mod idp;
pub mod redis;
pub mod servers;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tollgate::server::{self, Running};

/// The seed 003 app's secret; its argon2 hash is in `APP_YAML`.
pub const SECRET: &str = "coupangTest";

/// A CA made for one test and a server certificate for localhost / 127.0.0.1 signed by it.
pub struct TestCa {
    pub ca_der: Vec<u8>,
    /// The CA certificate as PEM.
    pub ca_pem: String,
    /// The same, written to a file (for `ca_file:`).
    pub ca_file: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(dir: &std::path::Path) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        TestCa {
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            ca_file,
            cert: cert_path,
            key: key_path,
            issuer: ca,
        }
    }

    /// A server certificate for `names` written as `{stem}.pem` / `{stem}.key` in `dir`.
    pub fn issue(&self, names: &[&str], dir: &std::path::Path, stem: &str) -> (PathBuf, PathBuf) {
        self.issue_for_days(names, None, dir, stem)
    }

    /// As `issue`, valid for `days` from today when given (rcgen's default otherwise).
    pub fn issue_for_days(
        &self,
        names: &[&str],
        days: Option<u64>,
        dir: &std::path::Path,
        stem: &str,
    ) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut p = rcgen::CertificateParams::new(names).unwrap();
        if let Some(days) = days {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let (y, m, d) = civil_date((now / 86_400 + days) as i64);
            p.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        write_pair(dir, stem, &cert.pem(), &key.serialize_pem())
    }

    /// A client certificate with subject `CN={cn}` and SAN URI `uri`, as `{stem}.pem`/`.key`.
    pub fn client(
        &self,
        cn: &str,
        uri: &str,
        dir: &std::path::Path,
        stem: &str,
    ) -> (PathBuf, PathBuf) {
        self.client_serial(cn, uri, None, dir, stem)
    }

    /// As `client`, with the serial number `serial` when given.
    pub fn client_serial(
        &self,
        cn: &str,
        uri: &str,
        serial: Option<u64>,
        dir: &std::path::Path,
        stem: &str,
    ) -> (PathBuf, PathBuf) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.serial_number = serial.map(rcgen::SerialNumber::from);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        write_pair(dir, stem, &cert.pem(), &key.serialize_pem())
    }
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

impl TestCa {
    /// A CRL signed by this CA revoking `serials`, written as PEM to `path`.
    pub fn revoke(&self, serials: &[u64], path: &std::path::Path) {
        let crl = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|&s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(s),
                    revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap();
        std::fs::write(path, crl.pem().unwrap()).unwrap();
    }
}

fn write_pair(dir: &std::path::Path, stem: &str, cert: &str, key: &str) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c, k)
}

/// What the echo upstream saw, sent back as JSON.
pub async fn echo(req: Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    if req.uri().path().ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if req.uri().path().ends_with("/linger") {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    if req.uri().path().ends_with("/pause") {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut headers = serde_json::Map::new();
    for (k, v) in req.headers() {
        headers.insert(k.as_str().to_owned(), v.to_str().unwrap_or("<bin>").into());
    }
    let method = req.method().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let json = serde_json::json!({
        "method": method, "path": path, "headers": headers, "body": String::from_utf8_lossy(&body),
    });
    Ok(hyper::Response::new(Full::new(Bytes::from(
        json.to_string(),
    ))))
}

/// Resource facts an upstream answers on `/internal/...` lookup paths (others get 404).
pub type Meta = std::collections::HashMap<String, serde_json::Value>;

/// An echo upstream on 127.0.0.1:0; it stops when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Lookup requests served (`/internal/...`), with the headers of the last one.
    pub lookups: Arc<std::sync::Mutex<Vec<(String, HeaderMap)>>>,
    /// What lookups answer; change it while the upstream runs.
    pub meta: Arc<std::sync::Mutex<Meta>>,
    /// Connections open right now.
    pub open: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn echo() -> Self {
        Self::with_meta(Meta::new()).await
    }

    /// An echo upstream that also answers lookups: `meta[path]` as JSON on `GET /internal/...`
    /// (404 when absent, 500 when the value is the string "fail").
    pub async fn with_meta(meta: Meta) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lookups = Arc::new(std::sync::Mutex::new(Vec::new()));
        let meta = Arc::new(std::sync::Mutex::new(meta));
        let (l2, m2) = (Arc::clone(&lookups), Arc::clone(&meta));
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let o2 = Arc::clone(&open);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (lookups, meta) = (Arc::clone(&l2), Arc::clone(&m2));
                let open = Arc::clone(&o2);
                open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (lookups, meta) = (Arc::clone(&lookups), Arc::clone(&meta));
                        async move {
                            let path = req.uri().path().to_owned();
                            if !path.starts_with("/internal/") {
                                return echo(req).await;
                            }
                            lookups
                                .lock()
                                .unwrap()
                                .push((path.clone(), req.headers().clone()));
                            let found = meta.lock().unwrap().get(&path).cloned();
                            let (status, body) = match found {
                                Some(serde_json::Value::String(s)) if s == "fail" => {
                                    (500, "{}".to_owned())
                                }
                                Some(v) => (200, v.to_string()),
                                None => (404, r#"{"error":"no such resource"}"#.to_owned()),
                            };
                            let mut res = hyper::Response::new(Full::new(Bytes::from(body)));
                            *res.status_mut() = StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = b.serve_connection(TokioIo::new(tcp), svc).await;
                    open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        Upstream {
            addr,
            lookups,
            meta,
            open,
            task,
        }
    }

    /// How many lookups were served.
    pub fn lookup_count(&self) -> usize {
        self.lookups.lock().unwrap().len()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An address nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The `apps:` and `dialects:` blocks most tests use (seed 003's app).
pub fn app_yaml() -> String {
    format!(
        r#"apps:
  - id: coupang
    secret: "{}"
    oauth_scopes: [bailunApi]
  - id: plain
    secret: plainSecret
    oauth_scopes: []
dialects:
  oauth: {{ path: /oauth/token/get, ttl: 1h }}
signing:
  issuer: https://gw.test
"#,
        hash()
    )
}

fn hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| tollgate::issue::core::hash_secret(SECRET))
}

/// A gateway running in this test process.
pub struct Gateway {
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub client: TestClient,
    pub tls: bool,
    /// DER of the test CA (TLS gateways).
    pub ca_der: Option<Vec<u8>>,
    /// The `listen:`/`admin:`/`store:` part of the config file, kept across reloads.
    prefix: String,
}

impl Gateway {
    /// A builder; `yaml` is everything but `listen:`/`admin:`/`store:`.
    pub fn with(yaml: &str) -> GatewayBuilder {
        GatewayBuilder {
            yaml: yaml.to_owned(),
            tls: false,
            admin_token: None,
            listen: String::new(),
        }
    }

    /// Starts on plain HTTP (`Gateway::with(yaml).start()`).
    pub async fn start(yaml: &str) -> Self {
        Self::with(yaml).start().await
    }

    async fn start_with(b: GatewayBuilder) -> Self {
        let (yaml, tls, admin_token) = (b.yaml.as_str(), b.tls, b.admin_token.as_deref());
        let dir = tempfile::tempdir().unwrap();
        let admin_extra = match admin_token {
            Some(t) => {
                let f = dir.path().join("admin.token");
                std::fs::write(&f, format!("{t}\n")).unwrap();
                format!("  token_file: {}\n", f.display())
            }
            None => String::new(),
        };
        let (tls_block, client, ca_der) = if tls {
            let ca = TestCa::new(dir.path());
            let block = format!(
                "  tls: {{ cert: {}, key: {} }}\n",
                ca.cert.display(),
                ca.key.display()
            );
            (block, TestClient::tls(&ca.ca_der), Some(ca.ca_der))
        } else {
            (String::new(), TestClient::plain(), None)
        };
        let prefix = format!(
            "listen:\n  address: 127.0.0.1:0\n{}{tls_block}admin:\n  address: 127.0.0.1:0\n{admin_extra}store:\n  path: {}/tollgate.db\n",
            b.listen,
            dir.path().display()
        );
        let text = format!("{prefix}{yaml}");
        let file = dir.path().join("tollgate.yaml");
        std::fs::write(&file, &text).unwrap();
        let config = tollgate::config::load(&file)
            .unwrap_or_else(|e| panic!("test config refused:\n{e}\n{text}"));
        let running = server::start(config).await.unwrap();
        Gateway {
            addr: running.public_addr,
            admin: running.admin_addr,
            running: Some(running),
            dir,
            client,
            tls,
            ca_der,
            prefix,
        }
    }

    /// Moves the gateway's clock forward: expiry without waiting for it.
    pub fn advance(&self, by: Duration) {
        self.running
            .as_ref()
            .unwrap()
            .gateway
            .shared
            .clock
            .advance(by);
    }

    /// Rewrites the config file with `yaml` (listen/admin/store kept) and reloads it, as SIGHUP does.
    pub fn reload(&self, yaml: &str) {
        let file = self.dir.path().join("tollgate.yaml");
        std::fs::write(&file, format!("{}{yaml}", self.prefix)).unwrap();
        let gw = &self.running.as_ref().unwrap().gateway;
        gw.reload()
            .unwrap_or_else(|e| panic!("reload refused:\n{e}"));
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = if self.tls {
            format!("localhost:{}", self.addr.port())
        } else {
            self.addr.to_string()
        };
        format!("{scheme}://{host}{path}")
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin.unwrap())
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        TestClient::plain()
            .send("GET", &self.admin_url("/metrics"), &[], "")
            .await
            .body
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.client.send("GET", &self.url(path), headers, "").await
    }

    /// POSTs `body` to `path`, as JSON unless `headers` name another content type.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.client.post_json(&self.url(path), headers, body).await
    }

    /// The `accessToken` of app `plain` (no oauth scopes), "Bearer " included.
    pub async fn plain_token(&self) -> String {
        let r = self
            .post(
                "/oauth/token/get",
                &[],
                r#"{"app_id":"plain","app_secret":"plainSecret"}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["accessToken"].as_str().unwrap().to_owned()
    }

    /// Seed 003 token request; returns the `accessToken` value ("Bearer ..." included).
    pub async fn token(&self) -> String {
        let r = self
            .client
            .send(
                "POST",
                &self.url("/oauth/token/get"),
                &[("content-type", "application/json")],
                &format!(r#"{{"app_id":"coupang","app_secret":"{SECRET}"}}"#),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["accessToken"].as_str().unwrap().to_owned()
    }

    /// A bkflow token of `coupang` (secret `SECRET`) in space 3 for (TEMPLATE `id`, `perm`).
    pub async fn bkflow_template_token(&self, id: &str, perm: &str) -> String {
        let body = serde_json::json!({ "bk_app_code": "coupang", "bk_app_secret": SECRET,
            "resource_type": "TEMPLATE", "resource_id": id, "permission_type": perm });
        let r = self
            .post("/bkflow/space/3/apply_token/", &[], &body.to_string())
            .await
            .json();
        r["data"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned()
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// A feishu `app_access_token` for `app`: its current ticket read from the admin API at
/// `admin` (`http://host:port`), then the token asked of the public listener at `public`.
pub async fn feishu_app_token(
    client: &TestClient,
    public: &str,
    admin: &str,
    app: &str,
    secret: &str,
) -> String {
    let ticket = client
        .send(
            "GET",
            &format!("{admin}/admin/apps/{app}/app_ticket"),
            &[],
            "",
        )
        .await
        .json()["app_ticket"]
        .as_str()
        .expect("a ticket")
        .to_owned();
    let body = serde_json::json!({ "app_id": app, "app_secret": secret, "app_ticket": ticket });
    let r = client
        .post_json(
            &format!("{public}/open-apis/auth/v3/app_access_token"),
            &[],
            &body.to_string(),
        )
        .await
        .json();
    assert_eq!(r["code"], 0, "{r}");
    r["app_access_token"].as_str().expect("a token").to_owned()
}

/// Polls `f` until it holds or `limit` passes (for what really is eventual: another
/// replica's view, a pool closing idle connections); true when it held.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway under test, configured step by step: `Gateway::with(yaml).tls().start().await`.
pub struct GatewayBuilder {
    yaml: String,
    tls: bool,
    admin_token: Option<String>,
    listen: String,
}

impl GatewayBuilder {
    /// Serve TLS with a certificate from a CA made for this test.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Require `token` on the admin API.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_owned());
        self
    }

    /// More `listen:` keys, one `key: value` a line (`proxy_protocol: true`).
    pub fn listen(mut self, lines: &str) -> Self {
        for l in lines.lines() {
            self.listen.push_str(&format!("  {l}\n"));
        }
        self
    }

    /// Starts it on 127.0.0.1:0.
    pub async fn start(self) -> Gateway {
        Gateway::start_with(self).await
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub version: http::Version,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTP client, plain or trusting one test CA.
#[derive(Clone)]
pub enum TestClient {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<Https, Full<Bytes>>),
}

impl TestClient {
    pub fn plain() -> Self {
        TestClient::Plain(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
    }

    pub fn tls_config(ca_der: &[u8]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(ca_der.to_vec()))
            .unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    }

    pub fn tls(ca_der: &[u8]) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Self::tls_config(ca_der))
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        TestClient::Tls(Client::builder(TokioExecutor::new()).build(https))
    }

    /// POSTs `body` to `url`, as JSON unless `headers` name another content type.
    pub async fn post_json(&self, url: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if !h
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            h.push(("content-type", "application/json"));
        }
        self.send("POST", url, &h, body).await
    }

    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let res = match self {
            TestClient::Plain(c) => c.request(req).await,
            TestClient::Tls(c) => c.request(req).await,
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            version: parts.version,
        }
    }
}

/// Sends raw bytes from `from` (a loopback source address) and reads until the server closes or 3 s pass.
pub async fn raw_from(from: std::net::IpAddr, addr: SocketAddr, bytes: &[u8]) -> String {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends raw bytes and reads until the server closes or 3 s pass.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a JWT's header and claims without verifying (for assertions).
pub fn jwt_parts(token: &str) -> (serde_json::Value, serde_json::Value) {
    use base64::Engine as _;
    let mut it = token.split('.');
    let dec = |s: &str| {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap();
        serde_json::from_slice(&b).unwrap()
    };
    (dec(it.next().unwrap()), dec(it.next().unwrap()))
}

/// The value of the first unlabelled sample `name` in a Prometheus text exposition.
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
