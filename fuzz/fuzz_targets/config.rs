//! cargo-fuzz wrapper of `checks/config.rs` (also run on stable by `tests/conformance.rs`).
#![no_main]
#[path = "../checks/config.rs"]
mod check;
libfuzzer_sys::fuzz_target!(|data: &str| check::config(data));
