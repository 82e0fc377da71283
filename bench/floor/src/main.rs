//! The floor under tollgate on hyper: the least a hyper proxy does per request (hyper's HTTP/1
//! server and client, a shared pool of upstream connections, a check that a long
//! `Authorization` is there), with tollgate's structural pieces switched on by environment:
//! AUTO (hyper-util's auto server with upgrades), GRACE (its graceful-shutdown watch), HDRS (the
//! six headers tollgate adds upstream), BIG (a 5 KB future), LIFO (a mutex stack for the pool),
//! STICKY (a client connection keeps its upstream connection). Measurement only:
//! `bench/floor.sh` runs it beside nginx and tollgate. Never put it in front of anything.
#![forbid(unsafe_code)]
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

fn on(k: &str) -> bool {
    std::env::var_os(k).is_some()
}
static FLAGS: std::sync::OnceLock<[bool; 4]> = std::sync::OnceLock::new();
fn flag(i: usize) -> bool {
    FLAGS.get_or_init(|| ["BIG", "HDRS", "LIFO", "STICKY"].map(on))[i]
}
fn on_big() -> bool {
    flag(0)
}
fn on_hdrs() -> bool {
    flag(1)
}
fn on_lifo() -> bool {
    flag(2)
}
fn on_sticky() -> bool {
    flag(3)
}

struct Pool {
    q: crossbeam_queue::ArrayQueue<SendRequest<Incoming>>,
    lifo: std::sync::Mutex<Vec<SendRequest<Incoming>>>,
    up: String,
}
impl Pool {
    fn pop(&self) -> Option<SendRequest<Incoming>> {
        if on_lifo() {
            self.lifo.lock().unwrap().pop()
        } else {
            self.q.pop()
        }
    }
    fn push(&self, t: SendRequest<Incoming>) {
        if on_lifo() {
            self.lifo.lock().unwrap().push(t)
        } else {
            let _ = self.q.push(t);
        }
    }
}
type Slot = Arc<std::sync::Mutex<Option<SendRequest<Incoming>>>>;

async fn connect(up: &str) -> SendRequest<Incoming> {
    let s = TcpStream::connect(up).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (tx, c) = hyper::client::conn::http1::handshake::<_, Incoming>(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = c.await;
    });
    tx
}

struct Back {
    body: Incoming,
    tx: Option<SendRequest<Incoming>>,
    pool: Arc<Pool>,
    slot: Slot,
}
impl Back {
    fn back(&mut self) {
        if let Some(tx) = self.tx.take() {
            if on_sticky() {
                *self.slot.lock().unwrap() = Some(tx);
            } else {
                self.pool.push(tx);
            }
        }
    }
}
impl http_body::Body for Back {
    type Data = bytes::Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.body).poll_frame(cx);
        if let std::task::Poll::Ready(None) = &r {
            this.back();
        }
        if let std::task::Poll::Ready(Some(Ok(_))) = &r {
            if this.body.is_end_stream() {
                this.back();
            }
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

async fn handle(
    mut req: http::Request<Incoming>,
    pool: Arc<Pool>,
    slot: Slot,
) -> Result<http::Response<Back>, &'static str> {
    let big = if on_big() { Some([7u8; 5000]) } else { None };
    let auth = req.headers_mut().remove(http::header::AUTHORIZATION);
    if auth.map_or(0, |a| a.len()) < 20 {
        return Err("no");
    }
    let h = req.headers_mut();
    h.insert(
        "x-forwarded-for",
        http::HeaderValue::from_static("127.0.0.1"),
    );
    if on_hdrs() {
        h.insert("x-forwarded-proto", http::HeaderValue::from_static("http"));
        h.insert(
            "x-forwarded-host",
            http::HeaderValue::from_static("127.0.0.1:18290"),
        );
        h.insert(
            "x-request-id",
            http::HeaderValue::from_static("0123456789abcdef-000000000001"),
        );
        h.insert("x-tollgate-app", http::HeaderValue::from_static("bench"));
        h.insert(
            "x-tollgate-dialect",
            http::HeaderValue::from_static("oauth"),
        );
        h.insert("x-tollgate-scope", http::HeaderValue::from_static("read"));
    }
    let cached = slot.lock().unwrap().take();
    let mut tx = match cached.or_else(|| pool.pop()) {
        Some(t) => t,
        None => connect(&pool.up).await,
    };
    if tx.ready().await.is_err() {
        tx = connect(&pool.up).await;
    }
    let res = tx.send_request(req).await.map_err(|_| "up")?;
    if let Some(b) = &big {
        std::hint::black_box(b);
    }
    Ok(res.map(|body| Back {
        body,
        tx: Some(tx),
        pool,
        slot,
    }))
}
async fn conn(down: TcpStream, pool: Arc<Pool>) {
    down.set_nodelay(true).unwrap();
    let slot: Slot = Arc::new(std::sync::Mutex::new(None));
    let svc = hyper::service::service_fn(move |req| handle(req, pool.clone(), slot.clone()));
    let io = TokioIo::new(down);
    if on("AUTO") {
        let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        let c = b.serve_connection_with_upgrades(io, svc);
        if on("GRACE") {
            let g = hyper_util::server::graceful::GracefulShutdown::new();
            let w = g.watcher();
            let _ = w.watch(c.into_owned()).await;
            std::mem::forget(g);
        } else {
            let _ = c.await;
        }
    } else {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        let _ = b.serve_connection(io, svc).await;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = Arc::new(Pool {
            q: crossbeam_queue::ArrayQueue::new(256),
            lifo: Default::default(),
            up: args[2].clone(),
        });
        let l = TcpListener::bind(&args[1]).await.unwrap();
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(conn(s, pool.clone()));
        }
    });
}
