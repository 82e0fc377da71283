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

/// True when a query key, percent-decoded, is `accessToken` (`access%54oken` is one too).
pub fn is_token_key(raw_key: &str) -> bool {
    raw_key == "accessToken"
        || (raw_key.len() <= 3 * "accessToken".len()
            && raw_key.contains(['%', '+'])
            && form_urlencoded::parse(raw_key.as_bytes())
                .next()
                .is_some_and(|(k, _)| k == "accessToken"))
}

/// True when the query may hold an `accessToken` under some spelling (a cheap pre-check).
fn may_hold_token(query: &str) -> bool {
    query.contains("ccessToken") || query.contains('%')
}

/// True when some query key is `accessToken` under some spelling (what forwarding strips).
pub fn holds_token(query: &str) -> bool {
    may_hold_token(query)
        && query
            .split('&')
            .any(|kv| is_token_key(kv.split_once('=').map_or(kv, |(k, _)| k)))
}

/// Every `accessToken` value in the query, decoded.
fn query_tokens(query: &str) -> impl Iterator<Item = Cow<'_, str>> {
    query
        .split('&')
        .filter(|kv| is_token_key(kv.split_once('=').map_or(*kv, |(k, _)| k)))
        .map(|kv| {
            let v = kv.split_once('=').map_or("", |(_, v)| v);
            form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map_or(Cow::Borrowed(""), |(_, v)| Cow::Owned(v.into_owned()))
        })
}

/// Adds one carrier's token; a second, different one is refused.
fn offer<'a>(
    found: &mut Option<(Cow<'a, str>, Source)>,
    token: Cow<'a, str>,
    source: Source,
) -> Result<(), Reject> {
    let token = match token {
        Cow::Borrowed(t) => Cow::Borrowed(t.trim()),
        Cow::Owned(t) => Cow::Owned(t.trim().to_owned()),
    };
    if token.is_empty() {
        return Err(Reject::InvalidToken(Invalid::Bad));
    }
    match found {
        Some((seen, _)) if **seen != *token => Err(Reject::BadRequest(
            "more than one credential: send one token, in one place".into(),
        )),
        Some(_) => Ok(()),
        None => {
            *found = Some((token, source));
            Ok(())
        }
    }
}

/// The presented token, if any, from every carrier at once: all `Authorization` and
/// `BKFlow-Token` headers and every `accessToken` query key in any percent-encoding. Two
/// `Authorization` headers, or two carriers holding different tokens, are a malformed request:
/// the guard must never check one credential while the upstream reads another.
pub fn extract(parts: &Parts) -> Result<Option<(Cow<'_, str>, Source)>, Reject> {
    let mut found = None;
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
                offer(&mut found, Cow::Borrowed(token), Source::Authorization)?;
            }
        }
    }
    for value in parts.headers.get_all(&BKFLOW_TOKEN) {
        let token = value
            .to_str()
            .map_err(|_| Reject::InvalidToken(Invalid::Bad))?;
        offer(&mut found, Cow::Borrowed(token), Source::BkflowHeader)?;
    }
    if let Some(q) = parts.uri.query().filter(|q| may_hold_token(q)) {
        for token in query_tokens(q) {
            offer(&mut found, token, Source::Query)?;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn extraction_never_panics_and_never_returns_an_empty_token(
            auth in proptest::option::of("[ -~]{0,60}"),
            bk in proptest::option::of("[ -~]{0,40}"),
            query in "[A-Za-z0-9%=&+._-]{0,60}",
        ) {
            let mut b = http::Request::get(format!("/x?{query}"));
            if let Some(a) = &auth {
                b = b.header("authorization", a.as_str());
            }
            if let Some(t) = &bk {
                b = b.header("bkflow-token", t.as_str());
            }
            if let Ok(req) = b.body(()) {
                if let Ok(Some((token, _))) = extract(&req.into_parts().0) {
                    prop_assert!(!token.is_empty());
                    prop_assert_eq!(token.trim(), &*token);
                }
            }
        }
    }

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

    #[test]
    fn two_different_credentials_are_refused_and_the_same_one_twice_is_not() {
        let p = parts(
            http::Request::get("/x?accessToken=a")
                .header("authorization", "Bearer a")
                .header("bkflow-token", "a"),
        );
        assert_eq!(extract(&p).unwrap().unwrap().0, "a");
        for req in [
            http::Request::get("/x")
                .header("authorization", "Bearer a")
                .header("bkflow-token", "b"),
            http::Request::get("/x?access%54oken=a&accessToken=junk"),
            http::Request::get("/x")
                .header("bkflow-token", "a")
                .header("bkflow-token", "b"),
        ] {
            assert!(matches!(extract(&parts(req)), Err(Reject::BadRequest(_))));
        }
    }

    #[test]
    fn every_spelling_of_the_query_key_is_a_token_key() {
        assert!(is_token_key("accessToken"));
        assert!(is_token_key("access%54oken"));
        assert!(is_token_key("%61ccessToken"));
        assert!(!is_token_key("accessTokens"));
        assert!(!is_token_key("xaccessToken"));
        let p = parts(http::Request::get("/x?%61ccess%54oken=t%2Bk"));
        assert_eq!(
            extract(&p).unwrap(),
            Some((Cow::Owned("t+k".into()), Source::Query))
        );
    }
}
