//! cargo-fuzz wrapper of `checks/path.rs` (also run on stable by `tests/conformance.rs`).
#![no_main]
#[path = "../checks/path.rs"]
mod check;
libfuzzer_sys::fuzz_target!(|data: &[u8]| check::path(data));
