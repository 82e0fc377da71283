//! Upstream pools: round robin over targets, refusing targets skipped for a while, a pooled
//! hyper-util client, connect timeout and a deadline on the response head.

use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::proxy::client_body::{BodyFault, ClientBody, FaultFlag};
use crate::reject::Reject;
use bytes::Bytes;
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Request, Response, Uri, Version};
use http_body::Body as _;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::Histogram;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Body sent upstream: the client's, or empty on a retry.
pub type ProxyBody = Either<ClientBody, Empty<Bytes>>;

/// How long a target that refused a connection is skipped.
const DOWN_FOR: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Target {
    authority: Authority,
    host: HeaderValue,
    /// Milliseconds since `epoch` until which the target is skipped.
    down_until: AtomicU64,
}

/// One named upstream.
#[derive(Debug)]
pub struct UpstreamPool {
    name: String,
    targets: Vec<Target>,
    next: AtomicUsize,
    client: Client<HttpConnector, ProxyBody>,
    timeout: Duration,
    epoch: Instant,
    latency: Histogram,
}

impl UpstreamPool {
    /// Builds the pool and its client.
    pub fn new(cfg: &UpstreamConfig, metrics: &Metrics) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(cfg.idle_timeout)
            .pool_max_idle_per_host(cfg.max_idle)
            .build(connector);
        let targets = cfg
            .targets
            .iter()
            .map(|a| Target {
                authority: a.clone(),
                host: HeaderValue::from_str(a.as_str())
                    .expect("an authority is a valid header value"),
                down_until: AtomicU64::new(0),
            })
            .collect();
        UpstreamPool {
            name: cfg.name.clone(),
            targets,
            next: AtomicUsize::new(0),
            client,
            timeout: cfg.timeout,
            epoch: Instant::now(),
            latency: metrics.upstream(&cfg.name),
        }
    }

    /// Name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn request(
        &self,
        t: &Target,
        parts: &Parts,
        headers: http::HeaderMap,
        pq: &PathAndQuery,
        body: ProxyBody,
    ) -> Request<ProxyBody> {
        let uri = Uri::from_parts({
            let mut u = http::uri::Parts::default();
            u.scheme = Some(Scheme::HTTP);
            u.authority = Some(t.authority.clone());
            u.path_and_query = Some(pq.clone());
            u
        })
        .expect("scheme, authority and path make a URI");
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        req.headers_mut().insert(header::HOST, t.host.clone());
        req
    }

    /// Sends a request, trying the next target when one refuses the connection and the body
    /// is empty (so nothing is lost by sending it again). The whole attempt is bounded by `timeout`.
    /// `body_idle` bounds the wait between two pieces of the client's body.
    pub async fn send(
        &self,
        parts: Parts,
        body: Incoming,
        pq: PathAndQuery,
        body_idle: Duration,
    ) -> Result<Response<Incoming>, Reject> {
        let started = Instant::now();
        let fault = FaultFlag::default();
        let body = ClientBody::new(body, body_idle, fault.clone());
        let result = tokio::time::timeout(
            self.timeout,
            self.try_targets(parts, Either::Left(body), pq),
        )
        .await;
        self.latency.observe(started.elapsed().as_secs_f64());
        // A failure caused by the client's own body is the client's to hear about.
        match (result, fault.get()) {
            (Err(_) | Ok(Err(_)), BodyFault::Malformed) => Err(Reject::BadBody),
            (Err(_) | Ok(Err(_)), BodyFault::Stalled) => Err(Reject::BodyTimeout),
            (Ok(r), _) => r,
            (Err(_), BodyFault::None) => Err(Reject::UpstreamTimeout),
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
        let body = Either::Right(Empty::new());
        let work = async {
            let res = self.try_targets(parts, body, pq).await?;
            let status = res.status();
            let bytes = Limited::new(res.into_body(), limit)
                .collect()
                .await
                .map_err(|_| Reject::UpstreamUnavailable)?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(Reject::UpstreamTimeout))
    }

    async fn try_targets(
        &self,
        mut parts: Parts,
        body: ProxyBody,
        pq: PathAndQuery,
    ) -> Result<Response<Incoming>, Reject> {
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        let retryable = body.is_end_stream();
        let mut body = Some(body);
        let mut last = Reject::UpstreamUnavailable;
        for k in 0..n {
            let t = &self.targets[(start + k) % n];
            let is_last = k + 1 == n;
            if t.down_until.load(Ordering::Relaxed) > now && !is_last {
                continue;
            }
            let b = match body.take() {
                Some(b) => b,
                None if retryable => Either::Right(Empty::new()),
                None => break,
            };
            // Copy the head only when a retry may need it again.
            let headers = if retryable && !is_last {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            match self
                .client
                .request(self.request(t, &parts, headers, &pq, b))
                .await
            {
                Ok(res) => {
                    t.down_until.store(0, Ordering::Relaxed);
                    return Ok(res);
                }
                Err(e) if e.is_connect() => {
                    let until = self.epoch.elapsed() + DOWN_FOR;
                    t.down_until
                        .store(until.as_millis() as u64, Ordering::Relaxed);
                    tracing::warn!(upstream = %self.name, target = %t.authority, "upstream target refused the connection");
                    last = Reject::UpstreamUnavailable;
                    if !retryable {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(upstream = %self.name, target = %t.authority, error = %e, "upstream request failed");
                    return Err(Reject::UpstreamUnavailable);
                }
            }
        }
        Err(last)
    }
}
