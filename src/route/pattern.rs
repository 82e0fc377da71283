//! Route patterns: `/exact`, `/task/{task_id}` (one segment), `/static/*rest` (the remainder).

use std::fmt;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// Matches exactly this text (the empty literal is a trailing slash).
    Lit(Box<str>),
    /// Matches one non-empty segment and binds it.
    Param(Box<str>),
    /// Matches whatever remains, possibly nothing.
    CatchAll(Box<str>),
}

/// A compiled route pattern; constructing one validates it.
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    text: Box<str>,
    segs: Vec<Seg>,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Pattern {
    /// Parses and validates a pattern as written in `routes[].path`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("{text:?} must start with /"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segs = Vec::with_capacity(parts.len());
        let mut names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let seg = if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if !valid_name(name) {
                    return Err(format!("{text:?}: bad parameter name {name:?}"));
                }
                names.push(name);
                Seg::Param(name.into())
            } else if let Some(name) = part.strip_prefix('*') {
                if !last {
                    return Err(format!("{text:?}: *{name} must be the last segment"));
                }
                if !valid_name(name) {
                    return Err(format!("{text:?}: bad catch-all name {name:?}"));
                }
                names.push(name);
                Seg::CatchAll(name.into())
            } else {
                if part.is_empty() && !last {
                    return Err(format!("{text:?}: empty segment"));
                }
                // Only what a normalised path can hold raw, so a literal matches a request
                // exactly when every upstream reading of it does.
                if *part == "."
                    || *part == ".."
                    || part.contains(['{', '}', '*'])
                    || !part.bytes().all(super::path::is_path_char)
                {
                    return Err(format!(
                        "{text:?}: segment {part:?} is not a plain path segment"
                    ));
                }
                Seg::Lit((*part).into())
            };
            segs.push(seg);
        }
        let mut sorted = names.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("{text:?}: a parameter name is used twice"));
        }
        Ok(Pattern {
            text: text.into(),
            segs,
        })
    }

    /// The pattern as written; this is the `route` label of metrics.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its segments.
    pub fn segs(&self) -> &[Seg] {
        &self.segs
    }

    /// True when the pattern binds `name`.
    pub fn has_param(&self, name: &str) -> bool {
        self.segs
            .iter()
            .any(|s| matches!(s, Seg::Param(n) | Seg::CatchAll(n) if &**n == name))
    }

    /// True when `name` is the pattern's catch-all (`*name`: the remainder, slashes and all).
    pub fn is_catch_all(&self, name: &str) -> bool {
        self.segs
            .iter()
            .any(|s| matches!(s, Seg::CatchAll(n) if &**n == name))
    }

    /// The value bound to parameter `name` in `path` (a path this pattern matched).
    pub fn param<'p>(&self, path: &'p str, name: &str) -> Option<&'p str> {
        let mut rest = path.strip_prefix('/')?;
        for seg in &self.segs {
            let (part, next) = rest.split_once('/').unwrap_or((rest, ""));
            match seg {
                Seg::Param(n) if &**n == name => return Some(part),
                Seg::CatchAll(n) if &**n == name => return Some(rest),
                _ => rest = next,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_of_each_kind_parse() {
        assert!(Pattern::parse("/").is_ok());
        assert!(Pattern::parse("/product/get").is_ok());
        assert!(Pattern::parse("/static/*rest").is_ok());
        assert!(Pattern::parse("/sdk/task/operate_task/{task_id}/{action}/").is_ok());
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "product",
            "/a//b",
            "/a/*rest/b",
            "/{1x}",
            "/{a}/{a}",
            "/a/../b",
            "/a%2F",
            "/a;b",
            "/a b",
            "/caf\u{e9}",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn params_are_read_back_from_a_matched_path() {
        let p = Pattern::parse("/sdk/task/{task_id}/{action}/").unwrap();
        assert_eq!(p.param("/sdk/task/42/start/", "task_id"), Some("42"));
        assert_eq!(p.param("/sdk/task/42/start/", "action"), Some("start"));
        let s = Pattern::parse("/static/*rest").unwrap();
        assert_eq!(s.param("/static/css/a.css", "rest"), Some("css/a.css"));
    }
}
