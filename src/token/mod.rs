//! Tokens: signed JWTs (`jwt`) and the hashes opaque values are looked up by (`opaque`).

pub mod jwt;
pub mod opaque;
pub mod ring;

/// True when `token` is a JWT (three dot-separated parts); every opaque token we issue is
/// hex or `a-`/`t-` alphanumerics, never with a dot.
pub fn is_jwt(token: &str) -> bool {
    token.contains('.')
}

/// The gateway's clock: the system's, plus an offset only tests move (so expiry tests take
/// milliseconds instead of real seconds).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: std::sync::atomic::AtomicU64,
}

impl Clock {
    /// Seconds since the Unix epoch.
    pub fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        now_millis() + self.offset_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Seconds since the Unix epoch as of a moment ago (`recent_millis`): never ahead of
    /// `now_secs`, normally 20 ms behind (more only when the clock thread is starved).
    pub fn recent_secs(&self) -> u64 {
        (recent_millis() + self.offset_ms.load(std::sync::atomic::Ordering::Relaxed)) / 1000
    }

    /// Moves this clock forward (tests).
    #[doc(hidden)]
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How often the clock thread refreshes `recent_millis`.
const RECENT_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// Milliseconds since the Unix epoch as of at most `RECENT_EVERY` (plus scheduling) ago: one
/// atomic load where a clock read costs ~35 ns on this class of machine. For what tolerates the
/// lag (idle times) or re-checks with `now_millis` near a boundary (expiry on a hot hit).
pub fn recent_millis() -> u64 {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static RECENT: AtomicU64 = AtomicU64::new(0);
    static TICKING: AtomicBool = AtomicBool::new(false);
    static TICKER: std::sync::Once = std::sync::Once::new();
    TICKER.call_once(|| {
        RECENT.store(now_millis(), Ordering::Relaxed);
        let started = std::thread::Builder::new()
            .name("tollgate-clock".into())
            .spawn(|| loop {
                std::thread::sleep(RECENT_EVERY);
                RECENT.store(now_millis(), Ordering::Relaxed);
            });
        match started {
            Ok(_) => TICKING.store(true, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "no clock thread: recent times read the clock"),
        }
    });
    // Without the thread the recent time would stand still: read the clock instead.
    if !TICKING.load(Ordering::Relaxed) {
        return now_millis();
    }
    RECENT.load(Ordering::Relaxed)
}
