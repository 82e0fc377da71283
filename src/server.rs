//! Listeners: bind, accept with a connection cap and backoff, graceful drain, SIGHUP / file
//! reload; `conn` serves each accepted connection.

mod conn;
mod reload;

use crate::config::{Config, ConfigError};
use crate::state::Gateway;
use crate::store::op::BK_RETENTION_MS;
use conn::Kind;
use reload::{reload_on_change, reload_on_sighup};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
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
    tasks.spawn(crate::shared::follow(
        Arc::clone(&gateway.shared),
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

async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    gw: Arc<Gateway>,
    mut stop: watch::Receiver<bool>,
) {
    let max = gw.runtime().config.limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
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
        let gw = Arc::clone(&gw);
        let stop = stop.clone();
        tokio::spawn(async move {
            conn::serve(tcp, peer, kind, gw, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let grace = gw.runtime().config.limits.drain_grace;
    let deadline = tokio::time::Instant::now() + grace;
    // Every connection holds a slot until it has drained and closed.
    let all_slots = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout_at(deadline, slots.acquire_many(all_slots))
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
