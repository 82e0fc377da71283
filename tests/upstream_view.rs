//! Issue 27 (5): what reaches the upstream is exactly the README's table "What reaches the
//! upstream": a request carrying every header named there arrives with the documented set.

mod support;

use std::collections::BTreeSet;
use support::{app_yaml, Gateway, Upstream};

#[tokio::test]
async fn the_upstream_receives_exactly_the_documented_headers() {
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}upstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /api, upstream: api }}\n",
        app_yaml(),
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    let token = gw.token().await;
    let sent: &[(&str, &str)] = &[
        ("authorization", &token),
        ("user-agent", "curl/8"),
        ("x-custom", "kept"),
        ("x-request-id", "req-1"),
        // Removed: hop-by-hop fields and what Connection names.
        ("connection", "x-hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("proxy-authorization", "Basic eA=="),
        // Removed: forged identity, under either spelling.
        ("x-tollgate-app", "root"),
        ("x_tollgate_scope", "admin"),
        ("x_forwarded_for", "6.6.6.6"),
        // Removed: what a framework reads as the client's address, a routing or method
        // override, or a second credential.
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("client-ip", "6.6.6.6"),
        ("x-client-ip", "6.6.6.6"),
        ("true-client-ip", "6.6.6.6"),
        ("x-cluster-client-ip", "6.6.6.6"),
        ("cf-connecting-ip", "6.6.6.6"),
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
        ("x-forwarded-prefix", "/evil"),
        ("x-forwarded-port", "1"),
        (
            "x-bkapi-authorization",
            r#"{"bk_app_code":"a","bk_app_secret":"s"}"#,
        ),
        ("bkflow_token", "x"),
        // Replaced by tollgate's own.
        ("x-forwarded-for", "10.9.9.9"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
    ];
    let r = gw.get("/api", sent).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.json()["headers"].clone();
    let names: BTreeSet<&str> = seen
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = [
        "host",
        "user-agent",
        "x-custom",
        "x-request-id",
        "x-tollgate-app",
        "x-tollgate-dialect",
        "x-tollgate-scope",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, want, "{seen}");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], gw.addr.to_string());
    assert_eq!(seen["x-request-id"], "req-1");
    assert_eq!(seen["x-tollgate-app"], "coupang");
    assert_eq!(seen["x-tollgate-dialect"], "oauth");
    assert_eq!(seen["x-custom"], "kept");
}

#[tokio::test]
async fn a_method_an_upstream_would_read_as_another_is_refused() {
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}upstreams:\n  api: {{ targets: [\"{}\"] }}\nroutes:\n  - {{ path: /api, upstream: api, auth: none }}\n",
        app_yaml(),
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    // Django and Symfony upper-case `delete`; Laravel and Rack read `_method` as the method.
    for (method, path) in [
        ("delete", "/api"),
        ("Get", "/api"),
        ("POST", "/api?_method=DELETE"),
        ("POST", "/api?_METHOD=DELETE"),
        ("POST", "/api?_method[]=DELETE"),
        ("POST", "/api?a=1;_method=DELETE"),
        ("GET", "/api?%5Fmethod=DELETE"),
    ] {
        let r = gw.client.send(method, &gw.url(path), &[], "").await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.body);
    }
    assert_eq!(gw.get("/api?method=x&a_method=y", &[]).await.status, 200);
}
