//! Reloads: on SIGHUP, and when the config file or a file the listener's TLS reads changes
//! (a renewed certificate). A reload that fails leaves the running config as it is.

use crate::state::Gateway;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Reloads on every SIGHUP.
pub(super) async fn reload_on_sighup(gw: Arc<Gateway>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading configuration");
        let _ = gw.reload();
    }
}

type Stamp = Option<(std::time::SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The config file's and the listener's TLS files' stamps (a certificate renewed on disk is
/// a change too).
fn stamps(gw: &Gateway, path: &Path) -> Vec<Stamp> {
    let rt = gw.runtime();
    let tls = rt
        .config
        .listen
        .tls
        .as_ref()
        .map(|t| t.files())
        .unwrap_or_default();
    std::iter::once(path).chain(tls).map(stamp).collect()
}

/// Reloads when a watched file changes (checked every second).
pub(super) async fn reload_on_change(gw: Arc<Gateway>, path: PathBuf) {
    let mut last = stamps(&gw, &path);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = stamps(&gw, &path);
        if now[0].is_some() && now != last {
            last = now;
            tracing::info!(file = %path.display(), "config or certificate files changed: reloading");
            if gw.reload().is_ok() {
                // The files a new config names are watched from now on.
                last = stamps(&gw, &path);
            }
        }
    }
}
