//! The HTTPS client an issuer's endpoints are reached with: TLS verified against the bundled
//! web roots or the issuer's `ca_file`, every call bounded in time and in answer size.

use crate::config::UpstreamTls;
use crate::secret::Secret;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::path::Path;
use std::time::Duration;

/// The largest answer read from an IdP (a JWKS or an introspection answer).
const MAX_ANSWER: usize = 1 << 20;

/// An IdP's answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its header fields.
    pub headers: HeaderMap,
    /// Its body (at most 1 MiB).
    pub body: Bytes,
}

/// A client for one issuer's endpoints.
#[derive(Debug, Clone)]
pub struct IdpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl IdpClient {
    /// A client trusting `ca_file` (or the bundled web roots); each call within `timeout`.
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Self, String> {
        let tls = crate::tls::client_config(&UpstreamTls {
            ca_file: ca_file.map(Path::to_owned),
            server_name: None,
            client_identity: None,
            insecure_skip_verify: false,
        })?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        // http:// is accepted by the config check only for loopback addresses.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(IdpClient { client, timeout })
    }

    /// `GET url`.
    pub async fn get(&self, url: &Uri) -> Result<Answer, String> {
        let req = Request::get(url.clone())
            .header(header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    /// `POST url` with a form body, authenticated with HTTP Basic (RFC 6749 §2.3.1).
    pub async fn post_form(
        &self,
        url: &Uri,
        client_id: &str,
        secret: &Secret,
        form: String,
    ) -> Result<Answer, String> {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(client_id),
            enc(secret.expose())
        ));
        let mut auth =
            HeaderValue::from_str(&format!("Basic {basic}")).map_err(|e| e.to_string())?;
        auth.set_sensitive(true);
        let req = Request::post(url.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, auth)
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Answer, String> {
        let exchange = async {
            let res = self.client.request(req).await.map_err(|e| {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                msg
            })?;
            let (parts, body) = res.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}
