//! Route patterns and lookups on arbitrary input: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (Vec<&str>, &str)| {
    let (patterns, path) = data;
    let mut t = tollgate::route::Table::default();
    for (i, p) in patterns.iter().enumerate() {
        if let Ok(pat) = tollgate::route::Pattern::parse(p) {
            t.push(pat, None, i);
        }
    }
    if let Ok(p) = tollgate::route::normalise(path) {
        let _ = t.find(&http::Method::GET, &p);
    }
});
