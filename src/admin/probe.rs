//! The client side of the readiness probe (`tollgate healthcheck`): one GET of `/readyz` on
//! the admin listener over plain HTTP/1.1, its status returned.

use http::{header, Request};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// The status `/readyz` on `addr` answers.
pub async fn readyz(addr: SocketAddr) -> Result<u16, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::get("/readyz")
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "tollgate-healthcheck")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let res = tx.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(res.status().as_u16())
}
