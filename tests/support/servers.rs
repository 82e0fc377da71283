//! Upstreams that speak more than plain HTTP/1.1: a WebSocket echo, a TLS echo, a gRPC
//! health service, one whose health and answers can be switched, and one that drops the
//! connection once it has read a request.

use super::TestCa;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

pub async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A WebSocket server echoing every message; counts the upgrades it accepted.
pub struct WsEcho {
    pub addr: SocketAddr,
    pub upgraded: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl WsEcho {
    pub async fn start() -> Self {
        let (l, addr) = listen().await;
        let upgraded = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&upgraded);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let (tx, rx) = ws.split();
                    let _ = rx
                        .take_while(|m| std::future::ready(m.as_ref().is_ok_and(|m| !m.is_close())))
                        .forward(tx)
                        .await;
                });
            }
        });
        WsEcho {
            addr,
            upgraded,
            task,
        }
    }
}

impl Drop for WsEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS acceptor serving `ca`'s localhost certificate (ALPN h2 and http/1.1).
pub fn tls_acceptor(ca: &TestCa) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject as _;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(&ca.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&ca.key).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// An echo upstream over TLS with a certificate from `ca` (ALPN h2 and http/1.1); the JSON
/// also says which HTTP version the request came in.
pub async fn tls_echo(ca: &TestCa) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let acceptor = tls_acceptor(ca);
    let (l, addr) = listen().await;
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let version = format!("{:?}", req.version());
                    let res = super::echo(req).await.unwrap();
                    let body = res.into_body().collect().await.unwrap().to_bytes();
                    let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    json["version"] = version.into();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(json.to_string()))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

/// An upstream whose `/health` answers `health` and every other path `status` (with the
/// request counted in `served`).
pub struct Switchable {
    pub addr: SocketAddr,
    pub health: Arc<AtomicU16>,
    pub status: Arc<AtomicU16>,
    pub served: Arc<AtomicUsize>,
    pub probes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Switchable {
    pub async fn start() -> Self {
        let (l, addr) = listen().await;
        let health = Arc::new(AtomicU16::new(200));
        let status = Arc::new(AtomicU16::new(200));
        let served = Arc::new(AtomicUsize::new(0));
        let probes = Arc::new(AtomicUsize::new(0));
        let (h, s, n, p) = (
            Arc::clone(&health),
            Arc::clone(&status),
            Arc::clone(&served),
            Arc::clone(&probes),
        );
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let (h, s, n, p) = (
                    Arc::clone(&h),
                    Arc::clone(&s),
                    Arc::clone(&n),
                    Arc::clone(&p),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (h, s, n, p) = (
                            Arc::clone(&h),
                            Arc::clone(&s),
                            Arc::clone(&n),
                            Arc::clone(&p),
                        );
                        async move {
                            let code = if req.uri().path() == "/health" {
                                p.fetch_add(1, Ordering::SeqCst);
                                h.load(Ordering::SeqCst)
                            } else {
                                let _ = req.into_body().collect().await;
                                n.fetch_add(1, Ordering::SeqCst);
                                s.load(Ordering::SeqCst)
                            };
                            let mut res = Response::new(Full::new(Bytes::from_static(b"{}")));
                            *res.status_mut() = StatusCode::from_u16(code).unwrap();
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Switchable {
            addr,
            health,
            status,
            served,
            probes,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Switchable {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A target that reads a whole request head and body, then closes without answering;
/// counts the requests it swallowed.
pub async fn swallower() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let (l, addr) = listen().await;
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let seen = Arc::clone(&s2);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
                while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await
                {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap_or(0));
                        if buf.len() >= end + 4 + len {
                            seen.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
                drop(tcp);
            });
        }
    });
    (addr, seen, task)
}

/// The standard gRPC health service (unary Check, server-streaming Watch) on h2c.
pub async fn grpc_health() -> (
    SocketAddr,
    tonic_health::server::HealthReporter,
    tokio::task::JoinHandle<()>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("tollgate.test", tonic_health::ServingStatus::Serving)
        .await;
    let (l, addr) = listen().await;
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l))
            .await;
    });
    (addr, reporter, task)
}

/// An upstream that answers every request `answer` as soon as its head arrived, then reads the
/// body at the client's pace and serves the next request on the same connection (as a server
/// that refuses early but keeps the connection does). Counts the connections it accepted.
pub async fn early_answerer(answer: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let (l, addr) = listen().await;
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&conns);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let end = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end;
                        }
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    buf.drain(..end + 4);
                    if tcp.write_all(answer).await.is_err() {
                        return;
                    }
                    while buf.len() < len {
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..len);
                }
            });
        }
    });
    (addr, conns)
}
