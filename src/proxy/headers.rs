//! Header rewriting on the way to the upstream: hop-by-hop fields and every field named in
//! `Connection` dropped, forged identity headers deleted before ours are set, the presented
//! credential removed, `X-Forwarded-*` and `X-Request-Id` set.

use crate::config::Origin;
use crate::guard::bearer::{is_token_key, BKFLOW_TOKEN};
use crate::guard::Permit;
use crate::ident::folds_to;
use crate::state::exchange::Exchange;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;

/// `X-Tollgate-App`.
pub static X_TOLLGATE_APP: HeaderName = HeaderName::from_static("x-tollgate-app");
/// `X-Tollgate-Scope`.
pub static X_TOLLGATE_SCOPE: HeaderName = HeaderName::from_static("x-tollgate-scope");
/// `X-Tollgate-Space`.
pub static X_TOLLGATE_SPACE: HeaderName = HeaderName::from_static("x-tollgate-space");
/// `X-Tollgate-User`.
pub static X_TOLLGATE_USER: HeaderName = HeaderName::from_static("x-tollgate-user");
/// `X-Tollgate-Dialect`.
pub static X_TOLLGATE_DIALECT: HeaderName = HeaderName::from_static("x-tollgate-dialect");
/// `X-Tollgate-Tenant` (feishu tenant tokens).
pub static X_TOLLGATE_TENANT: HeaderName = HeaderName::from_static("x-tollgate-tenant");
/// The verified client certificate: subject, SANs, SHA-256 fingerprint.
pub static X_TOLLGATE_CLIENT_CERT: [HeaderName; 3] = [
    HeaderName::from_static("x-tollgate-client-cert-subject"),
    HeaderName::from_static("x-tollgate-client-cert-san"),
    HeaderName::from_static("x-tollgate-client-cert-fingerprint"),
];
/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop fields (RFC 9110 §7.6.1, plus the legacy `proxy-connection` and `keep-alive`),
/// and `Expect`, which the gateway answers itself (`crate::request_head`).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::EXPECT,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop fields, including every field the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the (few) fields finds none in the usual request: nothing to remove.
    if !headers.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        // `close` and `keep-alive` name nothing beyond the fixed list, so the usual case allocates nothing.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| {
                !n.eq_ignore_ascii_case("close")
                    && !HOP_BY_HOP
                        .iter()
                        .any(|h| n.eq_ignore_ascii_case(h.as_str()))
            })
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    for n in &HOP_BY_HOP {
        headers.remove(n);
    }
}

/// Headers an upstream framework may take as the client's address, as a routing or method
/// override: never forwarded from a client (SPEC §4), under any `_` spelling.
const UNTRUSTED: [&str; 13] = [
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "client-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "x-forwarded",
];

/// `X-Forwarded-*` fields other than the three tollgate sets (`-Prefix`, `-Port`, `-Server`,
/// `-Ssl`…: Spring, Flask's ProxyFix and others rebuild URLs or trust from them).
fn foreign_forwarded(name: &str) -> bool {
    let folded = |p: &str| name.len() > p.len() && folds_to(&name[..p.len()], p);
    folded("x-forwarded-") && !OURS[..3].iter().any(|o| folds_to(name, o))
}

/// Names of the headers tollgate sets itself (besides `X-Tollgate-*`) and the credentials it
/// reads or sets: any spelling of them with `_` for `-` is forged (the exact names are handled
/// where they are set or removed).
const OURS: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "x-bkapi-authorization",
    "bkflow-token",
];

/// True for a name an upstream may read as one of ours: many frameworks (CGI, WSGI, PHP,
/// Rack) fold `_` into `-`, so `X_Tollgate_App` is forged identity too.
fn is_forged(name: &str) -> bool {
    const PREFIX: &str = "x-tollgate-";
    let b = name.as_bytes();
    let identity = b.len() >= PREFIX.len() && folds_to(&name[..PREFIX.len()], PREFIX);
    // The exact `x-request-id` is the client's own, kept; only a spelling of it is forged.
    identity || (name.contains('_') && OURS.iter().any(|o| folds_to(name, o)))
}

/// Deletes every field an upstream could read as one tollgate sets (its own and those a
/// `claims_to_headers` mapping fills, under any `_` spelling) or as an address, routing or
/// method override ([`UNTRUSTED`]), and with `allow_underscores` false (the default, as nginx
/// does) every name containing `_`.
fn strip_forged(headers: &mut HeaderMap, allow_underscores: bool, claim_headers: &[HeaderName]) {
    let drop = |k: &HeaderName| {
        let n = k.as_str();
        (!allow_underscores && n.contains('_'))
            || is_forged(n)
            || UNTRUSTED.iter().any(|u| folds_to(n, u))
            || foreign_forwarded(n)
            || claim_headers.iter().any(|c| folds_to(n, c.as_str()))
    };
    if headers.keys().any(drop) {
        let names: Vec<HeaderName> = headers.keys().filter(|k| drop(k)).cloned().collect();
        for n in names {
            headers.remove(n);
        }
    }
}

/// Rewrites the request head for the upstream.
pub fn prepare(parts: &mut Parts, ex: Exchange<'_>, permit: &Permit) {
    let Exchange {
        route,
        rt,
        conn,
        request_id,
        ..
    } = ex;
    let original_host = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .or_else(|| parts.headers.get(header::HOST).cloned());
    let h = &mut parts.headers;
    strip_hop_by_hop(h);
    strip_forged(h, rt.config.underscore_headers, &rt.claim_headers);
    if permit.principal().is_some() && !route.config.forward_token {
        // Every carrier goes, not only the one the token came from: the upstream must not
        // read a second credential the guard never checked (the query is cleaned by dispatch).
        h.remove(header::AUTHORIZATION);
        h.remove(&BKFLOW_TOKEN);
    }
    // Room for what is added below in one growth of the map, not one per insert.
    h.reserve(12);
    if let Some(p) = permit.principal() {
        if let Some(v) = &p.identity.app {
            h.insert(X_TOLLGATE_APP.clone(), v.clone());
        }
        if let Some(v) = &p.identity.dialect {
            h.insert(X_TOLLGATE_DIALECT.clone(), v.clone());
        }
        if let Some(v) = &p.identity.scope {
            h.insert(X_TOLLGATE_SCOPE.clone(), v.clone());
        }
        if let Some(v) = &p.identity.space {
            h.insert(X_TOLLGATE_SPACE.clone(), v.clone());
        }
        if let Some(v) = &p.identity.user {
            h.insert(X_TOLLGATE_USER.clone(), v.clone());
        }
        if let Some(v) = &p.identity.tenant {
            h.insert(X_TOLLGATE_TENANT.clone(), v.clone());
        }
        if let Origin::Issuer(i) = p.origin {
            let issuer = rt
                .issuers
                .get(i as usize)
                .map(|s| &s.cfg.claims_to_headers[..]);
            let mappings = issuer
                .unwrap_or(&[])
                .iter()
                .chain(&route.config.claims_to_headers);
            for (claim, name) in mappings {
                if let Some((_, v)) = p.claims.iter().find(|(c, _)| **c == **claim) {
                    h.insert(name.clone(), v.clone());
                }
            }
        }
    }
    if let Some(cert) = &conn.client_cert {
        for (name, value) in X_TOLLGATE_CLIENT_CERT.iter().zip(&cert.headers) {
            if let Some(v) = value {
                h.insert(name.clone(), v.clone());
            }
        }
    }
    // Earlier hops are kept only from a trusted proxy; anyone else's are replaced by the client
    // address (the connection's own value, shared, no allocation).
    let prior = conn
        .trusted
        .then(|| joined_values(h, &X_FORWARDED_FOR))
        .flatten();
    let xff = match prior.as_deref() {
        Some(prior) => {
            let ip = conn.peer_ip.to_str().unwrap_or("");
            let joined = format!("{prior}, {ip}");
            // From the String's own buffer: one allocation, no copy.
            HeaderValue::from_maybe_shared(bytes::Bytes::from(joined)).ok()
        }
        None => Some(conn.peer_ip.clone()),
    };
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
    // A trusted proxy (a TLS-terminating balancer) says how the client came: kept when sane.
    let relayed = |name: &HeaderName| {
        if !conn.trusted {
            return None;
        }
        let mut all = h.get_all(name).iter();
        match (all.next(), all.next()) {
            (Some(v), None) => Some(v.clone()),
            _ => None,
        }
    };
    let proto = relayed(&X_FORWARDED_PROTO)
        .filter(|v| v.as_bytes() == b"https" || v.as_bytes() == b"http")
        .unwrap_or(HeaderValue::from_static(if conn.tls {
            "https"
        } else {
            "http"
        }));
    let host = relayed(&X_FORWARDED_HOST)
        .filter(|v| v.to_str().is_ok_and(crate::ident::valid_host))
        .or(original_host);
    h.insert(X_FORWARDED_PROTO.clone(), proto);
    match host {
        Some(host) => h.insert(X_FORWARDED_HOST.clone(), host),
        None => h.remove(&X_FORWARDED_HOST),
    };
    h.insert(X_REQUEST_ID.clone(), request_id.clone());
}

/// Every field line of `name` joined with `, ` (a list header sent as several lines is one list).
fn joined_values(h: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out: Option<String> = None;
    for v in h.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
        match &mut out {
            Some(s) => {
                s.push_str(", ");
                s.push_str(v);
            }
            None => out = Some(v.to_owned()),
        }
    }
    out
}

/// The query without any `accessToken` key, however it is percent-encoded.
pub fn query_without_token(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| !is_token_key(kv.split_once('=').map_or(*kv, |(k, _)| k)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_named_in_connection_are_removed_with_the_standard_ones() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn forged_identity_headers_are_deleted_under_any_spelling() {
        let mut h = HeaderMap::new();
        for n in [
            "x-tollgate-app",
            "x-tollgate-whatever",
            "x_tollgate_scope",
            "x-tollgate_user",
            "x_forwarded_for",
            "x_request_id",
        ] {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static("x"),
            );
        }
        h.insert("x-other_thing", HeaderValue::from_static("1"));
        h.insert("x-request-id", HeaderValue::from_static("mine"));
        h.insert("x-other", HeaderValue::from_static("1"));
        h.insert("x_user_email", HeaderValue::from_static("forged"));
        h.insert("x-user-email", HeaderValue::from_static("forged"));
        let claims = [HeaderName::from_static("x-user-email")];
        let mut allowed = h.clone();
        strip_forged(&mut h, false, &claims);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-other", "x-request-id"]);
        strip_forged(&mut allowed, true, &claims);
        assert!(
            allowed.contains_key("x-other_thing"),
            "allow keeps other underscore names"
        );
        assert!(
            !allowed.contains_key("x_user_email") && !allowed.contains_key("x-user-email"),
            "a header a claim fills is deleted under any spelling"
        );
        assert!(!allowed.contains_key("x_request_id") && !allowed.contains_key("x_tollgate_scope"));
    }

    #[test]
    fn the_access_token_parameter_is_dropped_from_the_query() {
        assert_eq!(query_without_token("a=1&accessToken=xyz&b=2"), "a=1&b=2");
        assert_eq!(query_without_token("accessToken=xyz"), "");
        assert_eq!(
            query_without_token("access%54oken=a&b=1&accessToken"),
            "b=1"
        );
    }
}
