//! The path normaliser: never panics, and what it accepts is a fixed point.

/// Runs the check on one input; panics on a finding.
pub fn path(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = tollgate::route::normalise(s) {
            assert_eq!(tollgate::route::normalise(&p).unwrap(), p, "{s:?}");
        }
    }
}
