//! Request paths: normalisation, route patterns and the compiled route table.

pub mod path;
pub mod pattern;
pub mod table;

pub use path::{normalise, normalise_with, PathError, PathRules};
pub use pattern::Pattern;
pub use table::{Match, Table};
