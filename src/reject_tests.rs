//! Unit tests of `reject`: headers and bodies of refusals.

use super::*;

#[test]
fn a_missing_token_gets_the_realm_and_each_style_its_body() {
    let res = Reject::MissingToken.into_response(ErrorStyle::Oauth);
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"tollgate\""
    );
    let res = Reject::InvalidToken(Invalid::Expired).into_response(ErrorStyle::Feishu);
    assert!(res.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    let res = Reject::Forbidden("oauth scope admin".into()).into_response(ErrorStyle::Bkflow);
    assert_eq!(res.status(), 403);
    assert!(res.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
}
