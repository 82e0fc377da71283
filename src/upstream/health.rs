//! Active health checks: a GET of `health.path` on every target each `interval`, within
//! `timeout`; the verdict moves the target in or out of rotation.

use super::UpstreamPool;
use crate::config::Health;
use http::{header, Request, Uri};
use http_body_util::{Either, Full};
use std::sync::{Arc, Weak};

/// Probes the pool's targets until the pool is dropped (a reload that changed it).
pub async fn probe_loop(pool: Weak<UpstreamPool>, health: Health) {
    let mut tick = tokio::time::interval(health.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        // Side by side, so one slow target does not delay the verdict on the others.
        let mut round = tokio::task::JoinSet::new();
        for i in 0..pool.targets.len() {
            let (pool, health) = (Arc::clone(&pool), health.clone());
            round.spawn(async move {
                let t = &pool.targets[i];
                let verdict = probe(&pool, t, &health).await;
                let why = verdict.as_ref().err().map_or("", String::as_str);
                t.probed(
                    verdict.is_ok(),
                    health.healthy,
                    health.unhealthy,
                    &pool.name,
                    why,
                );
            });
        }
        drop(pool);
        while round.join_next().await.is_some() {}
    }
}

/// One probe: `Ok` when the answer's status is expected.
async fn probe(
    pool: &UpstreamPool,
    t: &super::target::Target,
    health: &Health,
) -> Result<(), String> {
    let uri = Uri::builder()
        .scheme(pool.scheme.clone())
        .authority(t.authority.clone())
        .path_and_query(health.path.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = Request::get(uri)
        .header(header::USER_AGENT, "tollgate-health-check")
        .body(Either::Right(Full::default()))
        .map_err(|e| e.to_string())?;
    *req.version_mut() = pool.version;
    if pool.version == http::Version::HTTP_11 {
        req.headers_mut().insert(header::HOST, t.host.clone());
    }
    match tokio::time::timeout(health.timeout, pool.client.request(req)).await {
        Err(_) => Err(format!("no answer within {:?}", health.timeout)),
        Ok(Err(e)) => Err(format!(
            "{:?}",
            super::client::classify(&super::client::SendError::Pooled(e))
        )),
        Ok(Ok(res)) if health.expect_status.contains(&res.status().as_u16()) => Ok(()),
        Ok(Ok(res)) => Err(format!("status {}", res.status().as_u16())),
    }
}
