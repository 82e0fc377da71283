//! `limits:`, `paths:` and `headers:`.

use super::Checker;
use crate::config::raw::RawConfig;
use crate::config::*;
use std::time::Duration;

fn check_token_rate(
    raw: Option<&super::raw::RawTokenRate>,
    d: TokenRate,
    c: &mut Checker,
) -> TokenRate {
    let Some(r) = raw else { return d };
    let mut rate = |key: &str, text: Option<&String>, default: Rate| match text {
        None => default,
        Some(t) => Rate::parse(t).unwrap_or_else(|| {
            c.fail(
                format!("limits.token_rate.{key}"),
                format!("{t:?} is not a rate such as 20/s or 10/min"),
            );
            default
        }),
    };
    let per_ip = rate("per_ip", r.per_ip.as_ref(), d.per_ip);
    let per_app_failures = rate(
        "per_app_failures",
        r.per_app_failures.as_ref(),
        d.per_app_failures,
    );
    let per_app = rate("per_app", r.per_app.as_ref(), d.per_app);
    let per_ip_burst = r.per_ip_burst.unwrap_or(d.per_ip_burst);
    let per_app_burst = r.per_app_burst.unwrap_or(d.per_app_burst);
    for (key, burst) in [
        ("per_ip_burst", per_ip_burst),
        ("per_app_burst", per_app_burst),
    ] {
        if burst == 0 {
            c.fail(format!("limits.token_rate.{key}"), "must be at least 1");
        }
    }
    TokenRate {
        per_ip,
        per_ip_burst,
        per_app_failures,
        per_app,
        per_app_burst,
    }
}

/// `limits:` with defaults filled in.
pub(super) fn check_limits(raw: &RawConfig, c: &mut Checker) -> Limits {
    let d = Limits::default();
    let l = &raw.limits;
    let limits = Limits {
        max_connections: l.max_connections.unwrap_or(d.max_connections),
        header_read_timeout: l.header_read_timeout.map_or(d.header_read_timeout, |x| x.0),
        tls_handshake_timeout: l
            .tls_handshake_timeout
            .map_or(d.tls_handshake_timeout, |x| x.0),
        max_headers: l.max_headers.unwrap_or(d.max_headers),
        max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes),
        token_body_bytes: l.token_body_bytes.unwrap_or(d.token_body_bytes),
        h2_max_streams: l.h2_max_streams.unwrap_or(d.h2_max_streams),
        drain_grace: l.drain_grace.map_or(d.drain_grace, |x| x.0),
        max_uri_bytes: l.max_uri_bytes.unwrap_or(d.max_uri_bytes),
        body_read_timeout: l.body_read_timeout.map_or(d.body_read_timeout, |x| x.0),
        token_body_timeout: l.token_body_timeout.map_or(d.token_body_timeout, |x| x.0),
        token_rate: check_token_rate(l.token_rate.as_ref(), d.token_rate, c),
        introspection_rate: match &l.introspection_rate {
            None => d.introspection_rate,
            Some(t) => Rate::parse(t).unwrap_or_else(|| {
                c.fail(
                    "limits.introspection_rate",
                    format!("{t:?} is not a rate such as 10/s or 600/min"),
                );
                d.introspection_rate
            }),
        },
        introspection_burst: l.introspection_burst.unwrap_or(d.introspection_burst),
    };
    if limits.introspection_burst == 0 {
        c.fail("limits.introspection_burst", "must be at least 1");
    }
    if limits.max_uri_bytes < 256 {
        c.fail("limits.max_uri_bytes", "must be at least 256");
    }
    if limits.body_read_timeout.is_zero() || limits.token_body_timeout.is_zero() {
        c.fail(
            "limits.body_read_timeout",
            "body_read_timeout and token_body_timeout must be more than 0",
        );
    }
    if limits.max_connections == 0 {
        c.fail("limits.max_connections", "must be at least 1");
    }
    if limits.header_read_timeout.is_zero() || limits.header_read_timeout > Duration::from_secs(60)
    {
        c.fail("limits.header_read_timeout", "must be between 1s and 60s");
    }
    if limits.tls_handshake_timeout.is_zero() {
        c.fail("limits.tls_handshake_timeout", "must be more than 0");
    }
    if limits.max_header_bytes < 8192 {
        c.fail("limits.max_header_bytes", "must be at least 8192");
    }
    limits
}

/// `paths:` and `headers:`: the path rules and whether header names with `_` are kept.
pub(super) fn check_edge(raw: &RawConfig, c: &mut Checker) -> (crate::route::PathRules, bool) {
    let matrix_params = c.choice(
        "paths.matrix_params",
        raw.paths.matrix_params.as_deref(),
        false,
        &[("refuse", false), ("allow", true)],
    );
    let underscores = c.choice(
        "headers.underscores_in_headers",
        raw.headers.underscores_in_headers.as_deref(),
        false,
        &[("drop", false), ("allow", true)],
    );
    (crate::route::PathRules { matrix_params }, underscores)
}

/// `workers:` and `runtime:`; workers default to the cores this process may run on, and one
/// worker runs on tokio's current-thread scheduler unless `runtime: multi_thread` says otherwise
/// (on one core it has no other thread to hand work to; measured +5 % req/s, bench/README).
pub(super) fn check_runtime(raw: &RawConfig, c: &mut Checker) -> RuntimeConfig {
    let named = c.choice(
        "runtime",
        raw.runtime.as_deref(),
        None,
        &[
            ("multi_thread", Some(RuntimeFlavour::MultiThread)),
            ("current_thread", Some(RuntimeFlavour::CurrentThread)),
        ],
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = match (raw.workers, named) {
        (Some(0), _) | (Some(1025..), _) => {
            c.fail("workers", "must be 1 to 1024");
            1
        }
        (Some(n), Some(RuntimeFlavour::CurrentThread)) if n > 1 => {
            c.fail(
                "workers",
                "runtime: current_thread runs one worker; remove workers or set 1",
            );
            1
        }
        (Some(n), _) => n,
        (None, Some(RuntimeFlavour::CurrentThread)) => 1,
        (None, _) => cores,
    };
    let flavour = named.unwrap_or(if workers == 1 {
        RuntimeFlavour::CurrentThread
    } else {
        RuntimeFlavour::MultiThread
    });
    RuntimeConfig { workers, flavour }
}

/// A route's `rate_limit:` (`key: app` needs a token to count by).
pub(super) fn check_route_rate(
    key: &str,
    raw: Option<&crate::config::raw::RawRouteRate>,
    auth: AuthMode,
    c: &mut Checker,
) -> Option<RouteRate> {
    let r = raw?;
    let key = format!("{key}.rate_limit");
    let by = c.choice(
        &format!("{key}.key"),
        Some(r.key.as_str()),
        RateKey::Ip,
        &[("app", RateKey::App), ("ip", RateKey::Ip)],
    );
    if by == RateKey::App && auth == AuthMode::None {
        c.fail(
            format!("{key}.key"),
            "key: app needs auth: bearer (a token to count by)",
        );
    }
    let Some(rate) = Rate::parse(&r.rate) else {
        c.fail(
            format!("{key}.rate"),
            format!("{:?} is not a rate such as 100/s or 600/min", r.rate),
        );
        return None;
    };
    let burst = r
        .burst
        .unwrap_or_else(|| rate.per_sec().ceil().max(1.0) as u32);
    if burst == 0 {
        c.fail(format!("{key}.burst"), "must be at least 1");
    }
    Some(RouteRate {
        key: by,
        rate,
        burst,
    })
}
