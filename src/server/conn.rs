//! One accepted connection: TLS with a handshake deadline, then HTTP. A connection that speaks
//! HTTP/1.1 — TLS with ALPN `http/1.1` or none, or cleartext that does not open with the
//! HTTP/2 preface — is served by hyper's HTTP/1 server directly; HTTP/2 (ALPN `h2`, or h2c
//! with prior knowledge) goes through hyper-util's auto builder. Each one finishes its request
//! in flight and closes when the stop signal turns.

use crate::admin;
use crate::config::Limits;
use crate::counted::Counted;
use crate::dispatch;
use crate::proxy::ConnInfo;
use crate::state::Gateway;
use hyper::rt::{Read, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The public one: dispatch (issuing endpoints and proxied routes).
    Public,
    /// The admin one: metrics, health, admin API.
    Admin,
}

/// The HTTP/1 settings of hyper's builder and of the auto builder's HTTP/1 half (two types
/// with the same methods).
macro_rules! http1_limits {
    ($b:expr, $l:expr) => {
        $b.timer(TokioTimer::new())
            .header_read_timeout($l.header_read_timeout)
            .max_headers($l.max_headers)
            // Room for the longest target and head we accept, so those limits answer 414 / 431
            // from the dispatcher; only a head beyond both is cut off by hyper itself.
            .max_buf_size($l.max_header_bytes + $l.max_uri_bytes + 1024)
    };
}

fn http1_builder(l: &Limits) -> http1::Builder {
    let mut b = http1::Builder::new();
    http1_limits!(b, l);
    // A client may shut its side after the request and still read the answer (RFC 9112 §9.6).
    // Without this, hyper reads the socket while every request is in flight to catch that EOF,
    // which also makes it take a fresh 8 KiB read buffer each request (the old one still holds
    // the request's bytes). A client gone for good is seen when the answer is written.
    b.half_close(true);
    // The head and a small body in one buffer and one `write`: hyper's vectored writes cost a
    // `Vec` per write under rustls, and a second iovec for nothing on plain TCP (bench/README).
    b.writev(false);
    b
}

fn auto_builder(l: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    http1_limits!(b.http1(), l);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(l.h2_max_streams)
        .max_pending_accept_reset_streams(64)
        .max_local_error_reset_streams(256)
        .max_header_list_size(
            u32::try_from(l.max_header_bytes + l.max_uri_bytes).unwrap_or(u32::MAX),
        )
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Drives `conn` to its end; once `stop` turns true (or its sender is gone), `drain` asks it to
/// finish the request in flight and close, and it is driven until it has.
async fn until_drained<C: Future>(
    conn: C,
    mut stop: watch::Receiver<bool>,
    drain: impl FnOnce(Pin<&mut C>),
) -> C::Output {
    let mut conn = pin!(conn);
    tokio::select! {
        biased;
        out = conn.as_mut() => return out,
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    drain(conn.as_mut());
    conn.await
}

/// What the client opened with, read without taking it off the socket: `Some(true)` for what
/// may be the HTTP/2 preface, `Some(false)` for anything else, `None` when it closed or sent
/// nothing within `within` (a silent connection holds a slot for no longer than a slow head).
async fn opens_with_h2_preface(tcp: &TcpStream, within: Duration) -> Option<bool> {
    const PREFACE_START: &[u8] = b"PRI ";
    let mut first = [0u8; 4];
    match tokio::time::timeout(within, tcp.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => Some(first[..n] == PREFACE_START[..n]),
        _ => None,
    }
}

/// Serves an HTTP/1.1 connection (with upgrades) or, when `h2`, any version through the auto
/// builder, with the limits in force as it starts; `None` when the connection ended cleanly.
async fn serve_http<I>(
    io: I,
    h2: bool,
    conn: ConnInfo,
    gw: Arc<Gateway>,
    stop: watch::Receiver<bool>,
) -> Option<Box<dyn std::error::Error + Send + Sync>>
where
    I: Read + Write + Unpin + Send + 'static,
{
    let limits = gw.runtime().config.limits.clone();
    let limits = &limits;
    let service = service_fn(move |req| dispatch::handle(req, conn.clone(), Arc::clone(&gw)));
    if h2 {
        let builder = auto_builder(limits);
        let c = builder.serve_connection_with_upgrades(io, service);
        until_drained(c, stop, |c| c.graceful_shutdown())
            .await
            .err()
    } else {
        let c = http1_builder(limits)
            .serve_connection(io, service)
            .with_upgrades();
        until_drained(c, stop, |c| c.graceful_shutdown())
            .await
            .err()
            .map(Into::into)
    }
}

struct ConnGauge(prometheus::IntGauge);

impl Drop for ConnGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serves one accepted connection until it ends or, after `stop`, has drained.
pub(super) async fn serve(
    mut tcp: TcpStream,
    peer: SocketAddr,
    kind: Kind,
    gw: Arc<Gateway>,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let rt = gw.runtime();
    let limits = rt.config.limits.clone();
    if kind == Kind::Admin {
        let Ok(local) = tcp.local_addr() else { return };
        let svc = service_fn(move |req| admin::handle(req, Arc::clone(&gw), local));
        let builder = auto_builder(&limits);
        let c = builder.serve_connection(TokioIo::new(tcp), svc);
        let _ = until_drained(c, stop, |c| c.graceful_shutdown()).await;
        return;
    }
    let gauge = gw.shared.metrics.connections_active.clone();
    gauge.inc();
    let _gauge = ConnGauge(gauge);
    let tls = rt.tls.as_ref().map(|t| Arc::clone(&t.config));
    // A load balancer's PROXY header comes first, before TLS or HTTP; one without it is closed.
    let listen = &rt.config.listen;
    let client = if listen.proxy_protocol {
        // With trusted_proxies set, only those may speak for a client (the load balancer).
        if !listen.trusted_proxies.is_empty()
            && !crate::client_addr::is_trusted(peer.ip(), &listen.trusted_proxies)
        {
            tracing::debug!(peer = %peer, "connection refused: PROXY protocol from a peer that is not a trusted proxy");
            return;
        }
        let within = limits.header_read_timeout;
        match crate::client_addr::read_proxy_header(&mut tcp, within).await {
            Ok(source) => source.unwrap_or(peer.ip()),
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "connection refused: PROXY protocol header");
                return;
            }
        }
    } else {
        peer.ip()
    };
    let trusted = crate::client_addr::is_trusted(client, &rt.config.listen.trusted_proxies);
    drop(rt);
    // Cleartext: what the client opens with decides the protocol (peeked before any counting).
    let plain_h2 = match tls {
        Some(_) => false,
        None => match opens_with_h2_preface(&tcp, limits.header_read_timeout).await {
            Some(h2) => h2,
            None => return,
        },
    };
    let metrics = &gw.shared.metrics;
    let tcp = Counted::new(
        tcp,
        metrics.received_bytes.clone(),
        metrics.sent_bytes.clone(),
    );
    let Some(config) = tls else {
        let conn = ConnInfo::new(peer, client, trusted, false, None);
        let error = serve_http(TokioIo::new(tcp), plain_h2, conn, gw, stop).await;
        log_end(peer, error);
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let stream =
        match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                gw.shared.metrics.tls_handshake_errors.inc();
                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                gw.shared.metrics.tls_handshake_errors.inc();
                tracing::debug!(peer = %peer, "TLS handshake timed out");
                return;
            }
        };
    let session = stream.get_ref().1;
    // RFC 9113 §3.2: over TLS, HTTP/2 is what ALPN agreed on, nothing else.
    let h2 = session.alpn_protocol() == Some(b"h2");
    // A certificate the handshake verified against `client_auth.ca_file`.
    let client_cert = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| crate::tls::cert_info::client_cert(leaf).ok())
        .map(Arc::new);
    let conn = ConnInfo::new(peer, client, trusted, true, client_cert);
    let error = serve_http(TokioIo::new(stream), h2, conn, gw, stop).await;
    log_end(peer, error);
}

fn log_end(peer: SocketAddr, error: Option<Box<dyn std::error::Error + Send + Sync>>) {
    if let Some(e) = error {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}
