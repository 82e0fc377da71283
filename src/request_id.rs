//! Request ids for requests that bring none: a random prefix drawn once per thread and a
//! counter, 32 hex characters, unique across threads and replicas without asking the system
//! for randomness on every request. They correlate log lines; they are not secrets.

use http::HeaderValue;
use std::cell::Cell;

thread_local! {
    static NEXT: Cell<(u64, u64)> = Cell::new((prefix(), 0));
}

fn prefix() -> u64 {
    u64::from_le_bytes(crate::token::opaque::random_bytes::<8>())
}

/// The next id of this thread.
pub fn next() -> HeaderValue {
    let (prefix, n) = NEXT.with(|c| {
        let (p, n) = c.get();
        c.set((p, n.wrapping_add(1)));
        (p, n)
    });
    let mut out = [0u8; 32];
    hex_into(&mut out[..16], prefix);
    hex_into(&mut out[16..], n);
    HeaderValue::from_bytes(&out).expect("hex is a valid header value")
}

fn hex_into(out: &mut [u8], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_differ_and_are_32_hex_characters() {
        let a = super::next();
        let b = super::next();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 32);
            assert!(id.as_bytes().iter().all(|c| c.is_ascii_hexdigit()));
        }
        assert_eq!(
            a.as_bytes()[..16],
            b.as_bytes()[..16],
            "one prefix per thread"
        );
        let other = std::thread::spawn(super::next).join().unwrap();
        assert_ne!(other.as_bytes()[..16], a.as_bytes()[..16]);
    }
}
