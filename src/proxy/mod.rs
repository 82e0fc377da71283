//! Forwarding what the guard let through to the upstream, bodies streamed both ways.

pub mod client_body;
pub mod credential;
pub mod headers;
pub mod upstream;

use crate::body::Body;
use crate::guard::Permit;
use crate::reject::Reject;
use crate::state::{CompiledRoute, Runtime};
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;

/// What the connection tells about the client.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// Peer address.
    pub peer: std::net::SocketAddr,
    /// Whether it came over TLS.
    pub tls: bool,
}

/// Sends the request to the route's upstream and returns its response.
///
/// `pq` is the normalised path (and filtered query): exactly what was matched and checked.
pub async fn forward(
    req: Request<Incoming>,
    pq: PathAndQuery,
    route: &CompiledRoute,
    permit: &Permit,
    rt: &Runtime,
    conn: ConnInfo,
    request_id: &HeaderValue,
) -> Result<Response<Body>, Reject> {
    let (mut parts, body) = req.into_parts();
    headers::prepare(
        &mut parts,
        route,
        permit,
        conn,
        request_id,
        rt.config.underscore_headers,
    );
    let pool = &rt.upstreams[route.config.upstream];
    let res = pool
        .send(parts, body, pq, rt.config.limits.body_read_timeout)
        .await?;
    let (mut rparts, rbody) = res.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers);
    Ok(Response::from_parts(rparts, Either::Left(rbody)))
}
