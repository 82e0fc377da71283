//! `upstreams:`: pools of targets, how to reach them, and when to stop sending them traffic.

use std::path::PathBuf;
use std::time::Duration;

/// One upstream pool.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Its name.
    pub name: String,
    /// `host:port` of each target, as configured.
    pub targets: Vec<http::uri::Authority>,
    /// Whether the targets are `https://`.
    pub https: bool,
    /// HTTP version spoken to the targets.
    pub protocol: Protocol,
    /// How `https://` targets are verified.
    pub tls: UpstreamTls,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed until the response head arrives.
    pub timeout: Duration,
    /// Idle connections kept per target.
    pub max_idle: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// An upgraded connection silent both ways this long is closed.
    pub tunnel_idle_timeout: Duration,
    /// Active health checks, when configured.
    pub health: Option<Health>,
    /// Passive ejection.
    pub passive: Passive,
    /// Retries.
    pub retries: Retries,
    /// Largest request body kept to replay on a retry.
    pub retry_body_bytes: usize,
}

/// `upstreams.X.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (and upgrades).
    Http1,
    /// HTTP/2 with prior knowledge over plain TCP.
    H2c,
    /// HTTP/2 over TLS, negotiated with ALPN.
    H2,
}

/// `upstreams.X.tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// PEM roots to trust instead of the bundled web roots.
    pub ca_file: Option<PathBuf>,
    /// Name for SNI and certificate checks instead of the target's host.
    pub server_name: Option<String>,
    /// PEM client certificate chain and key (mutual TLS).
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
}

/// `upstreams.X.health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Path probed with GET.
    pub path: http::uri::PathAndQuery,
    /// Time between two probes of a target.
    pub interval: Duration,
    /// Time a probe may take.
    pub timeout: Duration,
    /// Consecutive passes that bring a target back.
    pub healthy: u32,
    /// Consecutive failures that take a target out.
    pub unhealthy: u32,
    /// Statuses that count as a pass.
    pub expect_status: Vec<u16>,
}

/// `upstreams.X.passive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passive {
    /// Consecutive connect errors or 5xx answers that eject a target; 0 turns it off.
    pub failures: u32,
    /// How long an ejected target stays out.
    pub eject_for: Duration,
}

/// `upstreams.X.retries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retries {
    /// Tries in all, the first included (1 = no retry).
    pub attempts: u32,
    /// Outcomes worth another try.
    pub on: Vec<RetryOn>,
    /// Time one try may take to its response head (the whole stays within `timeout`).
    pub per_try_timeout: Option<Duration>,
    /// Retries in flight as a share of requests in flight, in percent.
    pub budget_percent: u32,
}

impl Retries {
    /// Whether `what` is worth another try.
    pub fn on(&self, what: RetryOn) -> bool {
        self.on.contains(&what)
    }
}

/// An outcome a retry may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// The connection (or TLS handshake) to the target failed: nothing was sent.
    ConnectFailure,
    /// The HTTP/2 target refused the stream: nothing was processed.
    RefusedStream,
    /// The target answered 502.
    BadGateway,
    /// The target answered 503.
    Unavailable,
    /// The target answered 504.
    GatewayTimeout,
}

impl RetryOn {
    /// Every outcome with its name in the config.
    pub const NAMES: [(&'static str, RetryOn); 5] = [
        ("connect-failure", RetryOn::ConnectFailure),
        ("refused-stream", RetryOn::RefusedStream),
        ("502", RetryOn::BadGateway),
        ("503", RetryOn::Unavailable),
        ("504", RetryOn::GatewayTimeout),
    ];

    /// The outcome an answered status is, if any.
    pub fn of_status(status: u16) -> Option<RetryOn> {
        match status {
            502 => Some(RetryOn::BadGateway),
            503 => Some(RetryOn::Unavailable),
            504 => Some(RetryOn::GatewayTimeout),
            _ => None,
        }
    }

    /// Whether nothing of the request reached the target, so any method may be tried again.
    pub fn nothing_sent(self) -> bool {
        matches!(self, RetryOn::ConnectFailure | RetryOn::RefusedStream)
    }
}
