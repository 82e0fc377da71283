//! The listener's TLS handshake with one certificate vs with SNI picking among 100 (plus
//! client certificates, required), each a full TLS 1.3 handshake in memory (no sockets, no
//! resumption), in the same run: what the certificate resolver adds.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use std::path::Path;
use std::sync::Arc;
use tollgate::config::{CertFiles, ClientAuth, ClientAuthMode, TlsFiles};

struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        Ca {
            issuer: rcgen::CertifiedIssuer::self_signed(p, rcgen::KeyPair::generate().unwrap())
                .unwrap(),
        }
    }

    /// A certificate for `names` written as `dir/{stem}.pem` and `.key`.
    fn issue(&self, names: &[String], dir: &Path, stem: &str, client: bool) -> CertFiles {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(names.to_vec()).unwrap();
        if client {
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        CertFiles {
            cert: c,
            key: k,
            names: None,
        }
    }
}

fn client(ca: &Ca, identity: Option<&CertFiles>) -> Arc<ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let b = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots);
    let mut cfg = match identity {
        Some(id) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&id.cert)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(&id.key).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// One full handshake between fresh connections, over in-memory buffers.
fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>, name: &str) {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c = ClientConnection::new(Arc::clone(client), name).unwrap();
    let mut s = ServerConnection::new(Arc::clone(server)).unwrap();
    let mut buf = Vec::with_capacity(8192);
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets().unwrap();
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets().unwrap();
    }
}

fn bench(cr: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let default = ca.issue(&["localhost".into()], dir.path(), "default", false);
    let sni: Vec<CertFiles> = (0..100)
        .map(|i| ca.issue(&[format!("n{i}.test")], dir.path(), &format!("n{i}"), false))
        .collect();
    let files = |certificates: Vec<CertFiles>, client_auth: Option<ClientAuth>| TlsFiles {
        cert: default.cert.clone(),
        key: default.key.clone(),
        certificates,
        sni_strict: false,
        client_auth,
    };
    let single = tollgate::tls::server_config(&files(Vec::new(), None))
        .unwrap()
        .config;
    let by_name = tollgate::tls::server_config(&files(sni.clone(), None))
        .unwrap()
        .config;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.issuer.pem()).unwrap();
    let mtls = tollgate::tls::server_config(&files(
        sni,
        Some(ClientAuth {
            ca_file,
            mode: ClientAuthMode::Required,
            crl_file: None,
        }),
    ))
    .unwrap()
    .config;
    let plain = client(&ca, None);
    let id = ca.issue(&["svc.test".into()], dir.path(), "client", true);
    let with_cert = client(&ca, Some(&id));
    let mut g = cr.benchmark_group("tls_handshake");
    g.bench_function("single_certificate", |b| {
        b.iter(|| handshake(&single, &plain, "localhost"))
    });
    g.bench_function("sni_100_certificates", |b| {
        b.iter(|| handshake(&by_name, &plain, "n57.test"))
    });
    g.bench_function("sni_100_unknown_name_default", |b| {
        b.iter(|| handshake(&by_name, &plain, "localhost"))
    });
    g.bench_function("sni_and_client_certificate", |b| {
        b.iter(|| handshake(&mtls, &with_cert, "n57.test"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
