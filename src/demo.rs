//! `tollgate demo`: the bundled example config, a self-signed certificate made at start, and
//! a small product API on loopback standing in for the upstream (seed 003's test API).

use crate::body::{self, Body};
use crate::config::{self, raw::RawTls};
use crate::server;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

/// The example config, compiled in so the demo runs from any directory.
pub const EXAMPLE_CONFIG: &str = include_str!("../config.example.yaml");

/// The demo product API: `GET /product` and `GET /product/get?id=N`, as in seed 003.
pub async fn product_api(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let res = match req.uri().path() {
        "/product" => body::text(
            StatusCode::OK,
            "Products: 1 coupang-widget, 2 coupang-gadget\n",
        ),
        "/product/get" => {
            let id = req
                .uri()
                .query()
                .and_then(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "id")
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_default();
            body::text(
                StatusCode::OK,
                format!("Ok!You successfully caught me. The Id is {id}"),
            )
        }
        _ => body::text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(res)
}

/// Serves [`product_api`] on `listener` until the task is dropped.
pub async fn serve_product_api(listener: tokio::net::TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(tcp), service_fn(product_api))
                .await;
        });
    }
}

/// Writes a self-signed certificate for `localhost` / `127.0.0.1` into `dir` (which must
/// exist): new files only, readable by the owner only, no link followed.
pub fn self_signed(dir: &Path) -> anyhow::Result<RawTls> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let cert = rcgen::generate_simple_self_signed(names)?;
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    write_private(&cert_path, cert.cert.pem().as_bytes())?;
    write_private(&key_path, cert.signing_key.serialize_pem().as_bytes())?;
    Ok(RawTls {
        cert: cert_path,
        key: key_path,
        certificates: Vec::new(),
        sni_strict: false,
        client_auth: None,
    })
}

/// A new file with mode 0600: `create_new` (O_CREAT|O_EXCL) fails on an existing file and on
/// a planted symlink alike, so nothing is followed or overwritten.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Runs the demo on `listen` until Ctrl-C or SIGTERM.
pub async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    // A fresh directory with a random name, 0700, made here (never one someone made first);
    // removed on every way out, an error or a panic included.
    let guard = {
        use std::os::unix::fs::PermissionsExt as _;
        tempfile::Builder::new()
            .prefix("tollgate-demo-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?
    };
    let dir = guard.path().to_path_buf();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api.local_addr()?;
    tokio::spawn(serve_product_api(api));

    let file = Path::new("config.example.yaml");
    let mut raw = config::parse_raw(EXAMPLE_CONFIG, file).map_err(|e| anyhow::anyhow!("{e}"))?;
    raw.listen.address = listen.to_string();
    raw.listen.tls = Some(self_signed(&dir)?);
    raw.store.path = Some(dir.join("tollgate.db"));
    if let Some(admin) = raw.admin.as_mut() {
        admin.address = "127.0.0.1:0".to_owned(); // never collide with a real gateway's admin port
        admin.token_file = None;
    }
    for up in raw.upstreams.values_mut() {
        up.targets = vec![format!("http://{api_addr}")];
    }
    let config = config::validate(raw, EXAMPLE_CONFIG, file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = server::start(config).await.map_err(|e| {
        anyhow::anyhow!("{e}\n(is {listen} taken? pick another address with `tollgate demo --listen 127.0.0.1:PORT`)")
    })?;
    let base = format!("https://{}", running.public_addr);
    let admin = running
        .admin_addr
        .map_or_else(String::new, |a| format!(", metrics on http://{a}/metrics"));
    let ask = format!(
        "curl -sk -X POST {base}/oauth/token/get -H 'content-type: application/json' -d '{{\"app_id\":\"coupang\",\"app_secret\":\"coupangTest\"}}'"
    );
    let text = format!(
        r#"
# Tollgate demo: gateway on {base} (TLS, self-signed certificate){admin}
# demo product API (the upstream) on http://{api_addr}
# state (certificate, store, keys) in {dir}, removed when the demo stops
#
# Walkthrough: every line not starting with # can be pasted into a shell.
#
# 1. open route, no token needed: 200
     curl -k {base}/product

# 2. guarded route without a token: 401
     curl -k -i '{base}/product/get?id=1'

# 3. ask for a token; the answer looks like
#    {{"appId":"coupang","accessToken":"Bearer eyJ...","expiresIn":3600,"statusCode":200,"errMsg":null}}
     {ask}

# 4. call the guarded route with the accessToken as returned ("Bearer " included)
     TOKEN=$({ask} | sed -E 's/.*"accessToken":"([^"]*)".*/\1/')
     curl -k '{base}/product/get?id=1' -H "Authorization: $TOKEN"
#    Ok!You successfully caught me. The Id is 1

# Ctrl-C stops.
"#,
        dir = dir.display()
    );
    // A reader that stops early (`| head`) does not stop the demo.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut std::io::stdout()));
    server::wait_for_stop().await;
    running.shutdown().await;
    drop(guard);
    Ok(())
}
