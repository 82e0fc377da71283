//! The compiled route table: a segment trie, so matching costs O(path length), not O(routes).
//! Every candidate that matches is considered and the one written first wins.

use super::pattern::{Pattern, Seg};
use http::Method;
use std::collections::HashMap;

#[derive(Debug, Default)]
struct Node {
    statics: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    catch_all: Vec<u32>,
    terminal: Vec<u32>,
}

/// One entry: a pattern, the methods it accepts, and what it leads to.
#[derive(Debug)]
pub struct Entry<T> {
    /// Its pattern.
    pub pattern: Pattern,
    /// Methods accepted; all when `None`.
    pub methods: Option<Vec<Method>>,
    /// What a match leads to.
    pub value: T,
}

/// Outcome of a lookup.
#[derive(Debug)]
pub enum Match<'a, T> {
    /// The first entry matching path and method.
    Found(&'a Entry<T>),
    /// Some entry matched the path, none the method: the first such entry (whose metrics
    /// and error style the refusal takes) and the methods the path does accept.
    MethodNotAllowed {
        /// The first entry whose path matched.
        first: &'a Entry<T>,
        /// Every method some matching entry accepts (HEAD with GET).
        allow: Vec<Method>,
    },
    /// Nothing matched the path.
    NotFound,
}

/// Routes compiled for lookup; built once per config, read concurrently without locks.
#[derive(Debug)]
pub struct Table<T> {
    root: Node,
    entries: Vec<Entry<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            root: Node::default(),
            entries: Vec::new(),
        }
    }
}

struct Best {
    found: Option<u32>,
    path_matched: bool,
    /// On the second walk after a miss: every entry whose path matched.
    collect: Option<Vec<u32>>,
}

/// Whether an entry accepting `methods` serves `method` (HEAD wherever GET is served).
fn accepts(methods: Option<&Vec<Method>>, method: &Method) -> bool {
    methods.is_none_or(|ms| {
        ms.contains(method) || (*method == Method::HEAD && ms.contains(&Method::GET))
    })
}

impl<T> Table<T> {
    /// Adds an entry; earlier entries win over later ones.
    pub fn push(&mut self, pattern: Pattern, methods: Option<Vec<Method>>, value: T) {
        let idx = u32::try_from(self.entries.len()).expect("fewer than 4 billion routes");
        let mut node = &mut self.root;
        for seg in pattern.segs() {
            match seg {
                Seg::Lit(text) => node = node.statics.entry(text.clone()).or_default(),
                Seg::Param(_) => node = node.param.get_or_insert_with(Default::default),
                Seg::CatchAll(_) => {
                    node.catch_all.push(idx);
                    self.entries.push(Entry {
                        pattern,
                        methods,
                        value,
                    });
                    return;
                }
            }
        }
        node.terminal.push(idx);
        self.entries.push(Entry {
            pattern,
            methods,
            value,
        });
    }

    /// Entries in the order written.
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// Finds the first entry matching a normalised `path` and `method`.
    pub fn find(&self, method: &Method, path: &str) -> Match<'_, T> {
        let mut best = Best {
            found: None,
            path_matched: false,
            collect: None,
        };
        let rest = path.strip_prefix('/');
        self.walk(&self.root, rest, method, &mut best);
        match best.found {
            Some(i) => Match::Found(&self.entries[i as usize]),
            None if best.path_matched => self.not_allowed(rest, method),
            None => Match::NotFound,
        }
    }

    /// A second walk, on the refusal path only, for the `Allow` header.
    fn not_allowed(&self, rest: Option<&str>, method: &Method) -> Match<'_, T> {
        let mut best = Best {
            found: None,
            path_matched: false,
            collect: Some(Vec::new()),
        };
        self.walk(&self.root, rest, method, &mut best);
        let mut hits = best.collect.unwrap_or_default();
        hits.sort_unstable();
        let Some(&first) = hits.first() else {
            return Match::NotFound;
        };
        let mut allow: Vec<Method> = Vec::new();
        for i in hits {
            for m in self.entries[i as usize].methods.iter().flatten() {
                if !allow.contains(m) {
                    allow.push(m.clone());
                }
            }
        }
        if allow.contains(&Method::GET) && !allow.contains(&Method::HEAD) {
            allow.push(Method::HEAD);
        }
        Match::MethodNotAllowed {
            first: &self.entries[first as usize],
            allow,
        }
    }

    fn consider(&self, candidates: &[u32], method: &Method, best: &mut Best) {
        for &i in candidates {
            if let Some(all) = &mut best.collect {
                all.push(i);
                continue;
            }
            if best.found.is_some_and(|b| b < i) {
                return;
            }
            let e = &self.entries[i as usize];
            if accepts(e.methods.as_ref(), method) {
                best.found = Some(i);
                return;
            }
            best.path_matched = true;
        }
    }

    fn walk(&self, node: &Node, rest: Option<&str>, method: &Method, best: &mut Best) {
        self.consider(&node.catch_all, method, best);
        let Some(rest) = rest else {
            self.consider(&node.terminal, method, best);
            return;
        };
        let (seg, next) = match rest.split_once('/') {
            Some((seg, next)) => (seg, Some(next)),
            None => (rest, None),
        };
        if let Some(child) = node.statics.get(seg) {
            self.walk(child, next, method, best);
        }
        if let Some(child) = &node.param {
            if !seg.is_empty() {
                self.walk(child, next, method, best);
            }
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn patterns_and_lookups_never_panic(
            patterns in prop::collection::vec("/[a-z{}*_/.%;:]{0,20}", 0..8),
            path in "/[a-z/.%0-9]{0,30}",
        ) {
            let mut t = Table::default();
            for (i, p) in patterns.iter().enumerate() {
                if let Ok(pat) = Pattern::parse(p) {
                    t.push(pat, None, i);
                }
            }
            if let Ok(norm) = crate::route::normalise(&path) {
                if let Match::Found(e) = t.find(&Method::GET, &norm) {
                    // What matched binds every parameter it names from the same path.
                    for seg in e.pattern.segs() {
                        if let Seg::Param(n) = seg {
                            prop_assert!(e.pattern.param(&norm, n).is_some());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, Option<&[Method]>)]) -> Table<usize> {
        let mut t = Table::default();
        for (i, (p, m)) in routes.iter().enumerate() {
            t.push(Pattern::parse(p).unwrap(), m.map(|m| m.to_vec()), i);
        }
        t
    }

    fn hit(t: &Table<usize>, m: Method, p: &str) -> Option<usize> {
        match t.find(&m, p) {
            Match::Found(e) => Some(e.value),
            _ => None,
        }
    }

    #[test]
    fn exact_param_and_prefix_patterns_match() {
        let t = table(&[
            ("/product", None),
            ("/task/{id}", None),
            ("/static/*rest", None),
            ("/", None),
        ]);
        assert_eq!(hit(&t, Method::GET, "/product"), Some(0));
        assert_eq!(hit(&t, Method::GET, "/product/"), None);
        assert_eq!(hit(&t, Method::GET, "/task/7"), Some(1));
        assert_eq!(hit(&t, Method::GET, "/task/"), None);
        assert_eq!(hit(&t, Method::GET, "/task/7/x"), None);
        assert_eq!(hit(&t, Method::GET, "/static/a/b.css"), Some(2));
        assert_eq!(hit(&t, Method::GET, "/"), Some(3));
    }

    #[test]
    fn the_route_written_first_wins_whatever_its_kind() {
        let t = table(&[("/api/*rest", None), ("/api/users", None)]);
        assert_eq!(hit(&t, Method::GET, "/api/users"), Some(0));
        let t = table(&[("/api/{x}", None), ("/api/users", None)]);
        assert_eq!(hit(&t, Method::GET, "/api/users"), Some(0));
        let t = table(&[("/api/users", None), ("/api/{x}", None)]);
        assert_eq!(hit(&t, Method::GET, "/api/users"), Some(0));
    }

    #[test]
    fn a_method_filter_falls_through_to_later_routes() {
        let t = table(&[("/p", Some(&[Method::POST])), ("/p", Some(&[Method::GET]))]);
        assert_eq!(hit(&t, Method::GET, "/p"), Some(1));
        match t.find(&Method::DELETE, "/p") {
            Match::MethodNotAllowed { first, allow } => {
                assert_eq!(first.value, 0, "the first route of the path");
                assert_eq!(allow, [Method::POST, Method::GET, Method::HEAD]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(t.find(&Method::GET, "/q"), Match::NotFound));
    }

    #[test]
    fn head_is_served_wherever_get_is() {
        let t = table(&[("/p", Some(&[Method::GET])), ("/w", Some(&[Method::POST]))]);
        assert_eq!(hit(&t, Method::HEAD, "/p"), Some(0));
        assert_eq!(hit(&t, Method::HEAD, "/w"), None);
    }
}
