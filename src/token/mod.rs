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
