//! `upstreams:` as written.

use crate::config::duration::ConfigDuration;
use serde::Deserialize;
use std::path::PathBuf;

/// One entry of `upstreams:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `http://host:port` or `https://host:port` targets.
    pub targets: Vec<String>,
    /// `http1` (default), `h2c` (HTTP/2 without TLS) or `h2` (HTTP/2 over TLS, ALPN).
    #[serde(default)]
    pub protocol: Option<String>,
    /// How `https://` targets are verified.
    #[serde(default)]
    pub tls: Option<RawUpstreamTls>,
    /// TCP connect timeout.
    #[serde(default)]
    pub connect_timeout: Option<ConfigDuration>,
    /// Time allowed until the response head.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Idle connections kept per target.
    #[serde(default)]
    pub max_idle: Option<usize>,
    /// How long an idle connection is kept.
    #[serde(default)]
    pub idle_timeout: Option<ConfigDuration>,
    /// An upgraded connection (WebSocket) silent both ways this long is closed.
    #[serde(default)]
    pub tunnel_idle_timeout: Option<ConfigDuration>,
    /// Active health checks.
    #[serde(default)]
    pub health: Option<RawHealth>,
    /// Passive ejection on consecutive failures.
    #[serde(default)]
    pub passive: Option<RawPassive>,
    /// Retries of failed attempts.
    #[serde(default)]
    pub retries: Option<RawRetries>,
    /// Largest request body kept to replay on a retry.
    #[serde(default)]
    pub retry_body_bytes: Option<usize>,
}

/// `upstreams.X.tls:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// PEM roots to trust instead of the bundled web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name sent in SNI and checked against the certificate (default: the target's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM client certificate chain (mutual TLS).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM client private key.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Accept any certificate. Only for tests; refused unless spelled out.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// `upstreams.X.health:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// Path probed with GET.
    pub path: String,
    /// Time between two probes of a target.
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
    /// Time a probe may take.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Consecutive passes that bring a target back.
    #[serde(default)]
    pub healthy: Option<u32>,
    /// Consecutive failures that take a target out.
    #[serde(default)]
    pub unhealthy: Option<u32>,
    /// Statuses that count as a pass.
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
}

/// `upstreams.X.passive:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassive {
    /// Consecutive connect errors or 5xx answers that eject a target (0 = never).
    #[serde(default)]
    pub failures: Option<u32>,
    /// How long an ejected target stays out.
    #[serde(default)]
    pub eject_for: Option<ConfigDuration>,
}

/// `upstreams.X.retries:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    /// Tries in all, the first included.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Outcomes worth another try.
    #[serde(default)]
    pub on: Option<Vec<String>>,
    /// Time one try may take to its response head.
    #[serde(default)]
    pub per_try_timeout: Option<ConfigDuration>,
    /// Retries in flight as a share of requests in flight, in percent.
    #[serde(default)]
    pub budget_percent: Option<u32>,
}
