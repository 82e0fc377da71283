//! Route patterns and lookups on arbitrary input: never a panic.

/// Runs the check on one input; panics on a finding.
pub fn route(patterns: &[&str], path: &str) {
    let mut t = tollgate::route::Table::default();
    for (i, p) in patterns.iter().enumerate() {
        if let Ok(pat) = tollgate::route::Pattern::parse(p) {
            t.push(pat, None, i);
        }
    }
    if let Ok(p) = tollgate::route::normalise(path) {
        let _ = t.find(&http::Method::GET, &p);
    }
}
