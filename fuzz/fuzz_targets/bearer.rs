//! Token extraction from arbitrary headers and queries: never panics, never an empty token.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, &str, &str)| {
    let (auth, bk, query) = data;
    let Ok(req) = http::Request::get(format!("/x?{query}"))
        .header("authorization", auth)
        .header("bkflow-token", bk)
        .body(())
    else {
        return;
    };
    if let Ok(Some((t, _))) = tollgate::guard::bearer::extract(&req.into_parts().0) {
        assert!(!t.is_empty());
    }
});
