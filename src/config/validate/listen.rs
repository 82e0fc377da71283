//! `listen:` and `admin:`.

use super::Checker;
use crate::config::raw::RawConfig;
use crate::config::*;
use crate::secret::Secret;

/// `listen:`; `None` when its address is bad (a problem is recorded).
pub(super) fn check_listen(raw: &RawConfig, c: &mut Checker) -> Option<Listen> {
    let listen_addr = c.addr("listen.address", &raw.listen.address);
    let tls = raw.listen.tls.as_ref().map(|t| {
        let mut file = |key: &str, p: &std::path::Path| {
            let p = c.path(p);
            c.readable(key, &p);
            p
        };
        let cert = file("listen.tls.cert", &t.cert);
        let key = file("listen.tls.key", &t.key);
        let certificates = t
            .certificates
            .iter()
            .enumerate()
            .map(|(i, x)| CertFiles {
                cert: file(&format!("listen.tls.certificates[{i}].cert"), &x.cert),
                key: file(&format!("listen.tls.certificates[{i}].key"), &x.key),
                names: x.names.clone(),
            })
            .collect();
        let client_auth = t.client_auth.as_ref().map(|a| ClientAuth {
            ca_file: file("listen.tls.client_auth.ca_file", &a.ca_file),
            crl_file: a
                .crl_file
                .as_ref()
                .map(|f| file("listen.tls.client_auth.crl_file", f)),
            mode: ClientAuthMode::Optional,
        });
        let mode = t.client_auth.as_ref().map(|a| {
            c.choice(
                "listen.tls.client_auth.mode",
                a.mode.as_deref(),
                ClientAuthMode::Optional,
                &[
                    ("optional", ClientAuthMode::Optional),
                    ("required", ClientAuthMode::Required),
                ],
            )
        });
        TlsFiles {
            cert,
            key,
            certificates,
            sni_strict: t.sni_strict,
            client_auth: client_auth.map(|a| ClientAuth {
                mode: mode.unwrap_or(ClientAuthMode::Optional),
                ..a
            }),
        }
    });

    let trusted_proxies = raw
        .listen
        .trusted_proxies
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(n) => Some(n.trunc()),
                Err(_) => {
                    c.fail(
                        format!("listen.trusted_proxies[{i}]"),
                        format!("{text:?} is not an address or a CIDR such as 10.0.0.0/8"),
                    );
                    None
                }
            }
        })
        .collect();
    Some(Listen {
        address: listen_addr?,
        tls,
        proxy_protocol: raw.listen.proxy_protocol,
        trusted_proxies,
    })
}

/// `admin:`.
pub(super) fn check_admin(raw: &RawConfig, c: &mut Checker) -> Option<Admin> {
    raw.admin.as_ref().and_then(|a| {
        let address = c.addr("admin.address", &a.address)?;
        let token = match &a.token_file {
            None => None,
            Some(p) => match std::fs::read_to_string(c.path(p)) {
                Ok(t) if !t.trim().is_empty() => Some(Secret::new(t.trim())),
                Ok(_) => {
                    c.fail("admin.token_file", "token file is empty");
                    None
                }
                Err(e) => {
                    c.fail(
                        "admin.token_file",
                        format!("cannot read {}: {e}", p.display()),
                    );
                    None
                }
            },
        };
        if token.is_none() && !address.ip().is_loopback() {
            c.fail(
                "admin.address",
                "the admin API is open to the network: bind it to loopback or set admin.token_file",
            );
        } else if token.is_none() {
            // Loopback is not one user: in a pod every container, on a host every local process.
            c.warnings.push(format!(
                "admin: no token_file, so the admin API (revoke, introspect, key rotation, credentials) answers anyone who can reach {address}; every container of a pod shares this loopback"
            ));
        }
        let hosts = a
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let ok = !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
                if !ok {
                    c.fail(
                        format!("admin.hosts[{i}]"),
                        format!("{h:?} is not a host or host:port"),
                    );
                }
                ok.then(|| h.to_ascii_lowercase())
            })
            .collect();
        Some(Admin {
            address,
            token,
            hosts,
        })
    })
}
