//! gRPC-shaped refusals: a gRPC client reads `grpc-status`, not the HTTP status, so a refusal
//! of a gRPC request is HTTP 200 with a Trailers-Only answer (status and message as headers).

use crate::body::{self, Body};
use crate::reject::Reject;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use std::fmt::Write as _;

/// `content-type: application/grpc` (or `application/grpc+proto`, `;…`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.strip_prefix("application/grpc")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
        })
}

/// The gRPC status code for an HTTP refusal status.
pub fn status_for(http: StatusCode) -> u8 {
    match http.as_u16() {
        400 => 3,                   // INVALID_ARGUMENT
        401 => 16,                  // UNAUTHENTICATED
        403 => 7,                   // PERMISSION_DENIED
        404 | 405 => 12,            // UNIMPLEMENTED
        408 | 504 => 4,             // DEADLINE_EXCEEDED
        413 | 414 | 431 | 429 => 8, // RESOURCE_EXHAUSTED
        502 | 503 => 14,            // UNAVAILABLE
        _ => 13,                    // INTERNAL
    }
}

/// `grpc-message` encoding: printable ASCII but `%` as is, every other byte `%XX`.
fn percent_encode(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for b in msg.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The refusal as a gRPC client understands it.
pub fn refusal(rej: Reject) -> Response<Body> {
    let status = rej.status();
    let mut res = Response::new(body::full(bytes::Bytes::new()));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        "grpc-status",
        HeaderValue::from(u16::from(status_for(status))),
    );
    if let Ok(v) = HeaderValue::from_str(&percent_encode(&rej.message())) {
        h.insert("grpc-message", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types_are_told_apart() {
        let mut h = HeaderMap::new();
        for (ct, yes) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc;charset=utf-8", true),
            ("application/grpcx", false),
            ("application/json", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_grpc(&h), yes, "{ct}");
        }
    }

    #[test]
    fn a_refusal_is_a_trailers_only_answer() {
        let res = refusal(Reject::MissingToken);
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["grpc-status"], "16");
        let res = refusal(Reject::Forbidden("scope «x»".into()));
        assert_eq!(res.headers()["grpc-status"], "7");
        let msg = res.headers()["grpc-message"].to_str().unwrap();
        assert!(msg.contains("%C2%AB"), "{msg}");
        assert_eq!(status_for(StatusCode::GATEWAY_TIMEOUT), 4);
        assert_eq!(status_for(StatusCode::SERVICE_UNAVAILABLE), 14);
    }
}
