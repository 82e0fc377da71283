//! Signing key rotation: a new key signs from then on, the old one keeps verifying its tokens
//! until they expired and then leaves the JWKS, an unknown `kid` is refused, and the rotated
//! ring survives a restart.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::bin::{write, Proc};
use support::{jwt_parts, Gateway, TestClient, Upstream};

fn yaml(up: &Upstream) -> String {
    format!(
        "{}upstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /any, upstream: api }}\n",
        support::app_yaml(),
        up.url()
    )
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn rotate(c: &TestClient, admin: &str) -> Value {
    c.post_json(&format!("{admin}/admin/keys/rotate"), &[], "{}")
        .await
        .json()
}

#[tokio::test]
async fn a_rotation_signs_with_the_new_key_and_keeps_the_old_one_until_its_tokens_expired() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    let admin = TestClient::plain();
    let old = gw.token().await;
    let old_kid = jwt_parts(old.trim_start_matches("Bearer ")).0["kid"].clone();
    let r = rotate(&admin, &gw.admin_url("")).await;
    let new_kid = r["kid"].clone();
    assert!(new_kid.is_string() && new_kid != old_kid, "{r}");
    let jwks = gw.get("/.well-known/jwks.json", &[]).await.json();
    assert_eq!(kids(&jwks).len(), 2, "{jwks}");
    let new = gw.token().await;
    assert_eq!(
        jwt_parts(new.trim_start_matches("Bearer ")).0["kid"],
        new_kid
    );
    for t in [&old, &new] {
        assert_eq!(gw.get("/any", &[("authorization", t)]).await.status, 200);
    }
    // A kid that is none of ours: refused, nothing fetched.
    let raw = new.trim_start_matches("Bearer ");
    let (mut header, _) = jwt_parts(raw);
    header["kid"] = json!("not-ours");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rest = raw.split_once('.').unwrap().1;
    let forged = format!("{}.{rest}", b64.encode(header.to_string()));
    let r = gw
        .get("/any", &[("authorization", &format!("Bearer {forged}"))])
        .await;
    assert_eq!(r.status, 401);
    // Once every token the old key signed has expired, it leaves the JWKS.
    gw.advance(Duration::from_secs(3600 + 31));
    gw.running.as_ref().unwrap().gateway.shared.rebuild_keys();
    let jwks = gw.get("/.well-known/jwks.json", &[]).await.json();
    assert_eq!(
        kids(&jwks),
        vec![new_kid.as_str().unwrap().to_owned()],
        "{jwks}"
    );
}

#[tokio::test]
async fn the_rotated_ring_survives_a_restart() {
    let up = Upstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "gw.yaml",
        &format!(
            "listen: {{ address: \"127.0.0.1:0\" }}\nadmin: {{ address: \"127.0.0.1:0\" }}\nstore: {{ path: {}/data/t.db }}\n{}",
            dir.path().display(),
            yaml(&up)
        ),
    );
    let c = TestClient::plain();
    let token = |p: &Proc| {
        let (c, url) = (c.clone(), format!("http://{}/oauth/token/get", p.addr));
        async move {
            c.post_json(
                &url,
                &[],
                &format!(
                    r#"{{"app_id":"coupang","app_secret":"{}"}}"#,
                    support::SECRET
                ),
            )
            .await
            .json()["accessToken"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let p = Proc::start(&cfg);
    let old = token(&p).await;
    rotate(&c, &format!("http://{}", p.admin.unwrap())).await;
    let new = token(&p).await;
    drop(p);
    let p = Proc::start(&cfg);
    let jwks = c
        .send(
            "GET",
            &format!("http://{}/.well-known/jwks.json", p.addr),
            &[],
            "",
        )
        .await
        .json();
    assert_eq!(kids(&jwks).len(), 2, "{jwks}");
    for t in [&old, &new] {
        let r = c
            .send(
                "GET",
                &format!("http://{}/any", p.addr),
                &[("authorization", t)],
                "",
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let next = token(&p).await;
    assert_eq!(
        jwt_parts(next.trim_start_matches("Bearer ")).0["kid"],
        jwt_parts(new.trim_start_matches("Bearer ")).0["kid"],
        "the rotated key is still the active one"
    );
}

#[tokio::test]
async fn rotate_every_makes_a_new_key_once_per_period() {
    let up = Upstream::echo().await;
    let yaml = yaml(&up).replace(
        "signing:\n  issuer: https://gw.test\n",
        "signing:\n  issuer: https://gw.test\n  rotate_every: 1m\n",
    );
    assert!(yaml.contains("rotate_every"), "{yaml}");
    let gw = Gateway::start(&yaml).await;
    let g = &gw.running.as_ref().unwrap().gateway;
    let kid = || g.shared.keys().kid().to_owned();
    let first = kid();
    tollgate::server::rotate_when_due(g).await;
    assert_eq!(kid(), first, "not due yet");
    gw.advance(Duration::from_secs(61));
    tollgate::server::rotate_when_due(g).await;
    let second = kid();
    assert_ne!(second, first, "due: rotated");
    tollgate::server::rotate_when_due(g).await;
    assert_eq!(kid(), second, "once per period");
}
