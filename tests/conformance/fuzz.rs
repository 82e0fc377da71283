//! Fuzzing on stable, bounded in time, under `cargo test`: proptest generates inputs (mutations
//! of a seed corpus kept in the repository) with a random seed that a failure prints.
//!
//! - `fuzz/checks/{path,bearer,route,config}.rs`: the cargo-fuzz targets' own bodies, in
//!   process.
//! - the request path, from raw bytes to the bytes the upstream receives: the conformance cases
//!   mutated, sent to the real binary; what reaches the recording upstream must be well framed
//!   and exactly what the gateway says it forwarded (differential: as many requests as the
//!   client got upstream answers — never one more).
//!
//! Budgets (seconds, `TOLLGATE_FUZZ_SECS` scales them; a count bounds each as well): request
//! path 20, each in-process target 3.

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::time::{Duration, Instant};

/// `TOLLGATE_FUZZ_SECS / 20`: how much longer than in CI to run (the request path's 20 s).
fn scale() -> f64 {
    std::env::var("TOLLGATE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(1.0, |s| (s / 20.0).max(0.0))
}

/// `secs`, scaled.
pub fn budget(secs: u64) -> Duration {
    Duration::from_secs_f64(secs as f64 * scale())
}

/// A cap of `n` inputs, scaled like the time (the time is what bounds a run in CI).
pub fn count(n: usize) -> usize {
    (n as f64 * scale().max(1.0)) as usize
}

/// A runner with a fresh random seed (or `TOLLGATE_FUZZ_SEED`), and that seed.
pub fn runner() -> (TestRunner, u64) {
    let seed = std::env::var("TOLLGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    (TestRunner::new_with_rng(Config::default(), rng), seed)
}

/// Runs `check` on values of `strategy` until `time` or `count` runs out; returns how many.
pub fn run<S: Strategy>(
    strategy: S,
    time: Duration,
    count: usize,
    mut check: impl FnMut(S::Value),
) -> usize {
    let (mut runner, seed) = runner();
    println!("fuzz seed {seed} (TOLLGATE_FUZZ_SEED={seed} repeats this run)");
    let started = Instant::now();
    let mut n = 0;
    while n < count && started.elapsed() < time {
        check(strategy.new_tree(&mut runner).unwrap().current());
        n += 1;
    }
    println!("{n} inputs in {:?}", started.elapsed());
    n
}

/// Byte strings that matter to HTTP/1 framing, inserted by mutations.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"\"",
    b"0",
    b"5",
    b"f",
    b"chunked",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"0\r\n\r\n",
    b"\r\n\r\n",
    b"GET /guarded/x HTTP/1.1\r\nHost: gw\r\n\r\n",
    b"Host: other\r\n",
    b"Expect: 100-continue\r\n",
    b"Upgrade: websocket\r\nConnection: upgrade\r\n",
    b"HTTP/1.0",
    b"%2f",
    b"%00",
    b"/../",
    b"\x0b",
    b"\x7f",
    b"\xff",
    b"FFFFFFFFFFFFFFFFFF",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(prop::sample::Index, &'static [u8]),
    Delete(prop::sample::Index, usize),
    Replace(prop::sample::Index, u8),
    DuplicateLine(prop::sample::Index),
    Upper(prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), prop::sample::select(TOKENS))
            .prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::DuplicateLine),
        (any::<prop::sample::Index>(), 1usize..20).prop_map(|(i, n)| Mutation::Upper(i, n)),
    ]
}

fn apply(mut b: Vec<u8>, ms: Vec<Mutation>) -> Vec<u8> {
    for m in ms {
        let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Insert(i, t) => {
                let p = at(&i, b.len());
                b.splice(p..p, t.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let p = at(&i, b.len()).min(b.len());
                b.drain(p..(p + n).min(b.len()));
            }
            Mutation::Replace(i, c) if !b.is_empty() => {
                let p = i.index(b.len());
                b[p] = c;
            }
            Mutation::DuplicateLine(i) if !b.is_empty() => {
                let p = i.index(b.len());
                let start = b[..p]
                    .iter()
                    .rposition(|&c| c == b'\n')
                    .map_or(0, |s| s + 1);
                let end = b[p..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |e| p + e + 1);
                let line = b[start..end].to_vec();
                b.splice(end..end, line);
            }
            Mutation::Upper(i, n) if !b.is_empty() => {
                let p = i.index(b.len());
                let end = (p + n).min(b.len());
                b[p..end].make_ascii_uppercase();
            }
            _ => {}
        }
    }
    b
}

/// Seeds with up to four mutations each.
pub fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 0..5),
    )
        .prop_map(|(s, ms)| apply(s, ms))
}

/// Text over `alphabet`, up to `max` pieces long.
pub fn text(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max).prop_map(|v| v.concat())
}
