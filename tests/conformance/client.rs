//! The client side of a case: raw bytes out, the gateway's answers read back one by one (by
//! their own framing), and whether the gateway closed the connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the client saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub statuses: Vec<u16>,
    pub bodies: Vec<Vec<u8>>,
    pub closed: bool,
    pub raw: Vec<u8>,
    /// Answers that came from the recording upstream (its `x-recorder` header).
    pub from_upstream: usize,
    /// The last answer's head came, then the connection closed before its body was whole.
    pub cut: bool,
    /// An answer whose framing this strict reader refused (a `Content-Length` that is not one
    /// number, or beside `Transfer-Encoding`): never what a case expects.
    pub malformed: bool,
}

impl Outcome {
    /// `"400 close"`, `"200 200"`: the form of an `expect:` line.
    pub fn summary(&self) -> String {
        let mut words: Vec<String> = self.statuses.iter().map(u16::to_string).collect();
        if self.cut {
            words.push("cut".into());
        }
        if self.malformed {
            words.push("MALFORMED-FRAMING".into());
        }
        if self.closed {
            words.push("close".into());
        }
        words.join(" ")
    }
}

/// For each request line in `sent`, whether it is a HEAD (its answer has no body).
fn heads(sent: &[u8]) -> Vec<bool> {
    sent.split(|&b| b == b'\n')
        .filter(|l| {
            l.windows(6).any(|w| w == b" HTTP/") && l.first().is_some_and(u8::is_ascii_uppercase)
        })
        .map(|l| l.starts_with(b"HEAD "))
        .collect()
}

/// One answer parsed off `buf` at `at`.
struct Answer {
    end: usize,
    status: u16,
    body: Vec<u8>,
    from_upstream: bool,
    malformed: bool,
}

/// The answer at `at` in `buf`, or `None` while it is incomplete.
fn parse_one(buf: &[u8], at: usize, head_request: bool, closed: bool) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut headers);
    let n = match res.parse(&buf[at..]) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let status = res.code?;
    let start = at + n;
    let header = |name: &str| {
        res.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let from_upstream = header("x-recorder").is_some();
    let lengths: Vec<&[u8]> = res
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value)
        .collect();
    let chunked = header("transfer-encoding").is_some();
    let malformed = lengths.len() > 1
        || (chunked && !lengths.is_empty())
        || lengths
            .iter()
            .any(|v| v.is_empty() || !v.iter().all(u8::is_ascii_digit));
    let answer = |end: usize, body: Vec<u8>| Answer {
        end,
        status,
        body,
        from_upstream,
        malformed,
    };
    if head_request || status < 200 || status == 204 || status == 304 {
        return Some(answer(start, Vec::new()));
    }
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return (buf.len() >= start + len)
            .then(|| answer(start + len, buf[start..start + len].to_vec()));
    }
    if header("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        let mut body = Vec::new();
        let mut i = start;
        loop {
            let line = buf[i..].windows(2).position(|w| w == b"\r\n")? + i;
            let size = usize::from_str_radix(
                std::str::from_utf8(&buf[i..line])
                    .ok()?
                    .split(';')
                    .next()?
                    .trim(),
                16,
            )
            .ok()?;
            i = line + 2;
            if size == 0 {
                let end = buf[i..].windows(2).position(|w| w == b"\r\n")? + i;
                return Some(answer(end + 2, body));
            }
            if buf.len() < i + size + 2 {
                return None;
            }
            body.extend_from_slice(&buf[i..i + size]);
            i += size + 2;
        }
    }
    // Delimited by the close.
    closed.then(|| answer(buf.len(), buf[start..].to_vec()))
}

/// Sends `bytes` and reads answers until the gateway closes, or until `expected` final
/// answers were read and nothing more came for 150 ms, or 5 s pass.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], expected: usize) -> Outcome {
    talk(addr, bytes, expected, false).await
}

/// Sends `bytes`, shuts the sending side (the gateway sees the end at once, RFC 9112 §9.6) and
/// reads every answer until the gateway closes (or 5 s pass).
pub async fn exchange_to_end(addr: SocketAddr, bytes: &[u8]) -> Outcome {
    talk(addr, bytes, usize::MAX, true).await
}

async fn talk(addr: SocketAddr, bytes: &[u8], expected: usize, shut: bool) -> Outcome {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A gateway that closes early (a refused head) may reset the rest of the write.
    let _ = s.write_all(bytes).await;
    if shut {
        let _ = s.shutdown().await;
    }
    let heads = heads(bytes);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Outcome::default();
    let mut at = 0;
    let mut finals = 0;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let quiet = if finals >= expected {
            Duration::from_millis(150)
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        let mut quiet_passed = false;
        match tokio::time::timeout(quiet, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => out.closed = true,
            Ok(Ok(n)) => out.raw.extend_from_slice(&chunk[..n]),
            Err(_) => quiet_passed = true,
        }
        while let Some(a) = parse_one(
            &out.raw,
            at,
            heads.get(finals).copied().unwrap_or(false),
            out.closed,
        ) {
            let status = a.status;
            at = a.end;
            out.statuses.push(status);
            out.bodies.push(a.body);
            out.from_upstream += usize::from(a.from_upstream);
            out.malformed |= a.malformed;
            if status >= 200 || status == 101 {
                finals += 1;
            }
            if status == 101 {
                break;
            }
        }
        if out.closed {
            // A head whose body never ended: the answer was cut off.
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut res = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(_)) = res.parse(&out.raw[at..]) {
                out.statuses.extend(res.code);
                out.cut = true;
            }
        }
        if out.closed || Instant::now() >= deadline || (quiet_passed && finals >= expected) {
            return out;
        }
    }
}
