//! Who the client is. The socket peer, unless a load balancer says otherwise in a way that can
//! be believed: the PROXY protocol header every connection opens with (`listen.proxy_protocol`),
//! or, on a connection from one of `listen.trusted_proxies`, the right-most hop of
//! `X-Forwarded-For` (or `Forwarded: for=`) that is not itself a trusted proxy. That address
//! feeds the limits, the access log and `X-Forwarded-For`; limits key IPv6 clients per /64.

use http::header::{HeaderMap, HeaderName};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// Read here, set in `proxy::headers` (which imports this module, so the name is not shared).
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The key a limit counts `ip` under: an IPv4 address as it is (also when written as an
/// IPv4-mapped IPv6 one), an IPv6 address by its /64 (one subscriber's usual allocation).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// `ip` (an IPv4-mapped IPv6 address read as IPv4) as written in one of `nets`.
pub fn is_trusted(ip: IpAddr, nets: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

/// One hop as a forwarding header writes it: `1.2.3.4`, `1.2.3.4:5`, `[::1]`, `[::1]:5`,
/// `"[::1]:5"` (quoted in `Forwarded`).
fn parse_hop(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    t.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

/// The client behind a trusted proxy `hop`: walking the forwarding header from the right,
/// the first address that is not a trusted proxy (the one the outermost trusted proxy saw).
/// A hop that is not an address ends the walk at the last address believed.
pub fn forwarded_client(headers: &HeaderMap, hop: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let xff = headers.get_all(&X_FORWARDED_FOR);
    // The list as the trusted proxy wrote it, right-most first; `None` stands for a line that
    // is not text, which ends the walk (an appended hop may hide in it).
    let mut hops: Vec<Option<&str>> = Vec::new();
    if xff.iter().next().is_some() {
        for line in xff.iter().rev() {
            match line.to_str() {
                Ok(t) => hops.extend(t.rsplit(',').map(Some)),
                Err(_) => hops.push(None),
            }
        }
    } else {
        // RFC 7239, only when no X-Forwarded-For was sent at all:
        // `Forwarded: for=1.2.3.4;proto=https, for="[::1]:80"`.
        for line in headers.get_all(http::header::FORWARDED).iter().rev() {
            let Ok(t) = line.to_str() else {
                hops.push(None);
                break;
            };
            for element in t.rsplit(',') {
                let f = element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then_some(v)
                });
                hops.push(f);
            }
        }
    }
    let mut client = hop;
    for text in hops {
        match text.and_then(parse_hop) {
            Some(ip) => {
                client = ip.to_canonical();
                if !is_trusted(client, trusted) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// Why a connection's PROXY protocol header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// It did not come whole within the head read timeout.
    #[error("no PROXY protocol header in time")]
    Timeout,
    /// Not a PROXY protocol v1 or v2 header.
    #[error("invalid PROXY protocol header: {0}")]
    Invalid(String),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Longest v1 header (the spec's bound, CRLF included).
const V1_MAX: usize = 107;
/// Longest v2 address block read (cloud load balancers add a few TLVs of tens of bytes).
const V2_MAX_PAYLOAD: usize = 1024;
/// The v2 signature's first bytes.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// Reads the PROXY protocol (v1 or v2) header a connection opens with, consuming exactly
/// its bytes (whatever follows stays for TLS or HTTP), and parses it with `ppp`; the client
/// address it names, or `None` for a `LOCAL`/`UNKNOWN` header (a balancer's own health check:
/// the socket peer stands). Every read waits for bytes: nothing spins on a silent client.
pub async fn read_proxy_header(
    tcp: &mut TcpStream,
    within: Duration,
) -> Result<Option<IpAddr>, ProxyHeaderError> {
    tokio::time::timeout(within, read_header(tcp))
        .await
        .map_err(|_| ProxyHeaderError::Timeout)?
}

async fn read_header(tcp: &mut TcpStream) -> Result<Option<IpAddr>, ProxyHeaderError> {
    let invalid = |why: &str| ProxyHeaderError::Invalid(why.into());
    let mut head = vec![0u8; 8];
    tcp.read_exact(&mut head).await?;
    if head[..] == V2_SIGNATURE[..8] {
        head.resize(16, 0);
        tcp.read_exact(&mut head[8..]).await?;
        let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
        if len > V2_MAX_PAYLOAD {
            return Err(invalid("v2 header too long"));
        }
        head.resize(16 + len, 0);
        tcp.read_exact(&mut head[16..]).await?;
        return match ppp::v2::Header::try_from(&head[..]) {
            Ok(h) => Ok(v2_source(&h)),
            Err(e) => Err(ProxyHeaderError::Invalid(e.to_string())),
        };
    }
    if !head.starts_with(b"PROXY ") {
        return Err(invalid("not a PROXY protocol header"));
    }
    // v1: one line. Byte by byte, so nothing past its CRLF is taken from the socket.
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        if head.len() >= V1_MAX {
            return Err(invalid("v1 header too long"));
        }
        tcp.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    let text = std::str::from_utf8(&head).map_err(|_| invalid("v1 header is not text"))?;
    match ppp::v1::Header::try_from(text) {
        Ok(h) => Ok(v1_source(&h.addresses)),
        Err(e) => Err(ProxyHeaderError::Invalid(e.to_string())),
    }
}

fn v1_source(a: &ppp::v1::Addresses) -> Option<IpAddr> {
    match a {
        ppp::v1::Addresses::Tcp4(x) => Some(IpAddr::V4(x.source_address)),
        ppp::v1::Addresses::Tcp6(x) => Some(IpAddr::V6(x.source_address)),
        ppp::v1::Addresses::Unknown => None,
    }
}

fn v2_source(h: &ppp::v2::Header<'_>) -> Option<IpAddr> {
    if h.command == ppp::v2::Command::Local {
        return None;
    }
    match &h.addresses {
        ppp::v2::Addresses::IPv4(x) => Some(IpAddr::V4(x.source_address)),
        ppp::v2::Addresses::IPv6(x) => Some(IpAddr::V6(x.source_address)),
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    }
}

/// What the connection tells about the client.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Socket peer address.
    pub peer: std::net::SocketAddr,
    /// The client: the PROXY protocol header's source when `listen.proxy_protocol` is on,
    /// else the socket peer.
    pub client: std::net::IpAddr,
    /// Whether `client` is one of `listen.trusted_proxies` (its forwarding headers are read).
    pub trusted: bool,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The client certificate the TLS handshake verified, if any.
    pub client_cert: Option<std::sync::Arc<crate::tls::cert_info::ClientCert>>,
    /// `client` as a header value, made once per connection for `X-Forwarded-For`.
    pub peer_ip: http::HeaderValue,
}

impl ConnInfo {
    /// What a connection from `peer` tells; `client` is who it speaks for.
    pub fn new(
        peer: std::net::SocketAddr,
        client: std::net::IpAddr,
        trusted: bool,
        tls: bool,
        client_cert: Option<std::sync::Arc<crate::tls::cert_info::ClientCert>>,
    ) -> Self {
        let ip = client.to_string();
        let peer_ip = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(ip))
            .expect("an IP address is a valid header value");
        ConnInfo {
            peer,
            client,
            trusted,
            tls,
            client_cert,
            peer_ip,
        }
    }

    /// The client address of one request: from a trusted proxy, the hop its forwarding
    /// headers name; otherwise the connection's client.
    pub fn request_client(
        &self,
        headers: &http::HeaderMap,
        trusted: &[ipnet::IpNet],
    ) -> std::net::IpAddr {
        if self.trusted {
            forwarded_client(headers, self.client, trusted)
        } else {
            self.client
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(limit_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
        assert!(is_trusted(mapped, &nets(&["10.0.0.0/8"])));
    }

    #[test]
    fn the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy() {
        let trusted = nets(&["10.0.0.0/8", "192.168.1.1/32"]);
        let hop: IpAddr = "10.0.0.2".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 1.2.3.4"),
        );
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("192.168.1.1, 10.0.0.7"),
        );
        assert_eq!(
            forwarded_client(&h, hop, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // Garbage where an address should be: the last believed address stands.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, junk, 10.0.0.9"),
        );
        assert_eq!(
            forwarded_client(&h, hop, &trusted),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(forwarded_client(&HeaderMap::new(), hop, &trusted), hop);
        // A line that is not text ends the walk, and Forwarded is not read beside XFF.
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff, 10.0.0.9").unwrap(),
        );
        h.insert("forwarded", HeaderValue::from_static("for=1.2.3.4"));
        assert_eq!(forwarded_client(&h, hop, &trusted), hop);
        let mut h = HeaderMap::new();
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=7.7.7.7, for=\"[2001:db8::5]:443\";proto=https"),
        );
        assert_eq!(
            forwarded_client(&h, hop, &trusted),
            "2001:db8::5".parse::<IpAddr>().unwrap()
        );
    }
}
