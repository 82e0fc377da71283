//! Upgraded connections (WebSocket and any `Upgrade`): once the upstream answered 101, the
//! client's and the upstream's connections are spliced both ways until either side closes,
//! nothing crosses for `tunnel_idle_timeout`, the token that opened it is no longer valid
//! (expired, revoked, or refused by a reloaded config: checked every half second), or the
//! drain after SIGTERM runs out of grace.

use http::{header, HeaderMap, HeaderValue, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use prometheus::IntGauge;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::watch;

/// The protocol an HTTP/1.1 request asks to upgrade to (`Upgrade` with `Connection: upgrade`).
///
/// `h2c`, `http` and `TLS/1.x` (RFC 2817) are refused: an upstream that switched to HTTP on a
/// tunnel would take any number of further requests on it that the guard never sees (h2c
/// smuggling).
pub fn wanted<B>(req: &Request<B>) -> Result<Option<HeaderValue>, &'static str> {
    if req.version() != Version::HTTP_11 || !connection_has_upgrade(req.headers()) {
        return Ok(None);
    }
    let mut all = req.headers().get_all(header::UPGRADE).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err("more than one Upgrade header");
    }
    let smuggles = first
        .to_str()
        .map_err(|_| "invalid Upgrade header")?
        .split(',')
        .map(|p| p.trim().split('/').next().unwrap_or(""))
        // RFC 2817's `TLS/1.x` carries HTTP inside TLS on the same connection.
        .any(|p| {
            ["h2c", "http", "tls"]
                .iter()
                .any(|h| p.eq_ignore_ascii_case(h))
        });
    if smuggles {
        return Err("an upgrade to HTTP (h2c, TLS/1.x) is not passed through: requests on it would bypass the gateway");
    }
    Ok(Some(first.clone()))
}

fn connection_has_upgrade(h: &HeaderMap) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Puts `Upgrade: proto` and `Connection: upgrade` back after hop-by-hop stripping.
pub fn mark_upgrade(h: &mut HeaderMap, proto: HeaderValue) {
    h.insert(header::UPGRADE, proto);
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// The tunnels of a gateway: how many are open, and the signal that closes them.
#[derive(Debug)]
pub struct Tunnels {
    gauge: IntGauge,
    open: Arc<AtomicUsize>,
    close: watch::Sender<bool>,
}

/// Counts one open tunnel until dropped.
struct Open(IntGauge, Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
        self.1.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Tunnels {
    /// None open; `gauge` is `tollgate_tunnels_active`.
    pub fn new(gauge: IntGauge) -> Self {
        Tunnels {
            gauge,
            open: Arc::new(AtomicUsize::new(0)),
            close: watch::channel(false).0,
        }
    }

    /// Tunnels open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Splices the two sides once both upgrades complete; `watch` ends it with its token.
    pub fn spawn(
        &self,
        client: OnUpgrade,
        upstream: OnUpgrade,
        idle: Duration,
        watch: Option<StillValid>,
    ) {
        let mut close = self.close.subscribe();
        let (gauge, open) = (self.gauge.clone(), Arc::clone(&self.open));
        tokio::spawn(async move {
            let (c, u) = match tokio::try_join!(client, upstream) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                    return;
                }
            };
            gauge.inc();
            open.fetch_add(1, Ordering::Relaxed);
            let _open = Open(gauge, open);
            let activity = Activity::new();
            let c = Watched(TokioIo::new(c), activity.clone());
            let u = Watched(TokioIo::new(u), activity.clone());
            let (mut cr, mut cw) = tokio::io::split(c);
            let (mut ur, mut uw) = tokio::io::split(u);
            // Either side closing ends the tunnel (after passing on what it sent last).
            let up = async {
                let r = tokio::io::copy(&mut cr, &mut uw).await;
                let _ = uw.shutdown().await;
                r
            };
            let down = async {
                let r = tokio::io::copy(&mut ur, &mut cw).await;
                let _ = cw.shutdown().await;
                r
            };
            tokio::select! {
                r = up => tracing::debug!(result = ?r, "tunnel closed by the client"),
                r = down => tracing::debug!(result = ?r, "tunnel closed by the upstream"),
                _ = activity.idle_for(idle) => tracing::info!(idle_secs = idle.as_secs(), "tunnel idle; closed"),
                _ = close.wait_for(|c| *c) => tracing::info!("drain grace over; tunnel closed"),
                _ = token_ended(watch) => tracing::info!("the tunnel's token is no longer valid; tunnel closed"),
            }
        });
    }

    /// Lets open tunnels finish until `deadline`, then closes the rest.
    pub async fn close_after(&self, deadline: tokio::time::Instant) {
        while self.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.close.send(true);
        // Give the closing tasks a moment to drop their sockets.
        let settle = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.open() > 0 && tokio::time::Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Asked every [`TOKEN_RECHECK`] while a tunnel lives: `false` once the token that opened it
/// is no longer valid (made by `proxy::token_watch`, which knows the gateway's state).
pub type StillValid = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send>;

/// How often a tunnel's token is checked again (a hot-map lookup while it stays cached).
pub const TOKEN_RECHECK: Duration = Duration::from_millis(500);

/// Resolves once `watch` says the token is no longer valid (never without a watch).
async fn token_ended(watch: Option<StillValid>) {
    let Some(mut still_valid) = watch else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(TOKEN_RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !still_valid().await {
            return;
        }
    }
}

/// When bytes last crossed, in milliseconds since its start.
#[derive(Debug, Clone)]
struct Activity(Arc<(Instant, AtomicU64)>);

impl Activity {
    fn new() -> Self {
        Activity(Arc::new((Instant::now(), AtomicU64::new(0))))
    }

    fn touch(&self) {
        let ms = self.0 .0.elapsed().as_millis() as u64;
        self.0 .1.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing crossed for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.0 .1.load(Ordering::Relaxed));
            let quiet = self.0 .0.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}

/// A side of the tunnel that notes when it reads anything.
struct Watched<S>(S, Activity);

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.0).poll_read(cx, buf);
        if buf.filled().len() > before {
            me.1.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
