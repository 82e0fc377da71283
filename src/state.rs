//! Runtime state: `Runtime` is built whole from a `Config` and swapped atomically on reload;
//! `Shared` (metrics, hot tokens, revocations) lives as long as the process.

pub mod credential;
pub mod endpoint;
pub mod exchange;

use crate::config::{App, Config, ConfigError, ErrorStyle, RouteConfig};
use crate::metrics::RouteMetrics;
use crate::route::{Pattern, Table};
use crate::state::endpoint::Endpoint;
use crate::token::jwt::JwtKeys;
use crate::upstream::lookup::RouteLookup;
use crate::upstream::UpstreamPool;
use arc_swap::ArcSwap;
use http::Method;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a matched path leads to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A proxied route (index into `Runtime::routes`).
    Proxy(usize),
    /// An issuing endpoint served here.
    Issue(Endpoint),
    /// `GET /.well-known/jwks.json`.
    Jwks,
    /// `GET /.well-known/oauth-authorization-server` (RFC 8414).
    Metadata,
}

/// A table entry: target, error style and the metric handles of its label.
#[derive(Debug)]
pub struct Handler {
    /// Where it leads.
    pub target: Target,
    /// Body style of refusals.
    pub errors: ErrorStyle,
    /// Metric handles.
    pub metrics: RouteMetrics,
}

/// A proxied route, compiled.
#[derive(Debug)]
pub struct CompiledRoute {
    /// As configured.
    pub config: RouteConfig,
    /// Its resource lookup and the answers cached (dropped with the runtime on reload).
    pub lookup: Option<RouteLookup>,
    /// Its `rate_limit:` (the buckets outlive reloads).
    pub limiter: Option<crate::limit::RouteLimiter>,
}

/// Each `Runtime` built gets the next number; a principal held to one generation's config is
/// held again when it meets a newer one.
static GENERATION: AtomicU64 = AtomicU64::new(1);

use crate::shared::Shared;

/// Everything a request needs from the config, compiled.
#[derive(Debug)]
pub struct Runtime {
    /// The config it was built from.
    pub config: Arc<Config>,
    /// Unique per build: what cached principals were held to.
    pub generation: u64,
    /// Path → handler.
    pub table: Table<Handler>,
    /// Proxied routes.
    pub routes: Vec<CompiledRoute>,
    /// Metrics of requests that matched nothing.
    pub unmatched: RouteMetrics,
    /// JWT keys.
    pub keys: Arc<JwtKeys>,
    /// Apps by id.
    pub apps: HashMap<String, Arc<App>>,
    /// Upstream pools by index.
    pub upstreams: Vec<Arc<UpstreamPool>>,
    /// TLS settings of the public listener and the certificates they serve.
    pub tls: Option<crate::tls::ServerTls>,
    /// An argon2 hash checked for unknown app ids (as costly as a real one).
    pub dummy_secret: Option<String>,
    /// The RFC 8414 metadata document, made from the config.
    pub metadata: bytes::Bytes,
    /// External issuers, by index (`Origin::Issuer`).
    pub issuers: Vec<Arc<crate::idp::Issuer>>,
    /// External JWT issuers by their exact `iss`.
    pub issuer_by_iss: HashMap<String, u16>,
    /// Every claim a `claims_to_headers` mapping (an issuer's or a route's) forwards.
    pub forwarded_claims: Vec<String>,
    /// Every header those mappings fill: deleted from every client request.
    pub claim_headers: Vec<http::HeaderName>,
}

fn builtin(
    table: &mut Table<Handler>,
    shared: &Shared,
    path: &str,
    method: Method,
    target: Target,
) {
    let pattern = Pattern::parse(path).expect("validated path");
    let metrics = shared.metrics.route(path, &[]);
    table.push(
        pattern,
        Some(vec![method]),
        Handler {
            target,
            // Refusals of an issuing endpoint (413, store unavailable) keep its dialect's envelope.
            errors: match target {
                Target::Issue(ep) => ep.error_style(),
                _ => ErrorStyle::Oauth,
            },
            metrics,
        },
    );
}

impl Runtime {
    /// Compiles `config`: keys, TLS, routes and pools. Fails without side effects on the running gateway.
    pub fn build(config: Config, shared: &Shared) -> Result<Self, ConfigError> {
        Self::build_after(config, shared, &[])
    }

    /// As `build`, keeping each pool of `previous` whose settings did not change (its idle
    /// connections and health verdicts), unless it reads TLS files that may have.
    pub fn build_after(
        config: Config,
        shared: &Shared,
        previous: &[Arc<UpstreamPool>],
    ) -> Result<Self, ConfigError> {
        let keys = shared
            .build_keys(&config.signing, &config.store.path)
            .map_err(|e| ConfigError::single(&config.file, "signing.key_file", e))?;
        let tls = match &config.listen.tls {
            Some(files) => Some(
                crate::tls::server_config(files)
                    .map_err(|e| ConfigError::single(&config.file, "listen.tls", e))?,
            ),
            None => None,
        };
        let mut table = Table::default();
        for (path, ep) in crate::state::endpoint::endpoints(&config) {
            builtin(&mut table, shared, &path, Method::POST, Target::Issue(ep));
        }
        builtin(
            &mut table,
            shared,
            "/.well-known/jwks.json",
            Method::GET,
            Target::Jwks,
        );
        builtin(
            &mut table,
            shared,
            "/.well-known/oauth-authorization-server",
            Method::GET,
            Target::Metadata,
        );
        let issuers = shared
            .issuers
            .sync(&config.issuers, &shared.metrics)
            .map_err(|(name, e)| {
                let i = config
                    .issuers
                    .iter()
                    .position(|c| c.name == name)
                    .unwrap_or(0);
                ConfigError::single(&config.file, &format!("issuers[{i}]"), e)
            })?;
        let issuer_names: Vec<&str> = config.issuers.iter().map(|i| i.name.as_str()).collect();
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut limited: Vec<Box<str>> = Vec::new();
        for (i, r) in config.routes.iter().enumerate() {
            let handler = Handler {
                target: Target::Proxy(i),
                errors: r.errors,
                metrics: shared.metrics.route(r.pattern.as_str(), &issuer_names),
            };
            table.push(r.pattern.clone(), r.methods.clone(), handler);
            // The facts both the enforced and the shadow requirement read.
            let reqs: Vec<_> = r
                .require
                .resource
                .iter()
                .chain(r.shadow.as_ref().and_then(|s| s.resource.as_ref()))
                .collect();
            let lookup = match &r.lookup {
                Some(l) if !reqs.is_empty() => Some(RouteLookup::new(l.clone(), &reqs)),
                _ => None,
            };
            let limiter = r.rate_limit.map(|cfg| {
                crate::limit::RouteLimiter::for_route(r, cfg, &shared.limits, &shared.metrics)
            });
            limited.extend(limiter.as_ref().map(|l| l.key.clone()));
            routes.push(CompiledRoute {
                config: r.clone(),
                lookup,
                limiter,
            });
        }
        shared.limits.keep_routes(&limited);
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for u in &config.upstreams {
            let files = u.tls.ca_file.is_some() || u.tls.client_identity.is_some();
            let kept = previous.iter().find(|p| p.config() == u && !files);
            upstreams.push(match kept {
                Some(p) => Arc::clone(p),
                None => UpstreamPool::new(u, &shared.metrics).map_err(|e| {
                    ConfigError::single(&config.file, &format!("upstreams.{}.tls", u.name), e)
                })?,
            });
        }
        let apps = config
            .apps
            .iter()
            .map(|a| (a.id.clone(), Arc::new(a.clone())))
            .collect();
        let dummy_secret = crate::shared::verified::dummy_secret(&config.apps);
        let metadata = metadata(&config);
        let issuer_by_iss = config
            .issuers
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((c.jwt.as_ref()?.issuer.clone(), i as u16)))
            .collect();
        let mappings = || {
            config
                .issuers
                .iter()
                .flat_map(|i| &i.claims_to_headers)
                .chain(config.routes.iter().flat_map(|r| &r.claims_to_headers))
        };
        let mut forwarded_claims: Vec<String> = mappings().map(|(c, _)| c.clone()).collect();
        forwarded_claims.sort();
        forwarded_claims.dedup();
        let mut claim_headers: Vec<http::HeaderName> = mappings().map(|(_, h)| h.clone()).collect();
        claim_headers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        claim_headers.dedup();
        Ok(Runtime {
            unmatched: shared.metrics.route("(unmatched)", &issuer_names),
            config: Arc::new(config),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            table,
            routes,
            keys: Arc::new(keys),
            apps,
            upstreams,
            tls,
            dummy_secret,
            metadata,
            issuers,
            issuer_by_iss,
            forwarded_claims,
            claim_headers,
        })
    }
}

/// RFC 8414 authorization server metadata: where the token, revocation and key endpoints are.
fn metadata(config: &Config) -> bytes::Bytes {
    let issuer = config.signing.issuer.trim_end_matches('/');
    let mut doc = serde_json::json!({
        "issuer": config.signing.issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": [],
    });
    if let Some(o) = &config.dialects.oauth {
        doc["token_endpoint"] = format!("{issuer}{}", o.rfc_path).into();
        doc["revocation_endpoint"] = format!("{issuer}{}", o.revoke_path).into();
        doc["revocation_endpoint_auth_methods_supported"] =
            serde_json::json!(["client_secret_basic", "client_secret_post"]);
    }
    bytes::Bytes::from(doc.to_string())
}

/// A running gateway's state: the swappable runtime and the shared part.
#[derive(Debug)]
pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// Upgraded connections being spliced.
    pub tunnels: crate::upstream::tunnel::Tunnels,
}

impl Gateway {
    /// Builds a gateway from a validated config.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let shared = Arc::new(Shared::new(&config)?);
        Self::with_shared(config, shared)
    }

    /// Builds a gateway from a validated config, connecting to a shared store when it names one.
    pub async fn open(config: Config) -> Result<Self, ConfigError> {
        let shared = Arc::new(Shared::open(&config).await?);
        Self::with_shared(config, shared)
    }

    fn with_shared(config: Config, shared: Arc<Shared>) -> Result<Self, ConfigError> {
        let rt = Runtime::build(config, &shared)?;
        shared
            .metrics
            .certificates(rt.tls.as_ref().map_or(&[], |t| &t.served[..]));
        shared.install_keys(&rt.config.signing, Arc::clone(&rt.keys));
        Ok(Gateway {
            runtime: ArcSwap::from_pointee(rt),
            tunnels: crate::upstream::tunnel::Tunnels::new(shared.metrics.tunnels_active.clone()),
            shared,
        })
    }

    /// The current runtime (one atomic load).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Re-reads the config file and swaps in a new runtime; on error the old one keeps serving.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let current = self.runtime();
        let result = crate::config::load(&current.config.file).and_then(|cfg| {
            if cfg.listen.address != current.config.listen.address {
                tracing::warn!("listen.address changed; the new address takes effect on restart");
            }
            if cfg.runtime != current.config.runtime {
                tracing::warn!("workers or runtime changed; they take effect on restart");
            }
            if cfg.store.path != current.config.store.path
                || cfg.store.master_key_file != current.config.store.master_key_file
            {
                tracing::warn!("store settings changed; they take effect on restart");
            }
            Runtime::build_after(cfg, &self.shared, &current.upstreams)
        });
        match result {
            Ok(rt) => {
                if rt.keys.kid() != current.keys.kid() {
                    self.shared.hot.clear();
                }
                for w in &rt.config.warnings {
                    tracing::warn!("{w}");
                }
                self.shared
                    .install_keys(&rt.config.signing, Arc::clone(&rt.keys));
                let gone = gone_targets(&current, &rt);
                let served = rt.tls.as_ref().map_or(Vec::new(), |t| t.served.clone());
                self.runtime.store(Arc::new(rt));
                self.shared.metrics.certificates(&served);
                for (upstream, target) in gone {
                    let m = &self.shared.metrics.upstream_healthy;
                    let _ = m.remove_label_values(&[upstream.as_str(), target.as_str()]);
                }
                self.shared
                    .metrics
                    .config_reloads
                    .with_label_values(&["ok"])
                    .inc();
                tracing::info!("configuration reloaded");
                Ok(())
            }
            Err(e) => {
                self.shared
                    .metrics
                    .config_reloads
                    .with_label_values(&["error"])
                    .inc();
                tracing::error!(error = %e, "reload refused; the previous configuration keeps serving");
                Err(e)
            }
        }
    }
}

/// `(upstream, target)` labels of `old` that `new` no longer has.
fn gone_targets(old: &Runtime, new: &Runtime) -> Vec<(String, String)> {
    let labels = |rt: &Runtime| -> Vec<(String, String)> {
        rt.upstreams
            .iter()
            .flat_map(|p| {
                p.target_labels()
                    .map(|t| (p.name().to_owned(), t.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let keep = labels(new);
    labels(old)
        .into_iter()
        .filter(|l| !keep.contains(l))
        .collect()
}
