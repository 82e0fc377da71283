//! cargo-fuzz wrapper of `checks/bearer.rs` (also run on stable by `tests/conformance.rs`).
#![no_main]
#[path = "../checks/bearer.rs"]
mod check;
libfuzzer_sys::fuzz_target!(|data: (&str, &str, &str)| check::bearer(data.0, data.1, data.2));
