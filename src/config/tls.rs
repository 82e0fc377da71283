//! `listen.tls`: the listener's certificates (by SNI) and client certificates.

use std::path::{Path, PathBuf};

/// Certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM chain of the default certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// More certificates, by the names they serve.
    pub certificates: Vec<CertFiles>,
    /// No certificate for a client naming no served name: the handshake is refused.
    pub sni_strict: bool,
    /// Client certificates.
    pub client_auth: Option<ClientAuth>,
}

impl TlsFiles {
    /// Every file the listener's TLS reads (watched for changes).
    pub fn files(&self) -> Vec<&Path> {
        let mut out = vec![self.cert.as_path(), self.key.as_path()];
        for c in &self.certificates {
            out.push(&c.cert);
            out.push(&c.key);
        }
        if let Some(a) = &self.client_auth {
            out.push(&a.ca_file);
            out.extend(a.crl_file.as_deref());
        }
        out
    }
}

/// One SNI certificate.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Names it serves (`*.example.com` matches one label); `None`: its DNS names.
    pub names: Option<Vec<String>>,
}

/// Whether a client certificate is asked for or needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// Asked for; routes decide whether it is needed.
    Optional,
    /// Needed: a client without one fails the handshake.
    Required,
}

/// `listen.tls.client_auth`.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// PEM roots client certificates must chain to.
    pub ca_file: PathBuf,
    /// Optional or required.
    pub mode: ClientAuthMode,
    /// PEM CRLs.
    pub crl_file: Option<PathBuf>,
}
