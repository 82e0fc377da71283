//! Issue 15: `deploy/grafana/tollgate.json` queries only metrics and labels `/metrics`
//! exposes. A gateway serving TLS is driven through every kind of traffic the dashboard
//! shows (proxied requests, refusals, token issuance, rate limiting, an unreachable
//! upstream, a failed handshake, a reload), then every metric and every label a panel
//! selects or groups by must appear in the scrape.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use support::{dead_addr, Gateway, TestClient, Upstream};

/// Labels Prometheus adds at scrape time, and the histogram bucket bound.
const SCRAPE_LABELS: [&str; 3] = ["job", "instance", "le"];

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

fn ident_end(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// Each metric an expression reads, with the labels its selector names, and the labels
/// the expression groups by.
fn parse(expr: &str) -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by = BTreeSet::new();
    let mut i = 0;
    while i < expr.len() {
        let rest = &expr[i..];
        let starts_word = i == 0
            || !expr.as_bytes()[i - 1].is_ascii_alphanumeric() && expr.as_bytes()[i - 1] != b'_';
        if starts_word && (rest.starts_with("tollgate_") || rest.starts_with("process_")) {
            let end = ident_end(rest);
            let name = rest[..end].to_owned();
            let labels = metrics.entry(name).or_default();
            if let Some(sel) = rest[end..].strip_prefix('{') {
                let close = sel.find('}').unwrap();
                for part in sel[..close].split(',') {
                    let l = part.trim();
                    let e = ident_end(l);
                    if e > 0 {
                        labels.insert(l[..e].to_owned());
                    }
                }
            }
            i += end;
            continue;
        }
        if starts_word && rest.starts_with("by (") {
            let close = rest.find(')').unwrap();
            for l in rest[4..close].split(',') {
                by.insert(l.trim().to_owned());
            }
            i += close;
            continue;
        }
        i += rest.chars().next().unwrap().len_utf8();
    }
    (metrics, by)
}

/// Metric family → labels seen on its samples, from a text exposition.
fn exposed(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = ident_end(line);
        let labels = out.entry(line[..end].to_owned()).or_default();
        if let Some(sel) = line[end..].strip_prefix('{') {
            for part in sel[..sel.find('}').unwrap()].split("\",") {
                if let Some((k, _)) = part.split_once('=') {
                    labels.insert(k.trim().to_owned());
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn the_dashboard_queries_only_what_metrics_exposes() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana/tollgate.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut all = Vec::new();
    exprs(&doc, &mut all);
    assert!(all.len() >= 16, "{} queries", all.len());

    let up = Upstream::echo().await;
    let yaml = format!(
        "{}upstreams:\n  api: {{ targets: [\"{}\"] }}\n  gone: {{ targets: [\"http://{}\"] }}\nroutes:\n  - {{ path: /p, upstream: api }}\n  - {{ path: /dead, upstream: gone, auth: none }}\nlimits: {{ token_rate: {{ per_ip: 1/min, per_ip_burst: 2 }} }}\n",
        support::app_yaml(),
        up.url(),
        dead_addr()
    );
    let gw = Gateway::with(&yaml).tls().start().await;
    let token = gw.token().await;
    assert_eq!(gw.get("/p", &[("authorization", &token)]).await.status, 200);
    assert_eq!(gw.get("/p", &[]).await.status, 401);
    assert_eq!(gw.get("/dead", &[]).await.status, 502);
    // Only secret verifications are charged (the known one is not): a wrong secret spends the
    // burst's second, the next is limited.
    let wrong = r#"{"app_id":"coupang","app_secret":"x"}"#;
    assert_eq!(gw.post("/oauth/token/get", &[], wrong).await.status, 401);
    let limited = gw
        .post(
            "/oauth/token/get",
            &[],
            r#"{"app_id":"coupang","app_secret":"x"}"#,
        )
        .await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    support::raw(gw.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await; // not TLS
    gw.reload(&yaml);
    let text = TestClient::plain()
        .send("GET", &gw.admin_url("/metrics"), &[], "")
        .await
        .body;
    let have = exposed(&text);
    for expr in &all {
        let (metrics, by) = parse(expr);
        assert!(!metrics.is_empty(), "no metric in {expr}");
        let mut seen_labels = BTreeSet::new();
        for (name, labels) in &metrics {
            let got = have
                .get(name)
                .unwrap_or_else(|| panic!("{expr}: {name} is not in /metrics:\n{text}"));
            for l in labels
                .iter()
                .filter(|l| !SCRAPE_LABELS.contains(&l.as_str()))
            {
                assert!(
                    got.contains(l),
                    "{expr}: {name} has no label {l} (it has {got:?})"
                );
            }
            seen_labels.extend(got.iter().cloned());
        }
        for l in by.iter().filter(|l| !SCRAPE_LABELS.contains(&l.as_str())) {
            assert!(
                seen_labels.contains(l),
                "{expr}: grouped by {l}, which none of {:?} has",
                metrics.keys()
            );
        }
    }
}
