//! The hosecloud dialect (seed 001, DIALECTS §6 and §9 items 20-23) over real sockets.

mod support;

use std::time::Duration;
use support::{jwt_parts, Gateway, Upstream};

const SEED_REQUEST: &str = include_str!("fixtures/seeds/001_get_access_token.request.json");

fn yaml(up: &Upstream, ttl: &str, leeway: &str) -> String {
    format!(
        r#"signing: {{ issuer: https://gw.test, leeway: {leeway} }}
apps:
  - {{ id: "xxxx-xxxx-xxxx-xxxx-xxxx", secret: "xxxx-xxxx-xxxx-xxxx-xxxx", corp_id: 1NUaicKTEw0000, scope: tenant }}
  - {{ id: platform-app, secret: platform-secret, scope: platform }}
dialects:
  hosecloud: {{ ttl: {ttl}, refresh_ttl: 30d }}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: /api/openapi/v1/departments, upstream: api, errors: hosecloud }}
  - {{ path: /platform/only, upstream: api, errors: hosecloud, require: {{ level: platform }} }}
  - {{ path: /oauth/only, upstream: api, errors: hosecloud, dialects: [oauth] }}
"#,
        up.url()
    )
}

#[tokio::test]
async fn the_seed_request_gets_the_seed_envelope_and_a_matching_jwt() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "2h", "30s")).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let r = gw
        .post("/auth/openApi/v3/getAccessToken", &[], SEED_REQUEST)
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "msg", "data"]);
    assert_eq!(v["code"], "200", "code is a string");
    assert_eq!(v["msg"], "操作成功");
    let d = &v["data"];
    let dkeys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        dkeys,
        [
            "corpId",
            "accessToken",
            "refreshToken",
            "expiresTime",
            "scope"
        ]
    );
    assert_eq!(d["corpId"], "1NUaicKTEw0000");
    assert_eq!(d["scope"], "tenant");
    let refresh = d["refreshToken"].as_str().unwrap();
    assert_eq!(refresh.len(), 60);
    assert!(refresh.bytes().all(|b| b.is_ascii_alphanumeric()));
    let expires = d["expiresTime"]
        .as_u64()
        .expect("expiresTime is an integer");
    assert!(
        expires.abs_diff(before + 7_200_000) < 5_000,
        "about now + 2 h in ms"
    );
    let (header, claims) = jwt_parts(d["accessToken"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["exp"].as_u64().unwrap() * 1000, expires);
    assert_eq!(claims["scope"], d["scope"]);
    assert_eq!(claims["corporationId"], "1NUaicKTEw0000");
    assert_eq!(claims["loginType"], "login");
}

#[tokio::test]
async fn errors_keep_the_hosecloud_envelope_on_http_200() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "2h", "30s")).await;
    let wrong = gw
        .post(
            "/auth/openApi/v3/getAccessToken",
            &[],
            r#"{"appKey":"xxxx-xxxx-xxxx-xxxx-xxxx","appSecurity":"nope"}"#,
        )
        .await;
    assert_eq!(wrong.status, 200);
    assert_eq!(
        wrong.json(),
        serde_json::json!({ "code": "403", "msg": "密钥无效", "data": "" })
    );
    let unknown = gw
        .post(
            "/auth/openApi/v3/getAccessToken",
            &[],
            r#"{"appKey":"ghost","appSecurity":"x"}"#,
        )
        .await;
    assert_eq!(unknown.json()["code"], "403");
    for bad in [
        r#"{"appKey":"xxxx-xxxx-xxxx-xxxx-xxxx"}"#,
        r#"{"appKey":1,"appSecurity":2}"#,
        "not json",
        "",
    ] {
        let r = gw.post("/auth/openApi/v3/getAccessToken", &[], bad).await;
        assert_eq!(r.status, 200, "{bad}");
        let v = r.json();
        assert_eq!(v["code"], "500");
        assert_eq!(v["msg"], "system error");
        assert!(v["data"].is_null());
        let trace = v["traceId"].as_str().unwrap();
        assert!(
            trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()),
            "{trace}"
        );
    }
}

async fn token(gw: &Gateway, key: &str, secret: &str) -> (String, String) {
    let r = gw
        .post(
            "/auth/openApi/v3/getAccessToken",
            &[],
            &format!(r#"{{"appKey":"{key}","appSecurity":"{secret}"}}"#),
        )
        .await;
    let d = &r.json()["data"];
    (
        d["accessToken"].as_str().unwrap().to_owned(),
        d["refreshToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_token_works_in_the_query_and_as_bearer_and_levels_are_enforced() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "2h", "30s")).await;
    let (tenant, _) = token(&gw, "xxxx-xxxx-xxxx-xxxx-xxxx", "xxxx-xxxx-xxxx-xxxx-xxxx").await;
    let q = gw
        .get(
            &format!("/api/openapi/v1/departments?start=0&accessToken={tenant}"),
            &[],
        )
        .await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert_eq!(
        q.json()["path"],
        "/api/openapi/v1/departments?start=0",
        "accessToken is removed before forwarding"
    );
    assert_eq!(q.json()["headers"]["x-tollgate-dialect"], "hosecloud");
    let b = gw
        .get(
            "/api/openapi/v1/departments",
            &[("authorization", &format!("Bearer {tenant}"))],
        )
        .await;
    assert_eq!(b.status, 200);

    let garbage = gw
        .get("/api/openapi/v1/departments?accessToken=garbage", &[])
        .await;
    assert_eq!(garbage.status, 401);
    let v = garbage.json();
    assert_eq!(v["code"], "401");
    assert!(v["data"].is_null() && v["msg"].is_string());
    let none = gw.get("/api/openapi/v1/departments", &[]).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), "Bearer realm=\"tollgate\"");

    let denied = gw
        .get(&format!("/platform/only?accessToken={tenant}"), &[])
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["code"], "403");
    assert!(denied.json()["msg"].as_str().unwrap().contains("platform"));
    let (platform, _) = token(&gw, "platform-app", "platform-secret").await;
    assert_eq!(
        gw.get(&format!("/platform/only?accessToken={platform}"), &[])
            .await
            .status,
        200
    );
    assert_eq!(
        gw.get(
            &format!("/api/openapi/v1/departments?accessToken={platform}"),
            &[]
        )
        .await
        .status,
        200,
        "platform covers tenant"
    );
    assert_eq!(
        gw.get(&format!("/oauth/only?accessToken={platform}"), &[])
            .await
            .status,
        401,
        "a route may narrow dialects"
    );
}

#[tokio::test]
async fn refresh_rotates_both_tokens_once_through_v3_and_v2() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "2h", "30s")).await;
    let (access, refresh) =
        token(&gw, "xxxx-xxxx-xxxx-xxxx-xxxx", "xxxx-xxxx-xxxx-xxxx-xxxx").await;
    let body = format!(r#"{{"accessToken":"{access}","refreshToken":"{refresh}"}}"#);
    let r = gw
        .post("/auth/openApi/v3/refreshToken", &[], &body)
        .await
        .json();
    assert_eq!(r["code"], "200", "{r}");
    let access2 = r["data"]["accessToken"].as_str().unwrap().to_owned();
    let refresh2 = r["data"]["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(access2, access);
    assert_ne!(refresh2, refresh);
    let again = gw
        .post("/auth/openApi/v3/refreshToken", &[], &body)
        .await
        .json();
    assert_eq!(again["code"], "403", "a refresh token is single use");
    assert_eq!(
        gw.get(
            &format!("/api/openapi/v1/departments?accessToken={access}"),
            &[]
        )
        .await
        .status,
        401,
        "the old access token is rotated out"
    );
    assert_eq!(
        gw.get(
            &format!("/api/openapi/v1/departments?accessToken={access2}"),
            &[]
        )
        .await
        .status,
        200
    );

    let v2 = format!("/api/openapi/v2/auth/refreshToken?accessToken={access2}&refreshToken={refresh2}&powerCode=219904");
    let r = gw.client.send("POST", &gw.url(&v2), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let value = &r.json()["value"];
    assert!(value["accessToken"].is_string() && value["refreshToken"].is_string());
    assert_eq!(value["corporationId"], "1NUaicKTEw0000");
    let (_, c) = jwt_parts(value["accessToken"].as_str().unwrap());
    assert_eq!(
        c["exp"].as_u64().unwrap() * 1000,
        value["expireTime"].as_u64().unwrap()
    );
    let reuse = gw.client.send("POST", &gw.url(&v2), &[], "").await;
    assert_eq!(reuse.status, 403);
    // A refresh token presented with someone else's access token is refused and not burnt.
    let (other, _) = token(&gw, "platform-app", "platform-secret").await;
    let fresh = value["refreshToken"].as_str().unwrap();
    let wrong_pair = format!(r#"{{"accessToken":"{other}","refreshToken":"{fresh}"}}"#);
    assert_eq!(
        gw.post("/auth/openApi/v3/refreshToken", &[], &wrong_pair)
            .await
            .json()["code"],
        "403"
    );
    let right_pair = format!(
        r#"{{"accessToken":"{}","refreshToken":"{fresh}"}}"#,
        value["accessToken"].as_str().unwrap()
    );
    assert_eq!(
        gw.post("/auth/openApi/v3/refreshToken", &[], &right_pair)
            .await
            .json()["code"],
        "200"
    );
}

#[tokio::test]
async fn an_expired_access_token_cannot_be_refreshed() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up, "1s", "0s")).await;
    let (access, refresh) =
        token(&gw, "xxxx-xxxx-xxxx-xxxx-xxxx", "xxxx-xxxx-xxxx-xxxx-xxxx").await;
    gw.advance(Duration::from_millis(2100));
    let expired = gw
        .get(
            &format!("/api/openapi/v1/departments?accessToken={access}"),
            &[],
        )
        .await;
    assert_eq!(expired.status, 401);
    assert!(expired.json()["msg"].as_str().unwrap().contains("expired"));
    let body = format!(r#"{{"accessToken":"{access}","refreshToken":"{refresh}"}}"#);
    assert_eq!(
        gw.post("/auth/openApi/v3/refreshToken", &[], &body)
            .await
            .json()["code"],
        "403"
    );
}
