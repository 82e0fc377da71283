//! Token extraction from arbitrary headers and queries: never panics, never an empty token.

/// Runs the check on one input; panics on a finding.
pub fn bearer(auth: &str, bk: &str, query: &str) {
    let Ok(req) = http::Request::get(format!("/x?{query}"))
        .header("authorization", auth)
        .header("bkflow-token", bk)
        .body(())
    else {
        return;
    };
    if let Ok(Some((t, _))) = tollgate::guard::bearer::extract(&req.into_parts().0) {
        assert!(!t.is_empty(), "{auth:?} {bk:?} {query:?}");
    }
}
