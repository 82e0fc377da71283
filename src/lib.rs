//! Tollgate: an API-gateway sidecar. It terminates TLS, issues access tokens in the dialects
//! existing clients speak, checks the bearer token of every proxied request, and forwards
//! what passes to the upstream.
//!
//! Start at [`server::start`] (bind and serve a [`config::Config`]) and [`dispatch`] (the
//! per-request pipeline, whose module doc lists the phases in order).
#![forbid(unsafe_code)]

pub mod access_log;
pub mod admin;
pub mod body;
pub mod client_addr;
pub mod compact;
pub mod config;
pub mod counted;
pub mod demo;
pub mod dispatch;
pub mod grpc;
pub mod guard;
pub mod ident;
pub mod idp;
pub mod issue;
pub mod limit;
pub mod metrics;
pub mod permission;
pub mod principal;
pub mod proxy;
pub mod reject;
pub mod report;
pub mod request_head;
pub mod request_id;
pub mod route;
pub mod secret;
pub mod server;
pub mod shared;
pub mod signing;
pub mod startup;
pub mod state;
pub mod store;
pub mod tls;
pub mod token;
pub mod upstream;
