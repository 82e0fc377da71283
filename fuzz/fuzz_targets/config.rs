//! The config loader on arbitrary text: a config or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = tollgate::config::load_str(data, std::path::Path::new("fuzz.yaml"));
});
