//! Issue 14: the TLS edge. Certificates by SNI (checked from the client side: the leaf it is
//! served), a certificate replaced on disk served to new connections while an open one keeps
//! working, client certificates required or optional, `auth: client_cert`,
//! `require.client_cert`, and tokens bound to a certificate (RFC 8705).

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::{TestCa, Upstream};

/// A client trusting `ca` (or, with none, any server certificate: the test reads which one
/// it was given), presenting `identity` when given — the upstream client's own settings.
fn client(ca: Option<&TestCa>, identity: Option<&(PathBuf, PathBuf)>) -> rustls::ClientConfig {
    tollgate::tls::client_config(&tollgate::config::UpstreamTls {
        ca_file: ca.map(|c| c.ca_file.clone()),
        server_name: None,
        client_identity: identity.cloned(),
        insecure_skip_verify: ca.is_none(),
    })
    .unwrap()
}

fn der_chain(pem: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(pem)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// One HTTP/1.1 connection over TLS: the leaf the server presented and a request sender.
struct Conn {
    leaf: Vec<u8>,
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

async fn connect(addr: SocketAddr, sni: &str, cfg: rustls::ClientConfig) -> Result<Conn, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(Conn { leaf, send })
}

impl Conn {
    /// `method path` with `headers`; the status and the body, or why it failed.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, String), String> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let res = self
            .send
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    }

    async fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        self.send("GET", path, &[], "").await
    }
}

/// The DER of the first certificate in a PEM file.
fn leaf_of(pem: &Path) -> Vec<u8> {
    der_chain(pem)[0].to_vec()
}

struct Edge {
    running: Option<tollgate::server::Running>,
    addr: SocketAddr,
    ca: TestCa,
    dir: tempfile::TempDir,
    _up: Upstream,
}

/// A gateway whose `listen.tls` is `tls` (the default certificate is the CA's localhost one)
/// with the test apps and `routes`.
async fn edge(tls: impl Fn(&TestCa, &Path) -> String, routes: &str) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let up = Upstream::echo().await;
    let yaml = format!(
        "listen:\n  address: 127.0.0.1:0\n  tls:\n    cert: {}\n    key: {}\n{}store: {{ path: {}/db }}\n{}upstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n{routes}",
        ca.cert.display(),
        ca.key.display(),
        tls(&ca, dir.path()),
        dir.path().display(),
        support::app_yaml(),
        up.url(),
    );
    let file = dir.path().join("gw.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let cfg = tollgate::config::load(&file).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let running = tollgate::server::start(cfg).await.unwrap();
    Edge {
        addr: running.public_addr,
        running: Some(running),
        ca,
        dir,
        _up: up,
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        drop(self.running.take());
    }
}

#[tokio::test]
async fn each_name_gets_its_own_certificate_and_an_unknown_one_the_default() {
    let e = edge(
        |ca, dir| {
            let (a, ak) = ca.issue(&["a.test"], dir, "a");
            let (b, bk) = ca.issue(&["b.test", "*.w.test"], dir, "b");
            format!(
                "    certificates:\n      - {{ cert: {}, key: {} }}\n      - {{ cert: {}, key: {} }}\n",
                a.display(), ak.display(), b.display(), bk.display()
            )
        },
        "  - { path: /p, upstream: api, auth: none }\n",
    )
    .await;
    let d = e.dir.path();
    // Verified from the client side against the test CA, for the name asked.
    let mut a = connect(e.addr, "a.test", client(Some(&e.ca), None))
        .await
        .unwrap();
    assert_eq!(a.leaf, leaf_of(&d.join("a.pem")));
    assert_eq!(a.get("/p").await.unwrap().0, 200);
    let b = connect(e.addr, "b.test", client(Some(&e.ca), None))
        .await
        .unwrap();
    assert_eq!(b.leaf, leaf_of(&d.join("b.pem")));
    let w = connect(e.addr, "x.w.test", client(Some(&e.ca), None))
        .await
        .unwrap();
    assert_eq!(
        w.leaf,
        leaf_of(&d.join("b.pem")),
        "*.w.test matches one label"
    );
    // Two labels below the wildcard, or an unknown name: the default certificate.
    let deep = connect(e.addr, "y.x.w.test", client(None, None))
        .await
        .unwrap();
    assert_eq!(deep.leaf, leaf_of(&e.ca.cert));
    let other = connect(e.addr, "c.test", client(None, None)).await.unwrap();
    assert_eq!(other.leaf, leaf_of(&e.ca.cert));
    let m = String::from_utf8(e.running.as_ref().unwrap().gateway.shared.metrics.render()).unwrap();
    for name in ["a.test", "b.test", "*.w.test", "localhost"] {
        let series = format!("tollgate_tls_certificate_expiry_seconds{{name=\"{name}\"}}");
        assert!(m.contains(&series), "{series} missing:\n{m}");
    }
}

#[test]
fn check_lists_the_names_each_certificate_serves_and_warns_of_one_near_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let (a, ak) = ca.issue_for_days(&["a.test", "www.a.test"], Some(10), dir.path(), "a");
    let path = support::bin::write(
        dir.path(),
        "gw.yaml",
        &format!(
            "listen:\n  address: 127.0.0.1:0\n  tls:\n    cert: {}\n    key: {}\n    certificates: [{{ cert: {}, key: {} }}]\n",
            ca.cert.display(), ca.key.display(), a.display(), ak.display()
        ),
    );
    let out = std::process::Command::new(support::bin::exe())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("tls    default localhost"), "{stdout}");
    assert!(
        stdout.contains("tls    sni     a.test, www.a.test (expires in 9 days)")
            || stdout.contains("tls    sni     a.test, www.a.test (expires in 10 days)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the certificate for a.test, www.a.test expires in"),
        "{stderr}"
    );
    assert!(!stderr.contains("localhost expires"), "{stderr}");
}

#[tokio::test]
async fn sni_strict_refuses_a_name_it_does_not_serve() {
    let e = edge(
        |ca, dir| {
            let (a, ak) = ca.issue(&["a.test"], dir, "a");
            format!(
                "    sni_strict: true\n    certificates:\n      - {{ cert: {}, key: {} }}\n",
                a.display(),
                ak.display()
            )
        },
        "  - { path: /p, upstream: api, auth: none }\n",
    )
    .await;
    assert!(connect(e.addr, "a.test", client(Some(&e.ca), None))
        .await
        .is_ok());
    assert!(connect(e.addr, "localhost", client(Some(&e.ca), None))
        .await
        .is_ok());
    let refused = connect(e.addr, "c.test", client(None, None)).await;
    assert!(refused.is_err(), "an unserved name completed a handshake");
}

fn mtls(mode: &str) -> impl Fn(&TestCa, &Path) -> String + '_ {
    move |ca, _| {
        format!(
            "    client_auth: {{ ca_file: {}, mode: {mode} }}\n",
            ca.ca_file.display()
        )
    }
}

#[tokio::test]
async fn required_client_certificates_pass_only_when_they_chain_to_the_ca() {
    let e = edge(
        mtls("required"),
        "  - { path: /p, upstream: api, auth: none }\n",
    )
    .await;
    let d = e.dir.path();
    // No certificate: the handshake (or the first exchange after it, in TLS 1.3) fails.
    let bare = match connect(e.addr, "localhost", client(Some(&e.ca), None)).await {
        Err(_) => true,
        Ok(mut c) => c.get("/p").await.is_err(),
    };
    assert!(bare, "a client without a certificate got through");
    // A certificate from another CA.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestCa::new(other_dir.path()).client("svc", "spiffe://x/svc", d, "other");
    let foreign = match connect(e.addr, "localhost", client(Some(&e.ca), Some(&other))).await {
        Err(_) => true,
        Ok(mut c) => c.get("/p").await.is_err(),
    };
    assert!(foreign, "a certificate of another CA got through");
    // A good one: 200, its identity upstream, forged copies gone.
    let good = e.ca.client("billing", "spiffe://acme/billing", d, "good");
    let mut c = connect(e.addr, "localhost", client(Some(&e.ca), Some(&good)))
        .await
        .unwrap();
    let (status, body) = c
        .send(
            "GET",
            "/p",
            &[("x-tollgate-client-cert-subject", "CN=root")],
            "",
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-tollgate-client-cert-subject"], "CN=billing", "{h}");
    assert_eq!(h["x-tollgate-client-cert-san"], "spiffe://acme/billing");
    let fp = h["x-tollgate-client-cert-fingerprint"].as_str().unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &leaf_of(&good.0));
    assert_eq!(fp, hex::encode(digest.as_ref()));
}

#[tokio::test]
async fn a_client_certificate_in_the_crl_fails_the_handshake() {
    let e = edge(
        |ca, dir| {
            let crl = dir.join("clients.crl");
            ca.revoke(&[666], &crl);
            format!(
                "    client_auth: {{ ca_file: {}, mode: required, crl_file: {} }}\n",
                ca.ca_file.display(),
                crl.display()
            )
        },
        "  - { path: /p, upstream: api, auth: none }\n",
    )
    .await;
    let d = e.dir.path();
    let revoked =
        e.ca.client_serial("gone", "spiffe://acme/gone", Some(666), d, "gone");
    let kept =
        e.ca.client_serial("kept", "spiffe://acme/kept", Some(667), d, "kept");
    let refused = match connect(e.addr, "localhost", client(Some(&e.ca), Some(&revoked))).await {
        Err(_) => true,
        Ok(mut c) => c.get("/p").await.is_err(),
    };
    assert!(refused, "a revoked client certificate got through");
    let mut c = connect(e.addr, "localhost", client(Some(&e.ca), Some(&kept)))
        .await
        .unwrap();
    assert_eq!(c.get("/p").await.unwrap().0, 200);
}

#[tokio::test]
async fn optional_client_certificates_let_routes_decide() {
    let routes = "  - { path: /svc, upstream: api, auth: client_cert }\n  - { path: /billing-only, upstream: api, auth: client_cert, require: { client_cert: { san: \"spiffe://acme/billing\" } } }\n  - { path: /p, upstream: api, require: { client_cert: { subject: billing } } }\n";
    let e = edge(mtls("optional"), routes).await;
    let d = e.dir.path();
    let mut bare = connect(e.addr, "localhost", client(Some(&e.ca), None))
        .await
        .unwrap();
    assert_eq!(bare.get("/svc").await.unwrap().0, 401);
    let billing =
        e.ca.client("billing", "spiffe://acme/billing", d, "billing");
    let mut c = connect(e.addr, "localhost", client(Some(&e.ca), Some(&billing)))
        .await
        .unwrap();
    assert_eq!(c.get("/svc").await.unwrap().0, 200);
    assert_eq!(c.get("/billing-only").await.unwrap().0, 200);
    let orders = e.ca.client("orders", "spiffe://acme/orders", d, "orders");
    let mut o = connect(e.addr, "localhost", client(Some(&e.ca), Some(&orders)))
        .await
        .unwrap();
    let (status, body) = o.get("/billing-only").await.unwrap();
    assert_eq!(status, 403, "{body}");
    // A token and a certificate: both needed.
    let token = token_over(&mut c).await;
    let auth = format!("Bearer {token}");
    assert_eq!(
        c.send("GET", "/p", &[("authorization", &auth)], "")
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        bare.send("GET", "/p", &[("authorization", &auth)], "")
            .await
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        o.send("GET", "/p", &[("authorization", &auth)], "")
            .await
            .unwrap()
            .0,
        403
    );
}

/// An oauth token asked for over `c` (RFC 6749 client credentials).
#[tokio::test]
async fn a_certificate_name_is_compared_as_parsed_names_not_text() {
    let routes = "  - { path: /acme-billing, upstream: api, auth: client_cert, require: { client_cert: { subject: \"CN=billing\" } } }\n  - { path: /forged, upstream: api, auth: client_cert, require: { client_cert: { subject: \"C=US, O=Acme, CN=billing\" } } }\n";
    let e = edge(mtls("optional"), routes).await;
    let d = e.dir.path();
    // A CN that is the text of a longer subject, and a URI SAN holding a comma.
    let forged = e.ca.client(
        "C=US, O=Acme, CN=billing",
        "spiffe://acme/billing,spiffe://acme/admin",
        d,
        "forged",
    );
    let mut c = connect(e.addr, "localhost", client(Some(&e.ca), Some(&forged)))
        .await
        .unwrap();
    let (status, body) = c.get("/forged").await.unwrap();
    assert_eq!(status, 403, "one CN is not three attributes: {body}");
    assert_eq!(c.get("/acme-billing").await.unwrap().0, 403);
    // What the upstream reads cannot be taken for another subject or two SANs.
    let good = e.ca.client("billing", "spiffe://acme/billing", d, "good");
    let mut g = connect(e.addr, "localhost", client(Some(&e.ca), Some(&good)))
        .await
        .unwrap();
    assert_eq!(g.get("/acme-billing").await.unwrap().0, 200);
    let routes_open = "  - { path: /any, upstream: api, auth: client_cert }\n";
    let e2 = edge(mtls("optional"), routes_open).await;
    let forged2 = e2.ca.client(
        "C=US, O=Acme, CN=billing",
        "spiffe://acme/billing,spiffe://acme/admin",
        e2.dir.path(),
        "forged",
    );
    let mut f = connect(e2.addr, "localhost", client(Some(&e2.ca), Some(&forged2)))
        .await
        .unwrap();
    let (status, body) = f.get("/any").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    let h = &seen["headers"];
    assert_eq!(
        h["x-tollgate-client-cert-subject"], r"CN=C\=US\, O\=Acme\, CN\=billing",
        "{h}"
    );
    assert_eq!(
        h["x-tollgate-client-cert-san"], "spiffe://acme/billing%2Cspiffe://acme/admin",
        "{h}"
    );
}

async fn token_over(c: &mut Conn) -> String {
    let (status, body) = c
        .send(
            "POST",
            "/oauth/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!(
                "grant_type=client_credentials&client_id=coupang&client_secret={}",
                support::SECRET
            ),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_certificate_bound_token_passes_only_with_its_certificate() {
    let e = edge(mtls("optional"), "  - { path: /p, upstream: api }\n").await;
    // The test apps' oauth dialect, with binding on.
    let file = e.dir.path().join("gw.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "oauth: { path: /oauth/token/get, ttl: 1h }",
        "oauth: { path: /oauth/token/get, ttl: 1h, certificate_bound: true }",
    );
    std::fs::write(&file, text).unwrap();
    e.running.as_ref().unwrap().gateway.reload().unwrap();
    let d = e.dir.path();
    let mine = e.ca.client("billing", "spiffe://acme/billing", d, "mine");
    let theirs = e.ca.client("billing", "spiffe://acme/billing", d, "theirs");
    let mut c = connect(e.addr, "localhost", client(Some(&e.ca), Some(&mine)))
        .await
        .unwrap();
    let token = token_over(&mut c).await;
    let (_, claims) = support::jwt_parts(&token);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &leaf_of(&mine.0));
    use base64::Engine as _;
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    );
    let auth = format!("Bearer {token}");
    let h = [("authorization", auth.as_str())];
    assert_eq!(c.send("GET", "/p", &h, "").await.unwrap().0, 200);
    // Same subject, another certificate; then no certificate at all.
    let mut t = connect(e.addr, "localhost", client(Some(&e.ca), Some(&theirs)))
        .await
        .unwrap();
    let (status, body) = t.send("GET", "/p", &h, "").await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("bound to another client certificate"),
        "{body}"
    );
    let mut bare = connect(e.addr, "localhost", client(Some(&e.ca), None))
        .await
        .unwrap();
    assert_eq!(bare.send("GET", "/p", &h, "").await.unwrap().0, 401);
}

#[test]
fn a_certificate_renewed_on_disk_reaches_new_connections_and_open_ones_keep_working() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let (a, ak) = ca.issue(&["a.test"], dir.path(), "a");
    let up = rt.block_on(Upstream::echo());
    let path = support::bin::write(
        dir.path(),
        "gw.yaml",
        &format!(
            "listen:\n  address: 127.0.0.1:0\n  tls:\n    cert: {}\n    key: {}\n    certificates: [{{ cert: {}, key: {} }}]\nstore: {{ path: {}/db }}\nupstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /p, upstream: api, auth: none }}\n",
            ca.cert.display(), ca.key.display(), a.display(), ak.display(), dir.path().display(), up.url()
        ),
    );
    let gw = support::bin::Proc::start(&path);
    rt.block_on(async {
        let old = leaf_of(&a);
        let mut open = connect(gw.addr, "a.test", client(Some(&ca), None))
            .await
            .unwrap();
        assert_eq!(open.leaf, old);
        assert_eq!(open.get("/p").await.unwrap().0, 200);
        // Renewed: a new key and certificate written over the old files.
        let fresh = tempfile::tempdir().unwrap();
        let (na, nak) = ca.issue(&["a.test"], fresh.path(), "a");
        std::fs::copy(&nak, &ak).unwrap();
        std::fs::copy(&na, &a).unwrap();
        let new = leaf_of(&a);
        assert_ne!(old, new);
        let renewed = support::eventually(Duration::from_secs(8), || async {
            connect(gw.addr, "a.test", client(Some(&ca), None))
                .await
                .is_ok_and(|c| c.leaf == new)
        })
        .await;
        assert!(renewed, "new connections never got the renewed certificate");
        assert_eq!(
            open.get("/p").await.unwrap().0,
            200,
            "the open connection broke"
        );
        // A broken replacement: the last good certificate stays in use.
        std::fs::write(&a, "not a certificate").unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let c = connect(gw.addr, "a.test", client(Some(&ca), None))
            .await
            .unwrap();
        assert_eq!(c.leaf, new);
    });
    gw.wait_line("listen.tls", 5);
}
