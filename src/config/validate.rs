//! Semantic checks that turn `RawConfig` into `Config`, collecting every problem.

use super::locate::LineIndex;
use super::raw::{RawConfig, RawRequire, RawRoute};
use super::*;
use std::collections::HashMap;

/// Collects problems with their lines.
struct Checker {
    index: LineIndex,
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let line = self.index.line_of(&key);
        self.problems.push(Problem {
            line,
            key,
            message: message.into(),
        });
    }

    fn addr(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.fail(key, format!("{text:?} is not an ip:port address"));
                None
            }
        }
    }

    fn readable(&mut self, key: &str, path: &Path) {
        if let Err(e) = std::fs::metadata(path) {
            self.fail(key, format!("cannot read {}: {e}", path.display()));
        }
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// Checks `raw` (parsed from `text`, read from `file`) and builds the typed config.
pub fn validate(raw: RawConfig, text: &str, file: &Path) -> Result<Config, ConfigError> {
    let base = file.parent().map(Path::to_owned).unwrap_or_default();
    let mut c = Checker {
        index: LineIndex::build(text),
        problems: Vec::new(),
    };
    let mut warnings = Vec::new();

    let listen_addr = c.addr("listen.address", &raw.listen.address);
    let tls = raw.listen.tls.as_ref().map(|t| {
        let files = TlsFiles {
            cert: resolve(&base, &t.cert),
            key: resolve(&base, &t.key),
        };
        c.readable("listen.tls.cert", &files.cert);
        c.readable("listen.tls.key", &files.key);
        files
    });

    let admin = raw.admin.as_ref().and_then(|a| {
        let address = c.addr("admin.address", &a.address)?;
        let token = match &a.token_file {
            None => None,
            Some(p) => match std::fs::read_to_string(resolve(&base, p)) {
                Ok(t) if !t.trim().is_empty() => Some(Secret::new(t.trim())),
                Ok(_) => {
                    c.fail("admin.token_file", "token file is empty");
                    None
                }
                Err(e) => {
                    c.fail(
                        "admin.token_file",
                        format!("cannot read {}: {e}", p.display()),
                    );
                    None
                }
            },
        };
        if token.is_none() && !address.ip().is_loopback() {
            c.fail(
                "admin.address",
                "the admin API is open to the network: bind it to loopback or set admin.token_file",
            );
        }
        let hosts = a
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let ok = !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
                if !ok {
                    c.fail(
                        format!("admin.hosts[{i}]"),
                        format!("{h:?} is not a host or host:port"),
                    );
                }
                ok.then(|| h.to_ascii_lowercase())
            })
            .collect();
        Some(Admin {
            address,
            token,
            hosts,
        })
    });

    let redis_url = match raw.store.kind.as_deref() {
        None | Some("embedded") => None,
        Some("redis") => {
            let url = raw.store.url.clone();
            match &url {
                None => c.fail(
                    "store.url",
                    "store.kind redis needs url: redis://host:port/db",
                ),
                Some(u) if redis::parse_redis_url(u).is_none() => c.fail(
                    "store.url",
                    format!(
                        "{:?} is not a redis:// URL",
                        crate::store::redis::redacted(u)
                    ),
                ),
                Some(_) => {}
            }
            // Replicas must share the keys: nothing may be generated per process.
            if raw.store.master_key_file.is_none()
                && crate::store::credentials::master_key_env().is_none()
            {
                c.fail("store.master_key_file", "store.kind redis needs a master key shared by the replicas (file or TOLLGATE_MASTER_KEY)");
            }
            if raw.signing.key_file.is_none() {
                c.fail("signing.key_file", "store.kind redis needs the signing key shared by the replicas: set signing.key_file");
            }
            url
        }
        Some(other) => {
            c.fail("store.kind", format!("{other:?} is not embedded or redis"));
            None
        }
    };
    let store = StoreConfig {
        path: resolve(
            &base,
            raw.store
                .path
                .as_deref()
                .unwrap_or(Path::new("data/tollgate.db")),
        ),
        hot_tokens: raw.store.hot_tokens.unwrap_or(100_000),
        master_key_file: raw
            .store
            .master_key_file
            .as_ref()
            .map(|p| resolve(&base, p)),
        redis_url,
    };
    if let Some(p) = &store.master_key_file {
        c.readable("store.master_key_file", p);
    }
    if crate::store::credentials::master_key_env().is_none() {
        let data_dir = store.path.parent();
        let key = store
            .master_key_file
            .clone()
            .unwrap_or_else(|| data_dir.unwrap_or(Path::new(".")).join("master.key"));
        if store.redis_url.is_none() && key.parent() == data_dir {
            warnings.push(format!(
                "store.master_key_file: the master key {} sits beside the store, so a copy of the data directory opens every sealed secret; for production keep it elsewhere (store.master_key_file or TOLLGATE_MASTER_KEY)",
                key.display()
            ));
        }
    }
    if store.hot_tokens == 0 {
        c.fail("store.hot_tokens", "must be at least 1");
    }

    let alg = match raw.signing.algorithm.as_deref().unwrap_or("RS256") {
        "RS256" => SigningAlg::RS256,
        "ES256" => SigningAlg::ES256,
        "EdDSA" => SigningAlg::EdDSA,
        "HS256" => SigningAlg::HS256,
        other => {
            c.fail(
                "signing.algorithm",
                format!("{other:?} is not RS256, ES256, EdDSA or HS256"),
            );
            SigningAlg::RS256
        }
    };
    let key_file = raw.signing.key_file.as_ref().map(|p| resolve(&base, p));
    if let Some(p) = &key_file {
        c.readable("signing.key_file", p);
    }
    let signing = Signing {
        alg,
        key_file,
        issuer: raw
            .signing
            .issuer
            .clone()
            .unwrap_or_else(|| "tollgate".to_owned()),
        leeway: raw
            .signing
            .leeway
            .map_or(Duration::from_secs(crate::token::jwt::LEEWAY_SECS), |d| d.0),
    };
    if signing.leeway > Duration::from_secs(300) {
        c.fail(
            "signing.leeway",
            "more than 5m of clock skew would keep expired tokens alive",
        );
    }

    let apps = check_apps(&raw, &mut c, &mut warnings);
    let dialects = check_dialects(&raw, &mut c);
    let (upstreams, by_name) = check_upstreams(&raw, &mut c);
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| check_route(i, r, &by_name, &mut c))
        .collect();
    let limits = check_limits(&raw, &mut c);
    let paths = crate::route::PathRules {
        matrix_params: match raw.paths.matrix_params.as_deref() {
            None | Some("refuse") => false,
            Some("allow") => true,
            Some(other) => {
                c.fail(
                    "paths.matrix_params",
                    format!("{other:?} is not refuse or allow"),
                );
                false
            }
        },
    };
    let underscore_headers = match raw.headers.underscores_in_headers.as_deref() {
        None | Some("drop") => false,
        Some("allow") => true,
        Some(other) => {
            c.fail(
                "headers.underscores_in_headers",
                format!("{other:?} is not drop or allow"),
            );
            false
        }
    };

    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        return Err(ConfigError {
            file: file.to_owned(),
            problems: c.problems,
        });
    }
    Ok(Config {
        file: file.to_owned(),
        listen: Listen {
            address: listen_addr.expect("checked above"),
            tls,
        },
        admin,
        store,
        signing,
        apps,
        dialects,
        upstreams,
        routes,
        limits,
        paths,
        underscore_headers,
        warnings,
    })
}

fn check_apps(raw: &RawConfig, c: &mut Checker, warnings: &mut Vec<String>) -> Vec<App> {
    let mut seen = HashMap::new();
    let mut spaces = HashMap::new();
    let mut apps = Vec::new();
    for (i, a) in raw.apps.iter().enumerate() {
        let key = format!("apps[{i}]");
        // App ids reach the upstream in X-Tollgate-App: a plain token, nothing to misread.
        if a.id.is_empty()
            || a.id.len() > 64
            || !a
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            c.fail(format!("{key}.id"), "must be 1 to 64 of A-Z a-z 0-9 _ . -");
        }
        for (s, scope) in a.oauth_scopes.iter().enumerate() {
            // RFC 6749 §3.3 scope-token; they are joined with spaces in X-Tollgate-Scope.
            let ok = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
            if !ok {
                c.fail(
                    format!("{key}.oauth_scopes[{s}]"),
                    format!("{scope:?} is not an RFC 6749 scope token (visible ASCII, no space, quote or backslash)"),
                );
            }
        }
        if let Some(space) = a.space_id {
            // One owner per space: an owner revokes the space's tokens and manages its credentials.
            if let Some(other) = spaces.insert(space, i) {
                c.fail(
                    format!("{key}.space_id"),
                    format!(
                        "space {space} is already owned by apps[{other}] ({:?}); a space has one owner",
                        raw.apps[other].id
                    ),
                );
            }
        }
        if let Some(user) = &a.user {
            if !crate::ident::valid_user(user) {
                c.fail(
                    format!("{key}.user"),
                    "must be 1 to 64 of A-Z a-z 0-9 _ . @ -",
                );
            }
        }
        if seen.insert(a.id.clone(), i).is_some() {
            c.fail(
                format!("{key}.id"),
                format!("app id {:?} is defined twice", a.id),
            );
        }
        let secret = if a.secret.starts_with("$argon2") {
            if argon2::PasswordHash::new(&a.secret).is_err() {
                c.fail(
                    format!("{key}.secret"),
                    "not a valid argon2 PHC string (use `tollgate hash-secret`)",
                );
            }
            AppSecret::Argon2(a.secret.clone())
        } else {
            if a.secret.is_empty() {
                c.fail(format!("{key}.secret"), "must not be empty");
            }
            warnings.push(format!(
                "apps[{i}] ({}): plain secret in config; store an argon2id hash from `tollgate hash-secret`",
                a.id
            ));
            AppSecret::Plain(Secret::new(a.secret.clone()))
        };
        let level = match a.scope.as_deref() {
            None => Level::Tenant,
            Some(s) => Level::parse(s).unwrap_or_else(|| {
                c.fail(
                    format!("{key}.scope"),
                    format!("{s:?} is not tenant or platform"),
                );
                Level::Tenant
            }),
        };
        let mut grants = Vec::new();
        for (g, grant) in a.grants.iter().enumerate() {
            let gk = format!("{key}.grants[{g}]");
            let Some(resource) = Resource::parse(&grant.resource) else {
                c.fail(
                    format!("{gk}.resource"),
                    format!("{:?} is not TASK, TEMPLATE or SCOPE", grant.resource),
                );
                continue;
            };
            match Perm::parse(&grant.permission).filter(|p| resource.perms().contains(p)) {
                Some(perm) => grants.push(Grant {
                    resource,
                    id: grant.id.clone(),
                    perm,
                }),
                None => {
                    let valid: Vec<&str> = resource.perms().iter().map(|p| p.as_str()).collect();
                    let msg = format!(
                        "{:?} is not one of {valid:?} for {}",
                        grant.permission, grant.resource
                    );
                    c.fail(format!("{gk}.permission"), msg);
                }
            }
            if grant.id != "*" && !crate::ident::valid_id(&grant.id) {
                c.fail(
                    format!("{gk}.id"),
                    "must be * or 1 to 128 of A-Z a-z 0-9 _ . -",
                );
            }
        }
        let event_url = a
            .event_url
            .as_deref()
            .and_then(|u| match u.parse::<http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.authority().is_some() =>
                {
                    Some(uri)
                }
                _ => {
                    c.fail(
                        format!("{key}.event_url"),
                        format!("{u:?} is not an http(s) URL"),
                    );
                    None
                }
            });
        if let Some(u) = &a.user {
            if u.is_empty() || u.len() > 32 {
                c.fail(format!("{key}.user"), "must be 1 to 32 characters");
            }
        }
        apps.push(App {
            id: a.id.clone(),
            secret,
            name: a.name.clone(),
            oauth_scopes: a.oauth_scopes.clone(),
            corp_id: a.corp_id.clone(),
            level,
            space_id: a.space_id,
            user: a.user.clone(),
            grants,
            event_url,
            verification_token: a.verification_token.clone(),
        });
    }
    apps
}

fn check_path(c: &mut Checker, key: &str, p: &str) {
    if !p.starts_with('/') || p.contains(['?', '#', ' ', '{', '*']) {
        c.fail(key, format!("{p:?} must be a plain absolute path"));
    }
}

fn check_dialects(raw: &RawConfig, c: &mut Checker) -> Dialects {
    let oauth = raw.dialects.oauth.as_ref().map(|o| {
        if let Some(t) = o.token.as_deref() {
            if t != "jwt" {
                c.fail(
                    "dialects.oauth.token",
                    format!("{t:?}: only jwt tokens are issued by this dialect"),
                );
            }
        }
        let d = OauthDialect {
            path: o
                .path
                .clone()
                .unwrap_or_else(|| "/oauth/token/get".to_owned()),
            rfc_path: o
                .rfc_path
                .clone()
                .unwrap_or_else(|| "/oauth/token".to_owned()),
            ttl: o.ttl.map_or(Duration::from_secs(3600), |d| d.0),
        };
        check_path(c, "dialects.oauth.path", &d.path);
        check_path(c, "dialects.oauth.rfc_path", &d.rfc_path);
        if d.ttl.is_zero() {
            c.fail("dialects.oauth.ttl", "must be more than 0");
        }
        d
    });
    let hosecloud = raw.dialects.hosecloud.as_ref().map(|h| {
        let d = HosecloudDialect {
            path: h
                .path
                .clone()
                .unwrap_or_else(|| "/auth/openApi/v3/getAccessToken".to_owned()),
            refresh_path: h
                .refresh_path
                .clone()
                .unwrap_or_else(|| "/auth/openApi/v3/refreshToken".to_owned()),
            refresh_v2_path: h
                .refresh_v2_path
                .clone()
                .unwrap_or_else(|| "/api/openapi/v2/auth/refreshToken".to_owned()),
            ttl: h.ttl.map_or(Duration::from_secs(2 * 3600), |d| d.0),
            refresh_ttl: h
                .refresh_ttl
                .map_or(Duration::from_secs(30 * 86_400), |d| d.0),
            refresh_max_lifetime: h
                .refresh_max_lifetime
                .map_or(Duration::from_secs(90 * 86_400), |d| d.0),
        };
        if d.refresh_max_lifetime < d.refresh_ttl {
            c.fail(
                "dialects.hosecloud.refresh_max_lifetime",
                "must be at least refresh_ttl",
            );
        }
        check_path(c, "dialects.hosecloud.path", &d.path);
        check_path(c, "dialects.hosecloud.refresh_path", &d.refresh_path);
        check_path(c, "dialects.hosecloud.refresh_v2_path", &d.refresh_v2_path);
        if d.ttl.is_zero() || d.refresh_ttl < d.ttl {
            c.fail(
                "dialects.hosecloud.refresh_ttl",
                "ttl must be more than 0 and refresh_ttl at least ttl",
            );
        }
        d
    });
    let bkflow = raw.dialects.bkflow.as_ref().map(|b| {
        let prefix = b.prefix.clone().unwrap_or_else(|| "/bkflow".to_owned());
        let prefix = prefix.trim_end_matches('/').to_owned();
        if !prefix.is_empty() {
            check_path(c, "dialects.bkflow.prefix", &prefix);
        }
        let ttl = b.ttl.map_or(Duration::from_secs(3600), |d| d.0);
        if ttl.is_zero() {
            c.fail("dialects.bkflow.ttl", "must be more than 0");
        }
        let time_format = match b.time_format.as_deref() {
            None | Some("seed") => TimeFormat::Seed,
            Some("iso8601") => TimeFormat::Iso8601,
            Some(other) => {
                c.fail(
                    "dialects.bkflow.time_format",
                    format!("{other:?} is not seed or iso8601"),
                );
                TimeFormat::Seed
            }
        };
        let utc_offset = match b.time_zone.as_deref() {
            None | Some("UTC") | Some("Z") => 0,
            Some(z) => parse_offset(z).unwrap_or_else(|| {
                c.fail(
                    "dialects.bkflow.time_zone",
                    format!("{z:?} is not UTC or an offset such as +08:00"),
                );
                0
            }),
        };
        BkflowDialect {
            prefix,
            ttl,
            auto_renew: b.auto_renew.unwrap_or(true),
            time_format,
            utc_offset,
        }
    });
    let feishu = raw.dialects.feishu.as_ref().map(|f| {
        let d = FeishuDialect {
            path: f
                .path
                .clone()
                .unwrap_or_else(|| "/open-apis/auth/v3/app_access_token".to_owned()),
            ttl: f.ttl.map_or(Duration::from_secs(2 * 3600), |d| d.0),
            renew_before: f.renew_before.map_or(Duration::from_secs(30 * 60), |d| d.0),
            ticket_ttl: f.ticket_ttl.map_or(Duration::from_secs(3600), |d| d.0),
        };
        check_path(c, "dialects.feishu.path", &d.path);
        if d.ttl.is_zero() || d.renew_before >= d.ttl {
            c.fail(
                "dialects.feishu.renew_before",
                "ttl must be more than 0 and renew_before less than ttl",
            );
        }
        if d.ticket_ttl.is_zero() {
            c.fail("dialects.feishu.ticket_ttl", "must be more than 0");
        }
        d
    });
    Dialects {
        oauth,
        hosecloud,
        bkflow,
        feishu,
    }
}

/// `+08:00` / `-05:30` → seconds east of UTC.
fn parse_offset(z: &str) -> Option<i32> {
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60 && rest.len() == 5).then_some(sign * (h * 3600 + m * 60))
}

fn check_upstreams(
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

fn check_route(
    i: usize,
    r: &RawRoute,
    by_name: &HashMap<String, usize>,
    c: &mut Checker,
) -> Option<RouteConfig> {
    let key = format!("routes[{i}]");
    let pattern = Pattern::parse(&r.path)
        .map_err(|e| c.fail(format!("{key}.path"), e))
        .ok();
    let upstream = by_name.get(&r.upstream).copied();
    if upstream.is_none() {
        c.fail(
            format!("{key}.upstream"),
            format!("no upstream named {:?}", r.upstream),
        );
    }
    let methods = r.methods.as_ref().map(|ms| {
        ms.iter()
            .enumerate()
            .filter_map(|(m, name)| match Method::from_bytes(name.as_bytes()) {
                Ok(method) if name.chars().all(|ch| ch.is_ascii_uppercase()) => Some(method),
                _ => {
                    c.fail(
                        format!("{key}.methods[{m}]"),
                        format!("{name:?} is not an HTTP method"),
                    );
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let auth = match r.auth.as_deref().unwrap_or("bearer") {
        "none" => AuthMode::None,
        "bearer" => AuthMode::Bearer,
        other => {
            c.fail(
                format!("{key}.auth"),
                format!("{other:?} is not none or bearer"),
            );
            AuthMode::Bearer
        }
    };
    let errors = match r.errors.as_deref() {
        None => ErrorStyle::Oauth,
        Some(s) => ErrorStyle::parse(s).unwrap_or_else(|| {
            c.fail(
                format!("{key}.errors"),
                format!("{s:?} is not oauth, hosecloud, feishu or bkflow"),
            );
            ErrorStyle::Oauth
        }),
    };
    let dialects = r.dialects.as_ref().map(|ds| {
        ds.iter()
            .enumerate()
            .filter_map(|(d, name)| {
                Dialect::parse(name).or_else(|| {
                    c.fail(
                        format!("{key}.dialects[{d}]"),
                        format!("{name:?} is not a dialect"),
                    );
                    None
                })
            })
            .collect()
    });
    let mut oauth_scope = None;
    let mut level = None;
    let mut resource = None;
    if let Some(req) = &r.require {
        let rk = format!("{key}.require");
        if auth == AuthMode::None {
            c.fail(rk.clone(), "a requirement needs auth: bearer");
        }
        oauth_scope = req.oauth_scope.clone();
        level = req.level.as_deref().and_then(|l| {
            Level::parse(l).or_else(|| {
                c.fail(
                    format!("{rk}.level"),
                    format!("{l:?} is not tenant or platform"),
                );
                None
            })
        });
        resource = check_requirement(&rk, req, pattern.as_ref(), c);
    }
    let lookup = r.lookup.as_ref().and_then(|l| {
        let lk = format!("{key}.lookup");
        let upstream = by_name.get(&l.upstream).copied();
        if upstream.is_none() {
            c.fail(
                format!("{lk}.upstream"),
                format!("no upstream named {:?}", l.upstream),
            );
        }
        let path = match LookupConfig::parse_path(&l.path) {
            Ok(parts) => {
                for part in &parts {
                    if let PathPart::Param(name) = part {
                        if pattern.as_ref().is_some_and(|p| !p.has_param(name)) {
                            c.fail(
                                format!("{lk}.path"),
                                format!("the route path has no parameter {{{name}}}"),
                            );
                        }
                    }
                }
                Some(parts)
            }
            Err(e) => {
                c.fail(format!("{lk}.path"), e);
                None
            }
        };
        let ttl = l.ttl.map_or(Duration::from_secs(30), |d| d.0);
        if ttl > Duration::from_secs(3600) {
            c.fail(
                format!("{lk}.ttl"),
                "at most 1h: a resource that moves must not keep its old facts for long",
            );
        }
        Some(LookupConfig {
            upstream: upstream?,
            path: path?,
            ttl,
        })
    });
    if let Some(req) = &resource {
        let uses_lookup = [&req.space, &req.scope, &req.template]
            .into_iter()
            .flatten()
            .any(|v| matches!(v, ValueRef::Lookup(_)));
        if uses_lookup && r.lookup.is_none() {
            c.fail(
                format!("{key}.require"),
                "a {lookup:field} reference needs the route's lookup: { upstream, path, ttl }",
            );
        }
    }
    let upstream_credential = r.upstream_credential.as_ref().map(|u| {
        if u.name.is_empty() || u.name.chars().count() > 32 {
            c.fail(
                format!("{key}.upstream_credential.name"),
                "must be 1 to 32 characters",
            );
        }
        (u.space, u.name.clone())
    });
    Some(RouteConfig {
        pattern: pattern?,
        methods,
        upstream: upstream?,
        auth,
        errors,
        oauth_scope,
        level,
        resource,
        dialects,
        forward_token: r.forward_token,
        upstream_credential,
        lookup,
    })
}

fn check_ref(
    key: &str,
    text: &str,
    pattern: Option<&Pattern>,
    c: &mut Checker,
) -> Option<ValueRef> {
    match ValueRef::parse(text) {
        Err(e) => {
            c.fail(key, e);
            None
        }
        Ok(ValueRef::Path(name)) if pattern.is_some_and(|p| !p.has_param(&name)) => {
            c.fail(key, format!("the route path has no parameter {{{name}}}"));
            None
        }
        Ok(v) => Some(v),
    }
}

fn check_requirement(
    rk: &str,
    req: &RawRequire,
    pattern: Option<&Pattern>,
    c: &mut Checker,
) -> Option<ResourceRequirement> {
    let any = req.resource.is_some()
        || req.id.is_some()
        || req.permission.is_some()
        || req.scope.is_some()
        || req.template.is_some()
        || req.space.is_some();
    if !any {
        return None;
    }
    let resource = match req.resource.as_deref().map(|r| (r, Resource::parse(r))) {
        Some((_, Some(r))) => Some(r),
        Some((r, None)) => {
            c.fail(
                format!("{rk}.resource"),
                format!("{r:?} is not TASK, TEMPLATE or SCOPE"),
            );
            None
        }
        None => {
            c.fail(
                format!("{rk}.resource"),
                "resource is required with id and permission",
            );
            None
        }
    };
    let perm = match req.permission.as_deref() {
        None => {
            c.fail(
                format!("{rk}.permission"),
                "permission is required with resource",
            );
            None
        }
        Some(p) => match (Perm::parse(p), resource) {
            (Some(perm), Some(r)) if r.perms().contains(&perm) => Some(perm),
            _ => {
                c.fail(
                    format!("{rk}.permission"),
                    format!(
                        "{p:?} is not a permission of {}",
                        req.resource.as_deref().unwrap_or("?")
                    ),
                );
                None
            }
        },
    };
    let id = match req.id.as_deref() {
        Some(t) => check_ref(&format!("{rk}.id"), t, pattern, c),
        None => {
            c.fail(format!("{rk}.id"), "id is required with resource");
            None
        }
    };
    if matches!(id, Some(ValueRef::Lookup(_))) {
        c.fail(
            format!("{rk}.id"),
            "id names the resource asked for: a literal, {param}, {query:name} or {header:Name}",
        );
    }
    // Facts about the resource are never the client's to state (SPEC §4).
    let mut fact = |name: &str, text: Option<&String>| {
        let key = format!("{rk}.{name}");
        let v = check_ref(&key, text?, pattern, c)?;
        if v.client_controlled() {
            c.fail(
                key,
                format!("{name} is a fact about the resource, not the client's to state: use a literal, a {{path_param}} or {{lookup:field}}, never a header or query reference"),
            );
            return None;
        }
        Some(v)
    };
    let space = fact("space", req.space.as_ref());
    let scope = fact("scope", req.scope.as_ref());
    let template = fact("template", req.template.as_ref());
    Some(ResourceRequirement {
        resource: resource?,
        id: id?,
        perm: perm?,
        scope,
        template,
        space,
    })
}

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
    let per_ip_burst = r.per_ip_burst.unwrap_or(d.per_ip_burst);
    if per_ip_burst == 0 {
        c.fail("limits.token_rate.per_ip_burst", "must be at least 1");
    }
    TokenRate {
        per_ip,
        per_ip_burst,
        per_app_failures,
    }
}

fn check_limits(raw: &RawConfig, c: &mut Checker) -> Limits {
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
    };
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
