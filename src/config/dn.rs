//! Distinguished names as sequences, not text: a certificate's subject read attribute by
//! attribute from its DER, a config's `subject:` read as RFC 4514 (escapes honoured), the two
//! compared element by element — so a CN that *contains* `, O=Acme` is one value, never two
//! attributes. Rendered back with RFC 4514 escaping for `X-Tollgate-Client-Cert-Subject`.

/// One attribute: its short name (`CN`, `O`, … or the dotted OID) and its value.
pub type Attr = (String, String);

/// The subject of a parsed certificate, in certificate order; `None` when a value is not text.
pub fn of_subject(name: &x509_parser::x509::X509Name<'_>) -> Option<Vec<Attr>> {
    let registry = x509_parser::objects::oid_registry();
    name.iter_attributes()
        .map(|a| {
            let kind = x509_parser::objects::oid2abbrev(a.attr_type(), registry)
                .map_or_else(|_| a.attr_type().to_id_string(), str::to_owned);
            a.as_str().ok().map(|v| (kind, v.to_owned()))
        })
        .collect()
}

/// Parses `C=US, O=Acme\, Inc, CN=billing` (RFC 4514 escapes: `\,` `\+` `\"` `\\` `\<` `\>`
/// `\;` `\=` `\#`, a leading or trailing `\ `, and `\hh` bytes); `+` joins attributes of one RDN
/// and is read as a separator too. Spaces around separators and `=` are ignored.
pub fn parse(text: &str) -> Result<Vec<Attr>, String> {
    let mut out = Vec::new();
    let mut cur = Vec::<u8>::new();
    let mut bytes = text.bytes().peekable();
    let mut kind: Option<String> = None;
    let finish = |kind: &mut Option<String>, cur: &mut Vec<u8>, out: &mut Vec<Attr>| {
        let k = kind
            .take()
            .ok_or_else(|| format!("{text:?}: an element has no `type=`"))?;
        let v =
            String::from_utf8(std::mem::take(cur)).map_err(|_| format!("{text:?}: not UTF-8"))?;
        if k.is_empty() {
            return Err(format!("{text:?}: an element has an empty type"));
        }
        out.push((k, v.trim().to_owned()));
        Ok::<(), String>(())
    };
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(h) if h.is_ascii_hexdigit() => {
                    let l = bytes
                        .next()
                        .filter(u8::is_ascii_hexdigit)
                        .ok_or_else(|| format!("{text:?}: a `\\` escape needs two hex digits"))?;
                    let hex = [h, l];
                    let s = std::str::from_utf8(&hex).unwrap_or("00");
                    cur.push(u8::from_str_radix(s, 16).unwrap_or(0));
                }
                Some(c) => cur.push(c),
                None => return Err(format!("{text:?}: ends in `\\`")),
            },
            b'=' if kind.is_none() => {
                let k = String::from_utf8(std::mem::take(&mut cur)).unwrap_or_default();
                kind = Some(k.trim().to_ascii_uppercase());
            }
            b',' | b'+' | b';' => finish(&mut kind, &mut cur, &mut out)?,
            c => cur.push(c),
        }
    }
    finish(&mut kind, &mut cur, &mut out)?;
    Ok(out)
}

/// True when `a` and `b` name the same attributes in the same order (types compared without
/// case, values exactly).
pub fn same(a: &[Attr], b: &[Attr]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka.eq_ignore_ascii_case(kb) && va == vb)
}

/// `attrs` as text, `, `-separated in the order given, each value escaped as RFC 4514 says
/// (`,` `+` `"` `\` `<` `>` `;` `=`, a leading `#` or space, a trailing space, controls as `\hh`).
pub fn render(attrs: &[Attr]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        let last = v.chars().count().saturating_sub(1);
        for (j, c) in v.chars().enumerate() {
            match c {
                ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                    out.push('\\');
                    out.push(c);
                }
                '#' | ' ' if j == 0 => {
                    out.push('\\');
                    out.push(c);
                }
                ' ' if j == last => out.push_str("\\ "),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// Each SAN percent-encoded where it could forge a separator or break the header (`%`, `,`,
/// space, controls and non-ASCII), then joined with `,`: a value never reads as two.
pub fn sans_header(sans: &[String]) -> String {
    let mut out = String::new();
    for (i, s) in sans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for b in s.bytes() {
            if b == b'%' || b == b',' || b <= b' ' || b >= 0x7f {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push(char::from(b));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str)]) -> Vec<Attr> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_value_holding_separators_is_one_value() {
        let want = parse("C=US, O=Acme, CN=billing").unwrap();
        assert_eq!(
            want,
            attrs(&[("C", "US"), ("O", "Acme"), ("CN", "billing")])
        );
        let forged = attrs(&[("CN", "C=US, O=Acme, CN=billing")]);
        assert!(!same(&forged, &want));
        assert_eq!(render(&forged), r"CN=C\=US\, O\=Acme\, CN\=billing");
        assert!(
            same(&parse(&render(&forged)).unwrap(), &forged),
            "render and parse agree"
        );
        let escaped = parse(r"O=Acme\, Inc, cn = x\2c y").unwrap();
        assert_eq!(escaped, attrs(&[("O", "Acme, Inc"), ("CN", "x, y")]));
        assert!(parse("no equals sign").is_err());
    }

    #[test]
    fn a_san_with_a_comma_stays_one_value() {
        let h = sans_header(&["spiffe://a/b,c".into(), "x.example".into()]);
        assert_eq!(h, "spiffe://a/b%2Cc,x.example");
    }
}
