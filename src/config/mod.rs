//! Configuration: YAML file → raw serde structs → validated, typed `Config`.
//!
//! `run`, `check`, `demo` and reload all go through [`load`]. Every semantic problem is
//! collected and reported at once, each with file, line and key.

pub mod dn;
pub mod duration;
mod issuer;
mod limits;
pub mod locate;
mod model;
mod parse;
pub mod raw;
mod route;
mod tls;
mod upstream;
mod validate;

pub use issuer::{Introspection, IssuerConfig, JwtIssuer, KeySource, Origin};
pub use limits::{Limits, Rate, TokenRate};
pub use model::{
    Admin, App, AppSecret, BkflowDialect, Config, Dialect, Dialects, FeishuDialect,
    HosecloudDialect, Level, Listen, OauthDialect, RedisSettings, RedisTls, RuntimeConfig,
    RuntimeFlavour, Signing, SigningAlg, StoreConfig, TimeFormat,
};
pub use parse::parse_raw;
pub use route::{
    AuthMode, CertRequirement, ErrorStyle, LookupConfig, PathPart, RateKey, Requirements,
    ResourceRequirement, RouteConfig, RouteMode, RouteRate, SubjectMatch, ValueRef,
};
pub use tls::{CertFiles, ClientAuth, ClientAuthMode, TlsFiles};
pub use upstream::{Health, Passive, Protocol, Retries, RetryOn, UpstreamConfig, UpstreamTls};
pub use validate::validate;

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path such as `routes[2].upstream`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A refused config: every problem found, each with file, line and key.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong, in file order where known.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let file = self.file.display();
            match p.line {
                Some(line) => write!(f, "{file}:{line}: {}: {}", p.key, p.message)?,
                None => write!(f, "{file}: {}: {}", p.key, p.message)?,
            }
        }
        Ok(())
    }
}

impl ConfigError {
    /// One problem with no known line.
    pub fn single(file: &Path, key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            problems: vec![Problem {
                line: None,
                key: key.to_owned(),
                message: message.into(),
            }],
        }
    }
}

/// Reads, parses and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::single(path, "(file)", format!("cannot read: {e}")))?;
    load_str(&text, path)
}

/// Parses and validates `text` as if read from `file` (relative paths resolve against its folder).
pub fn load_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let raw = parse_raw(text, file)?;
    validate(raw, text, file)
}

/// Default allowed clock skew on `exp` and `nbf`, in seconds (`signing.leeway`).
pub const JWT_LEEWAY_SECS: u64 = 30;

/// `TOLLGATE_MASTER_KEY`, when set and not blank: the master key, overriding any file.
pub fn master_key_env() -> Option<String> {
    std::env::var("TOLLGATE_MASTER_KEY")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The URL with any password hidden, for messages: the user info and any query (where
/// `redis+unix://…?pass=` keeps one).
pub fn redacted_url(url: &str) -> String {
    // The user info first (a password may hold a `?`), then the query.
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    };
    match url.find('?') {
        Some(q) => format!("{}?***", &url[..q]),
        None => url,
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    /// Lines of a real config, to be shuffled, cut and mangled.
    const LINES: &[&str] = &[
        "listen:",
        "  address: \"127.0.0.1:0\"",
        "apps:",
        "  - id: a",
        "    secret: s",
        "    space_id: 3",
        "    grants: [{ resource: TASK, id: \"*\", permission: VIEW }]",
        "dialects:",
        "  oauth: {}",
        "  bkflow: { ttl: 0 }",
        "upstreams:",
        "  api: { targets: [\"http://127.0.0.1:1\"] }",
        "routes:",
        "  - path: \"/t/{id}\"",
        "    upstream: api",
        "    require: { resource: TASK, id: \"{id}\", permission: VIEW, scope: \"{lookup:s}\" }",
        "    lookup: { upstream: api, path: \"/m/{id}\", ttl: 2h }",
        "limits: { token_rate: { per_ip: 0/s } }",
        "paths: { matrix_params: maybe }",
        "  - [",
        "{",
        ": :",
        "\t",
        "&a *a",
        "!!binary x",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_loader_never_panics(lines in prop::collection::vec(prop::sample::select(LINES), 0..14), noise in "[ -~]{0,12}") {
            let text = format!("{}\n{noise}", lines.join("\n"));
            // Ok or an error naming the file: never a panic.
            if let Err(e) = super::load_str(&text, std::path::Path::new("f.yaml")) {
                prop_assert!(e.to_string().contains("f.yaml"));
            }
        }
    }
}
