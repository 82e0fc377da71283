//! Semantic checks that turn `RawConfig` into `Config`, collecting every problem, one module
//! per section of the file.

mod apps;
mod dialects;
mod issuers;
mod limits;
mod listen;
mod require;
mod routes;
mod shadow;
mod store;
mod upstreams;

use super::locate::LineIndex;
use super::raw::RawConfig;
use super::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Collects problems with their lines.
pub(super) struct Checker {
    index: LineIndex,
    problems: Vec<Problem>,
    /// The folder relative paths resolve against.
    base: PathBuf,
    /// Things accepted but worth saying.
    warnings: Vec<String>,
    /// The file, to name in warnings.
    file: PathBuf,
}

impl Checker {
    /// `p` resolved against the config file's folder.
    pub(super) fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// One of `choices` by its name, `default` when absent; an unknown name is a problem.
    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: T,
        choices: &[(&str, T)],
    ) -> T {
        let Some(v) = value else { return default };
        match choices.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.fail(key, format!("{v:?} is not {}", names.join(" or ")));
                default
            }
        }
    }

    /// A warning about `key`, as `file:line: key: message` like a problem.
    pub(super) fn warn(&mut self, key: &str, message: impl std::fmt::Display) {
        let at = match self.index.line_of(key) {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        };
        self.warnings.push(format!("{at}: {key}: {message}"));
    }

    pub(super) fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let line = self.index.line_of(&key);
        self.problems.push(Problem {
            line,
            key,
            message: message.into(),
        });
    }

    pub(super) fn addr(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.fail(key, format!("{text:?} is not an ip:port address"));
                None
            }
        }
    }

    pub(super) fn readable(&mut self, key: &str, path: &Path) {
        if let Err(e) = std::fs::metadata(path) {
            self.fail(key, format!("cannot read {}: {e}", path.display()));
        }
    }
}

/// Checks `raw` (parsed from `text`, read from `file`) and builds the typed config.
pub fn validate(raw: RawConfig, text: &str, file: &Path) -> Result<Config, ConfigError> {
    let mut c = Checker {
        index: LineIndex::build(text),
        problems: Vec::new(),
        base: file.parent().map(Path::to_owned).unwrap_or_default(),
        warnings: Vec::new(),
        file: file.to_owned(),
    };
    let listen = listen::check_listen(&raw, &mut c);
    let admin = listen::check_admin(&raw, &mut c);
    let store = store::check_store(&raw, &mut c);
    let signing = store::check_signing(&raw, &mut c);
    let apps = apps::check_apps(&raw, &mut c);
    let dialects = dialects::check_dialects(&raw, &mut c);
    let (upstreams, by_name) = upstreams::check_upstreams(&raw, &mut c);
    let issuers = issuers::check_issuers(&raw, &mut c);
    let mtls = raw
        .listen
        .tls
        .as_ref()
        .is_some_and(|t| t.client_auth.is_some());
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let known = routes::Known {
                by_name: &by_name,
                issuers: &issuers,
                mtls,
            };
            routes::check_route(i, r, &known, &mut c)
        })
        .collect::<Vec<_>>();
    shadow::warn_shadowed(&routes, &mut c);
    issuers::warn_shared_introspection(&issuers, &routes, &mut c);
    let limits = limits::check_limits(&raw, &mut c);
    let (paths, underscore_headers) = limits::check_edge(&raw, &mut c);
    let runtime = limits::check_runtime(&raw, &mut c);
    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        return Err(ConfigError {
            file: file.to_owned(),
            problems: c.problems,
        });
    }
    Ok(Config {
        file: file.to_owned(),
        listen: listen.expect("checked above"),
        admin,
        store,
        signing,
        apps,
        dialects,
        issuers,
        upstreams,
        routes,
        limits,
        paths,
        underscore_headers,
        runtime,
        warnings: c.warnings,
    })
}
