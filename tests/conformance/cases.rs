//! The corpus files: `tests/conformance/{request,response}/*.cases`, parsed into cases; and the
//! blessing run's rewrite of their `forward:` lines. The format is in `tests/conformance/README.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One case of the corpus.
#[derive(Debug, Clone, Default)]
pub struct Case {
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
    pub source: String,
    /// Request side: what the client sends.
    pub send: Vec<u8>,
    /// Response side: what the upstream answers, and the client's request.
    pub respond: Vec<u8>,
    pub request: Option<Vec<u8>>,
    /// The statuses the client reads, in order.
    pub statuses: Vec<u16>,
    /// The gateway closes the connection after them.
    pub close: bool,
    /// The last answer is cut off: its head came, then the connection closed mid-body.
    pub cut: bool,
    /// Exact requests the upstream receives (request side); `cut` marks one the gateway
    /// started and then abandoned by closing the connection.
    pub forward: Vec<(Vec<u8>, bool)>,
    /// Response side: the exact body the client receives.
    pub body: Option<Vec<u8>>,
    /// Response side: the poisoned upstream connection may be used again (default: not).
    pub reuse: bool,
    /// Response side: the upstream closes its connection after `respond:`.
    pub then_close: bool,
}

/// Decodes the escapes of a `send:`/`respond:`/`forward:` value: `\r \n \t \0 \\ \xHH` and
/// `\*N(text)` (text repeated N times); everything else is literal.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let next = *b.get(i + 1).ok_or("a lone \\ at the end")?;
        i += 2;
        match next {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = s.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x{hex}"))?);
                i += 2;
            }
            b'*' => {
                let open = s[i..].find('(').ok_or("\\*N needs (text)")? + i;
                let close = s[open..].find(')').ok_or("\\*N(text needs )")? + open;
                let n: usize = s[i..open].parse().map_err(|_| "\\*N: N is a count")?;
                let text = unescape(&s[open + 1..close])?;
                for _ in 0..n {
                    out.extend_from_slice(&text);
                }
                i = close + 1;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    Ok(out)
}

/// The escaped form of `bytes` (the inverse of `unescape`; repeats are not folded).
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &c in bytes {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0 => s.push_str("\\0"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

fn parse_expect(v: &str, c: &mut Case) -> Result<(), String> {
    for word in v.split_whitespace() {
        match word {
            "close" => c.close = true,
            "cut" => {
                c.cut = true;
                c.close = true;
            }
            w => c.statuses.push(
                w.parse()
                    .ok()
                    .filter(|s| (100..600).contains(s))
                    .ok_or_else(|| format!("expect: {w:?} is neither a status nor close"))?,
            ),
        }
    }
    Ok(())
}

fn finish(c: Case, out: &mut Vec<Case>, names: &mut BTreeSet<String>) -> Result<(), String> {
    let at = format!("{}:{} ({})", c.file.display(), c.line, c.name);
    if !names.insert(c.name.clone()) {
        return Err(format!("{at}: the name is used twice"));
    }
    if c.source.trim().is_empty() {
        return Err(format!("{at}: no source:"));
    }
    if c.statuses.is_empty() && !c.close {
        return Err(format!("{at}: no expect:"));
    }
    if c.send.is_empty() && c.respond.is_empty() {
        return Err(format!("{at}: neither send: nor respond:"));
    }
    out.push(c);
    Ok(())
}

/// Every case of the `.cases` files in `dir`, in file then line order.
pub fn load(dir: &Path, names: &mut BTreeSet<String>) -> Result<Vec<Case>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut cur: Option<Case> = None;
        for (n, line) in text.lines().enumerate() {
            let at = || format!("{}:{}", file.display(), n + 1);
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix("=== ") {
                if let Some(c) = cur.take() {
                    finish(c, &mut out, names)?;
                }
                let name = name.trim();
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    return Err(format!("{}: bad case name {name:?}", at()));
                }
                cur = Some(Case {
                    name: name.to_owned(),
                    file: file.clone(),
                    line: n + 1,
                    ..Case::default()
                });
                continue;
            }
            let c = cur
                .as_mut()
                .ok_or_else(|| format!("{}: a line before the first ===", at()))?;
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
                .ok_or_else(|| format!("{}: not `key: value`", at()))?;
            let bytes = || unescape(value).map_err(|e| format!("{}: {e}", at()));
            match key {
                "source" => c.source = value.to_owned(),
                "why" | "forwarded" | "note" => {}
                "send" => c.send.extend(bytes()?),
                "respond" => c.respond.extend(bytes()?),
                "request" => c.request.get_or_insert_with(Vec::new).extend(bytes()?),
                "forward" => c.forward.push((bytes()?, false)),
                "cut" => c.forward.push((bytes()?, true)),
                "body" => c.body = Some(bytes()?),
                "expect" => parse_expect(value, c).map_err(|e| format!("{}: {e}", at()))?,
                "reuse" => c.reuse = value.trim() == "yes",
                "then" if value.trim() == "close" => c.then_close = true,
                other => return Err(format!("{}: unknown key {other:?}", at())),
            }
        }
        if let Some(c) = cur.take() {
            finish(c, &mut out, names)?;
        }
    }
    Ok(out)
}

/// Rewrites the `forward:`/`cut:` lines of `case` in its file to `seen` (the blessing run),
/// right after its `expect:` line; `forwarded:` placeholders go.
pub fn bless(case: &Case, seen: &[(Vec<u8>, bool)]) {
    let text = std::fs::read_to_string(&case.file).unwrap();
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            inside = name.trim() == case.name;
        }
        if inside
            && ["forward: ", "forwarded:", "cut: "]
                .iter()
                .any(|k| line.starts_with(k))
        {
            continue;
        }
        out.push(line.to_owned());
        if inside && line.starts_with("expect:") {
            for (f, cut) in seen {
                let key = if *cut { "cut" } else { "forward" };
                out.push(format!("{key}: {}", escape(f)));
            }
        }
    }
    std::fs::write(&case.file, out.join("\n") + "\n").unwrap();
}

#[test]
fn escapes_round_trip() {
    let raw = b"GET / HTTP/1.1\r\n\x00\x7f\xff\\x";
    assert_eq!(unescape(&escape(raw)).unwrap(), raw);
    assert_eq!(unescape("a\\*3(bc)d").unwrap(), b"abcbcbcd");
    assert!(unescape("\\q").is_err(), "an unknown escape is refused");
}
