//! Every metric, in one struct owning its own registry (several gateways may share a process).
//!
//! Labels come only from route patterns, configured upstream names, dialect names and the
//! decision enum: never from tokens, app ids or raw paths.

use crate::config::Dialect;
use crate::reject::Decision;
use http::Method;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::sync::OnceLock;

/// `dialect` label values: `none`, then [`Dialect`] in declaration order.
const DIALECT_LABELS: [&str; 5] = ["none", "oauth", "hosecloud", "feishu", "bkflow"];

/// `status` label values of the upstream latency: the answer's class, or no answer.
pub const UPSTREAM_STATUS: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

/// All metrics of one gateway.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    upstream_duration: HistogramVec,
    auth_decisions: IntCounterVec,
    /// Tokens issued, by dialect.
    pub tokens_issued: IntCounterVec,
    /// Hot-map hits.
    pub cache_hits: IntCounter,
    /// Hot-map misses.
    pub cache_misses: IntCounter,
    /// Entries in the hot map.
    pub hot_tokens: IntGauge,
    /// Open client connections.
    pub connections_active: IntGauge,
    /// Failed or timed-out TLS handshakes.
    pub tls_handshake_errors: IntCounter,
    /// Config reloads by result (ok, error).
    pub config_reloads: IntCounterVec,
    /// Requests refused because the store could not be reached (fail closed).
    pub store_unavailable: IntCounter,
    /// Requests refused by a rate limit, by route.
    pub rate_limited: IntCounterVec,
    /// Shared-store entries refused (no MAC or a wrong one).
    pub store_rejected: IntCounter,
    /// Seconds since this replica last read the shared log to its end.
    pub replication_lag: prometheus::Gauge,
    /// 1 while an upstream target is in rotation, by upstream and configured target.
    pub upstream_healthy: prometheus::IntGaugeVec,
    /// Tries after the first, by upstream.
    pub upstream_retries: IntCounterVec,
    /// Upgraded connections (WebSocket) being spliced.
    pub tunnels_active: IntGauge,
    /// Failed upstream tries, by upstream and kind (connect, tls, timeout, refused_stream,
    /// broken, status_5xx).
    pub upstream_errors: IntCounterVec,
}

/// The version and git revision this binary was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Short git revision of the build ("unknown" outside a checkout).
pub const REVISION: &str = env!("TOLLGATE_REVISION");

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    r.register(Box::new(m.clone()))
        .expect("metric names are unique");
    m
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let r = Registry::new();
        let buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ];
        let hist = |name: &str, help: &str, label: &str| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.clone()),
                &[label],
            )
            .expect("valid")
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid")
        };
        Metrics {
            http_requests: reg(
                &r,
                counter(
                    "tollgate_http_requests_total",
                    "Requests answered",
                    &["route", "method", "status"],
                ),
            ),
            http_duration: reg(
                &r,
                hist(
                    "tollgate_http_request_duration_seconds",
                    "Time to answer a request",
                    "route",
                ),
            ),
            upstream_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "tollgate_upstream_request_duration_seconds",
                        "Time from sending to an upstream until its response head (retries included), by upstream and by the answer's status class (2xx, 3xx, 4xx, 5xx; error: no answer)",
                    )
                    .buckets(buckets.clone()),
                    &["upstream", "status"],
                )
                .expect("valid"),
            ),
            auth_decisions: reg(
                &r,
                counter(
                    "tollgate_auth_decisions_total",
                    "Guard decisions",
                    &["route", "decision", "dialect"],
                ),
            ),
            tokens_issued: reg(
                &r,
                counter(
                    "tollgate_tokens_issued_total",
                    "Tokens issued",
                    &["dialect"],
                ),
            ),
            cache_hits: reg(
                &r,
                IntCounter::new("tollgate_token_cache_hits_total", "Hot-token map hits")
                    .expect("valid"),
            ),
            cache_misses: reg(
                &r,
                IntCounter::new("tollgate_token_cache_misses_total", "Hot-token map misses")
                    .expect("valid"),
            ),
            hot_tokens: reg(
                &r,
                IntGauge::new("tollgate_hot_tokens", "Entries in the hot-token map")
                    .expect("valid"),
            ),
            connections_active: reg(
                &r,
                IntGauge::new("tollgate_connections_active", "Open client connections")
                    .expect("valid"),
            ),
            tls_handshake_errors: reg(
                &r,
                IntCounter::new(
                    "tollgate_tls_handshake_errors_total",
                    "Failed TLS handshakes",
                )
                .expect("valid"),
            ),
            config_reloads: reg(
                &r,
                counter(
                    "tollgate_config_reloads_total",
                    "Config reloads",
                    &["result"],
                ),
            ),
            store_unavailable: reg(
                &r,
                IntCounter::new(
                    "tollgate_store_unavailable_total",
                    "Requests refused while the store was unreachable",
                )
                .expect("valid"),
            ),
            rate_limited: reg(
                &r,
                counter(
                    "tollgate_rate_limited_total",
                    "Requests refused by a rate limit",
                    &["route"],
                ),
            ),
            store_rejected: reg(
                &r,
                IntCounter::new(
                    "tollgate_store_rejected_entries_total",
                    "Shared-store entries refused for a missing or wrong MAC",
                )
                .expect("valid"),
            ),
            replication_lag: reg(
                &r,
                prometheus::Gauge::new(
                    "tollgate_store_replication_lag_seconds",
                    "How far behind the shared log this replica may be",
                )
                .expect("valid"),
            ),
            upstream_healthy: reg(
                &r,
                prometheus::IntGaugeVec::new(
                    Opts::new(
                        "tollgate_upstream_healthy",
                        "1 while the target is in rotation",
                    ),
                    &["upstream", "target"],
                )
                .expect("valid"),
            ),
            upstream_retries: reg(
                &r,
                counter(
                    "tollgate_upstream_retries_total",
                    "Upstream tries after the first",
                    &["upstream"],
                ),
            ),
            tunnels_active: reg(
                &r,
                IntGauge::new(
                    "tollgate_tunnels_active",
                    "Upgraded connections being spliced",
                )
                .expect("valid"),
            ),
            upstream_errors: reg(
                &r,
                counter(
                    "tollgate_upstream_errors_total",
                    "Upstream tries that failed, by kind: connect (no connection), tls (handshake), timeout, refused_stream (HTTP/2 REFUSED_STREAM), broken (the exchange broke after sending), status_5xx (an answer of 502, 503 or 504)",
                    &["upstream", "kind"],
                ),
            ),
            registry: r,
        }
        .with_process_and_build()
    }

    /// Adds the standard `process_*` metrics (CPU, memory, open fds, start time) and
    /// `tollgate_build_info{version,revision} 1`.
    fn with_process_and_build(self) -> Self {
        let build = prometheus::IntGaugeVec::new(
            Opts::new(
                "tollgate_build_info",
                "Always 1; the labels say which build is running",
            ),
            &["version", "revision"],
        )
        .expect("valid");
        build.with_label_values(&[VERSION, REVISION]).set(1);
        reg(&self.registry, build);
        // One process per registry would be refused twice; several gateways in one test process
        // each have their own registry, so every registry gets its own collector.
        let _ = self.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        self
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8192);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    /// Handles for one route label, resolved once so requests take no lock on the metric vectors.
    pub fn route(&self, route: &str) -> RouteMetrics {
        RouteMetrics {
            label: route.into(),
            duration: self.http_duration.with_label_values(&[route]),
            decisions: (0..Decision::ALL.len() * DIALECT_LABELS.len())
                .map(|_| OnceLock::new())
                .collect(),
            decisions_vec: self.auth_decisions.clone(),
            requests: (0..METHOD_SLOTS * STATUS_SLOTS.len())
                .map(|_| OnceLock::new())
                .collect(),
            requests_vec: self.http_requests.clone(),
        }
    }

    /// Counts a rate-limited request on `route` (a route pattern).
    pub fn rate_limited(&self, route: &str) {
        self.rate_limited.with_label_values(&[route]).inc();
    }

    /// Histogram of one upstream.
    /// An upstream's latency handles by status class, resolved once: `UPSTREAM_STATUS` order.
    pub fn upstream(&self, name: &str) -> [Histogram; 5] {
        UPSTREAM_STATUS.map(|s| self.upstream_duration.with_label_values(&[name, s]))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];
const METHOD_SLOTS: usize = METHODS.len();
const STATUS_SLOTS: [u16; 20] = [
    200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408, 413, 429, 431, 500, 502, 503,
    504,
];

impl RouteMetrics {
    /// The `route` label these handles carry.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Pre-resolved metric handles of one route.
pub struct RouteMetrics {
    label: Box<str>,
    duration: Histogram,
    decisions: Box<[OnceLock<IntCounter>]>,
    decisions_vec: IntCounterVec,
    requests: Box<[OnceLock<IntCounter>]>,
    requests_vec: IntCounterVec,
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RouteMetrics({})", self.label)
    }
}

impl RouteMetrics {
    /// Counts one request and its duration.
    pub fn observe(&self, method: &Method, status: u16, seconds: f64) {
        self.duration.observe(seconds);
        let m = METHODS.iter().position(|x| x == method);
        let s = STATUS_SLOTS.iter().position(|&x| x == status);
        match (m, s) {
            (Some(m), Some(s)) => self.requests[m * STATUS_SLOTS.len() + s]
                .get_or_init(|| {
                    let status = status.to_string();
                    self.requests_vec
                        .with_label_values(&[&*self.label, method.as_str(), &status])
                })
                .inc(),
            // Unusual methods share one label so a client cannot grow the label set.
            _ => {
                let method = if m.is_some() {
                    method.as_str()
                } else {
                    "OTHER"
                };
                self.requests_vec
                    .with_label_values(&[&*self.label, method, &status.to_string()])
                    .inc()
            }
        }
    }

    /// Counts one decision for a token (or an issuing request) of `dialect`
    /// (`none` when no token was verified).
    pub fn decision(&self, decision: Decision, dialect: Option<Dialect>) {
        let d = dialect.map_or(0, |d| 1 + d as usize);
        self.decisions[decision as usize * DIALECT_LABELS.len() + d]
            .get_or_init(|| {
                self.decisions_vec.with_label_values(&[
                    &*self.label,
                    decision.as_str(),
                    DIALECT_LABELS[d],
                ])
            })
            .inc();
    }
}
