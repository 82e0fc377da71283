//! `upstreams:`.

use super::Checker;
use crate::config::raw::{RawConfig, RawHealth, RawRetries, RawUpstream, RawUpstreamTls};
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
        by_name.insert(name.clone(), out.len());
        out.push(check_upstream(&key, name, u, c));
    }
    (out, by_name)
}

fn positive(
    c: &mut Checker,
    key: String,
    d: Option<&duration::ConfigDuration>,
    default: Duration,
) -> Duration {
    let d = d.map_or(default, |d| d.0);
    if d.is_zero() {
        c.fail(key, "must be more than 0");
    }
    d
}

fn check_upstream(key: &str, name: &str, u: &RawUpstream, c: &mut Checker) -> UpstreamConfig {
    let (targets, https) = check_targets(key, &u.targets, c);
    let protocol = c.choice(
        &format!("{key}.protocol"),
        u.protocol.as_deref(),
        Protocol::Http1,
        &[
            ("http1", Protocol::Http1),
            ("h2c", Protocol::H2c),
            ("h2", Protocol::H2),
        ],
    );
    match (protocol, https) {
        (Protocol::H2, false) => c.fail(
            format!("{key}.protocol"),
            "h2 is HTTP/2 over TLS: use https:// targets, or protocol: h2c for plain HTTP/2",
        ),
        (Protocol::H2c, true) => c.fail(
            format!("{key}.protocol"),
            "h2c is HTTP/2 without TLS: use http:// targets, or protocol: h2 over TLS",
        ),
        _ => {}
    }
    let tls = check_tls(key, u.tls.as_ref(), https, c);
    let secs = |c: &mut Checker, name: &str, d: Option<&duration::ConfigDuration>, default| {
        positive(c, format!("{key}.{name}"), d, Duration::from_secs(default))
    };
    let connect_timeout = secs(c, "connect_timeout", u.connect_timeout.as_ref(), 2);
    let timeout = secs(c, "timeout", u.timeout.as_ref(), 30);
    let idle_timeout = secs(c, "idle_timeout", u.idle_timeout.as_ref(), 30);
    let tunnel_idle_timeout = secs(
        c,
        "tunnel_idle_timeout",
        u.tunnel_idle_timeout.as_ref(),
        3600,
    );
    let health = u.health.as_ref().map(|h| check_health(key, h, c));
    let passive = match &u.passive {
        None => Passive {
            failures: 5,
            eject_for: Duration::from_secs(10),
        },
        Some(p) => Passive {
            failures: p.failures.unwrap_or(5),
            eject_for: positive(
                c,
                format!("{key}.passive.eject_for"),
                p.eject_for.as_ref(),
                Duration::from_secs(10),
            ),
        },
    };
    let retries = check_retries(key, u.retries.as_ref(), timeout, c);
    UpstreamConfig {
        name: name.to_owned(),
        targets,
        https,
        protocol,
        tls,
        connect_timeout,
        timeout,
        max_idle: u.max_idle.unwrap_or(256),
        idle_timeout,
        tunnel_idle_timeout,
        health,
        passive,
        retries,
        retry_body_bytes: u.retry_body_bytes.unwrap_or(64 * 1024),
    }
}

/// `host:port` of each target, and whether they are https (all of one scheme).
fn check_targets(key: &str, raw: &[String], c: &mut Checker) -> (Vec<http::uri::Authority>, bool) {
    if raw.is_empty() {
        c.fail(format!("{key}.targets"), "needs at least one target");
    }
    let mut targets = Vec::new();
    let mut schemes = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let tk = format!("{key}.targets[{i}]");
        match t.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri
                        .authority()
                        .is_some_and(|a| a.as_str().rfind('@').is_none())
                    && matches!(uri.path(), "" | "/")
                    && uri.query().is_none() =>
            {
                schemes.push(uri.scheme_str() == Some("https"));
                targets.push(uri.authority().expect("checked").clone());
            }
            _ => c.fail(
                tk,
                format!("{t:?} is not http://host:port or https://host:port"),
            ),
        }
    }
    let https = schemes.first().copied().unwrap_or(false);
    if schemes.iter().any(|s| *s != https) {
        c.fail(
            format!("{key}.targets"),
            "mixes http:// and https:// targets; one upstream speaks one way to all of its targets",
        );
    }
    (targets, https)
}

fn check_tls(key: &str, raw: Option<&RawUpstreamTls>, https: bool, c: &mut Checker) -> UpstreamTls {
    let Some(t) = raw else {
        return UpstreamTls::default();
    };
    let tk = format!("{key}.tls");
    if !https {
        c.fail(&tk, "applies to https:// targets only");
    }
    let ca_file = t.ca_file.as_ref().map(|p| {
        let p = c.path(p);
        c.readable(&format!("{tk}.ca_file"), &p);
        p
    });
    if let Some(n) = &t.server_name {
        if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
            c.fail(
                format!("{tk}.server_name"),
                format!("{n:?} is not a DNS name or IP address"),
            );
        }
    }
    let client_identity = match (&t.client_cert, &t.client_key) {
        (Some(cert), Some(k)) => {
            let (cert, k) = (c.path(cert), c.path(k));
            c.readable(&format!("{tk}.client_cert"), &cert);
            c.readable(&format!("{tk}.client_key"), &k);
            Some((cert, k))
        }
        (None, None) => None,
        (Some(_), None) => {
            c.fail(format!("{tk}.client_cert"), "needs client_key as well");
            None
        }
        (None, Some(_)) => {
            c.fail(format!("{tk}.client_key"), "needs client_cert as well");
            None
        }
    };
    if t.insecure_skip_verify {
        c.warnings.push(format!(
            "{tk}.insecure_skip_verify: true: any certificate is accepted, so anyone on the path can read and change this traffic"
        ));
        if t.ca_file.is_some() {
            c.fail(
                format!("{tk}.ca_file"),
                "has no effect with insecure_skip_verify: true",
            );
        }
    }
    UpstreamTls {
        ca_file,
        server_name: t.server_name.clone(),
        client_identity,
        insecure_skip_verify: t.insecure_skip_verify,
    }
}

fn check_health(key: &str, h: &RawHealth, c: &mut Checker) -> Health {
    let hk = format!("{key}.health");
    let path = match h.path.parse::<http::uri::PathAndQuery>() {
        Ok(p) if h.path.starts_with('/') => p,
        _ => {
            c.fail(
                format!("{hk}.path"),
                format!("{:?} is not an absolute path", h.path),
            );
            http::uri::PathAndQuery::from_static("/")
        }
    };
    let interval = positive(
        c,
        format!("{hk}.interval"),
        h.interval.as_ref(),
        Duration::from_secs(5),
    );
    let timeout = positive(
        c,
        format!("{hk}.timeout"),
        h.timeout.as_ref(),
        Duration::from_secs(1),
    );
    if timeout > interval {
        c.fail(format!("{hk}.timeout"), "must not be longer than interval");
    }
    let mut count = |name: &str, v: Option<u32>, default: u32| {
        let v = v.unwrap_or(default);
        if v == 0 {
            c.fail(format!("{hk}.{name}"), "must be at least 1");
        }
        v
    };
    let healthy = count("healthy", h.healthy, 2);
    let unhealthy = count("unhealthy", h.unhealthy, 3);
    let expect_status = h.expect_status.clone().unwrap_or_else(|| vec![200]);
    if expect_status.is_empty() {
        c.fail(format!("{hk}.expect_status"), "needs at least one status");
    }
    for (i, s) in expect_status.iter().enumerate() {
        if !(100..=599).contains(s) {
            c.fail(
                format!("{hk}.expect_status[{i}]"),
                format!("{s} is not an HTTP status"),
            );
        }
    }
    Health {
        path,
        interval,
        timeout,
        healthy,
        unhealthy,
        expect_status,
    }
}

fn check_retries(key: &str, r: Option<&RawRetries>, timeout: Duration, c: &mut Checker) -> Retries {
    let rk = format!("{key}.retries");
    let default_on = vec![RetryOn::ConnectFailure, RetryOn::RefusedStream];
    let Some(r) = r else {
        // Without a `retries:` block only what never reached a target is tried again.
        return Retries {
            attempts: 2,
            on: default_on,
            per_try_timeout: None,
            budget_percent: 20,
        };
    };
    let attempts = r.attempts.unwrap_or(2);
    if !(1..=5).contains(&attempts) {
        c.fail(
            format!("{rk}.attempts"),
            "must be 1 to 5 (tries in all, the first included)",
        );
    }
    let on = match &r.on {
        None => default_on,
        Some(names) => names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let found = RetryOn::NAMES
                    .iter()
                    .find(|(name, _)| name == n)
                    .map(|(_, v)| *v);
                if found.is_none() {
                    let all: Vec<&str> = RetryOn::NAMES.iter().map(|(n, _)| *n).collect();
                    c.fail(
                        format!("{rk}.on[{i}]"),
                        format!("{n:?} is not one of {}", all.join(", ")),
                    );
                }
                found
            })
            .collect(),
    };
    let per_try_timeout = r.per_try_timeout.as_ref().map(|d| d.0);
    if let Some(d) = per_try_timeout {
        if d.is_zero() || d > timeout {
            c.fail(
                format!("{rk}.per_try_timeout"),
                "must be more than 0 and at most the upstream's timeout",
            );
        }
    }
    let budget_percent = r.budget_percent.unwrap_or(20);
    if budget_percent > 100 {
        c.fail(format!("{rk}.budget_percent"), "must be 0 to 100");
    }
    Retries {
        attempts,
        on,
        per_try_timeout,
        budget_percent,
    }
}
