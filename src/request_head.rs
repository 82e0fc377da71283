//! What hyper's HTTP/1 parser lets through and the gateway refuses, judged on the parsed head
//! before anything else reads the request. hyper has already answered 400 to what it cannot
//! parse (a bad or disagreeing `Content-Length`, a chunked coding that is not last, HTTP/1.0
//! with `Transfer-Encoding`), and it handles `Transfer-Encoding` beside `Content-Length` as
//! RFC 9112 §6.3 asks of an intermediary: the length field removed, the connection closed
//! after the answer. Refused here:
//!
//! - `CONNECT` (RFC 9110 §9.3.6): tollgate is a reverse proxy, never a tunnel to its
//!   upstream → 400, closed;
//! - a method longer than any defined (32 octets; RFC 9112 §3 SHOULD) and `OPTIONS *`, which
//!   addresses no upstream → 501, closed;
//! - an absolute-form target whose scheme is not the connection's (`https://` over cleartext)
//!   → 421 (RFC 9110 §7.4);
//! - `chunked` more than once (RFC 9112 §7: "MUST NOT apply chunked more than once") → 400,
//!   closed; empty list elements are ignored (RFC 9110 §5.6.1);
//! - any coding but `chunked` (`gzip, chunked`: the body would reach the upstream still
//!   compressed under a framing that no longer says so) → 501, closed (RFC 9112 §6.1);
//! - an `Expect` other than `100-continue` → 417 (RFC 9110 §10.1.1); `100-continue` itself is
//!   answered here (hyper sends the 100 when the body is first read) and not forwarded.
//!
//! `docs/http-conformance.md` lists every decision with the corpus case that proves it.

use crate::reject::Reject;
use http::{header, Method, Request, Version};

const CODING: &str = "transfer coding not implemented: only chunked is accepted";

/// Longer than any registered method (`UPDATEREDIRECTREF` has 17 octets).
const MAX_METHOD: usize = 32;

/// Refuses a head the gateway will not pass on (see the module doc); `tls`: the connection's.
pub fn check<B>(req: &Request<B>, tls: bool) -> Result<(), Reject> {
    if req.method() == Method::CONNECT {
        return Err(Reject::BadHead(
            "CONNECT is not served: tollgate is a reverse proxy, not a tunnel",
        ));
    }
    if req.method().as_str().len() > MAX_METHOD {
        return Err(Reject::NotImplemented(
            "method not implemented: longer than any known",
        ));
    }
    if req.uri().path() == "*" {
        return Err(if req.method() == Method::OPTIONS {
            Reject::NotImplemented("OPTIONS * is not served: it addresses no upstream")
        } else {
            Reject::BadHead("the asterisk-form target is only for OPTIONS")
        });
    }
    if let Some(scheme) = req.uri().scheme_str() {
        let ours = if tls { "https" } else { "http" };
        if req.version() <= Version::HTTP_11 && !scheme.eq_ignore_ascii_case(ours) {
            return Err(Reject::Misdirected);
        }
    }
    let h = req.headers();
    if req.version() <= Version::HTTP_11 && h.contains_key(header::TRANSFER_ENCODING) {
        let mut chunked = 0;
        let mut other = false;
        for v in h.get_all(header::TRANSFER_ENCODING) {
            let v = v.to_str().map_err(|_| Reject::NotImplemented(CODING))?;
            for coding in v.split(',').map(|c| c.trim_matches([' ', '\t'])) {
                if coding.eq_ignore_ascii_case("chunked") {
                    chunked += 1;
                } else if !coding.is_empty() {
                    other = true;
                }
            }
        }
        if chunked > 1 {
            return Err(Reject::BadHead("chunked applied more than once"));
        }
        if other {
            return Err(Reject::NotImplemented(CODING));
        }
    }
    for v in h.get_all(header::EXPECT) {
        if !v.as_bytes().eq_ignore_ascii_case(b"100-continue") {
            return Err(Reject::ExpectationFailed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, fields: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri("/x");
        for (k, v) in fields {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn heads_hyper_lets_through_are_judged() {
        let status = |f: &[(&str, &str)]| {
            check(&head("POST", f), false)
                .err()
                .map(|r| r.status().as_u16())
        };
        assert_eq!(status(&[("transfer-encoding", "chunked")]), None);
        assert_eq!(status(&[("transfer-encoding", "Chunked")]), None);
        assert_eq!(status(&[("transfer-encoding", ", chunked")]), None);
        assert_eq!(status(&[("content-length", "5")]), None);
        assert_eq!(status(&[("expect", "100-Continue")]), None);
        assert_eq!(
            status(&[("transfer-encoding", "chunked, chunked")]),
            Some(400)
        );
        let twice = [
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ];
        assert_eq!(status(&twice), Some(400));
        assert_eq!(status(&[("transfer-encoding", "gzip, chunked")]), Some(501));
        assert_eq!(status(&[("transfer-encoding", "identity")]), Some(501));
        assert_eq!(status(&[("expect", "200-ok")]), Some(417));
        let connect = check(&head("CONNECT", &[]), false).unwrap_err();
        assert_eq!(connect.status(), 400);
        let long = "M".repeat(MAX_METHOD + 1);
        assert_eq!(check(&head(&long, &[]), false).unwrap_err().status(), 501);
        let https = Request::get("https://gw/x").body(()).unwrap();
        assert_eq!(check(&https, false).unwrap_err().status(), 421);
        assert!(check(&https, true).is_ok());
    }
}
