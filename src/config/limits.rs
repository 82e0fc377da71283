//! `limits:`: edge limits and rates, with their defaults.

use std::time::Duration;

/// `limits:` with defaults filled in.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Simultaneous client connections.
    pub max_connections: usize,
    /// Time to read a request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Time to finish a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Most header fields in a request.
    pub max_headers: usize,
    /// Most bytes of a request head.
    pub max_header_bytes: usize,
    /// Most bytes of a token-endpoint body.
    pub token_body_bytes: usize,
    /// HTTP/2 concurrent streams per connection.
    pub h2_max_streams: u32,
    /// Grace period of a SIGTERM drain.
    pub drain_grace: Duration,
    /// Longest request target (414 beyond).
    pub max_uri_bytes: usize,
    /// Longest wait between two pieces of a request body (408 and close beyond).
    pub body_read_timeout: Duration,
    /// Longest time to read a whole token-endpoint body.
    pub token_body_timeout: Duration,
    /// Token-endpoint rate limits.
    pub token_rate: TokenRate,
    /// Introspection calls per client address for tokens no answer is cached for.
    pub introspection_rate: Rate,
    /// Burst of `introspection_rate`.
    pub introspection_burst: u32,
}

/// A rate: `tokens` per `per`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// How many.
    pub tokens: f64,
    /// In how long.
    pub per: Duration,
}

impl Rate {
    /// Parses `20/s`, `10/min`, `100/h`.
    pub fn parse(s: &str) -> Option<Self> {
        let (n, unit) = s.trim().split_once('/')?;
        let tokens: f64 = n
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| *n > 0.0 && n.is_finite())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Rate { tokens, per })
    }

    /// Tokens per second.
    pub fn per_sec(self) -> f64 {
        self.tokens / self.per.as_secs_f64()
    }
}

/// `limits.token_rate:` with defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenRate {
    /// Token-endpoint requests per client IP.
    pub per_ip: Rate,
    /// Burst per client IP.
    pub per_ip_burst: u32,
    /// Failed authentications per app id (the burst is the same number).
    pub per_app_failures: Rate,
    /// Authenticated requests per app: one client looping on a good secret cannot take the
    /// gateway's signing and store from the others.
    pub per_app: Rate,
    /// Burst of `per_app`.
    pub per_app_burst: u32,
}

impl Default for TokenRate {
    fn default() -> Self {
        TokenRate {
            per_ip: Rate {
                tokens: 20.0,
                per: Duration::from_secs(1),
            },
            per_ip_burst: 40,
            per_app_failures: Rate {
                tokens: 10.0,
                per: Duration::from_secs(60),
            },
            per_app: Rate {
                tokens: 100.0,
                per: Duration::from_secs(1),
            },
            per_app_burst: 200,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_headers: 100,
            max_header_bytes: 16 * 1024,
            token_body_bytes: 64 * 1024,
            h2_max_streams: 200,
            drain_grace: Duration::from_secs(30),
            max_uri_bytes: 8 * 1024,
            body_read_timeout: Duration::from_secs(10),
            token_body_timeout: Duration::from_secs(60),
            token_rate: TokenRate::default(),
            introspection_rate: Rate {
                tokens: 10.0,
                per: Duration::from_secs(1),
            },
            introspection_burst: 20,
        }
    }
}
