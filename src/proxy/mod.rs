//! Forwarding what the guard let through to the upstream, bodies streamed both ways.

pub mod headers;
mod token_watch;

pub use crate::client_addr::ConnInfo;
use crate::upstream::tunnel;

use crate::body::Body;
use crate::config::Protocol;
use crate::guard::Permit;
use crate::reject::Reject;
use crate::state::exchange::Exchange;
use http::uri::PathAndQuery;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;

/// Sends the request to the route's upstream and returns its response; an upgrade the
/// upstream accepts (101) becomes a tunnel in `gw.tunnels`, which lives no longer than the
/// token that opened it.
///
/// `pq` is the normalised path (and filtered query): exactly what was matched and checked.
pub async fn forward(
    ex: Exchange<'_>,
    mut req: Request<Incoming>,
    pq: PathAndQuery,
    permit: &Permit,
) -> Result<Response<Body>, Reject> {
    let Exchange { route, rt, gw, .. } = ex;
    let tunnels = &gw.tunnels;
    let pool = &rt.upstreams[route.config.upstream];
    let protocol = pool.config().protocol;
    let upgrade = tunnel::wanted(&req).map_err(|m| Reject::BadRequest(m.into()))?;
    if upgrade.is_some() {
        if protocol != Protocol::Http1 {
            return Err(Reject::BadRequest(
                "this route's upstream speaks HTTP/2; an Upgrade needs protocol: http1".into(),
            ));
        }
        // Tunnels outlive their connection's slot; they get a cap of their own.
        if tunnels.open() >= rt.config.limits.max_connections {
            return Err(Reject::TooManyTunnels);
        }
    }
    let client_side = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let client_version = req.version();
    // gRPC over HTTP/2 keeps `te: trailers`, the one TE value HTTP/2 allows.
    let te_trailers = protocol != Protocol::Http1
        && req
            .headers()
            .get(header::TE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let (mut parts, body) = req.into_parts();
    // A tunnel is watched by the token that opened it (read before the credential is removed).
    let watch = match (&upgrade, permit.principal()) {
        (Some(_), Some(_)) => crate::guard::bearer::extract(&parts)?.map(|(token, _)| {
            token_watch::still_valid(token.into_owned(), route.config.dialects.clone(), gw)
        }),
        _ => None,
    };
    headers::prepare(&mut parts, ex, permit);
    if let Some(proto) = &upgrade {
        tunnel::mark_upgrade(&mut parts.headers, proto.clone());
    }
    if te_trailers {
        parts
            .headers
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
    let mut res = pool
        .send(parts, body, pq, rt.config.limits.body_read_timeout)
        .await?;
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_side)) = (res.status(), client_side) {
        let Some(upstream_side) = res.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
            tracing::warn!(upstream = %pool.name(), "upstream switched protocols on a connection that cannot be upgraded");
            return Err(Reject::UpstreamUnavailable);
        };
        let (mut rparts, _) = res.into_parts();
        let proto = rparts.headers.get(header::UPGRADE).cloned();
        headers::strip_hop_by_hop(&mut rparts.headers);
        if let Some(p) = proto {
            tunnel::mark_upgrade(&mut rparts.headers, p);
        }
        tunnels.spawn(
            client_side,
            upstream_side,
            pool.config().tunnel_idle_timeout,
            watch,
        );
        return Ok(Response::from_parts(
            rparts,
            crate::body::full(bytes::Bytes::new()),
        ));
    }
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        tracing::warn!(upstream = %pool.name(), "upstream switched protocols on a request that asked for no upgrade");
        return Err(Reject::UpstreamUnavailable);
    }
    let (mut rparts, rbody) = res.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers);
    // The answer goes out in the client's HTTP version, whatever the upstream spoke.
    rparts.version = client_version;
    Ok(Response::from_parts(rparts, Either::Left(rbody)))
}
