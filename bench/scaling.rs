//! Whether the hot path's cost depends on how much there is: route match with 10 to 10 000
//! routes (the first and the last route), and a hot-map hit with 1 000 to 1 000 000 tokens.
//! Run: `cargo bench --bench scaling`.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::Method;
use std::hint::black_box;
use std::sync::Arc;
use tollgate::config::Dialect;
use tollgate::principal::Principal;
use tollgate::route::{normalise, Match};
use tollgate::state::Gateway;
use tollgate::store::hot::HotTokens;

fn gateway(routes: usize) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = format!(
        "listen: {{ address: \"127.0.0.1:0\" }}\nstore: {{ path: {}/db }}\nupstreams: {{ api: {{ targets: [\"http://127.0.0.1:9\"] }} }}\nroutes:\n",
        dir.path().display()
    );
    for i in 0..routes {
        yaml.push_str(&format!(
            "  - {{ path: \"/svc{i}/items/{{id}}\", upstream: api, auth: none }}\n"
        ));
    }
    let cfg = tollgate::config::load_str(&yaml, &dir.path().join("bench.yaml")).unwrap();
    (Gateway::new(cfg).unwrap(), dir)
}

fn routes(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match_by_routes");
    for n in [10, 100, 1_000, 10_000] {
        let (gw, _dir) = gateway(n);
        let rt = gw.runtime();
        for (which, path) in [
            ("first", "/svc0/items/42".to_owned()),
            ("last", format!("/svc{}/items/42", n - 1)),
        ] {
            g.bench_with_input(BenchmarkId::new(which, n), &path, |b, path| {
                b.iter(|| {
                    let p = normalise(black_box(path)).unwrap();
                    matches!(rt.table.find(&Method::GET, &p), Match::Found(_))
                })
            });
        }
    }
    g.finish();
}

fn tokens(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_hit_by_tokens");
    for n in [1_000u32, 100_000, 1_000_000] {
        let hot = HotTokens::new(n as usize);
        let token = |i: u32| format!("eyJhbGciOiJSUzI1NiJ9.payload-{i:0>600}.signature");
        for i in 0..n {
            let p = Principal::new(
                "coupang".into(),
                Dialect::Oauth,
                u64::MAX,
                format!("{i:032X}").into(),
            );
            hot.insert(hot.key(&token(i)), None, Arc::new(p), 0);
        }
        let probe = token(n / 2);
        g.bench_with_input(BenchmarkId::from_parameter(n), &probe, |b, t| {
            b.iter(|| black_box(hot.get(&hot.key(black_box(t))).is_some()))
        });
    }
    g.finish();
}

criterion_group!(benches, routes, tokens);
criterion_main!(benches);
