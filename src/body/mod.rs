//! Bodies, at the bottom of the layers: the response body shared by proxied and locally
//! generated answers, the client's request body on its way upstream (`client`), and the
//! upstream's answer body (`upstream`).

pub mod client;
pub mod upstream;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use upstream::UpstreamBody;

/// A body streamed from the upstream, or generated here in one piece.
pub type Body = Either<UpstreamBody, Full<Bytes>>;

/// A body made here.
pub fn full(b: impl Into<Bytes>) -> Body {
    Either::Right(Full::new(b.into()))
}

/// A JSON response with `status`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes(status, bytes)
}

/// A JSON response from already-encoded bytes.
pub fn json_bytes(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(bytes));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
