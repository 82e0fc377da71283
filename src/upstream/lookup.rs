//! Route `lookup:`: where a resource really lives. The guard asks the upstream (a GET of the
//! route's lookup path, its parameters filled in, the route's upstream credential attached)
//! and reads the facts the requirement names (`{lookup:space_id}` ...) from the JSON answer.
//! Answers are cached per resolved path for the lookup's ttl; a 404 means the resource is
//! unknown (403), any other failure fails closed (503).

use crate::config::{LookupConfig, PathPart, ResourceRequirement, ValueRef};
use crate::reject::Reject;
use crate::route::Pattern;
use crate::upstream::UpstreamPool;
use dashmap::DashMap;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Most cached answers per route; a full cache starts over.
const CACHE_CAP: usize = 10_000;
/// Largest lookup answer read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// The fields of one lookup answer the requirement uses: text, or `None` when missing or null.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Facts(Vec<(Box<str>, Option<Box<str>>)>);

impl Facts {
    /// Reads `fields` from a JSON object: strings and numbers as text, anything else absent.
    pub fn from_json(doc: &Value, fields: &[String]) -> Self {
        Facts(
            fields
                .iter()
                .map(|f| {
                    let v = match doc.get(f.as_str()) {
                        Some(Value::String(s)) => Some(s.as_str().into()),
                        Some(Value::Number(n)) => Some(n.to_string().into()),
                        _ => None,
                    };
                    (f.as_str().into(), v)
                })
                .collect(),
        )
    }

    /// The value of `field`, when the answer had one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| &**k == field)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// A route's lookup, compiled: what to ask, which fields to read, and the answers cached.
#[derive(Debug)]
pub struct RouteLookup {
    config: LookupConfig,
    fields: Vec<String>,
    cache: DashMap<Box<str>, (Instant, Arc<Facts>)>,
}

impl RouteLookup {
    /// For a route whose requirements (`require` and `require_shadow`) read `{lookup:field}`s.
    pub fn new(config: LookupConfig, reqs: &[&ResourceRequirement]) -> Self {
        let mut fields: Vec<String> = reqs
            .iter()
            .flat_map(|req| [&req.space, &req.scope, &req.template, &req.create_method])
            .flatten()
            .filter_map(|v| match v {
                ValueRef::Lookup(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        fields.sort();
        fields.dedup();
        RouteLookup {
            config,
            fields,
            cache: DashMap::new(),
        }
    }

    /// Index of the upstream the lookup asks (into `Runtime::upstreams`).
    pub fn upstream(&self) -> usize {
        self.config.upstream
    }

    /// The lookup path for a request on `path` (parameters are single normalised segments).
    fn resolve(&self, pattern: &Pattern, path: &str) -> Option<String> {
        let mut out = String::with_capacity(64);
        for part in &self.config.path {
            match part {
                PathPart::Lit(s) => out.push_str(s),
                PathPart::Param(name) => out.push_str(pattern.param(path, name)?),
            }
        }
        Some(out)
    }

    /// The facts held for `path` (matched by `pattern`), if fresh; asks nobody (`explain`).
    pub fn cached(&self, pattern: &Pattern, path: &str) -> Option<Arc<Facts>> {
        let target = self.resolve(pattern, path)?;
        let hit = self.cache.get(target.as_str())?;
        (hit.0.elapsed() < self.config.ttl).then(|| Arc::clone(&hit.1))
    }

    /// The facts about the resource `path` (matched by `pattern`) names: cached, else asked of
    /// `pool` with the route's upstream credential header, if it has one.
    pub async fn facts(
        &self,
        pattern: &Pattern,
        path: &str,
        pool: &UpstreamPool,
        credential: Option<HeaderValue>,
    ) -> Result<Arc<Facts>, Reject> {
        let target = self
            .resolve(pattern, path)
            .ok_or(Reject::LookupUnavailable)?;
        if let Some(hit) = self.cache.get(target.as_str()) {
            if hit.0.elapsed() < self.config.ttl {
                return Ok(Arc::clone(&hit.1));
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        if let Some(value) = credential {
            headers.insert(
                crate::store::credentials::X_BKAPI_AUTHORIZATION.clone(),
                value,
            );
        }
        let pq = PathAndQuery::try_from(target.as_str()).map_err(|_| Reject::LookupUnavailable)?;
        let (status, body) = pool.fetch(pq, headers, ANSWER_LIMIT).await.map_err(|e| {
            tracing::warn!(upstream = pool.name(), error = ?e, "resource lookup failed");
            Reject::LookupUnavailable
        })?;
        if status == StatusCode::NOT_FOUND {
            return Err(Reject::Forbidden(format!(
                "access to an unknown resource ({})",
                pattern.as_str()
            )));
        }
        let doc = match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) if status == StatusCode::OK => v,
            _ => {
                tracing::warn!(
                    upstream = pool.name(),
                    status = status.as_u16(),
                    "resource lookup answered no JSON object"
                );
                return Err(Reject::LookupUnavailable);
            }
        };
        let facts = Arc::new(Facts::from_json(&doc, &self.fields));
        if self.cache.len() >= CACHE_CAP {
            self.cache.clear();
        }
        self.cache.insert(
            target.into_boxed_str(),
            (Instant::now(), Arc::clone(&facts)),
        );
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_are_facts_and_null_or_missing_are_not() {
        let doc = serde_json::json!({ "space_id": 3, "scope": "project_3", "template_id": null, "x": true });
        let fields: Vec<String> = ["space_id", "scope", "template_id", "x", "gone"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = Facts::from_json(&doc, &fields);
        assert_eq!(f.get("space_id"), Some("3"));
        assert_eq!(f.get("scope"), Some("project_3"));
        assert_eq!(f.get("template_id"), None);
        assert_eq!(f.get("x"), None);
        assert_eq!(f.get("gone"), None);
    }
}
