//! The client certificate in the guard: `auth: client_cert` routes, `require.client_cert`,
//! and tokens bound to a certificate (RFC 8705) presented over another connection.

use crate::client_addr::ConnInfo;
use crate::config::{CertRequirement, SubjectMatch};
use crate::principal::Principal;
use crate::reject::{Invalid, Reject};
use crate::tls::cert_info::ClientCert;

/// The connection's verified certificate, meeting `req` when the route has one: none is a
/// 401, one that does not match a 403.
pub fn check<'a>(
    conn: &'a ConnInfo,
    req: Option<&CertRequirement>,
) -> Result<&'a ClientCert, Reject> {
    let cert = conn
        .client_cert
        .as_deref()
        .ok_or(Reject::MissingClientCert)?;
    if let Some(req) = req {
        if let Some(subject) = &req.subject {
            let ok = match subject {
                SubjectMatch::Dn(want) => crate::config::dn::same(&cert.subject_attrs, want),
                SubjectMatch::Cn(cn) => cert.common_name.as_deref() == Some(cn.as_str()),
            };
            if !ok {
                return Err(Reject::Forbidden(format!(
                    "a client certificate with subject {subject}"
                )));
            }
        }
        if let Some(san) = &req.san {
            if !cert.sans.iter().any(|s| s == san) {
                return Err(Reject::Forbidden(format!(
                    "a client certificate with SAN {san}"
                )));
            }
        }
    }
    Ok(cert)
}

/// A token bound to a certificate passes only over a connection that presented it.
pub fn check_binding(p: &Principal, conn: &ConnInfo) -> Result<(), Reject> {
    match p.bound_to {
        None => Ok(()),
        Some(want) => match conn.client_cert.as_deref() {
            Some(c) if crate::secret::ct_eq(&c.sha256, &want) => Ok(()),
            _ => Err(Reject::InvalidToken(Invalid::WrongCertificate)),
        },
    }
}
