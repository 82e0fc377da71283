//! Finds the line of a key path (`routes[2].upstream`) in the YAML text, for error messages.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Key path → 1-based line, built once per load.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Builder {
    /// Path of the value about to be read under the current frame.
    fn child_path(&self) -> Option<String> {
        match self.stack.last()? {
            Frame::Map { path, key: Some(k) } => Some(join(path, k)),
            Frame::Map { key: None, .. } => None,
            Frame::Seq { path, index } => Some(format!("{path}[{index}]")),
        }
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    fn record(&mut self, path: String, line: usize) {
        self.lines.entry(path).or_insert(line);
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, ..) => {
                if let Some(Frame::Map {
                    path,
                    key: key @ None,
                }) = self.stack.last_mut()
                {
                    let full = join(path, &text);
                    *key = Some(text);
                    self.record(full, line);
                } else {
                    if let Some(p) = self.child_path() {
                        self.record(p, line);
                    }
                    self.value_done();
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.child_path().unwrap_or_default();
                self.record(path.clone(), line);
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, index: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            Event::Alias(_) => self.value_done(),
            _ => {}
        }
    }
}

impl LineIndex {
    /// Indexes `text`; a text that does not parse yields an empty index.
    pub fn build(text: &str) -> Self {
        let mut b = Builder::default();
        let _ = Parser::new_from_str(text).load(&mut b, false);
        LineIndex { lines: b.lines }
    }

    /// Line of `path`, or of its nearest indexed parent.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_and_sequence_items_get_their_lines() {
        let text = "listen:\n  address: x\nroutes:\n  - path: /a\n    upstream: u\n  - path: /b\n    require: { resource: TASK }\n";
        let idx = LineIndex::build(text);
        assert_eq!(idx.line_of("listen.address"), Some(2));
        assert_eq!(idx.line_of("routes[0].upstream"), Some(5));
        assert_eq!(idx.line_of("routes[1].path"), Some(6));
        assert_eq!(idx.line_of("routes[1].require.resource"), Some(7));
        assert_eq!(idx.line_of("routes[1].missing"), Some(6));
    }
}
