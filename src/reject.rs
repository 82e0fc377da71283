//! Every way a request is refused, mapped to status, headers and body in one place.
//!
//! The same value gives the `decision` metric label and the log reason.

use crate::body::{self, Body};
use crate::config::ErrorStyle;
use crate::route::PathError;
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;
use std::borrow::Cow;

pub use crate::metrics::Decision;

/// A refusal an issuing endpoint rendered in its own dialect's envelope (often HTTP 200 with an
/// error code inside), with the reason and decision the access log and metrics record.
#[derive(Debug)]
pub struct Refusal {
    /// Stable reason for logs (`bad_credentials`, `bad_request`, ...).
    pub reason: &'static str,
    /// The auth decision, when it is one.
    pub decision: Option<Decision>,
    /// The answer, as the dialect writes it.
    pub response: Response<Body>,
}

/// A refusal in a dialect's own envelope.
pub fn refused(
    reason: &'static str,
    decision: Option<Decision>,
    response: Response<Body>,
) -> Reject {
    Reject::Refused(Box::new(Refusal {
        reason,
        decision,
        response,
    }))
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a token we issued, tampered, or malformed.
    Bad,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
    /// Issued by a dialect this route does not accept.
    WrongDialect,
    /// Its app is no longer configured, or no longer owns the token's space.
    Withdrawn,
    /// Bound to a client certificate (RFC 8705) this connection did not present.
    WrongCertificate,
}

/// A refusal.
#[derive(Debug)]
pub enum Reject {
    /// The path cannot be normalised safely.
    BadPath(PathError),
    /// Malformed request (reason given).
    BadRequest(Cow<'static, str>),
    /// A head the gateway will not pass on (ambiguous framing, a tunnel request); the
    /// connection is closed.
    BadHead(&'static str),
    /// What the gateway does not implement (a transfer coding other than `chunked`, an
    /// over-long method, `OPTIONS *`); the connection is closed.
    NotImplemented(&'static str),
    /// An absolute-form target whose scheme is not the connection's (RFC 9110 §7.4).
    Misdirected,
    /// An `Expect` other than `100-continue` (RFC 9110 §10.1.1).
    ExpectationFailed,
    /// No route for the path.
    NotFound,
    /// A route matched the path but not the method; the `Allow` value.
    MethodNotAllowed(HeaderValue),
    /// No token presented.
    MissingToken,
    /// The route needs a client certificate and the connection presented none.
    MissingClientCert,
    /// A token that is not accepted.
    InvalidToken(Invalid),
    /// A valid token lacking what the route requires (named).
    Forbidden(String),
    /// Body over the limit.
    PayloadTooLarge,
    /// No upstream target accepted the connection.
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream's TLS handshake failed (which check).
    UpstreamTls(String),
    /// No target of the upstream is in rotation; retry after this many seconds.
    NoHealthyUpstream(u64),
    /// As many upgraded connections are open as `limits.max_connections` allows.
    TooManyTunnels,
    /// The route names a stored credential that does not exist (space, name).
    CredentialMissing(u64, String),
    /// The store could not commit a write; nothing was acknowledged.
    StoreUnavailable,
    /// The route's lookup could not say where the resource lives (fail closed).
    LookupUnavailable,
    /// An external issuer's keys or introspection endpoint could not be reached.
    IssuerUnavailable,
    /// The request target is longer than `limits.max_uri_bytes`.
    UriTooLong,
    /// The request head is bigger than `limits.max_header_bytes`.
    HeadersTooLarge,
    /// The client's body broke its own framing (bad chunk, oversize extension, cut short);
    /// the connection is closed.
    BadBody,
    /// The client stopped sending its body; the connection is closed.
    BodyTimeout,
    /// Too many requests; retry after this many seconds.
    RateLimited(u64),
    /// A route's `rate_limit:` spent: when to retry and the policy (`RateLimit-*` headers).
    RouteLimited(crate::limit::Spent),
    /// An issuing endpoint's refusal, already in its dialect's envelope.
    Refused(Box<Refusal>),
}

impl Reject {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Reject::BadPath(_) | Reject::BadRequest(_) | Reject::BadHead(_) | Reject::BadBody => {
                StatusCode::BAD_REQUEST
            }
            Reject::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Reject::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Reject::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
            Reject::UriTooLong => StatusCode::URI_TOO_LONG,
            Reject::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reject::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Reject::RateLimited(_) | Reject::RouteLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Reject::Refused(r) => r.response.status(),
            Reject::NotFound => StatusCode::NOT_FOUND,
            Reject::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Reject::MissingToken | Reject::MissingClientCert | Reject::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            Reject::Forbidden(_) => StatusCode::FORBIDDEN,
            Reject::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::UpstreamUnavailable
            | Reject::UpstreamTls(_)
            | Reject::CredentialMissing(..) => StatusCode::BAD_GATEWAY,
            Reject::StoreUnavailable
            | Reject::LookupUnavailable
            | Reject::IssuerUnavailable
            | Reject::NoHealthyUpstream(_)
            | Reject::TooManyTunnels => StatusCode::SERVICE_UNAVAILABLE,
            Reject::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Whether the connection closes after it: what the client sends next frames no request.
    pub fn closes_connection(&self) -> bool {
        use Reject::{BadBody, BadHead, BodyTimeout, NotImplemented};
        matches!(self, BadBody | BodyTimeout | BadHead(_) | NotImplemented(_))
    }

    /// The auth decision this refusal is, if any.
    pub fn decision(&self) -> Option<Decision> {
        match self {
            Reject::MissingToken | Reject::MissingClientCert => Some(Decision::Missing),
            Reject::InvalidToken(Invalid::Expired) => Some(Decision::Expired),
            Reject::InvalidToken(Invalid::Revoked) => Some(Decision::Revoked),
            Reject::InvalidToken(_) => Some(Decision::Invalid),
            Reject::Forbidden(_) => Some(Decision::Forbidden),
            Reject::Refused(r) => r.decision,
            _ => None,
        }
    }

    /// Stable short reason for logs (an auth decision's own label where it is one).
    pub fn reason(&self) -> &'static str {
        if let Reject::Refused(r) = self {
            return r.reason;
        }
        if let Some(d) = self.decision() {
            return d.as_str();
        }
        match self {
            Reject::BadPath(_) => "bad_path",
            Reject::BadRequest(_) => "bad_request",
            Reject::BadHead(_) => "bad_head",
            Reject::NotImplemented(_) => "not_implemented",
            Reject::Misdirected => "misdirected",
            Reject::ExpectationFailed => "expectation_failed",
            Reject::NotFound => "no_route",
            Reject::MethodNotAllowed(_) => "method_not_allowed",
            Reject::PayloadTooLarge => "payload_too_large",
            Reject::UpstreamUnavailable => "upstream_unavailable",
            Reject::UpstreamTimeout => "upstream_timeout",
            Reject::UpstreamTls(_) => "upstream_tls",
            Reject::NoHealthyUpstream(_) => "upstream_unhealthy",
            Reject::TooManyTunnels => "too_many_tunnels",
            Reject::CredentialMissing(..) => "credential_missing",
            Reject::StoreUnavailable => "store_unavailable",
            Reject::LookupUnavailable => "lookup_unavailable",
            Reject::IssuerUnavailable => "issuer_unavailable",
            Reject::UriTooLong => "uri_too_long",
            Reject::HeadersTooLarge => "headers_too_large",
            Reject::BadBody => "bad_body",
            Reject::BodyTimeout => "body_timeout",
            Reject::RateLimited(_) | Reject::RouteLimited(_) => "rate_limited",
            // Each has a decision, answered above.
            Reject::MissingToken
            | Reject::MissingClientCert
            | Reject::InvalidToken(_)
            | Reject::Forbidden(_)
            | Reject::Refused(_) => "refused",
        }
    }

    /// What is wrong, for the body.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Reject::BadPath(e) => e.message().into(),
            Reject::BadRequest(m) => m.clone(),
            Reject::BadHead(m) => (*m).into(),
            Reject::NotImplemented(m) => (*m).into(),
            Reject::Misdirected => {
                "the request target's scheme is not this connection's (http or https)".into()
            }
            Reject::ExpectationFailed => "only the expectation 100-continue is supported".into(),
            Reject::NotFound => "no route for path".into(),
            Reject::MethodNotAllowed(_) => "method not allowed on this route".into(),
            Reject::MissingToken => "no access token: send Authorization: Bearer <token>".into(),
            Reject::InvalidToken(Invalid::Bad) => "access token invalid".into(),
            Reject::InvalidToken(Invalid::Expired) => "access token expired".into(),
            Reject::InvalidToken(Invalid::Revoked) => "access token revoked".into(),
            Reject::MissingClientCert => {
                "a client certificate is required: connect with one the gateway trusts".into()
            }
            Reject::InvalidToken(Invalid::WrongCertificate) => {
                "access token bound to another client certificate".into()
            }
            Reject::InvalidToken(Invalid::WrongDialect) => {
                "access token of a dialect this route does not accept".into()
            }
            Reject::Forbidden(what) => format!("access token lacks {what}").into(),
            Reject::PayloadTooLarge => "request body too large".into(),
            Reject::UpstreamUnavailable => "upstream unavailable".into(),
            Reject::UpstreamTimeout => "upstream timed out".into(),
            Reject::UpstreamTls(check) => format!("upstream TLS handshake failed: {check}").into(),
            Reject::NoHealthyUpstream(_) => "no healthy upstream target; try again later".into(),
            Reject::TooManyTunnels => "too many upgraded connections open; try again later".into(),
            Reject::StoreUnavailable => "the token store is unavailable; try again".into(),
            Reject::LookupUnavailable => "the resource lookup is unavailable; try again".into(),
            Reject::IssuerUnavailable => {
                "the token's identity provider cannot be reached; try again".into()
            }
            Reject::UriTooLong => "request target too long".into(),
            Reject::HeadersTooLarge => "request header fields too large".into(),
            Reject::BadBody => "malformed request body framing".into(),
            Reject::BodyTimeout => "request body not received in time".into(),
            Reject::RateLimited(_) => "too many requests; slow down".into(),
            Reject::RouteLimited(s) => format!(
                "too many requests on this route (at most {} per {} s); retry after {} s",
                s.quota, s.window, s.retry_after
            )
            .into(),
            Reject::Refused(r) => r.reason.into(),
            Reject::InvalidToken(Invalid::Withdrawn) => {
                "access token withdrawn: its app is no longer configured for it".into()
            }
            Reject::CredentialMissing(space, name) => {
                format!("the route's upstream credential {name:?} of space {space} is not stored")
                    .into()
            }
        }
    }

    fn www_authenticate(&self) -> Option<String> {
        let realm = "Bearer realm=\"tollgate\"";
        match self {
            Reject::MissingToken => Some(realm.to_owned()),
            Reject::InvalidToken(_) => Some(format!(
                "{realm}, error=\"invalid_token\", error_description=\"{}\"",
                self.message()
            )),
            Reject::Forbidden(what) => Some(format!(
                "{realm}, error=\"insufficient_scope\", error_description=\"access token lacks {}\"",
                what.replace('"', "'")
            )),
            _ => None,
        }
    }

    /// Renders the refusal in the route's error style.
    pub fn into_response(self, style: ErrorStyle) -> Response<Body> {
        if let Reject::Refused(r) = self {
            return r.response;
        }
        let status = self.status();
        let msg = self.message();
        let code = status.as_u16();
        let body = match style {
            ErrorStyle::Oauth => json!({ "statusCode": code, "errMsg": msg }),
            ErrorStyle::Hosecloud => json!({ "code": code.to_string(), "msg": msg, "data": null }),
            ErrorStyle::Feishu => {
                let feishu = match &self {
                    Reject::MissingToken => 99991661,
                    Reject::InvalidToken(_) => 99991664,
                    Reject::Forbidden(_) => 99991672,
                    // Feishu's "request trigger frequency limit".
                    Reject::RateLimited(_) | Reject::RouteLimited(_) => 99991400,
                    _ => u32::from(code),
                };
                json!({ "code": feishu, "msg": msg })
            }
            ErrorStyle::Bkflow => {
                json!({ "result": false, "code": code, "message": msg, "data": null })
            }
        };
        let mut res = body::json(status, &body);
        match &self {
            Reject::StoreUnavailable
            | Reject::LookupUnavailable
            | Reject::IssuerUnavailable
            | Reject::TooManyTunnels => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Reject::MethodNotAllowed(allow) => {
                res.headers_mut().insert(header::ALLOW, allow.clone());
            }
            Reject::RateLimited(secs) | Reject::NoHealthyUpstream(secs) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Reject::RouteLimited(spent) => spent.write_headers(res.headers_mut()),
            // The rest of what this client sends cannot be trusted to frame a next request.
            _ if self.closes_connection() => {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        if let Some(v) = self
            .www_authenticate()
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        res
    }
}

#[cfg(test)]
#[path = "reject_tests.rs"]
mod tests;
