//! Issue 26: a route's `rate_limit:` per app (the token's) or per client address: 429 in the
//! route's error style with `Retry-After`, `RateLimit-Policy` and `RateLimit`, counted per route,
//! and nobody else's budget touched.

mod support;

use support::{app_yaml, metric_value, raw_from, Gateway, Upstream};

fn yaml(up: &Upstream) -> String {
    format!(
        r#"{}upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: /per-app, upstream: api, errors: feishu, rate_limit: {{ key: app, rate: 1/min, burst: 3 }} }}
  - {{ path: /per-ip, upstream: api, auth: none, errors: bkflow, rate_limit: {{ key: ip, rate: 1/min, burst: 2 }} }}
  - {{ path: /free, upstream: api, auth: none }}
"#,
        app_yaml(),
        up.url()
    )
}

#[tokio::test]
async fn a_route_limit_per_app_refuses_that_app_only_in_the_routes_style() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    let m = gw.metrics().await;
    assert_eq!(
        metric_value(&m, r#"tollgate_rate_limited_total{route="/per-app"}"#),
        Some(0.0),
        "the series exists from the start:\n{m}"
    );
    let (a, b) = (gw.token().await, gw.plain_token().await);
    for _ in 0..3 {
        assert_eq!(
            gw.get("/per-app", &[("authorization", &a)]).await.status,
            200
        );
    }
    let r = gw.get("/per-app", &[("authorization", &a)]).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["code"], 99991400, "feishu style: {}", r.body);
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(r.header("ratelimit-policy"), "\"route\";q=3;w=180");
    assert!(
        r.header("ratelimit").starts_with("\"route\";r=0;t="),
        "{:?}",
        r.headers
    );
    // Another app keeps its own budget; a route without a limit is untouched.
    assert_eq!(
        gw.get("/per-app", &[("authorization", &b)]).await.status,
        200
    );
    assert_eq!(gw.get("/free", &[]).await.status, 200);
    // A request without a token is still a 401, not a 429.
    assert_eq!(gw.get("/per-app", &[]).await.status, 401);
    let m = gw.metrics().await;
    assert_eq!(
        metric_value(&m, r#"tollgate_rate_limited_total{route="/per-app"}"#),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test]
async fn a_route_limit_per_address_refuses_that_address_only() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(&up)).await;
    let get = |from: &'static str| {
        let addr = gw.addr;
        async move {
            let req = b"GET /per-ip HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
            raw_from(from.parse().unwrap(), addr, req).await
        }
    };
    for _ in 0..2 {
        assert!(get("127.0.0.5").await.starts_with("HTTP/1.1 200"));
    }
    let limited = get("127.0.0.5").await;
    assert!(limited.starts_with("HTTP/1.1 429"), "{limited}");
    assert!(
        limited.contains(r#""result":false"#) && limited.contains(r#""code":429"#),
        "bkflow style: {limited}"
    );
    assert!(
        limited
            .to_ascii_lowercase()
            .contains("ratelimit-policy: \"route\";q=2;w=120"),
        "{limited}"
    );
    assert!(
        get("127.0.0.6").await.starts_with("HTTP/1.1 200"),
        "another address has its own budget"
    );
    // The budget survives a reload.
    gw.reload(&yaml(&up));
    assert!(get("127.0.0.5").await.starts_with("HTTP/1.1 429"));
}
