//! Path normalisation: what is matched is exactly what is forwarded, and what is forwarded
//! reads the same to every common upstream.
//!
//! Unreserved characters and the other characters a path may carry raw (sub-delims, `:`,
//! `@`) are percent-decoded, remaining escapes upper-cased, empty and `.` segments dropped,
//! `..` resolved. The result is a fixed point of the readings upstreams are known to apply
//! on top (see the property test): decoding once more, stripping `;params` from segments
//! (Tomcat, Spring), backslash as slash (IIS, some Windows stacks). Whatever would break that
//! is refused with 400 instead: an encoded `/`, `\` or `%` (double encoding), `;` (matrix
//! parameters, unless the config allows them outside dot segments), control bytes, bad
//! escapes, invalid or overlong UTF-8 after decoding, `..` above the root.

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
    /// `%25`: an upstream that decodes once more would read another path.
    DoubleEncoding,
    /// `;` in a segment (or `%3B`): an upstream that strips `;params` would read another path.
    MatrixParams,
    /// Escapes that do not decode to valid (shortest-form) UTF-8.
    BadUtf8,
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
            PathError::DoubleEncoding => "path contains an encoded % (double encoding)",
            PathError::MatrixParams => "path contains ; (matrix parameters are refused)",
            PathError::BadUtf8 => "path escapes do not decode to valid UTF-8",
        }
    }
}

/// What the normaliser lets through beyond the safe default (`paths:` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathRules {
    /// Allow `;` in segments (never in a segment that is `.`, `..` or empty before its `;`).
    pub matrix_params: bool,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters a path segment may carry unencoded (RFC 3986 pchar), `;` aside.
pub fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
        )
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// True when `path` is already in normal form, so the hot path need not copy it.
fn is_normal(path: &[u8]) -> bool {
    if path
        .iter()
        .any(|&b| matches!(b, b'%' | b'\\' | b';') || !b.is_ascii())
    {
        return false;
    }
    let segs = path[1..].split(|&b| b == b'/');
    let count = segs.clone().count();
    segs.enumerate()
        .all(|(i, s)| !(s == b"." || s == b".." || (s.is_empty() && i + 1 != count)))
}

/// Normalises an origin-form path (without the query) under the default rules.
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    normalise_with(path, PathRules::default())
}

/// Normalises an origin-form path (without the query).
pub fn normalise_with(path: &str, rules: PathRules) -> Result<Cow<'_, str>, PathError> {
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
        if let Some((before, _)) = seg.split_once(';') {
            // `..;x` is `..` to Tomcat: a dot segment in disguise is never allowed.
            if !rules.matrix_params || matches!(before, "" | "." | "..") {
                return Err(PathError::MatrixParams);
            }
        }
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

/// Decodes what may travel raw, keeps the rest encoded (upper-case hex), refuses the unsafe.
fn decode_segment(raw: &str) -> Result<String, PathError> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    // Bytes of escaped non-ASCII, checked as UTF-8 together before they are written back.
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, out: &mut String| -> Result<(), PathError> {
        if pending.is_empty() {
            return Ok(());
        }
        // `from_utf8` refuses overlong forms (C0 AE, E0 80 AE) and surrogates.
        std::str::from_utf8(pending).map_err(|_| PathError::BadUtf8)?;
        for byte in pending.drain(..) {
            out.push('%');
            out.push_str(&format!("{byte:02X}"));
        }
        Ok(())
    };
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
                i += 3;
                if v >= 0x80 {
                    pending.push(v);
                    continue;
                }
                flush(&mut pending, &mut out)?;
                match v {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    b'%' => return Err(PathError::DoubleEncoding),
                    b';' => return Err(PathError::MatrixParams),
                    v if v < 0x20 || v == 0x7f => return Err(PathError::ControlByte),
                    v if is_path_char(v) => out.push(v as char),
                    v => {
                        out.push('%');
                        out.push_str(&format!("{v:02X}"));
                    }
                }
            }
            b'\\' => return Err(PathError::EncodedSeparator),
            c if !c.is_ascii() => {
                // A raw UTF-8 byte (the path is a str, so the sequence is valid): sent encoded.
                pending.push(c);
                i += 1;
            }
            c => {
                flush(&mut pending, &mut out)?;
                if c < 0x20 || c == 0x7f {
                    return Err(PathError::ControlByte);
                }
                out.push(c as char);
                i += 1;
            }
        }
    }
    flush(&mut pending, &mut out)?;
    Ok(out)
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
