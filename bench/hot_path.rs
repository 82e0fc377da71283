//! Hot-path benchmarks, each beside its baseline in the same run:
//! normalise + match vs a `HashMap` lookup; token check on a hot hit vs a bare SHA-256 +
//! dashmap lookup, and an external issuer's cached JWT vs tollgate's own; header rewrite vs
//! cloning the header map.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method, Request};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use tollgate::guard;
use tollgate::proxy::ConnInfo;
use tollgate::route::{normalise, Match};
use tollgate::state::exchange::Exchange;
use tollgate::state::{Gateway, Target};

const YAML: &str = r#"
listen: { address: "127.0.0.1:0" }
apps: [{ id: coupang, secret: plain-secret-for-bench, oauth_scopes: [bailunApi] }]
dialects: { oauth: {} }
upstreams: { product: { targets: ["http://127.0.0.1:9"] } }
routes:
  - { path: /product, methods: [GET], upstream: product, auth: none }
  - { path: /product/get, methods: [GET], upstream: product }
  - { path: "/sdk/task/{task_id}/{action}/", upstream: product }
  - { path: /static/*rest, upstream: product, auth: none }
"#;

const IDP_ISS: &str = "https://idp.bench";

/// An external issuer's ES256 key: its JWKS (written to `dir`) and its encoding key.
fn idp_key(dir: &std::path::Path) -> jsonwebtoken::EncodingKey {
    use base64::Engine as _;
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": "k1",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..]) }] });
    std::fs::write(dir.join("jwks.json"), jwks.to_string()).unwrap();
    jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap()
}

fn gateway() -> (Gateway, tempfile::TempDir, jsonwebtoken::EncodingKey) {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp_key(dir.path());
    let yaml = format!(
        "{YAML}store: {{ path: {d}/db }}\nissuers:\n  - {{ name: idp, issuer: \"{IDP_ISS}\", jwks_file: {d}/jwks.json, algorithms: [ES256], audiences: [api] }}\n",
        d = dir.path().display()
    );
    let cfg = tollgate::config::load_str(&yaml, &dir.path().join("bench.yaml")).unwrap();
    (Gateway::new(cfg).unwrap(), dir, idp)
}

fn bench(c: &mut Criterion) {
    let (gw, _dir, idp) = gateway();
    let rt = gw.runtime();
    let shared = &gw.shared;

    let mut g = c.benchmark_group("route");
    let mut baseline: HashMap<&str, usize> = HashMap::new();
    for (i, r) in ["/product", "/product/get", "/sdk/task", "/static"]
        .iter()
        .enumerate()
    {
        baseline.insert(r, i);
    }
    g.bench_function("hashmap_lookup_baseline", |b| {
        b.iter(|| black_box(baseline.get(black_box("/product/get"))))
    });
    g.bench_function("normalise_and_match", |b| {
        b.iter(|| {
            let p = normalise(black_box("/product/get")).unwrap();
            matches!(rt.table.find(&Method::GET, &p), Match::Found(_))
        })
    });
    g.bench_function("normalise_and_match_param", |b| {
        b.iter(|| {
            let p = normalise(black_box("/sdk/task/42/operate/")).unwrap();
            matches!(rt.table.find(&Method::POST, &p), Match::Found(_))
        })
    });
    g.bench_function("normalise_and_match_disguised", |b| {
        b.iter(|| {
            let p = normalise(black_box("//x/../product/%67et")).unwrap();
            matches!(rt.table.find(&Method::GET, &p), Match::Found(_))
        })
    });
    g.finish();

    let app = rt.apps.get("coupang").unwrap().clone();
    let minted = tollgate::issue::core::mint_jwt(
        &rt,
        shared,
        &app,
        tollgate::issue::core::JwtSpec::oauth(
            std::time::Duration::from_secs(3600),
            vec!["bailunApi".into()],
        ),
    )
    .unwrap();
    let token = minted.token;
    guard::verify::principal(&token, &rt, shared).unwrap();
    let mut g = c.benchmark_group("token");
    let map: dashmap::DashMap<[u8; 32], u64> = dashmap::DashMap::new();
    map.insert(tollgate::token::opaque::hash(&token), 1);
    g.bench_function("sha256_dashmap_baseline", |b| {
        b.iter(|| {
            black_box(
                map.get(&tollgate::token::opaque::hash(black_box(&token)))
                    .is_some(),
            )
        })
    });
    let keyer = tollgate::store::hot::HotKeyer::new();
    let keyed: dashmap::DashMap<[u8; 16], u64> = dashmap::DashMap::new();
    keyed.insert(keyer.key(&token), 1);
    g.bench_function("gmac_dashmap_baseline", |b| {
        b.iter(|| black_box(keyed.get(&keyer.key(black_box(&token))).is_some()))
    });
    g.bench_function("check_hot_hit", |b| {
        b.iter(|| black_box(guard::verify::principal(black_box(&token), &rt, shared).unwrap()))
    });
    // The guard's hot path (key, map, generation, revocation and expiry checks) for tollgate's
    // own cached JWT and for a cached JWT of an external issuer.
    // Padded to the own token's length, so the two differ in their path, not in bytes hashed.
    let sign_ext = |pad: usize| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some("k1".into());
        let exp = tollgate::token::now_secs() + 3600;
        let claims = serde_json::json!({ "iss": IDP_ISS, "aud": "api", "client_id": "billing",
            "scope": "bailunApi", "exp": exp, "pad": "x".repeat(pad) });
        jsonwebtoken::encode(&h, &claims, &idp).unwrap()
    };
    let short = sign_ext(0).len();
    let ext = sign_ext(token.len().saturating_sub(short) * 3 / 4);
    let warm = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    warm.block_on(guard::resolve(&ext, None, &rt, shared))
        .unwrap();
    println!("token lengths: own {} external {}", token.len(), ext.len());
    for (name, t) in [
        ("guard_hot_own_jwt", &token),
        ("guard_hot_external_jwt", &ext),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let key = shared.hot.key(black_box(t));
                black_box(guard::verify::hot(&key, &rt, shared).unwrap().unwrap())
            })
        });
    }
    g.bench_function("check_cold_rs256_verify", |b| {
        b.iter(|| black_box(rt.keys.verify(black_box(&token)).unwrap()))
    });
    g.finish();

    let route = match rt.table.find(&Method::GET, "/product/get") {
        Match::Found(e) => match e.value.target {
            Target::Proxy(i) => &rt.routes[i],
            _ => unreachable!(),
        },
        _ => unreachable!(),
    };
    let auth = format!("Bearer {token}");
    let req = Request::get("/product/get?id=1")
        .header("host", "gw.example")
        .header("user-agent", "curl/8")
        .header("accept", "*/*")
        .header("authorization", &auth)
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let one_shot = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let peer: std::net::SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let conn = ConnInfo::new(peer, peer.ip(), false, true, None);
    let rid = HeaderValue::from_static("0123456789abcdef0123456789abcdef");
    let gw = Arc::new(gw);
    let ex = Exchange {
        route,
        rt: &rt,
        gw: &gw,
        conn: &conn,
        request_id: &rid,
    };
    let permit = one_shot
        .block_on(guard::check(ex, &parts, "/product/get"))
        .permit
        .unwrap();
    let mut g = c.benchmark_group("headers");
    let headers: HeaderMap = parts.headers.clone();
    g.bench_function("clone_baseline", |b| b.iter(|| black_box(headers.clone())));
    g.bench_function("rewrite", |b| {
        b.iter(|| {
            let mut p = Request::new(());
            *p.headers_mut() = headers.clone();
            let (mut p, ()) = p.into_parts();
            tollgate::proxy::headers::prepare(&mut p, ex, &permit);
            black_box(p)
        })
    });
    g.finish();
    drop(Arc::clone(&rt));
}

criterion_group!(benches, bench);
criterion_main!(benches);
