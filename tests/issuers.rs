//! Issue 13: tokens of an external identity provider (a stand-in over TLS with a test CA,
//! serving a JWKS and an RFC 7662 endpoint and counting its requests) are checked like
//! tollgate's own: scopes, 401s for every way a token can be wrong, key rotation with one
//! refetch, a cooldown against made-up kids, stale keys while the IdP is down, one
//! introspection call for many requests, and no cached token passing where it is not valid.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::idp::{Idp, IdpKey};
use support::{Gateway, TestCa, TestClient, Upstream};

const ISS: &str = "https://idp.test/realms/main";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(scope: &str) -> Value {
    json!({
        "iss": ISS, "aud": ["orders-api"], "sub": "user-7", "azp": "billing",
        "client_id": "billing", "scope": scope, "exp": now() + 600, "iat": now(),
        "email": "ann@example.com",
    })
}

struct Setup {
    gw: Gateway,
    idp: Idp,
    _up: Upstream,
    key: IdpKey,
    _dir: tempfile::TempDir,
}

/// A temp dir, the IdP's CA written in it, the IdP's key `k1`, and the IdP serving it.
async fn idp_with_key() -> (tempfile::TempDir, std::path::PathBuf, IdpKey, Idp) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let ca_file = ca.ca_file.clone();
    let key = IdpKey::es256("k1");
    let idp = Idp::start(&ca, &[&key]).await;
    (dir, ca_file, key, idp)
}

/// A gateway with issuer `kc` (JWKS + introspection at the stand-in), routes `/open`
/// (any token), `/scoped` (scope `read`), `/admin` (scope `admin`), `/own` (oauth tokens only).
async fn setup() -> Setup {
    setup_with("").await
}

/// As [`setup`], with `extra` lines (indented as keys of the issuer) in issuer `kc`.
async fn setup_with(extra: &str) -> Setup {
    let (dir, ca_file, key, idp) = idp_with_key().await;
    let up = Upstream::echo().await;
    let yaml = format!(
        r#"{apps}issuers:
  - name: kc
    issuer: {ISS}
    jwks_url: {jwks}
    introspection_url: {intro}
    client_id: gw
    client_secret: gw-secret
    ca_file: {ca}
    audiences: [orders-api]
    algorithms: [ES256]
    leeway: 0s
    claims_to_headers: {{ email: x-user-email }}
{extra}upstreams:
  api: {{ targets: ["{up}"] }}
routes:
  - {{ path: /open, upstream: api }}
  - {{ path: /scoped, upstream: api, require: {{ oauth_scope: read }}, claims_to_headers: {{ sub: x-subject }} }}
  - {{ path: /kc-only, upstream: api, dialects: [kc] }}
  - {{ path: /admin, upstream: api, require: {{ oauth_scope: admin }} }}
  - {{ path: /own, upstream: api, dialects: [oauth] }}
"#,
        apps = support::app_yaml(),
        jwks = idp.url("/jwks"),
        intro = idp.url("/introspect"),
        ca = ca_file.display(),
        up = up.url(),
    );
    let gw = Gateway::start(&yaml).await;
    // The keys are fetched at start.
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            readyz(&gw).await.0 == 200
        })
        .await,
        "never ready: {:?}",
        readyz(&gw).await
    );
    Setup {
        gw,
        idp,
        _up: up,
        key,
        _dir: dir,
    }
}

async fn readyz(gw: &Gateway) -> (u16, Value) {
    let r = TestClient::plain()
        .send("GET", &gw.admin_url("/readyz"), &[], "")
        .await;
    (r.status.as_u16(), r.json())
}

async fn call(gw: &Gateway, path: &str, token: &str, extra: &[(&str, &str)]) -> support::Resp {
    let auth = format!("Bearer {token}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    gw.get(path, &h).await
}

async fn metrics(gw: &Gateway) -> String {
    TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body
}

#[tokio::test]
async fn an_idp_token_passes_a_scoped_route_with_its_identity_and_gets_403_without_the_scope() {
    let s = setup().await;
    let token = s.key.sign(&claims("read write"));
    let r = call(
        &s.gw,
        "/scoped",
        &token,
        &[("x-user-email", "forged@evil"), ("x-tollgate-app", "root")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h = &r.json()["headers"];
    assert_eq!(h["x-tollgate-app"], "billing", "{h}");
    assert_eq!(h["x-tollgate-dialect"], "kc");
    assert_eq!(h["x-tollgate-scope"], "read write");
    assert_eq!(
        h["x-user-email"], "ann@example.com",
        "the claim, not the forged copy"
    );
    assert!(
        h.get("authorization").is_none(),
        "the token is not forwarded"
    );
    // Without the scope: 403, in the route's error style.
    let r = call(&s.gw, "/scoped", &s.key.sign(&claims("write")), &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("oauth scope read"), "{}", r.body);
    let m = metrics(&s.gw).await;
    assert!(
        m.contains(
            r#"tollgate_auth_decisions_total{decision="allowed",dialect="kc",mode="enforce",route="/scoped"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_issuer_jwks_fetches_total{issuer="kc",result="ok"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn tokens_wrong_in_any_way_are_401() {
    let s = setup().await;
    let mut wrong_iss = claims("read");
    wrong_iss["iss"] = "https://other.test".into();
    let mut wrong_aud = claims("read");
    wrong_aud["aud"] = json!(["another-api"]);
    let mut expired = claims("read");
    expired["exp"] = (now() - 5).into();
    let mut no_app = claims("read");
    for k in ["client_id", "azp", "sub"] {
        no_app.as_object_mut().unwrap().remove(k);
    }
    // ES384 is not in the issuer's algorithms (its key is in the JWKS all the same).
    let k384 = IdpKey::es384("k384");
    s.idp.publish(&[&s.key, &k384]);
    // HS256 "signed" with the JWKS public key: the classic algorithm confusion.
    let hs = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("k1".into());
        let k = jsonwebtoken::EncodingKey::from_secret(&s.key.public_raw);
        jsonwebtoken::encode(&h, &claims("read"), &k).unwrap()
    };
    let unsigned = {
        use base64::Engine as _;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "k1"})),
            b64(&claims("read"))
        )
    };
    for (what, token) in [
        ("wrong iss", s.key.sign(&wrong_iss)),
        ("wrong aud", s.key.sign(&wrong_aud)),
        ("expired", s.key.sign(&expired)),
        ("no app id claim", s.key.sign(&no_app)),
        ("ES384 outside the list", k384.sign(&claims("read"))),
        ("HS256 with the public key", hs),
        ("alg none", unsigned),
    ] {
        let r = call(&s.gw, "/open", &token, &[]).await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_made_up_kids_do_not_hammer_the_idp() {
    let s = setup().await;
    assert_eq!(s.idp.fetches(), 1, "one fetch at start");
    let k2 = IdpKey::es256("k2");
    s.idp.publish(&[&s.key, &k2]);
    let r = call(&s.gw, "/open", &k2.sign(&claims("read")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.idp.fetches(), 2, "exactly one refetch for the new kid");
    // 1 000 tokens with random kids (signed by a key the IdP never published).
    let stranger = IdpKey::es256("x");
    for n in 0..1000 {
        let t = stranger.sign_as(&format!("kid-{n}"), &claims("read"));
        let r = call(&s.gw, "/open", &t, &[]).await;
        assert_eq!(r.status, 401);
    }
    assert!(s.idp.fetches() <= 4, "{} fetches", s.idp.fetches());
}

#[tokio::test]
async fn known_keys_keep_working_while_the_idp_is_down() {
    let s = setup().await;
    s.idp.down.store(true, std::sync::atomic::Ordering::SeqCst);
    // A new kid makes the gateway try (and fail) to fetch; the held keys stay.
    let k2 = IdpKey::es256("k2");
    assert_eq!(
        call(&s.gw, "/open", &k2.sign(&claims("read")), &[])
            .await
            .status,
        401
    );
    let r = call(&s.gw, "/open", &s.key.sign(&claims("read")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = metrics(&s.gw).await;
    assert!(
        m.contains(r#"tollgate_issuer_jwks_fetches_total{issuer="kc",result="error"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn a_start_with_the_idp_down_is_503_for_its_tokens_until_the_keys_come() {
    let (_dir, ca_file, key, idp) = idp_with_key().await;
    idp.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}issuers:\n  - {{ name: kc, issuer: \"{ISS}\", jwks_url: \"{}\", ca_file: {}, jwks_cooldown: 100ms, algorithms: [ES256], audiences: [orders-api] }}\nupstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /open, upstream: api }}\n",
        support::app_yaml(),
        idp.url("/jwks"),
        ca_file.display(),
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, doc) = readyz(&gw).await;
    assert_eq!(status, 503, "{doc}");
    assert!(
        doc["issuers"]["kc"]
            .as_str()
            .unwrap()
            .starts_with("no keys"),
        "{doc}"
    );
    let token = key.sign(&claims("read"));
    let r = call(&gw, "/open", &token, &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    // Tollgate's own tokens are not held up by the IdP.
    let own = gw.token().await;
    let own = own.strip_prefix("Bearer ").unwrap();
    assert_eq!(call(&gw, "/open", own, &[]).await.status, 200);
    idp.down.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = call(&gw, "/open", &token, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(readyz(&gw).await.0, 200);
}

#[tokio::test]
async fn one_introspection_serves_a_thousand_requests_and_its_answer_ends_with_the_token() {
    let s = setup().await;
    let exp = now() + 5;
    s.idp.answers.lock().unwrap().insert(
        "opaque-123".into(),
        json!({"active": true, "client_id": "billing", "scope": "read", "exp": exp,
               "iss": ISS, "aud": "orders-api", "email": "ann@example.com"}),
    );
    // 50 at once: one call to the IdP between them.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let url = s.gw.url("/scoped");
        tasks.push(tokio::spawn(async move {
            TestClient::plain()
                .send("GET", &url, &[("authorization", "Bearer opaque-123")], "")
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    for _ in 0..950 {
        assert_eq!(call(&s.gw, "/scoped", "opaque-123", &[]).await.status, 200);
    }
    assert_eq!(s.idp.calls(), 1, "one IdP call for 1 000 requests");
    let r = call(&s.gw, "/scoped", "opaque-123", &[]).await;
    assert_eq!(r.json()["headers"]["x-tollgate-app"], "billing");
    assert_eq!(r.json()["headers"]["x-user-email"], "ann@example.com");
    // Past its exp the token is asked about again and refused.
    s.gw.advance(Duration::from_secs(10));
    assert_eq!(call(&s.gw, "/scoped", "opaque-123", &[]).await.status, 401);
    assert_eq!(s.idp.calls(), 2);
    // An inactive answer is a 401, reused briefly (no second call).
    assert_eq!(call(&s.gw, "/scoped", "unknown-tok", &[]).await.status, 401);
    assert_eq!(call(&s.gw, "/scoped", "unknown-tok", &[]).await.status, 401);
    assert_eq!(s.idp.calls(), 3);
    let m = metrics(&s.gw).await;
    // Active once; inactive for the expired answer and the unknown token.
    for series in [
        r#"tollgate_issuer_introspections_total{issuer="kc",result="active"} 1"#,
        r#"tollgate_issuer_introspections_total{issuer="kc",result="inactive"} 2"#,
    ] {
        assert!(m.contains(series), "{series} missing:\n{m}");
    }
    assert!(
        m.contains(r#"tollgate_issuer_cache_hits_total{issuer="kc"}"#),
        "{m}"
    );
}

#[tokio::test]
async fn a_token_cached_on_one_route_does_not_pass_a_stricter_one() {
    let s = setup().await;
    let token = s.key.sign(&claims("read"));
    assert_eq!(call(&s.gw, "/open", &token, &[]).await.status, 200);
    assert_eq!(call(&s.gw, "/scoped", &token, &[]).await.status, 200);
    // Cached now: the stricter route still checks its own requirement.
    assert_eq!(call(&s.gw, "/admin", &token, &[]).await.status, 403);
    // A route for tollgate's own oauth tokens does not take the IdP's.
    assert_eq!(call(&s.gw, "/own", &token, &[]).await.status, 401);
    // The same for an introspected token.
    s.idp.answers.lock().unwrap().insert(
        "opaque-9".into(),
        json!({"active": true, "client_id": "billing", "scope": "read", "aud": ["orders-api"]}),
    );
    assert_eq!(call(&s.gw, "/open", "opaque-9", &[]).await.status, 200);
    assert_eq!(call(&s.gw, "/admin", "opaque-9", &[]).await.status, 403);
    assert_eq!(call(&s.gw, "/own", "opaque-9", &[]).await.status, 401);
}

#[tokio::test]
async fn revoking_an_external_token_evicts_it_from_the_caches() {
    let s = setup().await;
    s.idp.answers.lock().unwrap().insert(
        "opaque-r".into(),
        json!({"active": true, "client_id": "billing", "aud": "orders-api"}),
    );
    assert_eq!(call(&s.gw, "/open", "opaque-r", &[]).await.status, 200);
    assert_eq!(call(&s.gw, "/open", "opaque-r", &[]).await.status, 200);
    assert_eq!(s.idp.calls(), 1);
    let r = TestClient::plain()
        .post_json(
            &s.gw.admin_url("/admin/tokens/revoke"),
            &[],
            r#"{"token":"opaque-r"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["evicted"], true, "{}", r.body);
    // The IdP now says it is gone; the gateway asks again and believes it.
    s.idp
        .answers
        .lock()
        .unwrap()
        .insert("opaque-r".into(), json!({"active": false}));
    assert_eq!(call(&s.gw, "/open", "opaque-r", &[]).await.status, 401);
    assert_eq!(s.idp.calls(), 2);
}

#[test]
fn unsafe_issuer_settings_are_refused_with_file_line_and_key() {
    let text = format!(
        "listen: {{ address: \"127.0.0.1:0\" }}\nissuers:\n  - name: kc\n    issuer: {ISS}\n    jwks_url: http://idp.example.com/jwks\n    algorithms: [HS256, none, RS256]\n    claims_to_headers: {{ sub: x-tollgate-app, email: x_user_email }}\n  - name: oauth\n    introspection_url: https://idp.example.com/i\n  - name: BKFlow\n    issuer: https://other.example.com\n    jwks_url: https://other.example.com/jwks\n    audiences: [api]\n    app_id_claim: sub\nroutes:\n  - {{ path: /a, upstream: api, dialects: [kc, nosuch] }}\nupstreams:\n  api: {{ targets: [\"http://127.0.0.1:1\"] }}\n"
    );
    let e = tollgate::config::load_str(&text, std::path::Path::new("t.yaml"))
        .expect_err("refused")
        .to_string();
    for want in [
        "t.yaml:5: issuers[0].jwks_url",
        "issuers[0].algorithms[0]: HS256: a symmetric algorithm",
        "issuers[0].algorithms[1]: \"none\"",
        "issuers[0].claims_to_headers.sub: x-tollgate-app is a header tollgate sets",
        "issuers[0].claims_to_headers.email: x_user_email: write header names with '-'",
        "issuers[1].name: \"oauth\" is taken",
        "issuers[1].client_id: required",
        "issuers[0].audiences: required",
        "issuers[2].name: \"BKFlow\" is taken",
        "issuers[2].app_id_claim: sub names the user",
        "routes[0].dialects[1]: \"nosuch\" is neither",
    ] {
        assert!(e.contains(want), "{want:?} missing from:\n{e}");
    }
    assert!(!e.contains("dialects[0]"), "kc names an issuer:\n{e}");
}

#[tokio::test]
async fn unknown_opaque_tokens_cost_the_idp_a_bounded_number_of_calls_and_evict_nobody() {
    let s = setup().await;
    let active = json!({"active": true, "client_id": "billing", "scope": "read", "exp": now() + 600,
                        "iss": ISS, "aud": "orders-api"});
    s.idp
        .answers
        .lock()
        .unwrap()
        .insert("real-user".into(), active.clone());
    s.idp
        .answers
        .lock()
        .unwrap()
        .insert("other-user".into(), active);
    assert_eq!(call(&s.gw, "/open", "real-user", &[]).await.status, 200);
    assert_eq!(s.idp.calls(), 1);
    // 1 000 random tokens in 5 s from one address.
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for n in 0..1000u64 {
        tokio::time::sleep_until(start + Duration::from_millis(5 * n)).await;
        let url = s.gw.url("/open");
        tasks.push(tokio::spawn(async move {
            let auth = format!("Bearer made-up-{n}-{}", n * 7919);
            TestClient::plain()
                .send("GET", &url, &[("authorization", &auth)], "")
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    let spent = s.idp.calls() - 1;
    assert!(spent <= 70, "{spent} IdP calls for 1 000 unknown tokens");
    // The cached active token still passes, with no new call.
    assert_eq!(call(&s.gw, "/open", "real-user", &[]).await.status, 200);
    assert_eq!(s.idp.calls(), spent + 1);
    // Another client address still gets its own new token introspected.
    let req = "GET /open HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer other-user\r\nConnection: close\r\n\r\n";
    let text = support::raw_from("127.0.0.2".parse().unwrap(), s.gw.addr, req.as_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn a_token_not_of_the_declared_shape_is_never_sent_to_the_idp() {
    let s = setup_with("    token_prefix: kc_\n    token_length: 10\n").await;
    s.idp.answers.lock().unwrap().insert(
        "kc_1234567".into(),
        json!({"active": true, "client_id": "billing", "scope": "read", "exp": now() + 600,
               "iss": ISS, "aud": "orders-api"}),
    );
    for t in ["abc", "kc_toolongtoken", "xx_1234567"] {
        assert_eq!(call(&s.gw, "/open", t, &[]).await.status, 401);
    }
    assert_eq!(s.idp.calls(), 0);
    assert_eq!(call(&s.gw, "/open", "kc_1234567", &[]).await.status, 200);
    assert_eq!(s.idp.calls(), 1);
}

#[tokio::test]
async fn a_real_rotation_is_seen_within_5_s_during_a_flood_of_made_up_kids() {
    let s = setup().await;
    let stranger = IdpKey::es256("x");
    for n in 0..200 {
        let t = stranger.sign_as(&format!("made-up-{n}"), &claims("read"));
        assert_eq!(call(&s.gw, "/open", &t, &[]).await.status, 401);
    }
    // The IdP rotates: its new tokens pass within 5 s.
    let k2 = IdpKey::es256("k2");
    s.idp.publish(&[&s.key, &k2]);
    let rotated = std::time::Instant::now();
    let token = k2.sign(&claims("read"));
    loop {
        let r = call(&s.gw, "/open", &token, &[]).await;
        if r.status == 200 {
            break;
        }
        assert!(
            rotated.elapsed() < Duration::from_secs(5),
            "the new key is still refused after {:?}",
            rotated.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.idp.fetches() <= 5, "{} JWKS fetches", s.idp.fetches());
}

#[tokio::test]
async fn a_user_token_or_one_meant_for_another_service_is_not_an_app_token() {
    let s = setup().await;
    // A user of the realm whose sub is a local app id: no client claim, no app.
    let user = json!({ "iss": ISS, "aud": ["orders-api"], "sub": "coupang", "scope": "read",
                       "exp": now() + 600, "iat": now() });
    let r = call(&s.gw, "/open", &s.key.sign(&user), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // A client token of the realm meant for another service.
    let mut other = claims("read");
    other["aud"] = json!(["billing-api"]);
    let r = call(&s.gw, "/open", &s.key.sign(&other), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // A sender-constrained token (DPoP `jkt`) is never accepted as a bearer token.
    let mut bound = claims("read");
    bound["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
    let r = call(&s.gw, "/open", &s.key.sign(&bound), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // The same client token meant for this API passes, as its client.
    let r = call(&s.gw, "/open", &s.key.sign(&claims("read")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-tollgate-app"], "billing");
}
