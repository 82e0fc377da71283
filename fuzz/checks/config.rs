//! The config loader on arbitrary text: a config or an error, never a panic.

/// Runs the check on one input; panics on a finding.
pub fn config(data: &str) {
    let _ = tollgate::config::load_str(data, std::path::Path::new("fuzz.yaml"));
}
