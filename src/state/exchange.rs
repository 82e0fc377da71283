//! One proxied request on its way from the guard to the upstream: what both read about it
//! besides its head and path (the route it matched, the config in force, the process, its
//! connection, its id), passed as one value instead of a row of parameters.

use super::{CompiledRoute, Gateway, Runtime};
use crate::client_addr::ConnInfo;
use crate::shared::Shared;
use http::HeaderValue;
use std::sync::Arc;

/// A proxied request's surroundings (its head and body travel beside it).
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The route it matched.
    pub route: &'a CompiledRoute,
    /// The config in force for the whole request.
    pub rt: &'a Runtime,
    /// The gateway: process-wide state and the tunnels.
    pub gw: &'a Arc<Gateway>,
    /// What its connection tells about the client.
    pub conn: &'a ConnInfo,
    /// Its `X-Request-Id`.
    pub request_id: &'a HeaderValue,
}

impl<'a> Exchange<'a> {
    /// Process-wide state.
    pub fn shared(&self) -> &'a Shared {
        &self.gw.shared
    }
}
