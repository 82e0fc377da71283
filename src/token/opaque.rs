//! Opaque token values and the hash under which they are kept (never the token itself).

/// SHA-256 of a presented token: the key of the hot map and of stored records.
pub type TokenHash = [u8; 32];

/// Hashes a presented token.
pub fn hash(token: &str) -> TokenHash {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `n` bytes from the system CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("system random source available");
    out
}

/// A fresh random id of 128 bits as 32 lower-case hex characters.
pub fn random_hex128() -> String {
    hex::encode(random_bytes::<16>())
}

/// `n` random characters from `A-Za-z0-9` (unbiased: bytes past a multiple of 62 are redrawn).
pub fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<64>() {
            if b < 248 && out.len() < n {
                out.push(ALPHABET[usize::from(b) % 62] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_32_hex_and_differ() {
        let a = random_hex128();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex128());
    }

    #[test]
    fn alnum_tokens_have_the_asked_length_and_alphabet() {
        let t = random_alnum(60);
        assert_eq!(t.len(), 60);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn hash_is_stable_and_distinguishes() {
        assert_eq!(hash("a"), hash("a"));
        assert_ne!(hash("a"), hash("b"));
    }
}
