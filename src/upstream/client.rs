//! The pooled hyper-util client of one upstream, by protocol (HTTP/1.1, h2c, h2 over TLS),
//! and what a failed try was: connect, TLS (which check failed), refused stream, or other.

use super::h1::H1Error;
use crate::config::{Protocol, UpstreamConfig};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::error::Error as StdError;

pub use crate::body::client::ProxyBody;

/// A pool's client: plain targets keep the bare TCP connector (no TLS layer on the hot
/// path), `https://` ones go through rustls.
#[derive(Debug, Clone)]
pub enum UpstreamClient {
    /// `http://` targets.
    Plain(Client<HttpConnector, ProxyBody>),
    /// `https://` targets.
    Tls(Client<HttpsConnector<HttpConnector>, ProxyBody>),
}

impl UpstreamClient {
    /// Sends one request (absolute-form URI).
    pub fn request(&self, req: http::Request<ProxyBody>) -> ResponseFuture {
        match self {
            UpstreamClient::Plain(c) => c.request(req),
            UpstreamClient::Tls(c) => c.request(req),
        }
    }
}

/// Builds the client for `cfg`; fails on unreadable TLS files.
pub fn build(cfg: &UpstreamConfig) -> Result<UpstreamClient, String> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(cfg.connect_timeout));
    let mut b = Client::builder(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(cfg.idle_timeout)
        .pool_max_idle_per_host(cfg.max_idle);
    if cfg.protocol != Protocol::Http1 {
        b.http2_only(true)
            .http2_keep_alive_interval(std::time::Duration::from_secs(30))
            .http2_keep_alive_while_idle(false);
    }
    if !cfg.https {
        return Ok(UpstreamClient::Plain(b.build(http)));
    }
    http.enforce_http(false);
    let tls = crate::tls::client_config(&cfg.tls)?;
    let schemes = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let schemes = match &cfg.tls.server_name {
        Some(name) => {
            let name = rustls_pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("server_name {name:?}: {e}"))?;
            schemes.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => schemes,
    };
    let connector = match cfg.protocol {
        Protocol::Http1 => schemes.enable_http1().wrap_connector(http),
        Protocol::H2c | Protocol::H2 => schemes.enable_http2().wrap_connector(http),
    };
    Ok(UpstreamClient::Tls(b.build(connector)))
}

/// Why a try got no answer: from hyper-util's client (HTTP/2, TLS, upgrades) or from the
/// plain HTTP/1.1 path.
#[derive(Debug)]
pub enum SendError {
    /// hyper-util's pooled client.
    Pooled(hyper_util::client::legacy::Error),
    /// The plain HTTP/1.1 connections of a target.
    Direct(H1Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Pooled(e) => write!(f, "{e}"),
            SendError::Direct(e) => write!(f, "{e}"),
        }
    }
}

/// What a failed try was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection: refused, unreachable, timed out. Nothing was sent.
    Connect,
    /// The TLS handshake failed; the text says which check.
    Tls(String),
    /// The HTTP/2 target refused the stream (REFUSED_STREAM): nothing was processed.
    RefusedStream,
    /// The exchange broke after the request went out.
    Other,
}

/// Classifies a failed try.
pub fn classify(e: &SendError) -> Failure {
    match e {
        SendError::Pooled(e) => classify_pooled(e),
        SendError::Direct(H1Error::Connect(_)) => Failure::Connect,
        SendError::Direct(H1Error::Exchange(_) | H1Error::BadAnswer(_)) => Failure::Other,
    }
}

/// Classifies a hyper-util client error by walking its causes.
fn classify_pooled(e: &hyper_util::client::legacy::Error) -> Failure {
    if let Some(tls) = find_tls(e) {
        return Failure::Tls(tls.to_string());
    }
    if e.is_connect() {
        return Failure::Connect;
    }
    let mut cause: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(c) = cause {
        if let Some(h2) = c.downcast_ref::<h2::Error>() {
            if h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
                return Failure::RefusedStream;
            }
        }
        cause = c.source();
    }
    Failure::Other
}

/// The rustls error somewhere among the causes (io::Error hides its inner error from `source`).
fn find_tls<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if let Some(inner) = io.get_ref() {
            return find_tls(inner);
        }
    }
    e.source().and_then(find_tls)
}
