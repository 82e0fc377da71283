//! The start-up line: where everything is, in one line, what an operator checks first.

use crate::config::Config;
use std::path::Path;

/// Logs version, revision, config file, store (a Redis URL without its password) and counts.
pub fn log_start(path: &Path, config: &Config) {
    let store = match &config.store.redis {
        Some(r) if !r.sentinels.is_empty() => format!(
            "redis sentinel {} at {}",
            r.sentinel_master.as_deref().unwrap_or(""),
            r.sentinels.join(",")
        ),
        Some(r) => crate::config::redacted_url(r.url.as_deref().unwrap_or("")),
        None => config.store.path.display().to_string(),
    };
    tracing::info!(
        version = crate::metrics::VERSION,
        revision = crate::metrics::REVISION,
        config = %path.display(),
        store = %store,
        routes = config.routes.len(),
        apps = config.apps.len(),
        upstreams = config.upstreams.len(),
        issuers = config.issuers.len(),
        certificates = config.listen.tls.as_ref().map_or(0, |t| 1 + t.certificates.len()),
        "starting"
    );
}
