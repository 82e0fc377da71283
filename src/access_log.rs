//! The access log: one line per request, in the shape tracing's JSON or plain-text formatter
//! gives every other line (the same keys in the same order, so readers of one read both).
//!
//! The running binary installs a sink ([`install`]): each worker thread then formats its lines straight
//! into a buffer of its own, with none of the formatter's per-event machinery, and hands the
//! buffer to the log writer in one piece when the worker is about to park, when it holds 32 KiB
//! or when its oldest line is a second old, and when the thread stops ([`flush_thread`]). Lines
//! are never dropped and never split: a batch is whole lines and reaches the writer as one
//! write. Without a sink (the library inside tests) each line is a `tracing` event as before.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::OnceLock;

/// What a request's line says.
#[derive(Debug)]
pub struct AccessLine<'a> {
    /// Request method.
    pub method: &'a str,
    /// Path as received (no query).
    pub path: &'a str,
    /// Route pattern, or `(unmatched)`, `(issue)`, …
    pub route: &'a str,
    /// Status sent.
    pub status: u16,
    /// Whole microseconds from the first byte of the head to the response head.
    pub duration_us: u64,
    /// `X-Request-Id` of the exchange.
    pub request_id: &'a str,
    /// Client IP, as the connection wrote it once (`ConnInfo::peer_ip`).
    pub peer: &'a str,
    /// The verified app of a token, or the app id an issuing request claimed.
    pub app: &'a str,
    /// Why it was refused, empty when it was not.
    pub reason: &'a str,
    /// Upstream name (proxied routes).
    pub upstream: &'a str,
    /// The target that answered.
    pub upstream_target: &'a str,
    /// The response's `Content-Length`, empty when it had none.
    pub response_bytes: &'a str,
    /// The client's `User-Agent`, empty when it sent none.
    pub user_agent: &'a str,
}

/// The log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object a line (tracing-subscriber's `.json().flatten_event(true)`).
    Json,
    /// tracing-subscriber's default plain text, without colour.
    Text,
}

/// Hands one batch of whole lines to the log writer.
type WriteBatch = Box<dyn Fn(&[u8]) + Send + Sync>;

/// Where batches of lines go: the binary's non-blocking log writer.
struct Sink {
    format: Format,
    write: WriteBatch,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// A batch is handed over at this size.
const BATCH_BYTES: usize = 32 * 1024;
/// …or when its oldest line is this old (a worker that never parks still logs within it).
const BATCH_AGE_MS: u64 = 1000;

struct Batch {
    buf: Vec<u8>,
    /// `recent_millis` when the oldest line in `buf` was added.
    since_ms: u64,
    /// The second the cached date-time prefix is of, and the prefix (`2026-12-02T07:10:00`).
    second: u64,
    prefix: String,
}

thread_local! {
    static BATCH: RefCell<Batch> = const {
        RefCell::new(Batch { buf: Vec::new(), since_ms: 0, second: u64::MAX, prefix: String::new() })
    };
}

/// Makes every later line go to `write` in `format`, batched per thread. The first call wins.
pub fn install(format: Format, write: impl Fn(&[u8]) + Send + Sync + 'static) {
    let _ = SINK.set(Sink {
        format,
        write: Box::new(write),
    });
}

/// Hands this thread's buffered lines to the sink (runtime park and stop hooks call it).
pub fn flush_thread() {
    let Some(sink) = SINK.get() else { return };
    // A thread being torn down may have dropped its buffer already: nothing to hand over then.
    let _ = BATCH.try_with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            hand_over(sink, &mut b);
        }
    });
}

fn hand_over(sink: &Sink, b: &mut Batch) {
    if !b.buf.is_empty() {
        (sink.write)(&b.buf);
        b.buf.clear();
    }
}

/// Writes `line`, if the access log is enabled (`TOLLGATE_LOG` can turn it off).
pub fn emit(line: &AccessLine<'_>) {
    if !tracing::enabled!(target: "tollgate::access", tracing::Level::INFO) {
        return;
    }
    let Some(sink) = SINK.get() else {
        return as_event(line);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let recent = crate::token::recent_millis();
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        if b.buf.is_empty() {
            b.since_ms = recent;
        }
        let b = &mut *b;
        if b.second != now.as_secs() {
            b.second = now.as_secs();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(b.second);
            let mut p = humantime::format_rfc3339_seconds(t).to_string();
            p.pop(); // the `Z`, written after the microseconds
            b.prefix = p;
        }
        let stamp = Stamp {
            prefix: &b.prefix,
            micros: now.subsec_micros(),
        };
        match sink.format {
            Format::Json => json(&mut b.buf, &stamp, line),
            Format::Text => text(&mut b.buf, &stamp, line),
        }
        if b.buf.len() >= BATCH_BYTES || recent.saturating_sub(b.since_ms) >= BATCH_AGE_MS {
            hand_over(sink, b);
        }
    });
}

/// `2026-12-02T07:10:00.123456Z`, as tracing-subscriber writes its timestamps.
struct Stamp<'a> {
    prefix: &'a str,
    micros: u32,
}

impl Stamp<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b'.');
        let mut digits = [b'0'; 6];
        let mut m = self.micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (m % 10) as u8;
            m /= 10;
        }
        out.extend_from_slice(&digits);
        out.push(b'Z');
    }
}

/// `duration_ms` from whole microseconds: `0.975`, `12.0`, as serde_json prints the f64.
fn duration_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn json(out: &mut Vec<u8>, stamp: &Stamp<'_>, l: &AccessLine<'_>) {
    fn string(out: &mut Vec<u8>, key: &str, v: &str) {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        // serde_json's escaping: a `&str` always serialises.
        let _ = serde_json::to_writer(&mut *out, v);
    }
    out.extend_from_slice(b"{\"timestamp\":\"");
    stamp.write(out);
    out.extend_from_slice(b"\",\"level\":\"INFO\"");
    string(out, "method", l.method);
    string(out, "path", l.path);
    string(out, "route", l.route);
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(l.status).as_bytes());
    out.extend_from_slice(b",\"duration_ms\":");
    let _ = serde_json::to_writer(&mut *out, &duration_ms(l.duration_us));
    string(out, "request_id", l.request_id);
    string(out, "peer", l.peer);
    string(out, "app", l.app);
    string(out, "reason", l.reason);
    string(out, "upstream", l.upstream);
    string(out, "upstream_target", l.upstream_target);
    string(out, "response_bytes", l.response_bytes);
    string(out, "user_agent", l.user_agent);
    out.extend_from_slice(b",\"target\":\"tollgate::access\"}\n");
}

fn text(out: &mut Vec<u8>, stamp: &Stamp<'_>, l: &AccessLine<'_>) {
    // tracing's plain fields: `%` values bare, strings in their Debug form.
    stamp.write(out);
    let _ = writeln!(
        out,
        "  INFO tollgate::access: method={} path={:?} route={:?} status={} duration_ms={:?} \
         request_id={:?} peer={} app={:?} reason={:?} upstream={:?} upstream_target={:?} \
         response_bytes={:?} user_agent={:?}",
        l.method,
        l.path,
        l.route,
        l.status,
        duration_ms(l.duration_us),
        l.request_id,
        l.peer,
        l.app,
        l.reason,
        l.upstream,
        l.upstream_target,
        l.response_bytes,
        l.user_agent,
    );
}

/// The line as a `tracing` event, for a process without a sink.
fn as_event(l: &AccessLine<'_>) {
    tracing::info!(
        target: "tollgate::access",
        method = %l.method,
        path = l.path,
        route = l.route,
        status = l.status,
        duration_ms = duration_ms(l.duration_us),
        request_id = l.request_id,
        peer = %l.peer,
        app = l.app,
        reason = l.reason,
        upstream = l.upstream,
        upstream_target = l.upstream_target,
        response_bytes = l.response_bytes,
        user_agent = l.user_agent,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> AccessLine<'static> {
        AccessLine {
            method: "GET",
            path: "/p\"q",
            route: "/p",
            status: 200,
            duration_us: 975,
            request_id: "abc",
            peer: "127.0.0.1",
            app: "",
            reason: "",
            upstream: "api",
            upstream_target: "http://127.0.0.1:1",
            response_bytes: "42",
            user_agent: "probe/1.0\u{1}",
        }
    }

    #[test]
    fn a_json_line_is_one_object_with_the_formatters_keys_in_order() {
        let mut out = Vec::new();
        let stamp = Stamp {
            prefix: "2026-12-02T07:10:00",
            micros: 4321,
        };
        json(&mut out, &stamp, &line());
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "method",
                "path",
                "route",
                "status",
                "duration_ms",
                "request_id",
                "peer",
                "app",
                "reason",
                "upstream",
                "upstream_target",
                "response_bytes",
                "user_agent",
                "target"
            ]
        );
        assert_eq!(v["timestamp"], "2026-12-02T07:10:00.004321Z");
        assert_eq!(v["path"], "/p\"q", "escaped and read back");
        assert_eq!(v["user_agent"], "probe/1.0\u{1}");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 0.975);
        assert_eq!(v["peer"], "127.0.0.1");
    }

    #[test]
    fn a_text_line_quotes_strings_and_ends_the_line() {
        let mut out = Vec::new();
        let stamp = Stamp {
            prefix: "2026-12-02T07:10:00",
            micros: 0,
        };
        text(&mut out, &stamp, &line());
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with(
                "2026-12-02T07:10:00.000000Z  INFO tollgate::access: method=GET path=\"/p\\\"q\" "
            ),
            "{s}"
        );
        assert!(s.ends_with(" user_agent=\"probe/1.0\\u{1}\"\n"), "{s}");
        assert_eq!(s.matches('\n').count(), 1);
    }
}
