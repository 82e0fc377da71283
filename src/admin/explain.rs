//! `POST /admin/explain` and `tollgate explain`: why a request would get the answer it
//! would get, step by step, touching nothing: no hot-map insert, no counter, no store write,
//! no lookup, no IdP call, nothing forwarded.

use crate::config::{AuthMode, RouteMode};
use crate::guard::{bearer, require};
use crate::principal::Principal;
use crate::reject::{Decision, Invalid, Reject};
use crate::route::{Match, Table};
use crate::shared::Shared;
use crate::state::{Runtime, Target};
use http::request::Parts;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A request to explain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    /// Its method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Its target: path and query.
    pub path: String,
    /// Its header fields.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A token, sent as `Authorization: Bearer` when given.
    #[serde(default)]
    pub token: Option<String>,
}

fn parts(ask: &Ask) -> Result<Parts, String> {
    let mut b = http::Request::builder()
        .method(ask.method.as_deref().unwrap_or("GET"))
        .uri(&ask.path);
    for (k, v) in &ask.headers {
        b = b.header(k, v);
    }
    if let Some(t) = &ask.token {
        b = b.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(())
        .map(|r| r.into_parts().0)
        .map_err(|e| format!("not a request: {e}"))
}

/// The answer a refusal would be, as the client gets it.
async fn answer(rej: Reject, style: crate::config::ErrorStyle, out: &mut Value) {
    use http_body_util::BodyExt as _;
    out["decision"] = rej.decision().map_or("refused", Decision::as_str).into();
    out["reason"] = rej.message().into_owned().into();
    let res = rej.into_response(style);
    out["status"] = res.status().as_u16().into();
    let bytes = res.into_body().collect().await.map(|c| c.to_bytes());
    out["body"] = bytes
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
}

/// Why each route before the match was passed over, and which matched.
fn routes(rt: &Runtime, method: &http::Method, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for e in rt.table.entries() {
        let mut one: Table<()> = Table::default();
        one.push(e.pattern.clone(), e.methods.clone(), ());
        let (matched, why) = match one.find(method, path) {
            Match::Found(_) => (true, "path and method match".to_owned()),
            Match::MethodNotAllowed { allow, .. } => {
                let allow: Vec<&str> = allow.iter().map(http::Method::as_str).collect();
                (
                    false,
                    format!(
                        "path matches, method does not (allows {})",
                        allow.join(", ")
                    ),
                )
            }
            Match::NotFound => (false, "path does not match".to_owned()),
        };
        out.push(json!({ "route": e.pattern.as_str(), "matched": matched, "why": why }));
        if matched {
            break;
        }
    }
    out
}

/// Who the token stands for, judged as the guard would, without side effects.
async fn principal(token: &str, rt: &Runtime, shared: &Shared) -> Result<Principal, Reject> {
    if crate::token::is_jwt(token) {
        if let Some(i) = crate::guard::external::jwt_issuer(token, rt) {
            let issuer = &rt.issuers[i as usize];
            return match issuer.check_jwt_held(token, shared.clock.now_secs()).await {
                crate::idp::JwtCheck::Valid(c, until) => {
                    crate::idp::claims::principal(&issuer.cfg, i, &c, until, &rt.forwarded_claims)
                        .map_err(Reject::InvalidToken)
                }
                crate::idp::JwtCheck::Refused(inv) => Err(Reject::InvalidToken(inv)),
                crate::idp::JwtCheck::NoKeys => Err(Reject::IssuerUnavailable),
                crate::idp::JwtCheck::UnknownKey => {
                    Err(Reject::InvalidToken(crate::reject::Invalid::Bad))
                }
            };
        }
    }
    let own = crate::guard::verify::own_pure(token, rt, shared);
    if !matches!(own, Err(Reject::InvalidToken(Invalid::Bad))) || crate::token::is_jwt(token) {
        return own;
    }
    // An opaque token tollgate does not know: what an introspecting issuer said, if held.
    let hash = crate::token::opaque::hash(token);
    for (i, issuer) in rt.issuers.iter().enumerate() {
        let Some(v) = issuer.introspector.cached(&hash, shared.clock.now_millis()) else {
            continue;
        };
        if let crate::idp::introspect::Verdict::Active { claims, until_ms } = &*v {
            return crate::idp::claims::principal(
                &issuer.cfg,
                i as u16,
                claims,
                until_ms / 1000,
                &rt.forwarded_claims,
            )
            .map_err(Reject::InvalidToken);
        }
    }
    own
}

fn describe(p: &Principal, rt: &Runtime) -> Value {
    let grant = p
        .grant
        .as_ref()
        .map(|g| format!("{}:{}:{}", g.resource.as_str(), g.id, g.perm.as_str()));
    json!({
        "dialect": rt.config.origin_name(p.origin),
        "app": &*p.app,
        "scopes": p.scopes.iter().map(|s| &**s).collect::<Vec<_>>(),
        "level": p.level.map(|l| l.as_str()),
        "grant": grant,
        "space": p.space,
        "exp": p.exp,
        "revoked": false,
        "bound_to_client_certificate": p.bound_to.is_some(),
    })
}

/// Explains `ask` against the running config.
pub async fn explain(ask: &Ask, rt: &Runtime, shared: &Shared) -> Value {
    let mut out = json!({ "method": ask.method.as_deref().unwrap_or("GET"), "path": ask.path });
    let parts = match parts(ask) {
        Ok(p) => p,
        Err(e) => {
            answer(Reject::BadRequest(e.into()), Default::default(), &mut out).await;
            return out;
        }
    };
    let raw = parts.uri.path();
    let path = match crate::route::normalise_with(raw, rt.config.paths) {
        Ok(p) => p,
        Err(e) => {
            out["normalised"] = json!({ "refused": e.message() });
            answer(Reject::BadPath(e), Default::default(), &mut out).await;
            return out;
        }
    };
    out["normalised"] = json!({ "path": &*path, "changed": *path != *raw });
    out["routes"] = routes(rt, &parts.method, &path).into();
    let handler = match rt.table.find(&parts.method, &path) {
        Match::Found(e) => &e.value,
        Match::MethodNotAllowed { first, allow } => {
            let allow: Vec<&str> = allow.iter().map(http::Method::as_str).collect();
            let v = http::HeaderValue::from_str(&allow.join(", "))
                .unwrap_or(http::HeaderValue::from_static(""));
            answer(Reject::MethodNotAllowed(v), first.value.errors, &mut out).await;
            return out;
        }
        Match::NotFound => {
            answer(Reject::NotFound, Default::default(), &mut out).await;
            return out;
        }
    };
    let route = match handler.target {
        Target::Proxy(i) => &rt.routes[i],
        other => {
            out["target"] = format!("{other:?}: served by tollgate, no token check").into();
            out["decision"] = "served".into();
            return out;
        }
    };
    let c = &route.config;
    out["route"] = c.pattern.as_str().into();
    out["upstream"] = rt.upstreams[c.upstream].name().into();
    out["mode"] = if c.mode == RouteMode::Shadow {
        "shadow"
    } else {
        "enforce"
    }
    .into();
    let verdict = judge(&parts, &path, route, rt, shared, &mut out).await;
    match verdict {
        Ok(()) => {
            out["decision"] = "allowed".into();
            out["status"] = "forwarded to the upstream (its answer)".into();
        }
        Err(rej) if c.mode == RouteMode::Shadow && rej.decision().is_some() => {
            out["shadow_decision"] = rej.decision().map_or("refused", Decision::as_str).into();
            out["decision"] = "allowed (shadow route: forwarded, counted as shadow)".into();
            out["status"] = "forwarded to the upstream (its answer)".into();
        }
        Err(rej) => answer(rej, handler.errors, &mut out).await,
    }
    out
}

/// Each step of the guard for `route`, recorded in `out`; the first refusal ends it.
async fn judge(
    parts: &Parts,
    path: &str,
    route: &crate::state::CompiledRoute,
    rt: &Runtime,
    shared: &Shared,
    out: &mut Value,
) -> Result<(), Reject> {
    let c = &route.config;
    let mut steps: Vec<Value> = Vec::new();
    let mut step = |what: String, met: Option<bool>, by: Option<String>| {
        steps.push(json!({ "requirement": what, "met": met, "by": by }));
    };
    let result = async {
        match c.auth {
            AuthMode::None => {
                step("auth: none (no token needed)".into(), Some(true), None);
                return Ok(());
            }
            AuthMode::ClientCert => {
                step(
                    "a client certificate (explain has no connection: not evaluated)".into(),
                    None,
                    None,
                );
                return Ok(());
            }
            AuthMode::Bearer => {}
        }
        let found = bearer::extract(parts)?;
        let Some((token, source)) = found else {
            step("a bearer token".into(), Some(false), None);
            return Err(Reject::MissingToken);
        };
        out["token"] = json!({ "source": format!("{source:?}") });
        let p = match principal(&token, rt, shared).await {
            Ok(p) => p,
            Err(rej) => {
                step(
                    "a valid token".into(),
                    Some(false),
                    Some(rej.message().into_owned()),
                );
                return Err(rej);
            }
        };
        out["token"] = describe(&p, rt);
        out["token"]["source"] = format!("{source:?}").into();
        step(
            "a valid token".into(),
            Some(true),
            Some(rt.config.origin_name(p.origin).to_owned()),
        );
        if p.bound_to.is_some() || c.client_cert.is_some() {
            step(
                "the client certificate (explain has no connection: not evaluated)".into(),
                None,
                None,
            );
        }
        if let Some(allowed) = &c.dialects {
            let names: Vec<&str> = allowed.iter().map(|&o| rt.config.origin_name(o)).collect();
            let ok = allowed.contains(&p.origin);
            step(
                format!("dialect one of {}", names.join(", ")),
                Some(ok),
                None,
            );
            if !ok {
                return Err(Reject::InvalidToken(Invalid::WrongDialect));
            }
        }
        if let Some(scope) = &c.require.oauth_scope {
            let ok = p.scopes.iter().any(|s| **s == **scope);
            step(
                format!("oauth scope {scope}"),
                Some(ok),
                ok.then(|| format!("scope {scope}")),
            );
            if !ok {
                return Err(Reject::Forbidden(format!("oauth scope {scope}")));
            }
        }
        if let Some(need) = c.require.level {
            let ok = p.level.is_some_and(|held| held.satisfies(need));
            let held = p.level.map(|l| format!("level {}", l.as_str()));
            step(format!("hosecloud level {}", need.as_str()), Some(ok), held);
            if !ok {
                return Err(Reject::Forbidden(format!(
                    "hosecloud level {}",
                    need.as_str()
                )));
            }
        }
        if let Some(req) = &c.require.resource {
            let id = require::resource_id(req, parts, path, &c.pattern)?;
            // A lookup's facts are only those it holds already: explain calls no upstream.
            let facts = route
                .lookup
                .as_ref()
                .and_then(|l| l.cached(&c.pattern, path));
            let what = format!(
                "{} {} on {}",
                req.resource.as_str(),
                req.perm.as_str(),
                id.as_deref().unwrap_or("?")
            );
            match require::check(req, &p, &id, facts.as_deref()) {
                Ok(()) => {
                    let g = p.grant.as_ref().map(|g| {
                        format!("grant {}:{}:{}", g.resource.as_str(), g.id, g.perm.as_str())
                    });
                    step(what, Some(true), g);
                }
                Err(missing) => {
                    step(what, Some(false), Some(format!("missing: {missing}")));
                    return Err(Reject::Forbidden(missing));
                }
            }
        }
        Ok(())
    }
    .await;
    out["requirements"] = steps.into();
    result
}

/// `tollgate explain`: builds the gateway `config` describes (its store opened for keys and
/// tokens, nothing listening) and explains one request; `headers` are `Name: value` lines.
pub async fn offline(
    config: crate::config::Config,
    method: String,
    path: String,
    headers: &[String],
) -> Result<Value, String> {
    let mut h = BTreeMap::new();
    for line in headers {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("-H {line:?}: write Name: value"))?;
        h.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let gw = crate::state::Gateway::open(config)
        .await
        .map_err(|e| e.to_string())?;
    let ask = Ask {
        method: Some(method),
        path,
        headers: h,
        token: None,
    };
    Ok(explain(&ask, &gw.runtime(), &gw.shared).await)
}
