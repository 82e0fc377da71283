//! Seed 003's flow end to end over TLS, and the token checks a guard must get right.

mod support;

use support::{app_yaml, jwt_parts, Gateway, Upstream, SECRET};

fn routes(up: &Upstream) -> String {
    format!(
        r#"{}upstreams:
  product: {{ targets: ["{}"] }}
routes:
  - {{ path: /product, methods: [GET], upstream: product, auth: none }}
  - {{ path: /product/get, methods: [GET], upstream: product, auth: bearer, require: {{ oauth_scope: bailunApi }} }}
  - {{ path: /admin-only, upstream: product, auth: bearer, require: {{ oauth_scope: admin }} }}
  - {{ path: /echo/*rest, upstream: product, auth: bearer }}
"#,
        app_yaml(),
        up.url()
    )
}

#[tokio::test]
async fn seed_003_flow_works_over_tls() {
    let up = Upstream::echo().await;
    let gw = Gateway::with(&routes(&up)).tls().start().await;

    let open = gw.get("/product", &[]).await;
    assert_eq!(open.status, 200);
    assert_eq!(open.json()["path"], "/product");

    let denied = gw.get("/product/get?id=1", &[]).await;
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.header("www-authenticate"),
        "Bearer realm=\"tollgate\""
    );
    assert_eq!(denied.json()["statusCode"], 401);

    let res = gw
        .client
        .send(
            "POST",
            &gw.url("/oauth/token/get"),
            &[("content-type", "applocation/json")],
            &format!(r#"{{"app_id":"coupang","app_secret":"{SECRET}"}}"#),
        )
        .await;
    assert_eq!(res.status, 200);
    let body = res.json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["appId", "accessToken", "expiresIn", "statusCode", "errMsg"]
    );
    assert_eq!(body["appId"], "coupang");
    assert_eq!(body["expiresIn"], 3600);
    assert_eq!(body["statusCode"], 200);
    assert!(body["errMsg"].is_null());
    let access = body["accessToken"].as_str().unwrap();
    let jwt = access
        .strip_prefix("Bearer ")
        .expect("accessToken carries the Bearer prefix");
    let (header, claims) = jwt_parts(jwt);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(claims["client_id"], "coupang");
    assert_eq!(claims["iss"], "https://gw.test");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    assert!(claims["nbf"].is_u64() && claims["jti"].is_string());
    assert_eq!(claims["scope"], serde_json::json!(["bailunApi"]));

    let ok = gw
        .get("/product/get?id=1", &[("authorization", access)])
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let seen = ok.json();
    assert_eq!(seen["path"], "/product/get?id=1");
    assert!(
        seen["headers"].get("authorization").is_none(),
        "the credential is not forwarded"
    );
    assert_eq!(seen["headers"]["x-tollgate-app"], "coupang");
    assert_eq!(seen["headers"]["x-tollgate-dialect"], "oauth");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    // An earlier hop a client that is not a trusted proxy names is replaced by its address.
    let relayed = gw
        .get(
            "/product/get?id=1",
            &[("authorization", access), ("x-forwarded-for", "10.0.0.9")],
        )
        .await;
    assert_eq!(relayed.json()["headers"]["x-forwarded-for"], "127.0.0.1");

    let forbidden = gw.get("/admin-only", &[("authorization", access)]).await;
    assert_eq!(forbidden.status, 403);
    assert!(forbidden
        .header("www-authenticate")
        .contains("error=\"insufficient_scope\""));
    assert!(forbidden.json()["errMsg"]
        .as_str()
        .unwrap()
        .contains("admin"));
}

#[tokio::test]
async fn bad_app_credentials_never_yield_a_token() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&routes(&up)).await;
    let post = |body: &'static str| {
        let gw = &gw;
        async move {
            gw.client
                .send("POST", &gw.url("/oauth/token/get"), &[], body)
                .await
        }
    };
    let wrong = post(r#"{"app_id":"coupang","app_secret":"nope"}"#).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["statusCode"], 401);
    assert_eq!(wrong.json()["errMsg"], "非法id");
    assert!(wrong.json()["accessToken"].is_null());
    assert_eq!(
        post(r#"{"app_id":"ghost","app_key":"x"}"#).await.status,
        401
    );
    assert_eq!(post(r#"{"app_id":"coupang"}"#).await.status, 400);
    assert_eq!(post("not json").await.status, 400);
    let by_key = post(r#"{"app_id":"coupang","app_key":"coupangTest"}"#).await;
    assert_eq!(by_key.status, 200, "app_key is accepted like app_secret");
    let plain = post(r#"{"app_id":"plain","app_secret":"plainSecret"}"#).await;
    assert_eq!(plain.status, 200);
    let get = gw
        .client
        .send("GET", &gw.url("/oauth/token/get"), &[], "")
        .await;
    assert_eq!(get.status, 405);
}

#[tokio::test]
async fn rfc6749_client_credentials_endpoint() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&routes(&up)).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("coupang:{SECRET}")
        )
    );
    let res = gw
        .client
        .send(
            "POST",
            &gw.url("/oauth/token"),
            &[form[0], ("authorization", &basic)],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("cache-control"), "no-store");
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "bailunApi");
    let auth = format!("Bearer {}", body["access_token"].as_str().unwrap());
    assert_eq!(
        gw.get("/product/get?id=3", &[("authorization", &auth)])
            .await
            .status,
        200
    );

    let body_auth =
        format!("grant_type=client_credentials&client_id=coupang&client_secret={SECRET}");
    assert_eq!(
        gw.client
            .send("POST", &gw.url("/oauth/token"), &form, &body_auth)
            .await
            .status,
        200
    );
    let bad = gw
        .client
        .send(
            "POST",
            &gw.url("/oauth/token"),
            &form,
            "grant_type=client_credentials&client_id=coupang&client_secret=x",
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"], "invalid_client");
    let grant = gw
        .client
        .send(
            "POST",
            &gw.url("/oauth/token"),
            &form,
            "grant_type=password",
        )
        .await;
    assert_eq!(grant.json()["error"], "unsupported_grant_type");
    let scope = format!("{body_auth}&scope=admin");
    assert_eq!(
        gw.client
            .send("POST", &gw.url("/oauth/token"), &form, &scope)
            .await
            .json()["error"],
        "invalid_scope"
    );
}

/// Signs `claims` with `key_pem` (RS256) for forged-token tests.
fn sign_rs256(key_pem: &str, kid: &str, claims: &serde_json::Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &h,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn tampered_expired_and_wrong_algorithm_tokens_get_401() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    let up = Upstream::echo().await;
    let gw = Gateway::start(&routes(&up)).await;
    let good = gw.token().await;
    let jwt = good.strip_prefix("Bearer ").unwrap();
    let (header, claims) = jwt_parts(jwt);
    let parts: Vec<&str> = jwt.split('.').collect();
    let check = |token: String, why: &'static str| {
        let gw = &gw;
        async move {
            let r = gw
                .get(
                    "/product/get?id=1",
                    &[("authorization", &format!("Bearer {token}"))],
                )
                .await;
            assert_eq!(r.status, 401, "{why}: {}", r.body);
            assert!(
                r.header("www-authenticate")
                    .contains("error=\"invalid_token\""),
                "{why}"
            );
            r
        }
    };

    // Tampered payload: scope widened, signature kept.
    let mut forged = claims.clone();
    forged["client_id"] = "someone-else".into();
    check(
        format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(forged.to_string()),
            parts[2]
        ),
        "tampered payload",
    )
    .await;
    // Flipped signature byte.
    let mut sig = B64.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    check(
        format!("{}.{}.{}", parts[0], parts[1], B64.encode(sig)),
        "tampered signature",
    )
    .await;
    // alg: none.
    let none = serde_json::json!({"alg": "none", "typ": "at+jwt"});
    check(
        format!("{}.{}.", B64.encode(none.to_string()), parts[1]),
        "alg none",
    )
    .await;
    // HS256 signed with our RSA public key (PEM, as JWKS-reading attackers do): the classic confusion attack.
    // The signing key is kept (sealed) in the store; the test reads it from the running gateway.
    let shared = &gw.running.as_ref().unwrap().gateway.shared;
    let key_pem = shared
        .ring
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .active()
        .pem
        .clone();
    let public_pem = rcgen::KeyPair::from_pem(&key_pem).unwrap().public_key_pem();
    let jwks = gw
        .client
        .send("GET", &gw.url("/.well-known/jwks.json"), &[], "")
        .await
        .json();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    check(hs, "HS256 with the public key").await;
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256);
    // Expired: signed with the gateway's own key (read from beside the store), exp in the past.
    let mut old = claims.clone();
    old["exp"] = (claims["iat"].as_u64().unwrap() - 3600).into();
    old["jti"] = "OLD".into();
    let expired = check(
        sign_rs256(&key_pem, header["kid"].as_str().unwrap(), &old),
        "expired",
    )
    .await;
    assert!(expired.json()["errMsg"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // Same claims signed by a key that is not ours.
    if let Ok(other) = pem {
        check(
            sign_rs256(
                &other.serialize_pem(),
                header["kid"].as_str().unwrap(),
                &claims,
            ),
            "foreign key",
        )
        .await;
    }
    // Wrong issuer, signed with our key.
    let mut iss = claims.clone();
    iss["iss"] = "https://evil.test".into();
    check(
        sign_rs256(&key_pem, header["kid"].as_str().unwrap(), &iss),
        "wrong issuer",
    )
    .await;
    check("garbage".to_owned(), "garbage").await;
    // The genuine token still works after all that.
    assert_eq!(
        gw.get("/product/get?id=1", &[("authorization", &good)])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn disguised_paths_reach_the_guarded_route_and_unsafe_ones_get_400() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&routes(&up)).await;
    for p in [
        "/product/%67et?id=1",
        "//product/get?id=1",
        "/x/../product/get?id=1",
        "/./product/get",
        "/product//get",
        "/product/%2E/get",
    ] {
        let r = gw.get(p, &[]).await;
        assert_eq!(r.status, 401, "{p} must hit the guarded route: {}", r.body);
    }
    let token = gw.token().await;
    let r = gw
        .get("/x/../product/%67et?id=9", &[("authorization", &token)])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["path"],
        "/product/get?id=9",
        "the normalised path is what is forwarded"
    );
    for p in [
        "/product%2Fget",
        "/product%5cget",
        "/product/get%00",
        "/product/%zz",
        "/../product/get",
    ] {
        let r = support::raw(
            gw.addr,
            format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 400"), "{p}: {r}");
    }
}

#[tokio::test]
async fn forged_identity_headers_never_reach_the_upstream() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&routes(&up)).await;
    let token = gw.token().await;
    let forged = [
        ("authorization", token.as_str()),
        ("x-tollgate-app", "root"),
        ("X-Tollgate-Scope", "admin"),
        ("x-tollgate-space", "1"),
        ("x-tollgate-user", "admin"),
        ("x-tollgate-anything", "1"),
        ("x-request-id", "client-chosen-id"),
        ("connection", "x-drop-me"),
        ("x-drop-me", "1"),
    ];
    let r = gw.get("/echo/a/b", &forged).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h = &r.json()["headers"];
    assert_eq!(h["x-tollgate-app"], "coupang");
    assert_eq!(h["x-tollgate-scope"], "bailunApi");
    for gone in [
        "x-tollgate-space",
        "x-tollgate-user",
        "x-tollgate-anything",
        "x-drop-me",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    assert_eq!(h["x-request-id"], "client-chosen-id");
    assert_eq!(r.header("x-request-id"), "client-chosen-id");
    // Unauthenticated routes strip them too.
    let open = gw.get("/product", &[("x-tollgate-app", "root")]).await;
    assert!(open.json()["headers"].get("x-tollgate-app").is_none());
}

#[tokio::test]
async fn token_in_the_query_is_accepted_and_not_forwarded() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&routes(&up)).await;
    let token = gw.token().await;
    let jwt = token.strip_prefix("Bearer ").unwrap();
    let r = gw
        .get(&format!("/product/get?id=4&accessToken={jwt}"), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/product/get?id=4");
}

#[tokio::test]
async fn a_known_good_secret_does_not_pay_argon2_again_but_a_wrong_one_always_does() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&routes(&up)).await;
    let secrets = &gw.running.as_ref().unwrap().gateway.shared.secrets;
    for _ in 0..3 {
        gw.token().await;
    }
    assert_eq!(
        secrets.argon2_runs(),
        1,
        "only the first request verifies with argon2"
    );
    for _ in 0..2 {
        let r = gw
            .client
            .send(
                "POST",
                &gw.url("/oauth/token/get"),
                &[],
                r#"{"app_id":"coupang","app_secret":"wrong"}"#,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(
        secrets.argon2_runs(),
        3,
        "a wrong secret is never answered from the cache"
    );
    gw.token().await;
    assert_eq!(secrets.argon2_runs(), 3);
}
