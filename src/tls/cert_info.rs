//! What a certificate says, read with `x509-parser`: its DNS names and expiry (for SNI and
//! `tollgate check`), and for a verified client certificate the identity forwarded upstream.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// A served certificate's names and end of validity.
#[derive(Debug, Clone)]
pub struct CertSummary {
    /// SAN DNS names (`*.example.com` included as written).
    pub dns_names: Vec<String>,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
}

/// The identity a verified client certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Its subject, attribute by attribute in certificate order (empty when not text).
    pub subject_attrs: Vec<crate::config::dn::Attr>,
    /// Its subject as forwarded: those attributes, values escaped as RFC 4514 says.
    pub subject: String,
    /// Its subject's CN, when it has one.
    pub common_name: Option<String>,
    /// SAN DNS names and URIs, in the certificate's order.
    pub sans: Vec<String>,
    /// SHA-256 of the certificate's DER.
    pub sha256: [u8; 32],
    /// `X-Tollgate-Client-Cert-Subject`, `-San` (comma-separated, each value percent-encoded
    /// where it holds `%`, `,`, space, controls or non-ASCII) and `-Fingerprint` (hex
    /// SHA-256) as sent upstream, made once per connection (`None`: not a sane header value).
    pub headers: [Option<http::HeaderValue>; 3],
}

impl ClientCert {
    /// The fingerprint as lower-case hex.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The RFC 8705 `x5t#S256` value: base64url of the SHA-256, no padding.
    pub fn x5t_s256(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.sha256)
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("unreadable certificate: {e}"))
}

fn sans(cert: &X509Certificate<'_>, uris: bool) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            GeneralName::URI(u) if uris => Some((*u).to_owned()),
            _ => None,
        })
        .collect()
}

/// Names and expiry of a served certificate (its leaf's DER).
pub fn summary(der: &[u8]) -> Result<CertSummary, String> {
    let cert = parse(der)?;
    Ok(CertSummary {
        dns_names: sans(&cert, false),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The identity of a client certificate the handshake verified (its leaf's DER).
pub fn client_cert(der: &[u8]) -> Result<ClientCert, String> {
    let cert = parse(der)?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(digest.as_ref());
    let subject_attrs = crate::config::dn::of_subject(cert.subject()).unwrap_or_default();
    let subject = crate::config::dn::render(&subject_attrs);
    let sans = sans(&cert, true);
    let value = |s: &str| http::HeaderValue::from_str(s).ok();
    let headers = [
        value(&subject),
        value(&crate::config::dn::sans_header(&sans)),
        value(&hex::encode(sha256)),
    ];
    Ok(ClientCert {
        subject_attrs,
        subject,
        common_name,
        sans,
        sha256,
        headers,
    })
}
/// The SHA-256 an `x5t#S256` value names (base64url, 32 bytes); a `cnf` it cannot read makes
/// the token unusable rather than unbound.
pub fn thumbprint(v: Option<&serde_json::Value>) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let text = v?.as_str()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}
