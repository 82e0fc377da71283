//! Path normalisation: what is matched is exactly what is forwarded.
//!
//! Unreserved characters are percent-decoded, other escapes upper-cased, empty and `.`
//! segments dropped, `..` resolved. Anything that could mean different things to us and to
//! the upstream (an encoded `/` or `\`, control bytes, bad escapes, `..` above the root) is
//! refused instead.

use std::borrow::Cow;

/// Why a path was refused (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (`*`, empty).
    NotAbsolute,
    /// `%2F` or `%5C`, or a raw backslash.
    EncodedSeparator,
    /// `%00`–`%1F` or `%7F`.
    ControlByte,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `..` climbing above `/`.
    AboveRoot,
}

impl PathError {
    /// The reason, for the 400 body.
    pub fn message(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path must start with /",
            PathError::EncodedSeparator => "path contains an encoded / or a backslash",
            PathError::ControlByte => "path contains an encoded control character",
            PathError::BadEscape => "path contains invalid percent-encoding",
            PathError::AboveRoot => "path climbs above the root with ..",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// True when `path` is already in normal form, so the hot path need not copy it.
fn is_normal(path: &[u8]) -> bool {
    if path.iter().any(|&b| b == b'%' || b == b'\\') {
        return false;
    }
    let segs = path[1..].split(|&b| b == b'/');
    let count = segs.clone().count();
    segs.enumerate()
        .all(|(i, s)| !(s == b"." || s == b".." || (s.is_empty() && i + 1 != count)))
}

/// Normalises an origin-form path (without the query).
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(bytes) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    let mut starts: Vec<usize> = Vec::new();
    let mut trailing = false;
    let raw_segs: Vec<&str> = path[1..].split('/').collect();
    for (i, raw) in raw_segs.iter().enumerate() {
        let last = i + 1 == raw_segs.len();
        let seg = decode_segment(raw)?;
        match seg.as_str() {
            "" | "." => trailing = last,
            ".." => {
                let start = starts.pop().ok_or(PathError::AboveRoot)?;
                out.truncate(start);
                trailing = last;
            }
            _ => {
                starts.push(out.len());
                out.push('/');
                out.push_str(&seg);
                trailing = false;
            }
        }
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

fn decode_segment(raw: &str) -> Result<String, PathError> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = b.get(i + 1).copied().and_then(hex_val);
                let lo = b.get(i + 2).copied().and_then(hex_val);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadEscape);
                };
                let v = hi << 4 | lo;
                if v == b'/' || v == b'\\' {
                    return Err(PathError::EncodedSeparator);
                }
                if v < 0x20 || v == 0x7f {
                    return Err(PathError::ControlByte);
                }
                if is_unreserved(v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push_str(&format!("{v:02X}"));
                }
                i += 3;
            }
            b'\\' => return Err(PathError::EncodedSeparator),
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalise(p).map(Cow::into_owned)
    }

    #[test]
    fn clean_paths_are_borrowed_unchanged() {
        assert!(matches!(
            normalise("/product/get").unwrap(),
            Cow::Borrowed("/product/get")
        ));
        assert!(matches!(
            normalise("/bkflow/space/3/apply_token/").unwrap(),
            Cow::Borrowed(_)
        ));
        assert!(matches!(normalise("/").unwrap(), Cow::Borrowed("/")));
    }

    #[test]
    fn disguised_paths_reach_the_same_route() {
        for p in [
            "/product/%67et",
            "//product/get",
            "/x/../product/get",
            "/./product//get",
            "/product/%2e/get",
        ] {
            assert_eq!(n(p).unwrap(), "/product/get", "{p}");
        }
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/a/..").unwrap(), "/");
        assert_eq!(n("/a%20b").unwrap(), "/a%20b");
        assert_eq!(n("/a%7cb").unwrap(), "/a%7Cb");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(n("/a%2Fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%5cb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a\\b"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%00"), Err(PathError::ControlByte));
        assert_eq!(n("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(n("/a%4"), Err(PathError::BadEscape));
        assert_eq!(n("/.."), Err(PathError::AboveRoot));
        assert_eq!(n("/a/%2e%2e/%2e%2e"), Err(PathError::AboveRoot));
        assert_eq!(n("*"), Err(PathError::NotAbsolute));
    }

    proptest! {
        #[test]
        fn normalising_is_idempotent_and_never_panics(s in "/[a-z%./0-9A-F\\\\]{0,40}") {
            if let Ok(once) = n(&s) {
                prop_assert_eq!(n(&once).unwrap(), once.clone());
                prop_assert!(once.starts_with('/'));
                prop_assert!(!once.contains("//"));
                prop_assert!(!once.split('/').any(|seg| seg == ".." || seg == "."));
            }
        }
    }
}
