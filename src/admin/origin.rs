//! Who may call the admin API: a request must name this listener (or an `admin.hosts` entry)
//! as its `Host`, and a browser page on another site cannot drive it (`Origin`,
//! `Sec-Fetch-Site`), whatever its content type.

use crate::state::Gateway;
use http::{header, Request};
use std::net::SocketAddr;

/// True when a browser sent it from another site: an `Origin` that is not this listener's
/// own (`null` included) and the very host the request addresses, or `Sec-Fetch-Site:
/// cross-site | same-site`.
pub(super) fn from_a_web_page<B>(req: &Request<B>, local: SocketAddr, gw: &Gateway) -> bool {
    let h = req.headers();
    let site = h.get_all("sec-fetch-site").iter().any(|v| {
        let v = v.as_bytes();
        v.eq_ignore_ascii_case(b"cross-site") || v.eq_ignore_ascii_case(b"same-site")
    });
    if site {
        return true;
    }
    let addressed = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase())
        .or_else(|| {
            h.get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase)
        });
    h.get_all(header::ORIGIN).iter().any(|v| {
        let origin = v.to_str().unwrap_or("").to_ascii_lowercase();
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        !host.is_some_and(|host| addressed.as_deref() == Some(host) && own_host(host, local, gw))
    })
}

/// True when the request's `Host` (or authority) names this listener or an `admin.hosts` entry.
pub(super) fn host_allowed<B>(req: &Request<B>, local: SocketAddr, gw: &Gateway) -> bool {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return false;
    }
    let Some(host) = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase())
        .or_else(|| {
            first
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase)
        })
    else {
        return false;
    };
    own_host(&host, local, gw)
}

/// True when `host` (lower case, `name:port`) is this listener's address or an `admin.hosts` entry.
fn own_host(host: &str, local: SocketAddr, gw: &Gateway) -> bool {
    let rt = gw.runtime();
    if rt
        .config
        .admin
        .as_ref()
        .is_some_and(|a| a.hosts.iter().any(|h| h == host))
    {
        return true;
    }
    let port = local.port();
    if host == local.to_string() {
        return true;
    }
    if local.ip().is_loopback() && host == format!("localhost:{port}") {
        return true;
    }
    // Bound to every address: any IP literal with our port (a rebound *name* never is one).
    local.ip().is_unspecified() && host.parse::<SocketAddr>().is_ok_and(|a| a.port() == port)
}
