//! Issue 29: the HTTP/1.1 conformance corpus in `tests/conformance/`, run over real sockets
//! against the release-shaped binary (`tollgate run`): each request-side case's raw bytes go to
//! the gateway and its answers, its closing and the exact bytes a recording upstream receives
//! are compared with the case; each response-side case has a raw upstream answer badly and
//! checks what the client gets and that the poisoned connection is not used again.
//!
//! `CONFORMANCE_BLESS=1 cargo test --test conformance` writes the observed upstream bytes into
//! the `forward:` lines of the cases whose answers already match (review the diff).
//!
//! The fuzzing that CI runs lives here too (`conformance/fuzz.rs`): the cargo-fuzz targets'
//! bodies in process, and the request path through the binary, each for a bounded time.

#[path = "conformance/cases.rs"]
mod cases;
#[path = "conformance/client.rs"]
mod client;
#[path = "conformance/fuzz.rs"]
mod fuzz;
mod support;
#[path = "conformance/upstreams.rs"]
mod upstreams;

use cases::{escape, Case};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;
use support::bin::{config_in, Proc};
use upstreams::{Recorder, Responder, Seen};

/// One test at a time talks to a gateway or burns CPU: the corpus reads answers within quiet
/// periods that a fuzzer beside it on 2 cores would stretch.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many final answers (not interim 1xx) a case expects; with none, wait for the close.
fn finals(case: &Case) -> usize {
    match case
        .statuses
        .iter()
        .filter(|s| **s >= 200 || **s == 101)
        .count()
    {
        0 => usize::MAX,
        n => n,
    }
}

/// Fails the corpus test on a panic in the gateway's log or on any failed case.
fn verdict(gw: &Proc, side: &str, failures: &[String], cases: usize) {
    let panicked = panics(gw);
    assert!(panicked.is_empty(), "the gateway panicked: {panicked:?}");
    assert!(
        failures.is_empty(),
        "{} of {cases} {side}-side cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Panic lines the gateway printed since the last look.
fn panics(gw: &Proc) -> Vec<String> {
    gw.lines
        .try_iter()
        .filter(|l| l.contains("panicked"))
        .collect()
}

fn corpus(class: &str, names: &mut BTreeSet<String>) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(class);
    cases::load(&dir, names).unwrap_or_else(|e| panic!("{e}"))
}

/// The gateway under test, its recorder (behind `/open`, `/guarded`) and responder (`/resp`).
async fn gateway(dir: &Path) -> (Proc, Recorder, Responder) {
    let rec = Recorder::start().await;
    let resp = Responder::start().await;
    let body = format!(
        r#"limits: {{ header_read_timeout: 2s, body_read_timeout: 1s }}
apps:
  - {{ id: coupang, secret: coupangTest }}
dialects:
  oauth: {{ path: /oauth/token/get }}
signing: {{ issuer: https://gw.test }}
upstreams:
  rec: {{ targets: ["http://{}"], timeout: 3s }}
  resp: {{ targets: ["http://{}"], timeout: 2s, retries: {{ attempts: 1 }}, passive: {{ failures: 0 }} }}
routes:
  - {{ path: "/open/*rest", upstream: rec, auth: none }}
  - {{ path: "/guarded/*rest", upstream: rec }}
  - {{ path: "/resp/*rest", upstream: resp, auth: none }}
"#,
        rec.addr, resp.addr
    );
    let proc = Proc::start(&config_in(dir, &body));
    (proc, rec, resp)
}

fn seen_text(seen: &[Seen]) -> String {
    seen.iter()
        .map(|s| match s {
            Seen::Request(b) => format!("  forward: {}", escape(b)),
            Seen::Cut(b) => format!("  cut: {}", escape(b)),
            Seen::Garbage(b) => format!("  GARBAGE: {}", escape(b)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The answers are the case's: the statuses, `cut`, and the close when it asks for one.
fn statuses_match(case: &Case, got: &client::Outcome) -> bool {
    got.statuses == case.statuses
        && (!case.close || got.closed)
        && got.cut == case.cut
        && !got.malformed
}

/// The case's verdict on what was observed: `Err` says what differs.
fn judge(case: &Case, got: &client::Outcome, seen: &[Seen]) -> Result<(), String> {
    let statuses_ok = statuses_match(case, got);
    let forwards: Vec<Seen> = case
        .forward
        .iter()
        .map(|(b, cut)| {
            if *cut {
                Seen::Cut(b.clone())
            } else {
                Seen::Request(b.clone())
            }
        })
        .collect();
    if statuses_ok && seen == forwards.as_slice() {
        return Ok(());
    }
    let want: Vec<String> = case.statuses.iter().map(u16::to_string).collect();
    Err(format!(
        "{} ({}:{})\n  expect: {}{}\n  got:    {}\n  answer: {}\n  upstream, expected:\n{}\n  upstream, got:\n{}",
        case.name,
        case.file.display(),
        case.line,
        want.join(" "),
        if case.cut { " cut" } else if case.close { " close" } else { "" },
        got.summary(),
        escape(&got.raw[..got.raw.len().min(400)]),
        seen_text(&forwards),
        seen_text(seen),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_side_corpus() {
    let mut names = BTreeSet::new();
    let cases = corpus("request", &mut names);
    let dir = tempfile::tempdir().unwrap();
    let (gw, rec, _resp) = gateway(dir.path()).await;
    let bless = std::env::var_os("CONFORMANCE_BLESS").is_some();
    let mut failures = Vec::new();
    let _serial = SERIAL.lock().await;
    for case in &cases {
        let got = client::exchange(gw.addr, &case.send, finals(case)).await;
        let seen = rec.take(case.forward.len()).await;
        // Whatever a case expects, what reached the upstream is read strictly.
        for s in &seen {
            if let Seen::Request(b) | Seen::Cut(b) = s {
                if let Err(e) = well_formed_upstream_request(b) {
                    failures.push(format!(
                        "{}: upstream got a bad request: {e}\n  {}",
                        case.name,
                        escape(b)
                    ));
                }
            }
        }
        match judge(case, &got, &seen) {
            Ok(()) => {}
            Err(_) if bless && statuses_match(case, &got) => {
                let reqs: Option<Vec<(Vec<u8>, bool)>> = seen
                    .iter()
                    .map(|s| match s {
                        Seen::Request(b) => Some((b.clone(), false)),
                        Seen::Cut(b) => Some((b.clone(), true)),
                        Seen::Garbage(_) => None,
                    })
                    .collect();
                match reqs {
                    Some(reqs) => cases::bless(case, &reqs),
                    None => failures.push(judge(case, &got, &seen).unwrap_err()),
                }
            }
            Err(e) => failures.push(e),
        }
    }
    // The judge is shown to catch a wrong expectation before its verdicts are trusted.
    let send = b"POST /open/probe HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    let got = client::exchange(gw.addr, send, 1).await;
    let seen = rec.take(1).await;
    let Some(Seen::Request(forwarded)) = seen.first() else {
        panic!("the probe was forwarded: {seen:?}")
    };
    let probe = Case {
        statuses: vec![200],
        close: true,
        forward: vec![(forwarded.clone(), false)],
        ..Case::default()
    };
    assert!(
        judge(&probe, &got, &seen).is_ok(),
        "{:?}",
        judge(&probe, &got, &seen)
    );
    let mut wrong = probe.clone();
    wrong.forward[0].0.push(b'!');
    assert!(
        judge(&wrong, &got, &seen).is_err(),
        "other upstream bytes are a failure"
    );
    let mut wrong = probe.clone();
    wrong.statuses[0] = 400;
    assert!(
        judge(&wrong, &got, &seen).is_err(),
        "another status is a failure"
    );
    let mut wrong = probe.clone();
    wrong.forward.clear();
    assert!(
        judge(&wrong, &got, &seen).is_err(),
        "an unexpected forward is a failure"
    );
    verdict(&gw, "request", &failures, cases.len());
    assert!(cases.len() >= 200, "{} request-side cases", cases.len());
}

/// A case's `expect:` as an outcome summary.
fn case_summary(case: &Case) -> String {
    let mut words: Vec<String> = case.statuses.iter().map(u16::to_string).collect();
    if case.cut {
        words.push("cut".into());
    }
    if case.close {
        words.push("close".into());
    }
    words.join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_side_corpus() {
    let mut names = BTreeSet::new();
    let cases = corpus("response", &mut names);
    assert!(cases.len() >= 20, "{} response-side cases", cases.len());
    let dir = tempfile::tempdir().unwrap();
    let (gw, _rec, resp) = gateway(dir.path()).await;
    let default_request = b"GET /resp/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".to_vec();
    let follow_up = b"GET /resp/follow-up HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    let mut failures = Vec::new();
    let _serial = SERIAL.lock().await;
    for case in &cases {
        resp.arm(case.respond.clone(), case.then_close);
        let request = case.request.as_ref().unwrap_or(&default_request);
        let got = client::exchange(gw.addr, request, finals(case)).await;
        let mut problems = Vec::new();
        if !statuses_match(case, &got) {
            problems.push(format!(
                "expect: {}, got: {}",
                case_summary(case),
                got.summary()
            ));
        }
        if let Some(body) = &case.body {
            if got.bodies.last() != Some(body) {
                problems.push(format!(
                    "body expected {}, got {}",
                    escape(body),
                    escape(got.bodies.last().map_or(&[][..], |b| b))
                ));
            }
        }
        let after = client::exchange(gw.addr, follow_up, 1).await;
        let log = resp.log.lock().unwrap().clone();
        let bad_conn = log.iter().find(|(_, bad)| *bad).map(|(c, _)| *c);
        let answered: Vec<&(usize, bool)> = log.iter().filter(|(_, bad)| !*bad).collect();
        match (bad_conn, answered.as_slice()) {
            (None, _) => problems.push("the upstream never got the case's request".into()),
            (Some(b), [(c, _)]) if !case.reuse && *c == b => {
                problems.push("the poisoned connection was used again".into())
            }
            (Some(_), [_]) => {}
            (Some(_), more) => problems.push(format!(
                "expected one follow-up request upstream, saw {} (a retry?): {log:?}",
                more.len()
            )),
        }
        if after.statuses != [200] || after.bodies.last().map(Vec::as_slice) != Some(b"ok") {
            problems.push(format!("the follow-up got {}", after.summary()));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}:{})\n  {}\n  answer: {}",
                case.name,
                case.file.display(),
                case.line,
                problems.join("\n  "),
                escape(&got.raw[..got.raw.len().min(400)])
            ));
        }
    }
    verdict(&gw, "response", &failures, cases.len());
}

#[path = "../fuzz/checks/bearer.rs"]
mod bearer_check;
#[path = "../fuzz/checks/config.rs"]
mod config_check;
#[path = "../fuzz/checks/path.rs"]
mod path_check;
#[path = "../fuzz/checks/route.rs"]
mod route_check;

/// Pieces of paths: separators, dots, escapes (good and bad), the characters upstreams split on.
const PATH_PIECES: &[&str] = &[
    "/", "//", "a", "b", ".", "..", "%", "%2e", "%2E", "%2f", "%5c", "%00", "%25", "%41", "%c0%ae",
    ";", "?", "#", "\\", "{", "}", "*", "~", "é", "\u{0}", " ", "%g", "2", "F",
];

#[test]
fn fuzz_path_normaliser() {
    let _serial = SERIAL.blocking_lock();
    let n = fuzz::run(
        fuzz::text(PATH_PIECES, 24),
        fuzz::budget(3),
        fuzz::count(500_000),
        |s| path_check::path(s.as_bytes()),
    );
    assert!(n > 100, "{n} inputs");
}

#[test]
fn fuzz_route_table() {
    let _serial = SERIAL.blocking_lock();
    const PATTERN_PIECES: &[&str] = &[
        "/", "a", "{id}", "{x}", "*rest", "*", "{", "}", "b", "/static/", "..",
    ];
    let strategy = (
        prop::collection::vec(fuzz::text(PATTERN_PIECES, 8), 0..6),
        fuzz::text(PATH_PIECES, 16),
    );
    let n = fuzz::run(
        strategy,
        fuzz::budget(3),
        fuzz::count(200_000),
        |(patterns, path)| {
            let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
            route_check::route(&refs, &path)
        },
    );
    assert!(n > 100, "{n} inputs");
}

#[test]
fn fuzz_token_extraction() {
    let _serial = SERIAL.blocking_lock();
    const PIECES: &[&str] = &[
        "Bearer ",
        "bearer",
        "BEARER\t",
        "DPoP ",
        " ",
        "\t",
        ",",
        "a",
        "Z",
        "0",
        ".",
        "-",
        "_",
        "=",
        "&",
        "accessToken=",
        "access_token=",
        "accessToken%3D",
        "%20",
        "%",
        "+",
        ";",
        "\"",
    ];
    let strategy = (
        fuzz::text(PIECES, 10),
        fuzz::text(PIECES, 6),
        fuzz::text(PIECES, 10),
    );
    let n = fuzz::run(
        strategy,
        fuzz::budget(3),
        fuzz::count(200_000),
        |(auth, bk, query)| bearer_check::bearer(&auth, &bk, &query),
    );
    assert!(n > 100, "{n} inputs");
}

#[test]
fn fuzz_config_loader() {
    let _serial = SERIAL.blocking_lock();
    let example =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml")).unwrap();
    let n = fuzz::run(
        fuzz::mutated(vec![example]),
        fuzz::budget(3),
        50_000,
        |bytes| config_check::config(&String::from_utf8_lossy(&bytes)),
    );
    assert!(n > 10, "{n} inputs");
}

/// Framing and forwarding rules every request the upstream receives must keep, read strictly.
fn well_formed_upstream_request(bytes: &[u8]) -> Result<(), String> {
    // Forbidden however spelled; `x-tollgate-*`, `_` names and connection options below.
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(()), // a cut request: its head never ended
        Err(e) => return Err(format!("the upstream cannot parse it: {e}")),
    };
    let path = req.path.unwrap_or("");
    let path_only = path.split('?').next().unwrap_or("");
    if tollgate::route::normalise(path_only).ok().as_deref() != Some(path_only) {
        return Err(format!("the target {path:?} is not normalised"));
    }
    let named = |n: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(n))
            .count()
    };
    let value = |n: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(n))
            .map(|h| h.value)
    };
    if named("host") != 1 || named("content-length") > 1 || named("transfer-encoding") > 1 {
        return Err("Host, Content-Length or Transfer-Encoding not single".into());
    }
    if named("content-length") + named("transfer-encoding") > 1 {
        return Err("both Content-Length and Transfer-Encoding".into());
    }
    if value("transfer-encoding").is_some_and(|v| v != b"chunked") {
        return Err("a transfer coding other than chunked".into());
    }
    for h in req.headers.iter() {
        let n = h.name.to_ascii_lowercase();
        let stripped = [
            "forwarded",
            "x-real-ip",
            "x-original-url",
            "x-rewrite-url",
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
            "x-bkapi-authorization",
            "expect",
            "te",
            "keep-alive",
            "proxy-connection",
            "trailer",
        ];
        // No case or fuzz input carries a valid token, so any identity header is forged.
        if stripped.contains(&n.as_str()) || n.contains('_') || n.starts_with("x-tollgate-") {
            return Err(format!("the header {n:?} reached the upstream"));
        }
        // Only an upgrade the gateway passes on names a connection option.
        let upgrade = named("upgrade") == 1;
        if n == "connection" && !(upgrade && h.value.eq_ignore_ascii_case(b"upgrade")) {
            return Err("a Connection header other than an upgrade's".into());
        }
        if h.value.iter().any(|&c| c == 0 || c == b'\r' || c == b'\n') {
            return Err(format!("the header {n:?} carries a CR, LF or NUL"));
        }
    }
    let _ = head;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_request_path() {
    let mut names = BTreeSet::new();
    let seeds: Vec<Vec<u8>> = corpus("request", &mut names)
        .into_iter()
        .map(|c| c.send)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (gw, rec, _resp) = gateway(dir.path()).await;
    let _serial = SERIAL.lock().await;
    let (mut runner, seed) = fuzz::runner();
    println!("fuzz seed {seed} (TOLLGATE_FUZZ_SEED={seed} repeats this run)");
    let strategy = fuzz::mutated(seeds);
    let (budget, started) = (fuzz::budget(20), std::time::Instant::now());
    let mut runs = 0;
    while runs < fuzz::count(100_000) && started.elapsed() < budget {
        use proptest::strategy::{Strategy as _, ValueTree as _};
        let input = strategy.new_tree(&mut runner).unwrap().current();
        let got = client::exchange_to_end(gw.addr, &input).await;
        let seen = rec.take(0).await;
        let mut problems = Vec::new();
        if !got.closed {
            problems.push("the gateway neither answered nor closed within 5 s".to_owned());
        }
        if let Some(s) = got
            .statuses
            .iter()
            .find(|s| **s >= 500 && ![501, 505].contains(*s))
        {
            problems.push(format!("a {s}: the recording upstream never fails"));
        }
        let whole = seen
            .iter()
            .filter(|s| matches!(s, Seen::Request(_)))
            .count();
        if whole != got.from_upstream {
            problems.push(format!(
                "the upstream received {whole} requests, the client got {} answers from it",
                got.from_upstream
            ));
        }
        for s in &seen {
            match s {
                Seen::Request(b) | Seen::Cut(b) => {
                    if let Err(e) = well_formed_upstream_request(b) {
                        problems.push(e);
                    }
                }
                Seen::Garbage(_) => problems.push("garbage reached the upstream".into()),
            }
        }
        assert!(
            problems.is_empty(),
            "fuzz seed {seed} (TOLLGATE_FUZZ_SEED={seed}), run {runs}: {}\n  send: {}\n  answer: {}\n  upstream:\n{}",
            problems.join("; "),
            escape(&input),
            escape(&got.raw[..got.raw.len().min(600)]),
            seen_text(&seen)
        );
        runs += 1;
    }
    let panicked: Vec<String> = gw
        .lines
        .try_iter()
        .filter(|l| l.contains("panicked"))
        .collect();
    assert!(
        panicked.is_empty(),
        "seed {seed}: the gateway panicked: {panicked:?}"
    );
    let canary = client::exchange(
        gw.addr,
        b"GET /open/canary HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        1,
    )
    .await;
    assert_eq!(canary.statuses, [200], "still serving after {runs} inputs");
    assert!(runs > 50, "{runs} inputs in {budget:?}");
    println!("request path: {runs} inputs in {:?}", started.elapsed());
}

#[test]
fn the_strict_reader_refuses_known_bad_upstream_requests() {
    let ok = b"POST /a/b?x=1 HTTP/1.1\r\nhost: u\r\ncontent-length: 2\r\n\r\nhi";
    assert_eq!(well_formed_upstream_request(ok), Ok(()));
    for bad in [
        &b"POST /a HTTP/1.1\r\nhost: u\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"
            [..],
        b"POST /a HTTP/1.1\r\nhost: u\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost: u\r\nhost: v\r\n\r\n",
        b"GET /a/../b HTTP/1.1\r\nhost: u\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost: u\r\nx_tollgate_app: admin\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost: u\r\nexpect: 100-continue\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost: u\r\nx-real-ip: 1.2.3.4\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost : u\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost: u\r\nx-tollgate-app: admin\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost: u\r\nconnection: x-keep\r\n\r\n",
    ] {
        assert!(
            well_formed_upstream_request(bad).is_err(),
            "{}",
            escape(bad)
        );
    }
}

#[test]
fn a_fuzz_finding_fails_the_run() {
    // A check that panics on some generated input makes the run panic (so the test fails).
    let found = std::panic::catch_unwind(|| {
        fuzz::run(fuzz::text(PATH_PIECES, 24), fuzz::budget(3), 100_000, |s| {
            assert!(!s.contains(".."), "found {s:?}")
        })
    });
    assert!(found.is_err(), "a panicking check must fail the fuzz run");
}
