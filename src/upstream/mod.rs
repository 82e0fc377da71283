//! Upstream pools: round robin over the targets in rotation (active health checks, passive
//! ejection), one pooled client per pool (HTTP/1.1, h2c or h2 over TLS), a deadline on the
//! response head, and retries that never send a write twice.

pub mod answer;
pub mod client;
pub mod h1;
mod health;
pub mod lookup;
mod retry;
pub mod target;
mod tries;
pub mod tunnel;

use crate::body::client::{BodyFault, ClientBody, FaultFlag};
use crate::body::upstream::UpstreamBody;
use crate::config::{Protocol, UpstreamConfig};
use crate::metrics::Metrics;
use crate::reject::Reject;
use bytes::Bytes;
use client::{ProxyBody, SendError, UpstreamClient};
use h1::Conns;
use http::request::Parts;
use http::uri::{PathAndQuery, Scheme};
use http::{header, Request, Response, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use prometheus::{Histogram, IntCounter};
use retry::Budget;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use target::Target;

/// Which target of a pool answered: a response extension, set only when the access log is on.
#[derive(Debug, Clone, Copy)]
pub struct ServedBy(usize);

/// One named upstream.
#[derive(Debug)]
pub struct UpstreamPool {
    name: String,
    targets: Vec<Target>,
    next: AtomicUsize,
    client: UpstreamClient,
    scheme: Scheme,
    version: Version,
    cfg: UpstreamConfig,
    epoch: Instant,
    latency: [Histogram; 5],
    retried: IntCounter,
    errors: prometheus::IntCounterVec,
    budget: Budget,
}

impl UpstreamPool {
    /// Builds the pool and its client, and starts its health checks when configured (inside a
    /// tokio runtime); they stop when the pool is dropped.
    pub fn new(cfg: &UpstreamConfig, metrics: &Metrics) -> Result<Arc<Self>, String> {
        let targets = cfg
            .targets
            .iter()
            .map(|a| {
                let label = format!("{}://{a}", if cfg.https { "https" } else { "http" });
                let gauge = metrics
                    .upstream_healthy
                    .with_label_values(&[cfg.name.as_str(), label.as_str()]);
                let direct = !cfg.https && cfg.protocol == Protocol::Http1;
                let h1 = direct.then(|| {
                    Conns::new(
                        a.clone(),
                        cfg.max_idle,
                        cfg.connect_timeout,
                        cfg.idle_timeout,
                    )
                });
                Target::new(a.clone(), label, h1, gauge)
            })
            .collect();
        let pool = Arc::new(UpstreamPool {
            name: cfg.name.clone(),
            targets,
            next: AtomicUsize::new(0),
            client: client::build(cfg)?,
            scheme: if cfg.https {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            },
            version: match cfg.protocol {
                Protocol::Http1 => Version::HTTP_11,
                Protocol::H2c | Protocol::H2 => Version::HTTP_2,
            },
            cfg: cfg.clone(),
            epoch: Instant::now(),
            latency: metrics.upstream(&cfg.name),
            retried: metrics
                .upstream_retries
                .with_label_values(&[cfg.name.as_str()]),
            errors: metrics.upstream_errors.clone(),
            budget: Budget::default(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            if let Some(h) = &cfg.health {
                rt.spawn(health::probe_loop(Arc::downgrade(&pool), h.clone()));
            }
            if pool.targets.iter().any(|t| t.h1.is_some()) {
                rt.spawn(reap_loop(Arc::downgrade(&pool), cfg.idle_timeout));
            }
        }
        Ok(pool)
    }

    /// Counts one failed try (the error path only: the label lookup is not on the usual one).
    fn failed(&self, kind: &str) {
        self.errors
            .with_label_values(&[self.name.as_str(), kind])
            .inc();
    }

    /// Name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each target as configured (`http://host:port`).
    pub fn target_labels(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.label.as_str())
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &UpstreamConfig {
        &self.cfg
    }

    /// The target URI for `t`: origin-form on a plain HTTP/1.1 connection of our own
    /// (`direct`), absolute-form for hyper-util's client.
    fn uri(&self, t: &Target, direct: bool, pq: &PathAndQuery) -> Uri {
        if direct {
            return Uri::from(pq.clone());
        }
        Uri::from_parts({
            let mut u = http::uri::Parts::default();
            u.scheme = Some(self.scheme.clone());
            u.authority = Some(t.authority.clone());
            u.path_and_query = Some(pq.clone());
            u
        })
        .expect("scheme, authority and path make a URI")
    }

    /// The request for target `t` at `uri`, with `parts`' method and `headers`.
    fn request(
        &self,
        t: &Target,
        uri: Uri,
        parts: &Parts,
        headers: http::HeaderMap,
        body: ProxyBody,
    ) -> Request<ProxyBody> {
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = headers;
        // HTTP/2 carries the target in :authority, from the URI.
        if self.version == Version::HTTP_11 {
            req.headers_mut().insert(header::HOST, t.host.clone());
        }
        req
    }

    /// Sends a request to a target in rotation, trying others as `retries` allows. The whole
    /// is bounded by `timeout`; `body_idle` bounds the wait between two pieces of the body.
    pub async fn send(
        &self,
        parts: Parts,
        body: Incoming,
        pq: PathAndQuery,
        body_idle: Duration,
    ) -> Result<Response<UpstreamBody>, Reject> {
        let started = Instant::now();
        let _flight = self.budget.enter();
        let fault = FaultFlag::for_body(&body);
        let body = ClientBody::new(body, body_idle, fault.clone());
        let work = async {
            let body = retry::replayable(body, &self.cfg).await?;
            self.try_targets(parts, body, pq, &fault).await
        };
        let result = tokio::time::timeout(self.cfg.timeout, work).await;
        let class = match &result {
            Ok(Ok(res)) => usize::from((res.status().as_u16() / 100).clamp(2, 5)) - 2,
            _ => 4,
        };
        self.latency[class].observe(started.elapsed().as_secs_f64());
        // A failure caused by the client's own body is the client's to hear about.
        match (result, fault.get()) {
            (Err(_) | Ok(Err(_)), BodyFault::Malformed) => Err(Reject::BadBody),
            (Err(_) | Ok(Err(_)), BodyFault::Stalled) => Err(Reject::BodyTimeout),
            (Ok(r), _) => r,
            // Still sending the client's body: the target is not to blame for sure.
            (Err(_), BodyFault::None) => Err(Reject::UpstreamTimeout),
            (Err(_), BodyFault::Finished) => {
                self.failed("timeout");
                Err(Reject::UpstreamTimeout)
            }
        }
    }

    /// A GET of `pq` with `headers`, its answer read whole (at most `limit` bytes), all within
    /// the upstream's timeout (the guard's resource lookups).
    pub async fn fetch(
        &self,
        pq: PathAndQuery,
        headers: http::HeaderMap,
        limit: usize,
    ) -> Result<(http::StatusCode, Bytes), Reject> {
        use http_body_util::{BodyExt as _, Limited};
        let (mut parts, ()) = Request::get("/").body(()).expect("a GET").into_parts();
        parts.headers = headers;
        let work = async {
            let res = self
                .try_targets(
                    parts,
                    Either::Right(Full::default()),
                    pq,
                    &FaultFlag::default(),
                )
                .await?;
            let status = res.status();
            let bytes = Limited::new(res.into_body(), limit)
                .collect()
                .await
                .map_err(|_| Reject::UpstreamUnavailable)?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(self.cfg.timeout, work)
            .await
            .unwrap_or(Err(Reject::UpstreamTimeout))
    }

    /// The next target in rotation at or after ring position `*k`, moving `*k` past it.
    fn next_target(&self, start: usize, k: &mut usize, now: u64) -> Option<&Target> {
        let n = self.targets.len();
        while *k < n {
            let t = &self.targets[(start + *k) % n];
            *k += 1;
            if t.in_rotation(now) {
                return Some(t);
            }
        }
        None
    }

    /// The configured label (`http://10.0.0.5:8080`) of the target [`ServedBy`] names.
    pub fn served_by(&self, by: ServedBy) -> &str {
        self.targets.get(by.0).map_or("", |t| t.label.as_str())
    }

    /// With no target in rotation: 503 at once, with when to come back.
    fn none_in_rotation(&self, now: u64) -> Reject {
        let soonest = self
            .targets
            .iter()
            .map(|t| t.back_in_ms(now))
            .filter(|ms| *ms > 0)
            .min();
        let probe = self
            .cfg
            .health
            .as_ref()
            .map(|h| h.interval.as_millis() as u64);
        let ms = soonest.or(probe).unwrap_or(1000);
        tracing::warn!(upstream = %self.name, "no upstream target in rotation");
        Reject::NoHealthyUpstream(ms.div_ceil(1000).max(1))
    }

    /// One try at `t`: on its own kept connections when it has them (an upgrade, which needs
    /// a connection of its own to the end, goes through hyper-util's client).
    async fn exchange(
        &self,
        t: &Target,
        parts: &Parts,
        headers: http::HeaderMap,
        pq: &PathAndQuery,
        body: ProxyBody,
    ) -> Result<Response<UpstreamBody>, SendError> {
        match &t.h1 {
            Some(conns) if !headers.contains_key(header::UPGRADE) => {
                let req = self.request(t, self.uri(t, true, pq), parts, headers, body);
                conns.send(req).await.map_err(SendError::Direct)
            }
            _ => {
                let mut req = self.request(t, self.uri(t, false, pq), parts, headers, body);
                // hyper-util gives a connection back to its pool on its own; a refused
                // answer's connection is poisoned so that it never is.
                let conn = hyper_util::client::legacy::connect::capture_connection(&mut req);
                match self.client.request(req).await {
                    Ok(mut res) => match answer::judge(&mut res) {
                        Ok(()) => Ok(res.map(UpstreamBody::unpooled)),
                        Err(why) => {
                            if let Some(c) = conn.connection_metadata().as_ref() {
                                c.poison();
                            }
                            Err(SendError::Direct(h1::H1Error::BadAnswer(why)))
                        }
                    },
                    Err(e) => Err(SendError::Pooled(e)),
                }
            }
        }
    }
}

/// Closes kept HTTP/1.1 connections past their idle time, until the pool is dropped.
async fn reap_loop(pool: std::sync::Weak<UpstreamPool>, idle: Duration) {
    let mut tick = tokio::time::interval(idle.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        for conns in pool.targets.iter().filter_map(|t| t.h1.as_ref()) {
            conns.reap();
        }
    }
}
