//! TLS on the public listener: 1.2 and 1.3 only, ALPN h2 / http/1.1, handshake deadline.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::{app_yaml, Gateway, Upstream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn gateway() -> (Gateway, Upstream) {
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}upstreams:\n  product: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /product, upstream: product, auth: none }}\nlimits: {{ tls_handshake_timeout: 1s }}\n",
        app_yaml(),
        up.url()
    );
    (Gateway::with(&yaml).tls().start().await, up)
}

/// A TLS 1.1 ClientHello (no extensions), as an old client sends it.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend([7u8; 32]);
    body.push(0);
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend([0x01, 0x00]);
    let mut hs = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend(hs);
    rec
}

#[tokio::test]
async fn tls_1_1_is_refused_with_an_alert() {
    let (gw, _up) = gateway().await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(&tls11_client_hello()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    assert!(!buf.is_empty(), "the server should answer with an alert");
    assert_eq!(buf[0], 0x15, "expected an alert record, got {buf:02x?}");
    assert_eq!(
        buf.len(),
        7,
        "one alert record and nothing else (no ServerHello): {buf:02x?}"
    );
    assert_eq!(buf[5], 2, "a fatal alert: {buf:02x?}");
    assert!(
        matches!(buf[6], 40 | 70),
        "handshake_failure or protocol_version: {buf:02x?}"
    );
}

/// Handshakes with only `versions` and `alpn` offered; returns the negotiated version and protocol.
async fn handshake(
    gw: &Gateway,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<(rustls::ProtocolVersion, Option<Vec<u8>>), std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(
            gw.ca_der.clone().unwrap(),
        ))
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(gw.addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await?;
    let (_, conn) = tls.get_ref();
    Ok((
        conn.protocol_version().unwrap(),
        conn.alpn_protocol().map(<[u8]>::to_vec),
    ))
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_served_with_alpn() {
    let (gw, _up) = gateway().await;
    let (v, alpn) = handshake(&gw, &[&rustls::version::TLS12], &[b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_2);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (v, alpn) = handshake(&gw, &[&rustls::version::TLS13], &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let r = gw.get("/product", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.version,
        http::Version::HTTP_2,
        "the harness client offers h2 and gets it"
    );
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_and_counted() {
    let (gw, _up) = gateway().await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "connection still open after the 1 s handshake deadline"
    );
    let metrics = support::TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tollgate_tls_handshake_errors_total"))
        .unwrap();
    assert!(!line.ends_with(" 0"), "{line}");
}

#[tokio::test]
async fn a_reload_picks_up_a_new_certificate() {
    let (gw, _up) = gateway().await;
    let old_ca = gw.ca_der.clone().unwrap();
    // A new CA and certificate written over the configured files, then a reload.
    let fresh = tempfile::tempdir().unwrap();
    let new = support::TestCa::new(fresh.path());
    std::fs::copy(&new.cert, gw.dir.path().join("server.pem")).unwrap();
    std::fs::copy(&new.key, gw.dir.path().join("server.key")).unwrap();
    gw.running.as_ref().unwrap().gateway.reload().unwrap();
    let with_new = support::TestClient::tls(&new.ca_der);
    assert_eq!(
        with_new
            .send("GET", &gw.url("/product"), &[], "")
            .await
            .status,
        200
    );
    let old_client = handshake_with_ca(&gw, &old_ca).await;
    assert!(
        old_client.is_err(),
        "the old certificate is no longer served"
    );
}

async fn handshake_with_ca(gw: &Gateway, ca: &[u8]) -> Result<(), std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map(|_| ())
}
