//! The bkflow dialect (seeds 000, 004): BlueKing API-gateway authentication in front of the
//! BKFlow `apigw` views. This module holds what every bkflow endpoint shares: app and user
//! credentials (`X-Bkapi-Authorization`, else query and JSON body), the gateway error
//! envelope, the space ownership check, trace ids, and Python-compatible JSON and times.

pub mod credential;
pub mod token;

use crate::body::{self, Body};
use crate::config::{App, TimeFormat};
use crate::issue::core::{authenticate, AuthError};
use crate::reject::{refused, Decision, Reject};
use crate::state::Runtime;
use crate::token::opaque;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::sync::Arc;

static TRACE_HEADER: HeaderName = HeaderName::from_static("bkflow-engine-trace-id");

/// The incoming `traceparent`, or a fresh uuid4-style hex id.
pub fn trace_id(parts: &http::request::Parts) -> String {
    parts
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(opaque::random_hex128, str::to_owned)
}

/// A view result: the object as is, plus `trace_id`, and the trace header.
pub fn view(status: StatusCode, mut obj: Map<String, Value>, trace: &str) -> Response<Body> {
    obj.insert("trace_id".into(), trace.into());
    let mut res = body::json(status, &Value::Object(obj));
    if let Ok(v) = HeaderValue::from_str(trace) {
        res.headers_mut().insert(TRACE_HEADER.clone(), v);
    }
    res
}

/// `{result: false, code, message, data: null}` on HTTP 200, as `return_json_response` renders exceptions.
pub fn view_error(code: u16, message: &str, trace: &str) -> Reject {
    let Value::Object(obj) =
        json!({ "result": false, "message": message, "code": code, "data": null })
    else {
        unreachable!("a json! object literal")
    };
    refused("bad_request", None, view(StatusCode::OK, obj, trace))
}

/// The API gateway's error envelope: exactly `{code, code_name, message, result, data}`.
pub fn gateway_error(
    status: StatusCode,
    code: u32,
    code_name: &str,
    message: &str,
) -> Response<Body> {
    let mut res = body::json(
        status,
        &json!({ "code": code, "code_name": code_name, "message": message, "result": false, "data": null }),
    );
    let h = res.headers_mut();
    h.insert("x-bkapi-error-code", HeaderValue::from(code));
    if let Ok(v) = HeaderValue::from_str(message) {
        h.insert("x-bkapi-error-message", v);
    }
    res
}

/// HTTP 400, 1640001 INVALID_ARGS with `[reason="..."]`.
pub fn invalid_args(reason: &str) -> Reject {
    refused("bad_request", None, invalid_args_response(reason))
}

/// The same envelope for app credentials the gateway did not accept.
fn bad_credentials(reason: &str) -> Reject {
    refused(
        "bad_credentials",
        Some(Decision::Invalid),
        invalid_args_response(reason),
    )
}

fn invalid_args_response(reason: &str) -> Response<Body> {
    gateway_error(
        StatusCode::BAD_REQUEST,
        1_640_001,
        "INVALID_ARGS",
        &format!("Parameters error [reason=\"{reason}\"]"),
    )
}

/// What the caller presented about itself.
#[derive(Debug, Default)]
pub struct Credentials {
    /// `bk_app_code` / `app_code`.
    pub app_code: Option<String>,
    /// `bk_app_secret` / `app_secret`.
    pub app_secret: Option<String>,
    /// `bk_username`.
    pub username: Option<String>,
}

fn take_keys(c: &mut Credentials, get: impl Fn(&str) -> Option<String>) {
    let first = |keys: &[&str]| keys.iter().find_map(|k| get(k).filter(|v| !v.is_empty()));
    if let Some(v) = first(&["bk_app_code", "app_code"]) {
        c.app_code = Some(v);
    }
    if let Some(v) = first(&["bk_app_secret", "app_secret"]) {
        c.app_secret = Some(v);
    }
    if let Some(v) = first(&["bk_username"]) {
        c.username = Some(v);
    }
}

/// Credentials from `X-Bkapi-Authorization` (alone, when present), else the query then the JSON body.
pub fn credentials(parts: &http::request::Parts, body: Option<&Value>) -> Credentials {
    let mut c = Credentials::default();
    if let Some(h) = parts
        .headers
        .get(&crate::store::credentials::X_BKAPI_AUTHORIZATION)
    {
        // A header that is not a JSON object makes an anonymous caller, as the gateway does.
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(h.as_bytes()) {
            take_keys(&mut c, |k| {
                m.get(k).and_then(Value::as_str).map(str::to_owned)
            });
        }
        return c;
    }
    if let Some(q) = parts.uri.query() {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        take_keys(&mut c, |k| {
            pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        });
    }
    if let Some(Value::Object(m)) = body {
        take_keys(&mut c, |k| {
            m.get(k).and_then(Value::as_str).map(str::to_owned)
        });
    }
    c
}

/// Authenticates the app the way the API gateway does (HTTP 400 envelopes on failure).
pub async fn authenticate_app(
    ctx: &crate::issue::Ctx<'_>,
    c: &Credentials,
) -> Result<Arc<App>, Reject> {
    let Some(code) = c.app_code.as_deref() else {
        return Err(bad_credentials("app code cannot be empty"));
    };
    if code.len() > 32
        || code
            .chars()
            .any(|ch| ch.is_whitespace() || ch == '<' || ch == '>')
    {
        return Err(bad_credentials("app code is invalid"));
    }
    let Some(secret) = c.app_secret.as_deref() else {
        return Err(bad_credentials(
            "please provide bk_app_secret or bk_signature to verify app",
        ));
    };
    match authenticate(ctx, code, secret).await {
        Ok(app) => Ok(app),
        Err(AuthError::RateLimited(secs)) => Err(Reject::RateLimited(secs)),
        Err(AuthError::UnknownApp) => Err(bad_credentials("app not found")),
        Err(AuthError::BadSecret) => {
            Err(bad_credentials("bk_app_code or bk_app_secret is incorrect"))
        }
        Err(AuthError::Internal) => Err(refused(
            "internal",
            None,
            gateway_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                1_650_001,
                "INTERNAL_ERROR",
                "internal error",
            ),
        )),
    }
}

/// A call to `.../space/{space_id}/...` whose app the gateway has authenticated.
#[derive(Debug)]
pub struct SpaceCall {
    /// The space in the path.
    pub space: u64,
    /// Trace id of the answer.
    pub trace: String,
    /// The raw body.
    pub bytes: bytes::Bytes,
    /// The body as JSON, when it is.
    pub doc: Option<Value>,
    /// What the caller presented.
    pub creds: Credentials,
    /// The authenticated app.
    pub app: Arc<App>,
}

/// Reads the body and authenticates the app (the gateway's refusal otherwise).
pub async fn open_call(call: crate::issue::Call<'_>) -> Result<SpaceCall, Reject> {
    let (rt, call_ctx) = (call.ctx.rt, call.ctx);
    let space = space_of(call.path).ok_or(Reject::NotFound)?;
    let (parts, body) = call.req.into_parts();
    let trace = trace_id(&parts);
    let bytes = crate::issue::read_body(&parts, body, &rt.config.limits).await?;
    let doc: Option<Value> = serde_json::from_slice(&bytes).ok();
    let creds = credentials(&parts, doc.as_ref());
    let app = authenticate_app(call_ctx, &creds).await?;
    Ok(SpaceCall {
        space,
        trace,
        bytes,
        doc,
        creds,
        app,
    })
}

/// The backend's space check: HTTP 403 with no `code` key when the app does not own the space.
pub fn check_space(rt: &Runtime, app: &App, space: u64) -> Result<(), Reject> {
    if app.space_id == Some(space) {
        return Ok(());
    }
    let exists = rt.apps.values().any(|a| a.space_id == Some(space));
    let message = if exists {
        format!("当前应用无权操作此空间，app={}", app.id)
    } else {
        format!("空间不存在，space_id={space}")
    };
    Err(refused(
        "forbidden",
        Some(Decision::Forbidden),
        body::json(
            StatusCode::FORBIDDEN,
            &json!({ "result": false, "message": message }),
        ),
    ))
}

/// The `{space_id}` of `{prefix}/space/{space_id}/{action}/`, read from the end (a prefix may
/// hold a `space` segment of its own).
pub fn space_of(path: &str) -> Option<u64> {
    let mut segs = path.trim_end_matches('/').rsplit('/');
    let _action = segs.next()?;
    let id = segs.next()?;
    (segs.next()? == "space").then_some(())?;
    id.parse().ok()
}

/// `json.dumps(obj)` as Python writes it: `", "` / `": "` separators, non-ASCII escaped.
pub fn py_json_dumps(fields: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&ascii_json(k));
        out.push_str(": ");
        out.push_str(&ascii_json(v));
    }
    out.push('}');
    out
}

fn ascii_json(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string serializes");
    let mut out = String::with_capacity(quoted.len());
    for ch in quoted.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for u in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// `expired_time` as configured: the seed's `YYYY-MM-DD HH:MM:SS` in the configured zone, or
/// ISO-8601 UTC with milliseconds and `Z` (dropped when zero, as Django writes it).
pub fn format_time(ms: u64, format: TimeFormat, utc_offset: i32) -> String {
    match format {
        TimeFormat::Seed => {
            let secs = (ms / 1000) as i64 + i64::from(utc_offset);
            let (y, mo, d, h, mi, s) = civil(secs);
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
        }
        TimeFormat::Iso8601 => {
            let (y, mo, d, h, mi, s) = civil((ms / 1000) as i64);
            match ms % 1000 {
                0 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
                frac => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z"),
            }
        }
    }
}

/// Seconds since the epoch → (year, month, day, hour, minute, second), proleptic Gregorian.
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_both_formats() {
        // 2026-01-22T04:16:50.123Z
        let ms = 1_769_055_410_123;
        assert_eq!(
            format_time(ms, TimeFormat::Iso8601, 0),
            "2026-01-22T04:16:50.123Z"
        );
        assert_eq!(
            format_time(ms - 123, TimeFormat::Iso8601, 0),
            "2026-01-22T04:16:50Z"
        );
        assert_eq!(format_time(ms, TimeFormat::Seed, 0), "2026-01-22 04:16:50");
        assert_eq!(
            format_time(ms, TimeFormat::Seed, 8 * 3600),
            "2026-01-22 12:16:50"
        );
        assert_eq!(
            format_time(951_782_400_000, TimeFormat::Seed, 0),
            "2000-02-29 00:00:00"
        );
    }

    #[test]
    fn python_json_dumps_escapes_like_python() {
        let s = py_json_dumps(&[("resource_type", "\u{201c}FOO\u{201d} 不是合法选项。".into())]);
        assert_eq!(
            s,
            r#"{"resource_type": "\u201cFOO\u201d \u4e0d\u662f\u5408\u6cd5\u9009\u9879\u3002"}"#
        );
    }

    #[test]
    fn the_space_id_is_read_from_the_path() {
        assert_eq!(space_of("/bkflow/space/3/apply_token/"), Some(3));
        assert_eq!(space_of("/space/x/apply_token/"), None);
        assert_eq!(space_of("/space/9/bkflow/space/3/apply_token/"), Some(3));
    }
}
