//! YAML → raw structs, every problem named: the text is read into a YAML value first (syntax
//! errors with their line; `<<` merge keys applied), then into `RawConfig`. An unknown key is
//! noted with the nearest known one ("did you mean"), read as that one (or, with none close,
//! taken out), and the rest read again, so one run names every unknown key, not only the
//! first. Top-level keys starting with `x-` are ignored: a place for anchors to merge from.

use super::locate::LineIndex;
use super::raw::RawConfig;
use super::{ConfigError, Problem};
use serde_yaml_ng::Value;
use std::path::Path;

/// At most this many unknown keys are collected before the rest are left unsaid.
const MAX_UNKNOWN: usize = 50;

/// Parses `text` (from `file`) into the raw config.
pub fn parse_raw(text: &str, file: &Path) -> Result<RawConfig, ConfigError> {
    let fail = |problems| ConfigError {
        file: file.to_owned(),
        problems,
    };
    let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        fail(vec![Problem {
            line,
            key: "(YAML syntax)".into(),
            message: trim_location(&e.to_string()),
        }])
    })?;
    let as_written = value.clone();
    value
        .apply_merge()
        .map_err(|e| fail(vec![problem(None, "(merge key <<)", &e.to_string())]))?;
    if let Value::Mapping(m) = &mut value {
        m.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
    }
    let mut modified = value != as_written;
    let index = LineIndex::build(text);
    let mut problems = Vec::new();
    loop {
        // Read from YAML text, not from the value: the text reader takes `502` where a string
        // is wanted, as the file's author meant. A changed value is written out again first.
        let again;
        let source = if modified {
            again = serde_yaml_ng::to_string(&value).unwrap_or_default();
            again.as_str()
        } else {
            text
        };
        let de = serde_yaml_ng::Deserializer::from_str(source);
        match serde_path_to_error::deserialize::<_, RawConfig>(de) {
            Ok(raw) if problems.is_empty() => return Ok(raw),
            Ok(_) => break,
            Err(e) => {
                let key = e.path().to_string();
                let message = without_path(&trim_location(&e.inner().to_string()), &key);
                let unknown = unknown_field(&message);
                let line = index.line_of(&key);
                match unknown {
                    Some((name, expected)) if problems.len() < MAX_UNKNOWN => {
                        let near = nearest(name, &expected);
                        let said = match near {
                            Some(k) => format!("{message} (did you mean `{k}`?)"),
                            None => message.clone(),
                        };
                        problems.push(problem(line, &key, &said));
                        // Read as the near key, so its absence is not a second problem.
                        if !take(&mut value, e.path(), near) {
                            break;
                        }
                        modified = true;
                    }
                    _ => {
                        problems.push(problem(line, &key, &message));
                        break;
                    }
                }
            }
        }
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(fail(problems))
}

fn problem(line: Option<usize>, key: &str, message: &str) -> Problem {
    let key = if key == "." || key.is_empty() {
        "(document)".to_owned()
    } else {
        key.to_owned()
    };
    Problem {
        line,
        key,
        message: message.to_owned(),
    }
}

/// serde_yaml appends " at line L column C"; the line is printed separately.
fn trim_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message.to_owned(),
    }
}

/// serde_yaml also prefixes the path of the enclosing value; the key already says it.
fn without_path(message: &str, key: &str) -> String {
    match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && key.starts_with(prefix) => rest.to_owned(),
        _ => message.to_owned(),
    }
}

/// `unknown field `x`, expected one of `a`, `b`` → ("x", ["a", "b"]).
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, tail) = rest.split_once('`')?;
    let expected = tail.split('`').skip(1).step_by(2).collect();
    Some((name, expected))
}

/// The known key closest to `name`, when it is close (a third of its letters at most).
fn nearest<'a>(name: &str, expected: &[&'a str]) -> Option<&'a str> {
    let (d, k) = expected
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .min()?;
    (d <= (name.len() / 3).max(1)).then_some(k)
}

/// Takes the key at `path` out of `value`, putting its value back under `rename` when given
/// (and not already present); false when the key is not found.
fn take(value: &mut Value, path: &serde_path_to_error::Path, rename: Option<&str>) -> bool {
    use serde_path_to_error::Segment;
    let segs: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut at = value;
    for seg in parents {
        at = match (seg, at) {
            (Segment::Seq { index }, Value::Sequence(s)) => match s.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Map { key }, Value::Mapping(m)) => match m.get_mut(key.as_str()) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    let (Segment::Map { key }, Value::Mapping(m)) = (last, at) else {
        return false;
    };
    let Some(v) = m.remove(key.as_str()) else {
        return false;
    };
    if let Some(name) = rename {
        if !m.contains_key(name) {
            m.insert(Value::String(name.to_owned()), v);
        }
    }
    true
}
