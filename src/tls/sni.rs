//! Picks the listener's certificate by the name a client asks for (SNI): exact names in one
//! hash lookup, then `*.parent` wildcards (one label), then the default certificate — or
//! none, refusing the handshake, with `sni_strict`.

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

/// The listener's certificates by name.
#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the parent of a `*.parent` name.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// A resolver answering `default` for unknown or missing names (`None`: refuse).
    pub fn new(default: Option<Arc<CertifiedKey>>) -> Self {
        SniResolver {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        }
    }

    /// Serves `key` for `name` (`*.example.com` matches exactly one more label); the first
    /// certificate given a name keeps it.
    pub fn add(&mut self, name: &str, key: &Arc<CertifiedKey>) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let map = match name.strip_prefix("*.") {
            Some(parent) => self.wildcard.entry(parent.to_owned()),
            None => self.exact.entry(name),
        };
        map.or_insert_with(|| Arc::clone(key));
    }

    /// The certificate for `name` (`None`: no SNI sent).
    pub fn pick(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let found = name.and_then(|n| {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            self.exact.get(&n).or_else(|| {
                let (_, parent) = n.split_once('.')?;
                self.wildcard.get(parent)
            })
        });
        found.or(self.default.as_ref()).cloned()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// One certificate for every client, whatever name it asks for.
#[derive(Debug)]
pub struct Single(pub Arc<CertifiedKey>);

impl ResolvesServerCert for Single {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
