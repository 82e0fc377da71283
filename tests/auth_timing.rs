//! Not a test of speed: a measurement, run by hand (`bench/README.md`), of whether an unknown
//! app id answers as slowly as a wrong secret (argon2id secrets), so ids cannot be enumerated.
//! Ignored by default: timings belong in benchmarks, not in assertions CI runs.

mod support;

use std::time::{Duration, Instant};
use support::{Gateway, Upstream, SECRET};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
#[ignore = "a measurement: cargo test --release --test auth_timing -- --ignored --nocapture"]
async fn unknown_app_and_wrong_secret_take_the_same_time() {
    let up = Upstream::echo().await;
    let yaml = format!(
        "{}limits: {{ token_rate: {{ per_ip: 1000/s, per_ip_burst: 1000, per_app_failures: 1000/s, per_app: 1000/s, per_app_burst: 1000 }} }}\nupstreams:\n  api: {{ targets: [\"{}\"] }}\n",
        support::app_yaml(),
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    let _ = SECRET;
    let send = |id: &str, secret: &str| {
        let body = format!(r#"{{"app_id":"{id}","app_secret":"{secret}"}}"#);
        let client = gw.client.clone();
        let url = gw.url("/oauth/token/get");
        async move {
            let t = Instant::now();
            let r = client
                .send("POST", &url, &[("content-type", "application/json")], &body)
                .await;
            assert_eq!(r.status, 401, "{}", r.body);
            t.elapsed()
        }
    };
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..40 {
        // Alternate the order of the two kinds, round by round.
        if i % 2 == 0 {
            unknown.push(send(&format!("nobody{i}"), "x").await);
            wrong.push(send("coupang", &format!("wrong{i}")).await);
        } else {
            wrong.push(send("coupang", &format!("wrong{i}")).await);
            unknown.push(send(&format!("nobody{i}"), "x").await);
        }
    }
    let (u, w) = (median(unknown), median(wrong));
    let ratio = u.as_secs_f64().max(w.as_secs_f64()) / u.as_secs_f64().min(w.as_secs_f64());
    println!("median unknown app {u:?}, wrong secret {w:?}, ratio {ratio:.2}");
    assert!(ratio < 1.5, "unknown {u:?} vs wrong {w:?}");
}
