//! The two upstreams of the corpus, raw TCP so that nothing is hidden by a server library:
//! the recorder keeps every request's exact bytes (request side); the responder answers with a
//! case's bytes and says on which connection each request came (response side). Both find
//! where a request ends with `httparse` and the framing headers — test code reading the
//! gateway's own, well-formed output.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How a request's body is framed.
enum Framing {
    Length(usize),
    Chunked,
}

/// One request read off `buf` (refilled from `tcp`): its exact bytes and method, or what was
/// there when the peer closed (`Seen::Cut`) or sent what is no request (`Seen::Garbage`).
async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(Vec<u8>, String), Seen> {
    let (head_len, method, framing) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let mut framing = Some(Framing::Length(0));
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let v = std::str::from_utf8(h.value).unwrap_or("x").trim();
                        framing = v.parse().ok().map(Framing::Length);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        framing = Some(Framing::Chunked);
                    }
                }
                let method = req.method.unwrap_or("").to_owned();
                match framing {
                    Some(f) => break (n, method, f),
                    None => return Err(Seen::Garbage(std::mem::take(buf))),
                }
            }
            Ok(httparse::Status::Partial) => fill(tcp, buf).await?,
            Err(_) => return Err(Seen::Garbage(std::mem::take(buf))),
        }
    };
    let end = match framing {
        Framing::Length(n) => {
            while buf.len() < head_len + n {
                fill(tcp, buf).await?;
            }
            head_len + n
        }
        Framing::Chunked => chunked_end(tcp, buf, head_len).await?,
    };
    let req = buf.drain(..end).collect();
    Ok((req, method))
}

/// Reads more into `buf`; `Err` (what was read so far) when the peer closed.
async fn fill(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), Seen> {
    let mut chunk = [0u8; 16 * 1024];
    match tcp.read(&mut chunk).await {
        Ok(0) | Err(_) => Err(Seen::Cut(std::mem::take(buf))),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

/// Where a chunked body that starts at `at` ends (after its trailer section).
async fn chunked_end(tcp: &mut TcpStream, buf: &mut Vec<u8>, mut at: usize) -> Result<usize, Seen> {
    loop {
        let line_end = loop {
            if let Some(i) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                break at + i;
            }
            fill(tcp, buf).await?;
        };
        let line = String::from_utf8_lossy(&buf[at..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| Seen::Garbage(std::mem::take(buf)))?;
        at = line_end + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let end = loop {
                    if let Some(i) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                        break at + i;
                    }
                    fill(tcp, buf).await?;
                };
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Ok(at);
                }
            }
        }
        while buf.len() < at + size + 2 {
            fill(tcp, buf).await?;
        }
        at += size + 2;
    }
}

/// What the recorder saw of one request (bytes exact, run-to-run values masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A whole request.
    Request(Vec<u8>),
    /// The start of a request, then the gateway closed the connection (it gave up on the
    /// client's body): the upstream has nothing it could take as a request.
    Cut(Vec<u8>),
    /// Bytes that cannot be read as a request, or a request still unfinished after 2 s.
    Garbage(Vec<u8>),
}

/// An upstream that answers every request `200 ok` and records its bytes.
pub struct Recorder {
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections with a request partly read.
    busy: Arc<AtomicUsize>,
}

impl Recorder {
    pub async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(AtomicUsize::new(0));
        let (s, b) = (Arc::clone(&seen), Arc::clone(&busy));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                tokio::spawn(record(tcp, addr, Arc::clone(&s), Arc::clone(&b)));
            }
        });
        Recorder { addr, seen, busy }
    }

    /// What arrived since the last call, once no request is partly read and at least `want`
    /// requests arrived (at most 6 s: a request the gateway abandoned may still be on its way
    /// when the client already has its answer; its connection is closed when the client's body
    /// fails, at the latest when the body watchdog gives up on it — `body_read_timeout`, 1 s
    /// here — or the upstream `timeout`, 3 s here).
    pub async fn take(&self, want: usize) -> Vec<Seen> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
        while (self.busy.load(Ordering::SeqCst) > 0 || self.seen.lock().unwrap().len() < want)
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut seen = std::mem::take(&mut *self.seen.lock().unwrap());
        if self.busy.load(Ordering::SeqCst) > 0 {
            seen.push(Seen::Garbage(
                b"(a request still partly read after 6 s)".to_vec(),
            ));
        }
        seen
    }
}

async fn record(
    mut tcp: TcpStream,
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    busy: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    loop {
        // Idle until the next request's first byte.
        if buf.is_empty() && fill(&mut tcp, &mut buf).await.is_err() {
            return;
        }
        busy.fetch_add(1, Ordering::SeqCst);
        let got = read_request(&mut tcp, &mut buf).await;
        let answer: &[u8] = match &got {
            Ok((_, m)) if m == "HEAD" => {
                b"HTTP/1.1 200 OK\r\nx-recorder: 1\r\ncontent-length: 2\r\n\r\n"
            }
            _ => b"HTTP/1.1 200 OK\r\nx-recorder: 1\r\ncontent-length: 2\r\n\r\nok",
        };
        let entry = match got {
            Ok((bytes, _)) => Seen::Request(mask(&bytes, addr)),
            Err(Seen::Cut(b)) => Seen::Cut(mask(&b, addr)),
            Err(other) => other,
        };
        let broken = !matches!(entry, Seen::Request(_));
        seen.lock().unwrap().push(entry);
        busy.fetch_sub(1, Ordering::SeqCst);
        if broken || tcp.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// The values that change from run to run, masked: `host: {upstream}` (the recorder's own
/// address, which the gateway sends as `Host`) and `x-request-id: {id}`.
fn mask(bytes: &[u8], addr: std::net::SocketAddr) -> Vec<u8> {
    let own = format!("\r\nhost: {addr}\r\n");
    let bytes = match bytes.windows(own.len()).position(|w| w == own.as_bytes()) {
        Some(at) => [
            &bytes[..at],
            b"\r\nhost: {upstream}\r\n",
            &bytes[at + own.len()..],
        ]
        .concat(),
        None => bytes.to_vec(),
    };
    const NAME: &[u8] = b"\r\nx-request-id: ";
    let Some(at) = bytes
        .windows(NAME.len())
        .position(|w| w.eq_ignore_ascii_case(NAME))
    else {
        return bytes;
    };
    let value = at + NAME.len();
    let end = value
        + bytes[value..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(0);
    [&bytes[..value], b"{id}", &bytes[end..]].concat()
}

/// The bytes the next request gets, and whether the connection closes after them.
type Armed = Arc<Mutex<Option<(Vec<u8>, bool)>>>;

/// An upstream that answers the next request with armed bytes, and every other with `200 ok`;
/// it logs on which connection (numbered from 0) each request came.
pub struct Responder {
    pub addr: std::net::SocketAddr,
    armed: Armed,
    /// (connection, answered with the armed bytes) per request.
    pub log: Arc<Mutex<Vec<(usize, bool)>>>,
}

impl Responder {
    pub async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let armed = Arc::new(Mutex::new(None));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, lg) = (Arc::clone(&armed), Arc::clone(&log));
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((tcp, _)) = l.accept().await {
                tokio::spawn(respond(tcp, n, Arc::clone(&a), Arc::clone(&lg)));
                n += 1;
            }
        });
        Responder { addr, armed, log }
    }

    /// The next request gets `bytes` (then the connection closes when `close`).
    pub fn arm(&self, bytes: Vec<u8>, close: bool) {
        *self.armed.lock().unwrap() = Some((bytes, close));
        self.log.lock().unwrap().clear();
    }
}

async fn respond(
    mut tcp: TcpStream,
    conn: usize,
    armed: Armed,
    log: Arc<Mutex<Vec<(usize, bool)>>>,
) {
    let mut buf = Vec::new();
    while read_request(&mut tcp, &mut buf).await.is_ok() {
        let bad = armed.lock().unwrap().take();
        log.lock().unwrap().push((conn, bad.is_some()));
        match bad {
            Some((bytes, close)) => {
                // Written in pieces, as a slow server would.
                for piece in bytes.chunks(4096) {
                    if tcp.write_all(piece).await.is_err() {
                        return;
                    }
                }
                if close {
                    return;
                }
            }
            None => {
                if tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
