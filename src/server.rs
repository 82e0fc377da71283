//! Listeners: bind, accept with a connection cap and backoff, TLS with a handshake deadline,
//! HTTP/1.1 + HTTP/2 through hyper-util's auto builder, graceful drain, SIGHUP / file reload.

mod reload;

use crate::admin;
use crate::config::{Config, ConfigError, Limits};
use crate::counted::Counted;
use crate::dispatch;
use crate::proxy::ConnInfo;
use crate::state::Gateway;
use crate::store::op::BK_RETENTION_MS;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use reload::{reload_on_change, reload_on_sighup};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config was refused.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A port could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    Admin,
}

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    /// Bound public address.
    pub public_addr: SocketAddr,
    /// Bound admin address.
    pub admin_addr: Option<SocketAddr>,
    /// State, for reloads and tests.
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting, drains in-flight requests for the grace period, returns when done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Builds the runtime (keys, TLS, routes) and binds; nothing is bound if the config is bad.
pub async fn start(config: Config) -> Result<Running, StartError> {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let gateway = Arc::new(Gateway::open(config).await?);
    let rt = gateway.runtime();
    let public = bind(rt.config.listen.address).await?;
    let admin = match &rt.config.admin {
        Some(a) => Some(bind(a.address).await?),
        None => None,
    };
    let public_addr = public.local_addr().map_err(|source| StartError::Bind {
        addr: rt.config.listen.address,
        source,
    })?;
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tracing::info!(address = %public_addr, role = "public", tls = rt.tls.is_some(), "listening");
    tasks.spawn(accept_loop(
        public,
        Kind::Public,
        Arc::clone(&gateway),
        stop_rx.clone(),
    ));
    if let (Some(l), Some(a)) = (admin, admin_addr) {
        tracing::info!(address = %a, role = "admin", "listening");
        tasks.spawn(accept_loop(
            l,
            Kind::Admin,
            Arc::clone(&gateway),
            stop_rx.clone(),
        ));
    }
    tasks.spawn(crate::issue::feishu::push_hourly(
        Arc::clone(&gateway),
        stop_rx.clone(),
    ));
    let horizon = crate::shared::horizon(&rt.config);
    tasks.spawn(crate::shared::follow(
        Arc::clone(&gateway.shared),
        horizon,
        rt.config.store.compact_every,
        stop_rx.clone(),
    ));
    tasks.spawn(sweeper(Arc::clone(&gateway), stop_rx));
    Ok(Running {
        public_addr,
        admin_addr,
        gateway,
        stop,
        tasks,
    })
}

async fn sweeper(gw: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = gw.shared.clock.now_secs();
        let left = gw.shared.hot.sweep(now);
        // Retired signing keys leave the JWKS when every token they signed has expired.
        gw.shared.rebuild_keys();
        rotate_when_due(&gw).await;
        gw.shared.revoked.sweep(now);
        gw.shared.refresh.sweep(now);
        gw.shared.feishu.sweep(now * 1000);
        gw.shared.bkflow.sweep(now * 1000, BK_RETENTION_MS);
        let sweep = crate::store::op::Op::Sweep {
            now_ms: now * 1000,
            bk_retention_ms: BK_RETENTION_MS,
        };
        let _ = gw.shared.store.commit(vec![sweep]).await;
        gw.shared.metrics.hot_tokens.set(left as i64);
    }
}

/// `signing.rotate_every`: a new active key once the current one is that old. One replica
/// rotates (the first to claim this key's rotation in the store); the others adopt it.
pub async fn rotate_when_due(gw: &Gateway) {
    let rt = gw.runtime();
    let Some(every) = rt.config.signing.rotate_every else {
        return;
    };
    let created = {
        let ring = gw.shared.ring.lock().expect("ring lock");
        match ring.as_ref() {
            Some(r) => r.active().created,
            None => return,
        }
    };
    if gw.shared.clock.now_secs() < created + every.as_secs() {
        return;
    }
    let claim = format!("rotate:{created}");
    if let Ok(true) = gw.shared.store.claim_once(&claim, every.as_secs()).await {
        if let Err(e) = gw
            .shared
            .rotate_keys(crate::admin::key_keep_secs(&rt.config))
            .await
        {
            tracing::warn!(error = %e.message(), "scheduled signing key rotation failed");
        }
    }
}

fn http_builder(l: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(l.header_read_timeout)
        .max_headers(l.max_headers)
        // Room for the longest target and head we accept, so those limits answer 414 / 431
        // from the dispatcher; only a head beyond both is cut off by hyper itself.
        .max_buf_size(l.max_header_bytes + l.max_uri_bytes + 1024);
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

async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    gw: Arc<Gateway>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(gw.runtime().config.limits.max_connections));
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.changed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(5);
                x
            }
            Err(e) => {
                // EMFILE and friends: wait for descriptors to free up instead of spinning.
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let watcher = graceful.watcher();
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            serve_conn(tcp, peer, kind, gw, watcher).await;
            drop(permit);
        });
    }
    drop(listener);
    let grace = gw.runtime().config.limits.drain_grace;
    let deadline = tokio::time::Instant::now() + grace;
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain grace period over; closing the remaining connections");
    }
    if kind == Kind::Public {
        // Upgraded connections left hyper's watch; they get what is left of the grace.
        gw.tunnels.close_after(deadline).await;
    }
}

struct ConnGauge(prometheus::IntGauge);

impl Drop for ConnGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve_conn(
    tcp: TcpStream,
    peer: SocketAddr,
    kind: Kind,
    gw: Arc<Gateway>,
    watcher: Watcher,
) {
    let _ = tcp.set_nodelay(true);
    let rt = gw.runtime();
    let builder = http_builder(&rt.config.limits);
    if kind == Kind::Admin {
        let Ok(local) = tcp.local_addr() else { return };
        let svc = service_fn(move |req| admin::handle(req, Arc::clone(&gw), local));
        let _ = watcher
            .watch(builder.serve_connection(TokioIo::new(tcp), svc))
            .await;
        return;
    }
    let gauge = gw.shared.metrics.connections_active.clone();
    gauge.inc();
    let _gauge = ConnGauge(gauge);
    let metrics = &gw.shared.metrics;
    let tcp = Counted::new(
        tcp,
        metrics.received_bytes.clone(),
        metrics.sent_bytes.clone(),
    );
    let service = |conn: ConnInfo| {
        let gw = Arc::clone(&gw);
        service_fn(move |req| dispatch::handle(req, conn.clone(), Arc::clone(&gw)))
    };
    let result = match &rt.tls {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
            let stream = match tokio::time::timeout(
                rt.config.limits.tls_handshake_timeout,
                acceptor.accept(tcp),
            )
            .await
            {
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
            // A certificate the handshake verified against `client_auth.ca_file`.
            let client_cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| crate::tls::cert_info::client_cert(leaf).ok())
                .map(Arc::new);
            drop(rt);
            let conn = ConnInfo::new(peer, true, client_cert);
            watcher
                .watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service(conn)))
                .await
        }
        None => {
            drop(rt);
            let conn = ConnInfo::new(peer, false, None);
            watcher
                .watch(builder.serve_connection_with_upgrades(TokioIo::new(tcp), service(conn)))
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

/// Runs the gateway from `config` (read from `path`) until SIGTERM or Ctrl-C, reloading on
/// SIGHUP and on a change of the file.
pub async fn run(path: PathBuf, config: Config) -> Result<(), StartError> {
    let rt = config.runtime;
    crate::startup::log_start(&path, &config);
    tracing::info!(workers = rt.workers, runtime = ?rt.flavour, "runtime");
    let running = start(config).await?;
    let gw = Arc::clone(&running.gateway);
    tokio::spawn(reload_on_sighup(Arc::clone(&gw)));
    tokio::spawn(reload_on_change(gw, path));
    wait_for_stop().await;
    tracing::info!("stopping: draining in-flight requests");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or SIGINT.
pub async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
