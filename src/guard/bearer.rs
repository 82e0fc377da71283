//! Where a token is found: `Authorization: Bearer`, `BKFlow-Token`, or `?accessToken=`.

use crate::reject::{Invalid, Reject};
use http::request::Parts;
use http::HeaderName;
use std::borrow::Cow;

/// `BKFlow-Token` header name.
pub static BKFLOW_TOKEN: HeaderName = HeaderName::from_static("bkflow-token");

/// Where the client put its token (so forwarding can remove it there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer <token>`.
    Authorization,
    /// `BKFlow-Token: <token>`.
    BkflowHeader,
    /// `?accessToken=<token>`.
    Query,
}

/// The presented token, if any. Two `Authorization` headers are a malformed request.
pub fn extract(parts: &Parts) -> Result<Option<(Cow<'_, str>, Source)>, Reject> {
    let mut auth = parts.headers.get_all(http::header::AUTHORIZATION).iter();
    if let Some(value) = auth.next() {
        if auth.next().is_some() {
            return Err(Reject::BadRequest(
                "more than one Authorization header".into(),
            ));
        }
        let value = value
            .to_str()
            .map_err(|_| Reject::InvalidToken(Invalid::Bad))?;
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                let token = token.trim();
                if token.is_empty() {
                    return Err(Reject::InvalidToken(Invalid::Bad));
                }
                return Ok(Some((Cow::Borrowed(token), Source::Authorization)));
            }
        }
    }
    if let Some(value) = parts.headers.get(&BKFLOW_TOKEN) {
        let token = value
            .to_str()
            .map_err(|_| Reject::InvalidToken(Invalid::Bad))?
            .trim();
        if token.is_empty() {
            return Err(Reject::InvalidToken(Invalid::Bad));
        }
        return Ok(Some((Cow::Borrowed(token), Source::BkflowHeader)));
    }
    if let Some(q) = parts.uri.query() {
        if q.contains("accessToken=") {
            let found = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "accessToken");
            if let Some((_, v)) = found {
                if v.is_empty() {
                    return Err(Reject::InvalidToken(Invalid::Bad));
                }
                return Ok(Some((Cow::Owned(v.into_owned()), Source::Query)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn each_place_a_token_can_be_is_found() {
        let p = parts(http::Request::get("/x").header("authorization", "bEaReR abc"));
        assert_eq!(
            extract(&p).unwrap(),
            Some((Cow::Borrowed("abc"), Source::Authorization))
        );
        let p = parts(http::Request::get("/x").header("BKFlow-Token", "0123"));
        assert_eq!(
            extract(&p).unwrap(),
            Some((Cow::Borrowed("0123"), Source::BkflowHeader))
        );
        let p = parts(http::Request::get("/x?a=1&accessToken=t%2Bk"));
        assert_eq!(
            extract(&p).unwrap(),
            Some((Cow::Borrowed("t+k"), Source::Query))
        );
        let p = parts(http::Request::get("/x").header("authorization", "Basic Zm9v"));
        assert_eq!(extract(&p).unwrap(), None);
    }

    #[test]
    fn duplicated_or_empty_credentials_are_refused() {
        let p = parts(
            http::Request::get("/x")
                .header("authorization", "Bearer a")
                .header("authorization", "Bearer b"),
        );
        assert!(matches!(extract(&p), Err(Reject::BadRequest(_))));
        let p = parts(http::Request::get("/x").header("authorization", "Bearer "));
        assert!(matches!(extract(&p), Err(Reject::InvalidToken(_))));
    }
}
