//! `upstreams:`.

use super::Checker;
use crate::config::raw::RawConfig;
use crate::config::*;
use std::collections::HashMap;
use std::time::Duration;

/// `upstreams:`, and the index of each by name.
pub(super) fn check_upstreams(
    raw: &RawConfig,
    c: &mut Checker,
) -> (Vec<UpstreamConfig>, HashMap<String, usize>) {
    let mut out = Vec::new();
    let mut by_name = HashMap::new();
    for (name, u) in &raw.upstreams {
        let key = format!("upstreams.{name}");
        if u.targets.is_empty() {
            c.fail(format!("{key}.targets"), "needs at least one target");
        }
        let mut targets = Vec::new();
        for (i, t) in u.targets.iter().enumerate() {
            let tk = format!("{key}.targets[{i}]");
            match t.parse::<http::Uri>() {
                Ok(uri)
                    if uri.scheme_str() == Some("http")
                        && uri.authority().is_some()
                        && matches!(uri.path(), "" | "/") =>
                {
                    targets.push(uri.authority().expect("checked").clone())
                }
                Ok(uri) if uri.scheme_str() == Some("https") => c.fail(
                    tk,
                    "https upstreams are not supported yet; use http:// on a trusted network",
                ),
                _ => c.fail(tk, format!("{t:?} is not http://host:port")),
            }
        }
        let connect_timeout = u.connect_timeout.map_or(Duration::from_secs(2), |d| d.0);
        let timeout = u.timeout.map_or(Duration::from_secs(30), |d| d.0);
        if connect_timeout.is_zero() {
            c.fail(format!("{key}.connect_timeout"), "must be more than 0");
        }
        if timeout.is_zero() {
            c.fail(format!("{key}.timeout"), "must be more than 0");
        }
        let max_idle = u.max_idle.unwrap_or(32);
        let idle_timeout = u.idle_timeout.map_or(Duration::from_secs(30), |d| d.0);
        if idle_timeout.is_zero() {
            c.fail(format!("{key}.idle_timeout"), "must be more than 0");
        }
        by_name.insert(name.clone(), out.len());
        out.push(UpstreamConfig {
            name: name.clone(),
            targets,
            connect_timeout,
            timeout,
            max_idle,
            idle_timeout,
        });
    }
    (out, by_name)
}
