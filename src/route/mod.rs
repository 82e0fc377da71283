//! Request paths: normalisation, route patterns and the compiled route table.

pub mod path;
pub mod pattern;
pub mod table;

pub use path::{normalise, PathError};
pub use pattern::Pattern;
pub use table::{Match, Table};
