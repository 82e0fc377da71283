//! Tests of `path`.

use super::*;
use crate::route::{Match, Pattern, Table};
use http::Method;
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
    assert_eq!(n("/a%3Ab%40c").unwrap(), "/a:b@c", "pchar is decoded");
    assert_eq!(
        n("/caf%c3%a9").unwrap(),
        "/caf%C3%A9",
        "valid UTF-8 stays encoded"
    );
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

#[test]
fn what_an_upstream_would_read_differently_is_refused() {
    for (p, e) in [
        ("/open/..;/product/update", PathError::MatrixParams),
        ("/open/.;/x", PathError::MatrixParams),
        ("/open/a;b/x", PathError::MatrixParams),
        ("/open/a%3Bb", PathError::MatrixParams),
        ("/open/%252e%252e/product/update", PathError::DoubleEncoding),
        (
            "/open/%252e%252e%252fproduct%252fupdate",
            PathError::DoubleEncoding,
        ),
        ("/open/%C0%AE%C0%AE/product/update", PathError::BadUtf8),
        ("/open/%E0%80%AE/product/update", PathError::BadUtf8),
        ("/open/%ED%A0%80", PathError::BadUtf8),
        ("/open/%C3", PathError::BadUtf8),
    ] {
        assert_eq!(n(p), Err(e), "{p}");
    }
    let allow = PathRules {
        matrix_params: true,
    };
    assert_eq!(normalise_with("/a;v=1/b", allow).unwrap(), "/a;v=1/b");
    assert_eq!(
        normalise_with("/open/..;/x", allow),
        Err(PathError::MatrixParams)
    );
    assert_eq!(
        normalise_with("/open/;x/y", allow),
        Err(PathError::MatrixParams)
    );
}

/// `.` / `..` / empty segments resolved the way every server does.
fn resolve(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut trailing = false;
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match *s {
            "" | "." => trailing = last,
            ".." => {
                out.pop()?;
                trailing = last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if trailing && p != "/" {
        p.push('/');
    }
    Some(p)
}

fn decode_all(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let esc = (b[i] == b'%')
            .then(|| Some(hex_val(*b.get(i + 1)?)? << 4 | hex_val(*b.get(i + 2)?)?))
            .flatten();
        match esc {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn strip_params(path: &str) -> String {
    path.split('/')
        .map(|s| s.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

/// Every way a common upstream may read a forwarded path.
fn readings(p: &str) -> Vec<(&'static str, Option<String>)> {
    let once = decode_all(p);
    vec![
        ("decoded once more", resolve(&once)),
        ("decoded twice more", resolve(&decode_all(&once))),
        (";params stripped", resolve(&strip_params(p))),
        (
            "decoded, then ;params stripped",
            resolve(&strip_params(&once)),
        ),
        ("backslash as slash", resolve(&p.replace('\\', "/"))),
        (
            "decoded, backslash as slash",
            resolve(&once.replace('\\', "/")),
        ),
    ]
}

fn table() -> Table<&'static str> {
    let mut t = Table::default();
    for (p, v) in [
        ("/product/update", "guarded"),
        ("/product/{id}", "guarded-param"),
        ("/open/*rest", "open"),
        ("/a:b/{x}/end", "colon"),
        ("/", "root"),
    ] {
        t.push(Pattern::parse(p).unwrap(), None, v);
    }
    t
}

fn route_of(t: &Table<&'static str>, path: &str) -> Option<&'static str> {
    match t.find(&Method::GET, path) {
        Match::Found(e) => Some(e.value),
        _ => None,
    }
}

fn any_path() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/",
        "/",
        "a",
        "b",
        "product",
        "update",
        "open",
        "a:b",
        "end",
        ".",
        "..",
        "%2e",
        "%2E",
        "%25",
        "%252e",
        "%252f",
        "%2f",
        "%5c",
        "\\",
        ";",
        ";x=1",
        "%3b",
        "%3A",
        "%67",
        "%C0%AE",
        "%E0%80%AE",
        "%C3%A9",
        "%C3",
        "%00",
        "%20",
        "%41",
        "%",
        "%zz",
        "~",
        "@",
        "+",
        "é",
    ]);
    prop::collection::vec(piece, 0..12).prop_map(|v| format!("/{}", v.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]
    #[test]
    fn a_forwarded_path_reads_the_same_to_every_upstream(s in any_path()) {
        let t = table();
        if let Ok(p) = n(&s) {
            // Idempotent and in normal form.
            prop_assert_eq!(n(&p).unwrap(), p.clone());
            prop_assert!(!p.contains("//"));
            prop_assert!(!p.split('/').any(|seg| seg == ".." || seg == "."));
            let ours = route_of(&t, &p);
            for (how, read) in readings(&p) {
                let read = read.expect("a reading never climbs above the root");
                prop_assert_eq!(route_of(&t, &read), ours, "{} reads {:?} as {:?} (from {:?})", how, p, read, s);
            }
        }
    }
}
