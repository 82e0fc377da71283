//! Finding and reaching the Redis primary as `store:` describes it: a URL (`redis://`, or
//! `rediss://` with the CA and client certificate of `store.tls`), an ACL password from
//! `store.password_file`, or Redis Sentinel (`sentinels`, `sentinel_master`), asked again for
//! the primary after a failure so a failover is followed without a restart. All of it is the
//! `redis` crate's own (rustls, Sentinel); nothing here speaks the protocol.

use crate::config::RedisSettings;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};

/// How the primary is found.
pub enum Locator {
    /// One address.
    Direct(Client),
    /// Asked of the sentinels each time.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The store's messages never carry a password: the URL's is hidden, the file's never read
/// into one.
fn shown(s: &RedisSettings) -> String {
    match &s.url {
        _ if !s.sentinels.is_empty() => format!(
            "sentinel {} at {}",
            s.sentinel_master.as_deref().unwrap_or(""),
            s.sentinels.join(",")
        ),
        Some(u) => crate::config::redacted_url(u),
        None => String::new(),
    }
}

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("tls: {what} {}: {e}", path.display()))
}

/// The certificates of `store.tls` (none: the system's roots, no client certificate).
fn certificates(s: &RedisSettings) -> Result<Option<TlsCertificates>, String> {
    let Some(t) = &s.tls else { return Ok(None) };
    let root_cert = match &t.ca_file {
        Some(p) => Some(read(p, "ca_file")?),
        None => None,
    };
    let client_tls = match &t.client {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert, "cert")?,
            client_key: read(key, "key")?,
        }),
        None => None,
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// The password of `store.password_file` (trailing newline dropped).
fn password(s: &RedisSettings) -> Result<Option<String>, String> {
    let Some(p) = &s.password_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(p)
        .map_err(|e| format!("auth: password_file {}: {e}", p.display()))?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The URL's settings with the password of the file.
fn info(s: &RedisSettings) -> Result<ConnectionInfo, String> {
    let url = s.url.as_deref().unwrap_or("redis://127.0.0.1:6379/0");
    let mut info = url
        .into_connection_info()
        .map_err(|e| format!("{}: {e}", crate::config::redacted_url(url)))?;
    if let Some(pw) = password(s)? {
        let settings = info.redis_settings().clone().set_password(pw);
        info = info.set_redis_settings(settings);
    }
    Ok(info)
}

impl Locator {
    /// The locator for `s` (nothing is connected yet).
    pub fn new(s: &RedisSettings) -> Result<Self, String> {
        let err = |e: redis::RedisError| format!("{}: {}", shown(s), describe(&e));
        let info = info(s)?;
        let certs = certificates(s)?;
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        if s.sentinels.is_empty() {
            let client = match certs {
                Some(c) => Client::build_with_tls(info, c),
                None => Client::open(info),
            };
            return client.map(Locator::Direct).map_err(err);
        }
        let addrs = s.sentinels.iter().filter_map(|a| {
            let (host, port) = a.rsplit_once(':')?;
            let (host, port) = (host.to_owned(), port.parse().ok()?);
            Some(if tls {
                ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(host, port)
            })
        });
        let master = s.sentinel_master.as_deref().unwrap_or("");
        let settings = info.redis_settings();
        let mut b = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
            .map_err(err)?
            .set_client_to_redis_db(settings.db());
        if let Some(u) = settings.username() {
            b = b.set_client_to_redis_username(u);
        }
        if let Some(p) = settings.password() {
            b = b.set_client_to_redis_password(p);
        }
        if tls {
            b = b
                .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
            if let Some(c) = certs {
                b = b
                    .set_client_to_redis_certificates(c.clone())
                    .set_client_to_sentinel_certificates(c);
            }
        }
        let client = b.build().map_err(err)?;
        Ok(Locator::Sentinel(tokio::sync::Mutex::new(client)))
    }

    /// A client for the current primary.
    pub async fn primary(&self) -> Result<Client, String> {
        match self {
            Locator::Direct(c) => Ok(c.clone()),
            Locator::Sentinel(s) => s
                .lock()
                .await
                .async_get_client()
                .await
                .map_err(|e| format!("no primary: {}", describe(&e))),
        }
    }

    /// True when the primary can change under us (asked again after a failure).
    pub fn follows_failover(&self) -> bool {
        matches!(self, Locator::Sentinel(_))
    }
}

/// A Redis error as the operator needs it: which of TLS, authentication or reachability is
/// wrong (a password is never part of a Redis error).
pub fn describe(e: &redis::RedisError) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let kind = if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
        || lower.contains("wrongpass")
        || lower.contains("noauth")
        || lower.contains("noperm")
    {
        "auth"
    } else if [
        "certificate",
        "tls",
        "handshake",
        "peer sent no certificates",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        "tls"
    } else if lower.contains("readonly") {
        "not the primary"
    } else {
        "unreachable"
    };
    format!("{kind}: {text}")
}
