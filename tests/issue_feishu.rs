//! The feishu dialect (seed 002, DIALECTS §7 and §9 items 24-28) over real sockets, with a
//! real event receiver standing in for the app's `event_url`.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::time::Duration;
use support::{Gateway, TestClient, Upstream};
use tokio::sync::mpsc;

const SEED_REQUEST: &str = include_str!("fixtures/seeds/002_app_access_token.request.json");
const APP: &str = "cli_slkdjalasdkjasd";
const SECRET: &str = "dskLLdkasdjlasdKK";

/// An HTTP server on port 0 that hands every POSTed JSON body to a channel.
async fn event_receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"{}"),
                        )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (url, rx)
}

async fn start(
    ttl: &str,
    renew_before: &str,
) -> (Gateway, Upstream, mpsc::UnboundedReceiver<Value>) {
    let up = Upstream::echo().await;
    let (events, rx) = event_receiver().await;
    let yaml = format!(
        r#"apps:
  - {{ id: {APP}, secret: {SECRET}, event_url: "{events}", verification_token: vtok }}
  - {{ id: cli_internal, secret: internal-secret, feishu_type: self_built }}
dialects:
  feishu: {{ ttl: {ttl}, renew_before: {renew_before} }}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: /open-apis/contact/v3/users, upstream: api, errors: feishu }}
"#,
        up.url()
    );
    (Gateway::start(&yaml).await, up, rx)
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an app_ticket event within 10 s")
        .unwrap()
}

/// The content type Feishu's own clients send.
const JSON_UTF8: &[(&str, &str)] = &[("content-type", "application/json; charset=utf-8")];

async fn app_token(gw: &Gateway, ticket: &str) -> Value {
    let body = json!({ "app_id": APP, "app_secret": SECRET, "app_ticket": ticket }).to_string();
    gw.post("/open-apis/auth/v3/app_access_token", JSON_UTF8, &body)
        .await
        .json()
}

#[tokio::test]
async fn the_seed_request_with_a_pushed_ticket_gets_the_flat_envelope() {
    let (gw, _up, mut events) = start("2h", "30m").await;
    // Tickets are pushed to the app's event_url when the gateway starts (and hourly).
    let event = next_event(&mut events).await;
    assert_eq!(event["type"], "event_callback");
    assert_eq!(event["token"], "vtok");
    assert!(event["ts"].is_string() && event["uuid"].is_string());
    assert_eq!(event["event"]["type"], "app_ticket");
    assert_eq!(event["event"]["app_id"], APP);
    let ticket = event["event"]["app_ticket"].as_str().unwrap();
    // The seed's request byte for byte, but for the ticket, which only the gateway can issue.
    let body = SEED_REQUEST.replace("dskLLdkasd\"", &format!("{ticket}\""));
    let r = gw
        .post("/open-apis/auth/v3/app_access_token", JSON_UTF8, &body)
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "msg", "app_access_token", "expire"]);
    assert_eq!(v["code"], 0);
    assert_eq!(v["msg"], "success");
    let token = v["app_access_token"].as_str().unwrap();
    assert!(token.starts_with("a-") && token.len() == 24, "{token}");
    let expire = v["expire"].as_u64().expect("expire is an int");
    assert!((7190..=7200).contains(&expire), "{expire}");
    // The seed's own stale ticket is refused as Feishu does.
    assert_eq!(
        gw.post(
            "/open-apis/auth/v3/app_access_token",
            JSON_UTF8,
            SEED_REQUEST
        )
        .await
        .json(),
        json!({"code": 10012, "msg": "app_ticket is invalid"})
    );
}

#[tokio::test]
async fn errors_are_flat_codes_on_http_200_without_a_token() {
    let (gw, _up, mut events) = start("2h", "30m").await;
    let ticket = next_event(&mut events).await["event"]["app_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases = [
        (
            json!({ "app_id": APP, "app_secret": "wrong", "app_ticket": ticket }),
            10014,
            "app secret invalid",
        ),
        (
            json!({ "app_id": "cli_nobody", "app_secret": SECRET, "app_ticket": ticket }),
            10003,
            "invalid param",
        ),
        (
            json!({ "app_id": APP, "app_secret": SECRET }),
            10003,
            "invalid param",
        ),
        (
            json!({ "app_id": APP, "app_secret": SECRET, "app_ticket": "stale" }),
            10012,
            "app_ticket is invalid",
        ),
    ];
    for (body, code, msg) in cases {
        let r = gw
            .post(
                "/open-apis/auth/v3/app_access_token",
                JSON_UTF8,
                &body.to_string(),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({ "code": code, "msg": msg }), "{body}");
    }
    assert_eq!(
        gw.post("/open-apis/auth/v3/app_access_token", JSON_UTF8, "{")
            .await
            .json()["code"],
        10003
    );
}

#[tokio::test]
async fn the_overlap_rule_with_short_durations() {
    // ttl 4 s, renew_before 2 s: the 2 h / 30 min rule scaled down.
    let (gw, _up, mut events) = start("4s", "2s").await;
    let ticket = next_event(&mut events).await["event"]["app_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = app_token(&gw, &ticket).await;
    let a = first["app_access_token"].as_str().unwrap().to_owned();
    gw.advance(Duration::from_millis(1200));
    let again = app_token(&gw, &ticket).await;
    assert_eq!(
        again["app_access_token"],
        a.as_str(),
        "at least renew_before left: the same token"
    );
    assert!(
        again["expire"].as_u64() < first["expire"].as_u64(),
        "with less time left: {first} {again}"
    );
    gw.advance(Duration::from_millis(1000));
    let renewed = app_token(&gw, &ticket).await;
    let b = renewed["app_access_token"].as_str().unwrap().to_owned();
    assert_ne!(b, a, "under renew_before left: a new token");
    let call = |t: String| {
        let gw = &gw;
        async move {
            gw.get(
                "/open-apis/contact/v3/users",
                &[("authorization", &format!("Bearer {t}"))],
            )
            .await
        }
    };
    assert_eq!(
        call(a.clone()).await.status,
        200,
        "the old token stays valid until its own expiry"
    );
    assert_eq!(call(b.clone()).await.status, 200);
    gw.advance(Duration::from_millis(2000));
    let expired = call(a).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.json()["code"], 99991664);
    assert_eq!(
        expired.json()["msg"],
        "access token expired",
        "told apart from a token never issued"
    );
    assert_eq!(call(b).await.status, 200);
}

#[tokio::test]
async fn resend_pushes_a_ticket_that_works_and_the_admin_api_shows_it() {
    let (gw, _up, mut events) = start("2h", "30m").await;
    let _startup = next_event(&mut events).await;
    let r = gw
        .post(
            "/open-apis/auth/v3/app_ticket/resend",
            JSON_UTF8,
            &json!({ "app_id": APP, "app_secret": SECRET }).to_string(),
        )
        .await;
    assert_eq!(r.json(), json!({ "code": 0, "msg": "success" }));
    let pushed = next_event(&mut events).await["event"]["app_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(app_token(&gw, &pushed).await["app_access_token"].is_string());
    let admin = TestClient::plain()
        .send(
            "GET",
            &gw.admin_url(&format!("/admin/apps/{APP}/app_ticket")),
            &[],
            "",
        )
        .await
        .json();
    assert_eq!(admin["app_ticket"], pushed.as_str(), "the newest ticket");
    assert!(admin["expire"].as_u64().unwrap() > 3500);
    let wrong = gw
        .post(
            "/open-apis/auth/v3/app_ticket/resend",
            JSON_UTF8,
            &json!({ "app_id": APP, "app_secret": "x" }).to_string(),
        )
        .await;
    assert_eq!(wrong.json()["code"], 10014);
}

#[tokio::test]
async fn guarded_routes_answer_in_feishu_codes_and_internal_variants_work() {
    let (gw, _up, _events) = start("2h", "30m").await;
    let missing = gw.get("/open-apis/contact/v3/users", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["code"], 99991661);
    let bad = gw
        .get(
            "/open-apis/contact/v3/users",
            &[("authorization", "Bearer t-nonsense")],
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["code"], 99991664);

    // A store app (the default type) must present its ticket: the ticket-less endpoints
    // refuse it with 10003 even with the right secret.
    let store = json!({ "app_id": APP, "app_secret": SECRET }).to_string();
    for path in [
        "/open-apis/auth/v3/app_access_token/internal",
        "/open-apis/auth/v3/tenant_access_token/internal",
    ] {
        let v = gw.post(path, JSON_UTF8, &store).await.json();
        assert_eq!(v["code"], 10003, "{path}: {v}");
        assert!(v.get("tenant_access_token").is_none(), "{v}");
    }

    let body = json!({ "app_id": "cli_internal", "app_secret": "internal-secret" }).to_string();
    let v = gw
        .post(
            "/open-apis/auth/v3/app_access_token/internal",
            JSON_UTF8,
            &body,
        )
        .await
        .json();
    assert_eq!(v["code"], 0);
    assert_eq!(v["msg"], "ok");
    let tenant = v["tenant_access_token"].as_str().unwrap().to_owned();
    assert!(v["app_access_token"].as_str().unwrap().starts_with("t-") && tenant.starts_with("t-"));
    let v2 = gw
        .post(
            "/open-apis/auth/v3/tenant_access_token/internal",
            JSON_UTF8,
            &body,
        )
        .await
        .json();
    assert_eq!(
        v2["tenant_access_token"],
        tenant.as_str(),
        "the same tenant token while it has time left"
    );
    let ok = gw
        .get(
            "/open-apis/contact/v3/users",
            &[("authorization", &format!("Bearer {tenant}"))],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["headers"]["x-tollgate-app"], "cli_internal");
    assert_eq!(ok.json()["headers"]["x-tollgate-dialect"], "feishu");
}
