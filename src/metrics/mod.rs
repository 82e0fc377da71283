//! Every metric, in one struct owning its own registry (several gateways may share a process).
//!
//! Labels come only from route patterns, configured upstream names, dialect names and the
//! decision enum: never from tokens, app ids or raw paths.

pub use decision::Decision;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

mod decision;
mod route;
pub use route::RouteMetrics;

/// `dialect` label values: `none`, then [`Dialect`] in declaration order.
pub(crate) const DIALECT_LABELS: [&str; 5] = ["none", "oauth", "hosecloud", "feishu", "bkflow"];

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
    /// JWKS fetches by issuer and result (ok, error).
    pub issuer_jwks_fetches: IntCounterVec,
    /// Introspection calls by issuer and result (active, inactive, error).
    pub issuer_introspections: IntCounterVec,
    /// Hot-map hits of external tokens, by issuer.
    pub issuer_cache_hits: IntCounterVec,
    /// `notAfter` of each served certificate, by name.
    pub certificate_expiry: prometheus::IntGaugeVec,
    /// Bytes read from client connections.
    pub received_bytes: IntCounter,
    /// Bytes written to client connections.
    pub sent_bytes: IntCounter,
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
                    "Requests answered, by route pattern (`(unmatched)` when none matched), method (`OTHER` for unusual ones) and status code",
                    &["route", "method", "status"],
                ),
            ),
            http_duration: reg(
                &r,
                hist(
                    "tollgate_http_request_duration_seconds",
                    "Seconds from a request's head arriving to its response head being ready, by route pattern",
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
                    "Token checks on proxied routes and credential checks on issuing endpoints, by route, decision (allowed, missing, invalid, expired, revoked, forbidden), the dialect or issuer of the token (`none` when no token was verified) and mode (enforce; shadow: what a shadow route or require_shadow would have decided, the request forwarded either way)",
                    &["route", "decision", "dialect", "mode"],
                ),
            ),
            tokens_issued: reg(
                &r,
                counter(
                    "tollgate_tokens_issued_total",
                    "Access tokens issued by the token endpoints, by dialect",
                    &["dialect"],
                ),
            ),
            cache_hits: reg(
                &r,
                IntCounter::new("tollgate_token_cache_hits_total", "Token checks answered from the in-memory hot map (no store read)")
                    .expect("valid"),
            ),
            cache_misses: reg(
                &r,
                IntCounter::new("tollgate_token_cache_misses_total", "Token checks that had to verify the token or read the store")
                    .expect("valid"),
            ),
            hot_tokens: reg(
                &r,
                IntGauge::new("tollgate_hot_tokens", "Verified tokens held in the in-memory hot map")
                    .expect("valid"),
            ),
            connections_active: reg(
                &r,
                IntGauge::new("tollgate_connections_active", "Client connections open on the public listener")
                    .expect("valid"),
            ),
            tls_handshake_errors: reg(
                &r,
                IntCounter::new(
                    "tollgate_tls_handshake_errors_total",
                    "Client TLS handshakes that failed or timed out",
                )
                .expect("valid"),
            ),
            config_reloads: reg(
                &r,
                counter(
                    "tollgate_config_reloads_total",
                    "Config reloads (SIGHUP or a changed file), by result: ok (the new config is in force) or error (refused; the old one stays)",
                    &["result"],
                ),
            ),
            store_unavailable: reg(
                &r,
                IntCounter::new(
                    "tollgate_store_unavailable_total",
                    "Requests refused with 503 because the token store could not be reached (the gateway fails closed)",
                )
                .expect("valid"),
            ),
            rate_limited: reg(
                &r,
                counter(
                    "tollgate_rate_limited_total",
                    "Requests refused with 429 by a rate limit, by route pattern",
                    &["route"],
                ),
            ),
            store_rejected: reg(
                &r,
                IntCounter::new(
                    "tollgate_store_rejected_entries_total",
                    "Entries read from the shared store and refused for a missing or wrong MAC (someone wrote to the store without the master key)",
                )
                .expect("valid"),
            ),
            replication_lag: reg(
                &r,
                prometheus::Gauge::new(
                    "tollgate_store_replication_lag_seconds",
                    "Seconds since this replica last read the shared store's change log to its end: how stale its view of revocations may be",
                )
                .expect("valid"),
            ),
            upstream_healthy: reg(
                &r,
                prometheus::IntGaugeVec::new(
                    Opts::new(
                        "tollgate_upstream_healthy",
                        "1 while the target is in rotation, 0 while health checks or failures keep it out, by upstream name and configured target",
                    ),
                    &["upstream", "target"],
                )
                .expect("valid"),
            ),
            upstream_retries: reg(
                &r,
                counter(
                    "tollgate_upstream_retries_total",
                    "Requests sent again to another target after a failed try, by upstream name",
                    &["upstream"],
                ),
            ),
            tunnels_active: reg(
                &r,
                IntGauge::new(
                    "tollgate_tunnels_active",
                    "Upgraded connections (WebSocket and other HTTP/1.1 upgrades) being spliced between client and upstream",
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
            issuer_jwks_fetches: reg(
                &r,
                counter(
                    "tollgate_issuer_jwks_fetches_total",
                    "Fetches of an external issuer's signing keys (at start, on its refresh schedule, and for an unknown kid at most once per cooldown), by issuer name and result (ok, error)",
                    &["issuer", "result"],
                ),
            ),
            issuer_introspections: reg(
                &r,
                counter(
                    "tollgate_issuer_introspections_total",
                    "RFC 7662 calls to an external issuer (one per token however many requests carry it at once; cached answers not counted), by issuer name and result (active, inactive, error)",
                    &["issuer", "result"],
                ),
            ),
            issuer_cache_hits: reg(
                &r,
                counter(
                    "tollgate_issuer_cache_hits_total",
                    "Token checks of an external issuer's tokens answered from the hot map (no signature check, no introspection), by issuer name",
                    &["issuer"],
                ),
            ),
            certificate_expiry: reg(
                &r,
                prometheus::IntGaugeVec::new(
                    Opts::new(
                        "tollgate_tls_certificate_expiry_seconds",
                        "When each certificate the public listener serves expires (its notAfter, seconds since the Unix epoch; subtract time() for what is left), by the name it serves (\"(default)\" for a default certificate without DNS names)",
                    ),
                    &["name"],
                )
                .expect("valid"),
            ),
            received_bytes: reg(
                &r,
                IntCounter::new(
                    "tollgate_received_bytes_total",
                    "Bytes read from client connections on the public listener (request heads and bodies; with TLS, the encrypted records)",
                )
                .expect("valid"),
            ),
            sent_bytes: reg(
                &r,
                IntCounter::new(
                    "tollgate_sent_bytes_total",
                    "Bytes written to client connections on the public listener (response heads and bodies; with TLS, the encrypted records)",
                )
                .expect("valid"),
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

    /// Sets the expiry series to the certificates served now (names no longer served go).
    pub fn certificates(&self, served: &[crate::tls::Served]) {
        self.certificate_expiry.reset();
        for c in served {
            for n in &c.names {
                self.certificate_expiry
                    .with_label_values(&[n.as_str()])
                    .set(c.not_after);
            }
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8192);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    /// Handles for one route label, resolved once so requests take no lock on the metric vectors.
    /// `issuers` are the names of the external issuers, the `dialect` label of their tokens.
    pub fn route(&self, route: &str, issuers: &[&str]) -> RouteMetrics {
        RouteMetrics::new(
            route,
            issuers,
            self.http_duration.with_label_values(&[route]),
            self.auth_decisions.clone(),
            self.http_requests.clone(),
        )
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
