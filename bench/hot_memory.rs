//! Memory of the hot-token map: RSS before and after one million verified tokens, as the
//! guard would keep them (a principal with app, scopes and identity header values).
//! Run: `cargo bench --bench hot_memory`.
#![allow(missing_docs)]

use std::sync::Arc;
use tollgate::config::Dialect;
use tollgate::principal::Principal;
use tollgate::store::hot::HotTokens;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    const N: u32 = 1_000_000;
    let hot = HotTokens::new(N as usize);
    let before = rss_bytes();
    for i in 0..N {
        let token = format!("eyJhbGciOiJSUzI1NiJ9.payload-{i}.signature");
        let p = Principal::new(
            "coupang".into(),
            Dialect::Oauth,
            u64::MAX,
            format!("{i:032X}").into(),
        )
        .with_scopes(vec!["bailunApi".into()].into_boxed_slice());
        hot.insert(hot.key(&token), None, Arc::new(hot.share(p)), 0);
    }
    let after = rss_bytes();
    assert_eq!(hot.len(), N as usize);
    let per = (after - before) as f64 / f64::from(N);
    println!(
        "hot map: {N} tokens, RSS {:.1} MiB -> {:.1} MiB, {per:.0} bytes per token",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
}
