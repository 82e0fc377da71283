//! PEM files → rustls settings: the listener's (TLS 1.2 and 1.3 only, ALPN h2 and http/1.1,
//! certificates by SNI, client certificates) and the upstream client's, all on aws-lc-rs.

pub mod cert_info;
pub mod sni;

use crate::config::{ClientAuthMode, TlsFiles, UpstreamTls};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// One served certificate: the names it answers for and when it ends.
#[derive(Debug, Clone)]
pub struct Served {
    /// The names (`(default)` for the default certificate when it has none of its own).
    pub names: Vec<String>,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
}

/// The listener's TLS settings and what they serve.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// For the acceptor.
    pub config: Arc<ServerConfig>,
    /// Every certificate served, the default first.
    pub served: Vec<Served>,
}

fn certified(
    cert: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<(Arc<CertifiedKey>, cert_info::CertSummary), String> {
    let chain = read_certs(cert)?;
    let summary = cert_info::summary(&chain[0]).map_err(|e| format!("{}: {e}", cert.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(read_key(key)?)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| format!("{}: does not match {}: {e}", key.display(), cert.display()))?;
    Ok((Arc::new(ck), summary))
}

/// Loads every certificate and key and builds the server settings (at start and on reload;
/// an error leaves what is running as it is).
pub fn server_config(files: &TlsFiles) -> Result<ServerTls, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = match &files.client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(&auth.ca_file)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", auth.ca_file.display()))?;
            }
            let mut v =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if let Some(crl) = &auth.crl_file {
                let crls: Vec<CertificateRevocationListDer<'static>> =
                    CertificateRevocationListDer::pem_file_iter(crl)
                        .map_err(|e| format!("{}: {e}", crl.display()))?
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("{}: {e}", crl.display()))?;
                v = v.with_crls(crls);
            }
            if auth.mode == ClientAuthMode::Optional {
                v = v.allow_unauthenticated();
            }
            let v = v
                .build()
                .map_err(|e| format!("{}: {e}", auth.ca_file.display()))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let (default, summary) = certified(&files.cert, &files.key, &provider)?;
    let mut served = vec![Served {
        names: if summary.dns_names.is_empty() {
            vec!["(default)".into()]
        } else {
            summary.dns_names.clone()
        },
        not_after: summary.not_after,
    }];
    let mut cfg = if files.certificates.is_empty() && !files.sni_strict {
        builder.with_cert_resolver(Arc::new(sni::Single(default)))
    } else {
        let mut sni = sni::SniResolver::new((!files.sni_strict).then(|| Arc::clone(&default)));
        if files.sni_strict {
            for n in &summary.dns_names {
                sni.add(n, &default);
            }
        }
        for c in &files.certificates {
            let (key, summary) = certified(&c.cert, &c.key, &provider)?;
            let names = c.names.clone().unwrap_or_else(|| summary.dns_names.clone());
            if names.is_empty() {
                return Err(format!(
                    "{}: no DNS names in the certificate; list them in names:",
                    c.cert.display()
                ));
            }
            for n in &names {
                sni.add(n, &key);
            }
            served.push(Served {
                names,
                not_after: summary.not_after,
            });
        }
        builder.with_cert_resolver(Arc::new(sni))
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(cfg),
        served,
    })
}

/// Client settings for `https://` upstream targets: the bundled web roots or `ca_file`,
/// an optional client identity, TLS 1.2 and 1.3, aws-lc-rs.
pub fn client_config(tls: &UpstreamTls) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                for cert in read_certs(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    match &tls.client_identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| format!("{}: {e}", key.display())),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `insecure_skip_verify: true`: any chain and name pass; signatures are still checked, so the
/// handshake itself stays sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
