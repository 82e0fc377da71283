//! What `tollgate check` prints for a valid config: listeners, certificates (warning on
//! stderr when one ends within 30 days), issuing endpoints, issuers and every route with
//! what it requires.

use crate::config::Config;
use crate::tls::Served;
use std::path::Path;

/// The report for `config` (read from `path`) whose listener serves `served`.
pub fn check_report(path: &Path, config: &Config, served: &[Served]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}: ok", path.display());
    let scheme = if config.listen.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = writeln!(out, "listen {scheme}://{}", config.listen.address);
    match &config.admin {
        Some(a) => {
            let guarded = if a.token.is_some() {
                "admin API needs the token_file's bearer token"
            } else {
                "admin API open to whoever reaches it"
            };
            let _ = writeln!(out, "admin  http://{} ({guarded})", a.address);
        }
        None => {
            let _ = writeln!(out, "admin  none (no /metrics, /healthz, /readyz)");
        }
    }
    let now = crate::token::now_secs() as i64;
    for (i, c) in served.iter().enumerate() {
        let days = (c.not_after - now) / 86_400;
        let which = if i == 0 { "default" } else { "sni" };
        let _ = writeln!(
            out,
            "tls    {which:<7} {} (expires in {days} days)",
            c.names.join(", ")
        );
        if c.not_after - now < 30 * 86_400 {
            eprintln!(
                "warning: listen.tls: the certificate for {} expires in {days} days",
                c.names.join(", ")
            );
        }
    }
    for (path, ep) in crate::state::endpoint::endpoints(config) {
        let _ = writeln!(out, "issue  POST {path:<40} {}", ep.describe());
    }
    for i in &config.issuers {
        let mut how = Vec::new();
        if let Some(j) = &i.jwt {
            let keys = match &j.keys {
                crate::config::KeySource::Url(u) => u.to_string(),
                crate::config::KeySource::File(f) => f.display().to_string(),
            };
            let algs: Vec<String> = j.algorithms.iter().map(|a| format!("{a:?}")).collect();
            how.push(format!(
                "JWT iss={} keys={keys} algs={}",
                j.issuer,
                algs.join(",")
            ));
        }
        if let Some(t) = &i.introspection {
            how.push(format!("introspection {}", t.url));
        }
        if !i.audiences.is_empty() {
            how.push(format!("aud {}", i.audiences.join(",")));
        }
        let _ = writeln!(out, "issuer {:<12} {}", i.name, how.join("; "));
    }
    for r in &config.routes {
        let methods = r.methods.as_ref().map_or("*".to_owned(), |m| {
            m.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",")
        });
        let up = &config.upstreams[r.upstream];
        let scheme = if up.https { "https" } else { "http" };
        let targets: Vec<String> = up
            .targets
            .iter()
            .map(|t| format!("{scheme}://{t}"))
            .collect();
        let auth = match r.auth {
            crate::config::AuthMode::None => "none".to_owned(),
            crate::config::AuthMode::ClientCert => {
                let mut need = vec!["client_cert".to_owned()];
                need.extend(r.client_cert.as_ref().map(|q| format!("cert {q:?}")));
                need.join(", ")
            }
            crate::config::AuthMode::Bearer => {
                let mut need = vec!["bearer".to_owned()];
                need.extend(r.client_cert.as_ref().map(|q| format!("cert {q:?}")));
                need.extend(requirements(&r.require));
                if r.mode == crate::config::RouteMode::Shadow {
                    need.push("mode shadow (nothing enforced)".into());
                }
                if let Some(s) = &r.shadow {
                    need.push(format!("require_shadow {}", requirements(s).join(" ")));
                }
                if let Some(d) = &r.dialects {
                    let names: Vec<&str> = d.iter().map(|&o| config.origin_name(o)).collect();
                    need.push(format!("dialects {}", names.join(",")));
                }
                need.join(", ")
            }
        };
        let limit = r.rate_limit.map_or(String::new(), |l| {
            let key = match l.key {
                crate::config::RateKey::App => "app",
                crate::config::RateKey::Ip => "ip",
            };
            format!(
                ", rate_limit {key} {}/s burst {}",
                l.rate.per_sec(),
                l.burst
            )
        });
        let _ = writeln!(
            out,
            "route  {methods:<4} {:<40} -> {} [{}] auth={auth}{limit}",
            r.pattern.as_str(),
            up.name,
            targets.join(" ")
        );
    }
    out
}

/// A route's requirements as the YAML writes them.
fn requirements(r: &crate::config::Requirements) -> Vec<String> {
    use std::fmt::Write as _;
    let mut out = Vec::new();
    out.extend(r.oauth_scope.as_ref().map(|s| format!("oauth_scope {s}")));
    out.extend(r.level.map(|l| format!("level {}", l.as_str())));
    if let Some(q) = &r.resource {
        let mut what = format!("{} {} on {}", q.perm.as_str(), q.resource.as_str(), q.id);
        for (k, v) in [
            ("space", &q.space),
            ("scope", &q.scope),
            ("template", &q.template),
            ("create_method", &q.create_method),
        ] {
            if let Some(v) = v {
                let _ = write!(what, " {k} {v}");
            }
        }
        out.push(what);
    }
    out
}
