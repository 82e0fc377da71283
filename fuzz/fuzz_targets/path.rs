//! The path normaliser: never panics, and what it accepts is a fixed point.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = tollgate::route::normalise(s) {
            assert_eq!(tollgate::route::normalise(&p).unwrap(), p);
        }
    }
});
