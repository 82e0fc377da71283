//! The upstream's answer head, judged before it is passed on or its connection kept. hyper's
//! client has already refused what it cannot parse (two different `Content-Length`s, a bad
//! status line, obs-fold, whitespace before a colon); what it accepts and a proxy must not
//! pass on is refused here, with the connection closed (never given back to the pool):
//!
//! - a status outside 100–599 (RFC 9110 §15: three digits, first 1–5);
//! - `Transfer-Encoding` beside `Content-Length` (RFC 9112 §6.3 ¶3: "ought to be handled as
//!   an error", a sign of response splitting);
//! - any transfer coding but one `chunked` (`gzip` alone, `foo, chunked`, `chunked, chunked`):
//!   the gateway re-frames the body and drops the field, so a coding it does not undo would
//!   reach the client unannounced.
//!
//! Every `Content-Length` value is read (hyper skips it on answers that cannot have a body):
//! one that is not a number, or values that disagree, are refused; a list of one repeated
//! value (`5, 5`, RFC 9110 §8.6) goes on as that one value. `docs/http-conformance.md` lists the corpus cases.

use http::{header, HeaderValue, Response};

/// `Err` with the reason when `res` must not be passed on; normalises a repeated length.
pub fn judge<B>(res: &mut Response<B>) -> Result<(), &'static str> {
    if !(100..600).contains(&res.status().as_u16()) {
        return Err("a status outside 100-599");
    }
    let h = res.headers_mut();
    if let Some(te) = h.get(header::TRANSFER_ENCODING) {
        if h.contains_key(header::CONTENT_LENGTH) {
            return Err("both Transfer-Encoding and Content-Length");
        }
        let one_chunked = h.get_all(header::TRANSFER_ENCODING).iter().count() == 1
            && te
                .to_str()
                .is_ok_and(|v| v.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked"));
        if !one_chunked {
            return Err("a transfer coding other than chunked");
        }
    }
    // hyper checks the length only of answers that may have a body (not HEAD, 204, 304):
    // every value is read here, and all must be the same number.
    let mut lengths = h.get_all(header::CONTENT_LENGTH).iter().peekable();
    if lengths.peek().is_some() {
        let mut one = None;
        let mut listed = false;
        for v in lengths {
            for n in v.as_bytes().split(|&c| c == b',') {
                let n = n.trim_ascii();
                let value = (!n.is_empty() && n.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(n).ok()?.parse::<u64>().ok())
                    .flatten()
                    .ok_or("an unreadable Content-Length")?;
                if one.is_some_and(|o| o != value) {
                    return Err("Content-Length values that disagree");
                }
                listed |= one.is_some();
                one = Some(value);
            }
        }
        if let (true, Some(one)) = (listed, one) {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(one));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, fields: &[(&str, &str)]) -> Response<()> {
        let mut b = Response::builder().status(status);
        for (k, v) in fields {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn answers_hyper_accepts_and_a_proxy_must_not_pass_on_are_refused() {
        assert!(judge(&mut answer(200, &[("transfer-encoding", "chunked")])).is_ok());
        assert!(judge(&mut answer(200, &[("transfer-encoding", "CHUNKED")])).is_ok());
        assert!(judge(&mut answer(600, &[])).is_err());
        let both = [("transfer-encoding", "chunked"), ("content-length", "3")];
        assert!(judge(&mut answer(200, &both)).is_err());
        assert!(judge(&mut answer(200, &[("transfer-encoding", "gzip")])).is_err());
        assert!(judge(&mut answer(
            200,
            &[("transfer-encoding", "chunked, chunked")]
        ))
        .is_err());
        let mut listed = answer(200, &[("content-length", "5, 5")]);
        assert!(judge(&mut listed).is_ok());
        assert_eq!(listed.headers()[header::CONTENT_LENGTH], "5");
        assert!(judge(&mut answer(204, &[("content-length", "5, 7")])).is_err());
        assert!(judge(&mut answer(304, &[("content-length", "abc")])).is_err());
        assert!(judge(&mut answer(304, &[("content-length", "+5")])).is_err());
    }
}
