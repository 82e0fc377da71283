//! Fuzzing over real sockets, bounded for CI: every dialect's request parser (each issuing
//! endpoint) and the guard's token extraction get generated bodies, queries and headers, and
//! never answer 5xx nor stop answering. (`fuzz/` holds the cargo-fuzz targets for longer runs.)

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;
use support::{Gateway, Upstream};

/// JSON-ish bodies: the seed requests' keys with any values, and plain noise.
fn bodies() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "app_id",
        "app_secret",
        "app_key",
        "appKey",
        "appSecurity",
        "accessToken",
        "refreshToken",
        "app_ticket",
        "app_access_token",
        "tenant_key",
        "bk_app_code",
        "bk_app_secret",
        "bk_username",
        "resource_type",
        "resource_id",
        "permission_type",
        "token",
        "user",
        "name",
        "desc",
        "type",
        "content",
        "grant_type",
        "client_id",
        "client_secret",
    ]);
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9_*:%é\\-]{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just(r#"{"bk_app_code":"x","bk_app_secret":"*********"}"#.to_owned()),
        Just("[1,2]".to_owned()),
        Just(r#""TEMPLATE""#.to_owned()),
        Just(r#""coupang""#.to_owned()),
    ];
    prop_oneof![
        4 => prop::collection::vec((key, value), 0..8).prop_map(|kv| {
            let inner: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", inner.join(","))
        }),
        1 => "[ -~]{0,80}",
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn draw<T: std::fmt::Debug>(
    runner: &mut TestRunner,
    s: &impl Strategy<Value = T>,
    n: usize,
) -> Vec<T> {
    (0..n)
        .map(|_| s.new_tree(runner).unwrap().current())
        .collect()
}

#[tokio::test]
async fn no_dialect_request_gets_a_5xx() {
    let up = Upstream::echo().await;
    let yaml = format!(
        r#"apps:
  - {{ id: coupang, secret: coupangTest, space_id: 3, user: admin, oauth_scopes: [a], grants: [ {{ resource: TEMPLATE, id: "*", permission: EDIT }} ] }}
dialects:
  oauth: {{}}
  hosecloud: {{}}
  feishu: {{}}
  bkflow: {{}}
limits: {{ token_rate: {{ per_ip: 10000/s, per_ip_burst: 10000, per_app_failures: 10000/s, per_app: 10000/s, per_app_burst: 10000 }} }}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: "/api/*rest", upstream: api }}
"#,
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    let endpoints = [
        "/oauth/token/get",
        "/oauth/token",
        "/auth/openApi/v3/getAccessToken",
        "/auth/openApi/v3/refreshToken",
        "/api/openapi/v2/auth/refreshToken",
        "/open-apis/auth/v3/app_access_token",
        "/open-apis/auth/v3/app_access_token/internal",
        "/open-apis/auth/v3/tenant_access_token",
        "/open-apis/auth/v3/tenant_access_token/internal",
        "/open-apis/auth/v3/app_ticket/resend",
        "/bkflow/space/3/apply_token/",
        "/bkflow/space/3/revoke_token/",
        "/bkflow/space/3/create_credential/",
    ];
    let mut runner = TestRunner::deterministic();
    let queries = draw(&mut runner, &"[a-zA-Z_=&%0-9]{0,40}", 40);
    let ctypes = [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ];
    for (e, ep) in endpoints.iter().enumerate() {
        for (i, body) in draw(&mut runner, &bodies(), 40).into_iter().enumerate() {
            let url = gw.url(&format!("{ep}?{}", queries[i]));
            let ct = ctypes[(i + e) % ctypes.len()];
            let mut h = vec![];
            if !ct.is_empty() {
                h.push(("content-type", ct));
            }
            if i % 5 == 0 && http::HeaderValue::from_str(&body).is_ok() {
                h.push(("x-bkapi-authorization", body.as_str()));
            }
            let r = gw.client.send("POST", &url, &h, &body).await;
            assert!(
                r.status.as_u16() < 500,
                "{ep} {body:?}: {} {}",
                r.status,
                r.body
            );
        }
    }
}

#[tokio::test]
async fn no_token_or_header_gets_a_5xx_from_the_guard() {
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}upstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: \"/api/{{id}}\", upstream: api, require: {{ resource: TASK, id: \"{{query:id}}\", permission: VIEW, space: \"3\" }} }}\n",
        support::app_yaml(),
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    let mut runner = TestRunner::deterministic();
    let tokens = draw(&mut runner, &"[ -~]{0,120}", 200);
    let queries = draw(
        &mut runner,
        &"(accessToken|access%54oken|id|x)=[A-Za-z0-9.%_-]{0,30}(&(accessToken|id)=[a-z.]{0,9})?",
        200,
    );
    for (t, q) in tokens.iter().zip(&queries) {
        let r = gw
            .client
            .send(
                "GET",
                &gw.url(&format!("/api/1?{q}")),
                &[
                    ("authorization", &format!("Bearer {t}")),
                    ("bkflow-token", t),
                ],
                "",
            )
            .await;
        assert!(
            r.status.as_u16() < 500,
            "{t:?} {q:?}: {} {}",
            r.status,
            r.body
        );
    }
}
