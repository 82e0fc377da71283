//! cargo-fuzz wrapper of `checks/route.rs` (also run on stable by `tests/conformance.rs`).
#![no_main]
#[path = "../checks/route.rs"]
mod check;
libfuzzer_sys::fuzz_target!(|data: (Vec<&str>, &str)| check::route(&data.0, data.1));
