//! The per-request function. Phases, in order:
//!
//! 1. `RequestCtx::start`: request id, start time.
//! 2. Host check: exactly one `Host` (HTTP/1.1), or an authority; what hyper lets through and RFC 9112 forbids (`request_head`).
//! 3. Normalise the path (400 when unsafe); the normalised path is what is matched and forwarded.
//! 4. Match the route table (404 / 405).
//! 5. Issuing endpoint → served here. Proxied route → `guard::check` (401 / 403) → `proxy::forward` (502 / 504).
//! 6. One exit: the refusal rendered in the route's error style, `X-Request-Id` set, one
//!    access-log line, one metrics observation.

use crate::body::{self, Body};
use crate::config::{ErrorStyle, Origin, RateKey};
use crate::guard;
use crate::limit::Subject;
use crate::metrics::RouteMetrics;
use crate::principal::Principal;
use crate::proxy::{self, headers::X_REQUEST_ID, ConnInfo};
use crate::reject::{Decision, Reject};
use crate::route::{self, Match};
use crate::state::exchange::Exchange;
use crate::state::{Gateway, Handler, Runtime, Target};
use crate::upstream::ServedBy;
use http::uri::PathAndQuery;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// Per-request context, created first and finished at the one exit.
struct RequestCtx<'rt> {
    /// What the request matched (an issuing endpoint, a route), once it matched.
    handler: Option<&'rt Handler>,
    started: Instant,
    request_id: HeaderValue,
    style: ErrorStyle,
    principal: Option<Arc<Principal>>,
    dialect: Option<Origin>,
    reason: Option<&'static str>,
    /// The app id an issuing request named (checked or not), for the access log.
    claimed_app: Option<Box<str>>,
    /// Who sent it (`ConnInfo::request_client`): what limits and the log name.
    client: std::net::IpAddr,
}

impl RequestCtx<'_> {
    fn start<B>(req: &Request<B>, client: std::net::IpAddr) -> Self {
        let sent = req.headers().get(&X_REQUEST_ID).filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
        });
        let request_id = match sent {
            Some(v) => v.clone(),
            None => crate::request_id::next(),
        };
        RequestCtx {
            handler: None,
            started: Instant::now(),
            request_id,
            style: ErrorStyle::Oauth,
            principal: None,
            dialect: None,
            reason: None,
            claimed_app: None,
            client,
        }
    }
}

/// Serves one request on the public listener.
pub async fn handle(
    req: Request<Incoming>,
    conn: ConnInfo,
    gw: Arc<Gateway>,
) -> Result<Response<Body>, Infallible> {
    let rt = gw.runtime();
    let client = conn.request_client(req.headers(), &rt.config.listen.trusted_proxies);
    let mut ctx = RequestCtx::start(&req, client);
    let grpc = crate::grpc::is_grpc(req.headers());
    let method = req.method().clone();
    let uri = req.uri().clone(); // shares the parsed bytes; no copy
                                 // Kept only for an access line that will be written.
    let user_agent = tracing::enabled!(target: "tollgate::access", tracing::Level::INFO)
        .then(|| req.headers().get(header::USER_AGENT).cloned())
        .flatten();
    let result = serve(req, &conn, &rt, &gw, &mut ctx).await;
    let handler = ctx.handler;
    let metrics: &RouteMetrics = handler.map_or(&rt.unmatched, |h| &h.metrics);
    let mut res = match result {
        Ok(res) => res,
        Err(rej) => {
            ctx.reason = Some(rej.reason());
            match rej {
                Reject::StoreUnavailable => gw.shared.metrics.store_unavailable.inc(),
                Reject::RateLimited(_) | Reject::RouteLimited(_) => gw
                    .shared
                    .metrics
                    .rate_limited(handler.map_or("(unmatched)", |h| metrics_label(&rt, h))),
                _ => {}
            }
            if let Some(d) = rej.decision() {
                metrics.decision(d, ctx.dialect);
            }
            match rej {
                // A gRPC client reads grpc-status, not the HTTP status; a refusal that closes
                // the connection keeps its HTTP status (never a 200 to a CONNECT).
                Reject::Refused(_) => rej.into_response(ctx.style),
                _ if grpc && !rej.closes_connection() => crate::grpc::refusal(rej),
                _ => rej.into_response(ctx.style),
            }
        }
    };
    res.headers_mut()
        .insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
    let elapsed = ctx.started.elapsed();
    let status = res.status().as_u16();
    metrics.observe(&method, status, elapsed.as_secs_f64());
    let (upstream, target) = match handler.map(|h| h.target) {
        Some(Target::Proxy(i)) => {
            let pool = &rt.upstreams[rt.routes[i].config.upstream];
            let by = res.extensions_mut().remove::<ServedBy>();
            (pool.name(), by.map_or("", |by| pool.served_by(by)))
        }
        _ => ("", ""),
    };
    // A refusal a handler answered itself (a token endpoint's envelope) still says what it was.
    let reason = ctx
        .reason
        .or_else(|| (status >= 400).then(|| res.status().canonical_reason().unwrap_or("")));
    // The connection's own text, unless a trusted proxy named someone else (formatted only
    // for a line that will be written).
    let logged = tracing::enabled!(target: "tollgate::access", tracing::Level::INFO);
    let peer_text: Cow<'_, str> = if ctx.client == conn.client || !logged {
        Cow::Borrowed(conn.peer_ip.to_str().unwrap_or(""))
    } else {
        Cow::Owned(ctx.client.to_string())
    };
    crate::access_log::emit(&crate::access_log::AccessLine {
        method: method.as_str(),
        path: uri.path(),
        route: handler.map_or("(unmatched)", |h| route_label(&rt, h)),
        status,
        duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        request_id: ctx.request_id.to_str().unwrap_or(""),
        peer: &peer_text,
        app: ctx
            .principal
            .as_ref()
            .map_or(ctx.claimed_app.as_deref().unwrap_or(""), |p| &*p.app),
        reason: reason.unwrap_or(""),
        upstream,
        upstream_target: target,
        response_bytes: res
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        user_agent: user_agent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    });
    Ok(res)
}

/// Counts and logs what a shadow rule would have decided (the request goes on either way).
fn record_shadow(
    outcome: Result<(), &Reject>,
    metrics: &RouteMetrics,
    ctx: &RequestCtx<'_>,
    route: &str,
) {
    let decision = match outcome {
        Ok(()) => Decision::Allowed,
        Err(r) => r.decision().unwrap_or(Decision::Invalid),
    };
    metrics.shadow_decision(decision, ctx.dialect);
    if let Err(r) = outcome {
        tracing::info!(
            target: "tollgate::shadow",
            route,
            shadow_decision = decision.as_str(),
            status = r.status().as_u16(),
            reason = %r.message(),
            request_id = ctx.request_id.to_str().unwrap_or(""),
            app = ctx.principal.as_ref().map_or("", |p| &*p.app),
            "shadow_decision: the enforced rule would have refused this request"
        );
    }
}

/// The `route` label of a handler's metrics (an issuing endpoint's own path pattern).
fn metrics_label<'a>(rt: &'a Runtime, h: &'a Handler) -> &'a str {
    match h.target {
        Target::Proxy(i) => rt.routes[i].config.pattern.as_str(),
        _ => h.metrics.label(),
    }
}

fn route_label<'a>(rt: &'a Runtime, h: &Handler) -> &'a str {
    match h.target {
        Target::Proxy(i) => rt.routes[i].config.pattern.as_str(),
        Target::Issue(_) => "(issue)",
        Target::Jwks => "(jwks)",
        Target::Metadata => "(metadata)",
    }
}

/// The request head within the limits: a target of at most `max_uri_bytes` (414) and header
/// fields of at most `max_header_bytes` in all (431).
fn check_size<B>(req: &Request<B>, limits: &crate::config::Limits) -> Result<(), Reject> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_uri_bytes {
        return Err(Reject::UriTooLong);
    }
    let head: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if head > limits.max_header_bytes {
        return Err(Reject::HeadersTooLarge);
    }
    Ok(())
}

/// Exactly one valid `Host` (a name or IP literal, a port 1–65535, no userinfo), which an
/// absolute-form target or HTTP/2 authority must agree with.
fn check_host<B>(req: &Request<B>) -> Result<(), Reject> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(Reject::BadRequest("more than one Host header".into()));
    }
    let authority = req.uri().authority();
    // RFC 9112 §3.2: every HTTP/1.1 request carries Host, an absolute-form one included.
    if req.version() == Version::HTTP_11 && first.is_none() {
        return Err(Reject::BadRequest("missing Host header".into()));
    }
    let host = match first {
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|h| crate::ident::valid_host(h))
                .ok_or_else(|| Reject::BadRequest("invalid Host header".into()))?,
        ),
        None => None,
    };
    if let Some(a) = authority {
        if !crate::ident::valid_host(a.as_str()) {
            return Err(Reject::BadRequest(
                "invalid authority in the request target".into(),
            ));
        }
        if host.is_some_and(|h| !h.eq_ignore_ascii_case(a.as_str())) {
            return Err(Reject::BadRequest(
                "the request target's authority and the Host header disagree".into(),
            ));
        }
    }
    Ok(())
}

/// The path and query sent upstream: the normalised path, the query minus a consumed `accessToken`.
fn upstream_path(uri: &Uri, path: &str, strip_token: bool) -> Result<PathAndQuery, Reject> {
    let query = match uri.query() {
        Some(q) if strip_token => Some(Cow::Owned(proxy::headers::query_without_token(q))),
        q => q.map(Cow::Borrowed),
    };
    if path == uri.path() && !strip_token {
        if let Some(pq) = uri.path_and_query() {
            return Ok(pq.clone());
        }
    }
    let text = match query.as_deref() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    };
    PathAndQuery::try_from(text)
        .map_err(|_| Reject::BadRequest("request target cannot be forwarded".into()))
}

async fn serve<'rt>(
    req: Request<Incoming>,
    conn: &ConnInfo,
    rt: &'rt Runtime,
    gw: &Arc<Gateway>,
    ctx: &mut RequestCtx<'rt>,
) -> Result<Response<Body>, Reject> {
    let shared = &gw.shared;
    crate::request_head::check(&req, conn.tls)?;
    check_size(&req, &rt.config.limits)?;
    check_host(&req)?;
    let uri = req.uri().clone(); // shares the parsed bytes, so `path` may outlive `req`
    let path = route::normalise_with(uri.path(), rt.config.paths).map_err(Reject::BadPath)?;
    let handler = match rt.table.find(req.method(), &path) {
        Match::Found(e) => &e.value,
        Match::MethodNotAllowed { first, allow } => {
            // Counted and styled as the route the path belongs to.
            ctx.handler = Some(&first.value);
            ctx.style = first.value.errors;
            let allow = allow
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let allow = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static(""));
            return Err(Reject::MethodNotAllowed(allow));
        }
        Match::NotFound => return Err(Reject::NotFound),
    };
    ctx.handler = Some(handler);
    ctx.style = handler.errors;
    let route = match handler.target {
        Target::Proxy(i) => &rt.routes[i],
        Target::Issue(ep) => {
            // Refusals of an issuing endpoint are decisions about its dialect's credentials.
            ctx.dialect = Some(Origin::Own(ep.dialect()));
            // Limits are charged where a secret is verified (`issue::core::authenticate`).
            let cert = conn.client_cert.clone();
            let asked = crate::issue::Ctx::new(rt, shared, ctx.client);
            let reply = crate::issue::serve(ep, req, &path, &asked, cert).await;
            ctx.claimed_app = asked.claimed();
            return reply;
        }
        Target::Metadata => {
            let mut res = body::json_bytes(StatusCode::OK, rt.metadata.clone());
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            return Ok(res);
        }
        Target::Jwks => {
            let mut res = body::json_bytes(StatusCode::OK, shared.keys().jwks());
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            return Ok(res);
        }
    };
    guard::require::no_method_override(req.method(), &uri)?;
    let (parts, body) = req.into_parts();
    // Per address: before the token costs anything.
    if let Some(l) = route.limiter.as_ref().filter(|l| l.cfg.key == RateKey::Ip) {
        let who = Subject::Ip(crate::client_addr::limit_key(ctx.client));
        l.admit(&who, Instant::now())
            .map_err(Reject::RouteLimited)?;
    }
    let ex = Exchange {
        route,
        rt,
        gw,
        conn,
        request_id: &ctx.request_id,
    };
    let verdict = guard::check(ex, &parts, &path).await;
    ctx.dialect = verdict.dialect;
    let permit = verdict.permit?;
    let shadow_route = route.config.mode == crate::config::RouteMode::Shadow;
    if permit.principal().is_some() {
        // A shadow route enforces nothing: its decisions are counted as shadow ones only.
        if !shadow_route {
            handler.metrics.decision(Decision::Allowed, ctx.dialect);
        }
        ctx.principal = permit.principal_arc();
    }
    if let Some(outcome) = permit.shadow() {
        record_shadow(outcome, &handler.metrics, ctx, route_label(rt, handler));
    }
    // Per app: once the token says which (a request without one — a shadow route lets it
    // through — counts by its address).
    if let Some(l) = route.limiter.as_ref().filter(|l| l.cfg.key == RateKey::App) {
        let who = match permit.principal() {
            Some(p) => Subject::App(p.origin, p.app.clone()),
            None => Subject::Ip(crate::client_addr::limit_key(ctx.client)),
        };
        l.admit(&who, Instant::now())
            .map_err(Reject::RouteLimited)?;
    }
    let mut parts = parts;
    crate::state::credential::attach(&mut parts.headers, route, shared)?;
    // Every `accessToken` spelling leaves the query, not only the one the token came from.
    let strip_token = permit.principal().is_some()
        && !route.config.forward_token
        && uri.query().is_some_and(guard::bearer::holds_token);
    let pq = upstream_path(&uri, &path, strip_token)?;
    drop(path);
    proxy::forward(ex, Request::from_parts(parts, body), pq, &permit).await
}
