//! Request paths: normalisation, route patterns and the compiled route table. The three
//! modules are private; each item has one path, here.

mod path;
mod pattern;
mod table;

pub use path::{is_path_char, normalise, normalise_with, PathError, PathRules};
pub use pattern::{Pattern, Seg};
pub use table::{Entry, Match, Table};
