//! An identity provider stand-in over TLS (a certificate from the test CA): `GET /jwks`
//! serves the current key set, `POST /introspect` answers RFC 7662 for the tokens it was
//! told about (Basic `gw:gw-secret` required); it counts both and can be switched down.

use super::servers::{listen, tls_acceptor};
use super::TestCa;
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A signing key of the IdP and its public JWK.
pub struct IdpKey {
    pub kid: String,
    pub alg: jsonwebtoken::Algorithm,
    enc: jsonwebtoken::EncodingKey,
    pub jwk: Value,
    /// The public key's raw bytes (what an HS256 forger would use as the secret).
    pub public_raw: Vec<u8>,
}

impl IdpKey {
    /// A P-256 key (ES256) named `kid`.
    pub fn es256(kid: &str) -> Self {
        Self::ec(
            kid,
            &rcgen::PKCS_ECDSA_P256_SHA256,
            "P-256",
            jsonwebtoken::Algorithm::ES256,
        )
    }

    /// A P-384 key (ES384) named `kid`.
    pub fn es384(kid: &str) -> Self {
        Self::ec(
            kid,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            "P-384",
            jsonwebtoken::Algorithm::ES384,
        )
    }

    fn ec(
        kid: &str,
        alg: &'static rcgen::SignatureAlgorithm,
        crv: &str,
        jalg: jsonwebtoken::Algorithm,
    ) -> Self {
        let kp = rcgen::KeyPair::generate_for(alg).unwrap();
        let raw = kp.public_key_raw().to_vec();
        let n = (raw.len() - 1) / 2;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({
            "kty": "EC", "crv": crv, "kid": kid, "use": "sig",
            "x": b64(&raw[1..1 + n]), "y": b64(&raw[1 + n..]),
        });
        IdpKey {
            kid: kid.into(),
            alg: jalg,
            enc: jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
            jwk,
            public_raw: raw,
        }
    }

    /// `claims` signed with this key (header `kid` = `kid`).
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut h = jsonwebtoken::Header::new(self.alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, claims, &self.enc).unwrap()
    }

    /// `claims` signed with this key under its own kid.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid.clone(), claims)
    }
}

/// The running stand-in.
pub struct Idp {
    pub addr: SocketAddr,
    pub jwks: Arc<Mutex<Value>>,
    pub jwks_fetches: Arc<AtomicUsize>,
    pub introspections: Arc<AtomicUsize>,
    /// Introspection answers by token (`{"active": false}` for any other).
    pub answers: Arc<Mutex<HashMap<String, Value>>>,
    /// While set, every request is answered 503.
    pub down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Idp {
    /// Starts on 127.0.0.1:0 serving `keys`.
    pub async fn start(ca: &TestCa, keys: &[&IdpKey]) -> Self {
        let acceptor = tls_acceptor(ca);
        let (l, addr) = listen().await;
        let jwks = Arc::new(Mutex::new(Value::Null));
        let idp_fetches = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let answers: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let down = Arc::new(AtomicBool::new(false));
        let state = (
            Arc::clone(&jwks),
            Arc::clone(&idp_fetches),
            Arc::clone(&calls),
            Arc::clone(&answers),
            Arc::clone(&down),
        );
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = service_fn(move |req| serve(req, state.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        let idp = Idp {
            addr,
            jwks,
            jwks_fetches: idp_fetches,
            introspections: calls,
            answers,
            down,
            task,
        };
        idp.publish(keys);
        idp
    }

    /// Serves exactly `keys` from now on.
    pub fn publish(&self, keys: &[&IdpKey]) {
        let list: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.jwks.lock().unwrap() = json!({ "keys": list });
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.introspections.load(Ordering::SeqCst)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type State = (
    Arc<Mutex<Value>>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<Mutex<HashMap<String, Value>>>,
    Arc<AtomicBool>,
);

async fn serve(req: Request<Incoming>, s: State) -> Result<Response<Full<Bytes>>, Infallible> {
    let (jwks, fetches, calls, answers, down) = s;
    let reply = |status: StatusCode, v: Value| {
        let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
        *r.status_mut() = status;
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        Ok(r)
    };
    if down.load(Ordering::SeqCst) {
        return reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"}));
    }
    match req.uri().path() {
        "/jwks" => {
            fetches.fetch_add(1, Ordering::SeqCst);
            let doc = jwks.lock().unwrap().clone();
            reply(StatusCode::OK, doc)
        }
        "/introspect" => {
            calls.fetch_add(1, Ordering::SeqCst);
            let basic = base64::engine::general_purpose::STANDARD.encode("gw:gw-secret");
            let auth_ok = req
                .headers()
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == format!("Basic {basic}").as_bytes());
            if !auth_ok {
                return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
            }
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let token = form_urlencoded::parse(&body)
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            // Slow enough that requests arriving together overlap.
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            let answer = answers
                .lock()
                .unwrap()
                .get(&token)
                .cloned()
                .unwrap_or(json!({"active": false}));
            reply(StatusCode::OK, answer)
        }
        _ => reply(StatusCode::NOT_FOUND, json!({})),
    }
}
