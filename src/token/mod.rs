//! Tokens: signed JWTs (`jwt`) and the hashes opaque values are looked up by (`opaque`).

pub mod jwt;
pub mod opaque;

/// True when `token` is a JWT (three dot-separated parts); every opaque token we issue is
/// hex or `a-`/`t-` alphanumerics, never with a dot.
pub fn is_jwt(token: &str) -> bool {
    token.contains('.')
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
