//! An external token's claims → the principal it stands for: the app id and scopes where the
//! issuer's `claims:` says, and the claims a `claims_to_headers` mapping forwards, sanitised.

use crate::config::IssuerConfig;
use crate::principal::Principal;
use crate::reject::Invalid;
use http::HeaderValue;
use serde_json::{Map, Value};

/// The longest claim value forwarded in a header; a longer one is left out, never cut.
pub const MAX_HEADER_VALUE: usize = 1024;

/// The first of `names` that is a non-empty string claim.
fn first_string<'a>(claims: &'a Map<String, Value>, names: &[String]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| claims.get(n)?.as_str().filter(|s| !s.is_empty()))
}

/// The scopes: the first of `names` present, a space-separated string or an array of strings.
fn scopes(claims: &Map<String, Value>, names: &[String]) -> Box<[Box<str>]> {
    let Some(v) = names.iter().find_map(|n| claims.get(n)) else {
        return Box::default();
    };
    match v {
        Value::String(s) => s.split_whitespace().map(Into::into).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .map(Into::into)
            .collect(),
        _ => Box::default(),
    }
}

/// A claim as a header value: strings as they are, numbers and booleans written out, arrays
/// of those joined with `,`; `None` for objects, control characters (CR, LF, NUL, …) or a
/// value over [`MAX_HEADER_VALUE`] bytes.
pub fn header_value(v: &Value) -> Option<HeaderValue> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let text = match v {
        Value::Array(a) => a.iter().map(scalar).collect::<Option<Vec<_>>>()?.join(","),
        v => scalar(v)?,
    };
    if text.len() > MAX_HEADER_VALUE || text.chars().any(char::is_control) {
        return None;
    }
    HeaderValue::from_str(&text).ok()
}

/// The principal of issuer `index`'s token with `claims`, cached until `until` (seconds).
/// `forwarded` names every claim a mapping may forward (the issuer's and the routes').
pub fn principal(
    cfg: &IssuerConfig,
    index: u16,
    claims: &Map<String, Value>,
    until: u64,
    forwarded: &[String],
) -> Result<Principal, Invalid> {
    // The app id reaches the upstream in X-Tollgate-App: a sane header value or no token.
    let app = first_string(claims, &cfg.app_claims)
        .filter(|a| a.len() <= 256 && !a.chars().any(char::is_control))
        .ok_or(Invalid::Bad)?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(64)
        .collect::<String>();
    let kept: Box<[(Box<str>, HeaderValue)]> = forwarded
        .iter()
        .filter_map(|n| Some((n.as_str().into(), header_value(claims.get(n)?)?)))
        .collect();
    Ok(
        Principal::external(app.into(), index, &cfg.name, until, jti.into())
            .with_scopes(scopes(claims, &cfg.scope_claims))
            .with_claims(kept)
            .with_binding(binding(claims)?),
    )
}

/// A sender-constrained token's binding (`cnf`, RFC 7800): a certificate thumbprint
/// (`x5t#S256`, RFC 8705) binds it to that certificate; any other confirmation (a DPoP key,
/// `jkt`, which this gateway does not verify yet) or one it cannot read makes the token
/// unusable here — a bound token is never accepted as a plain bearer token.
fn binding(claims: &Map<String, Value>) -> Result<Option<[u8; 32]>, Invalid> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let only_x5t = cnf.as_object().is_some_and(|o| o.len() == 1);
    match crate::tls::cert_info::thumbprint(cnf.get("x5t#S256")) {
        Some(t) if only_x5t => Ok(Some(t)),
        _ => Err(Invalid::Bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bound_token_keeps_its_binding_and_an_unverifiable_one_is_refused() {
        let claims = |cnf: Value| json!({ "cnf": cnf }).as_object().unwrap().clone();
        let x5t = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";
        assert!(binding(&claims(json!({ "x5t#S256": x5t })))
            .unwrap()
            .is_some());
        assert!(
            binding(&claims(json!({ "jkt": x5t }))).is_err(),
            "DPoP is not verified here"
        );
        assert!(binding(&claims(json!({ "x5t#S256": "short" }))).is_err());
        assert!(binding(&claims(json!("x"))).is_err());
        assert_eq!(binding(&Map::new()), Ok(None));
    }

    #[test]
    fn header_values_never_carry_line_breaks_or_run_long() {
        assert_eq!(header_value(&json!("a@b.c")).unwrap(), "a@b.c");
        assert_eq!(header_value(&json!(["x", 1, true])).unwrap(), "x,1,true");
        assert!(header_value(&json!("a\r\nX-Tollgate-App: root")).is_none());
        assert!(header_value(&json!("a\u{0}b")).is_none());
        assert!(header_value(&json!("x".repeat(MAX_HEADER_VALUE + 1))).is_none());
        assert!(header_value(&json!({"nested": 1})).is_none());
    }

    #[test]
    fn scopes_come_from_a_string_or_an_array() {
        let names = vec!["scope".to_string(), "scp".to_string()];
        let c = json!({"scp": ["read", "write"]});
        let got = scopes(c.as_object().unwrap(), &names);
        assert_eq!(
            got.iter().map(|s| &**s).collect::<Vec<_>>(),
            ["read", "write"]
        );
        let c = json!({"scope": "a  b"});
        let got = scopes(c.as_object().unwrap(), &names);
        assert_eq!(got.iter().map(|s| &**s).collect::<Vec<_>>(), ["a", "b"]);
    }
}
