//! State that outlives a request: the hot-token map and revocations.
//!
//! The durable `Store` (embedded SQLite, Redis) arrives with its own issue; until then
//! revocations live in memory and issued JWTs need no storage to be verified.

pub mod bkflow;
pub mod credentials;
pub mod feishu;
pub mod hot;
pub mod redis;
pub mod refresh;
pub mod revoked;
pub mod sqlite;

pub use hot::{HotTokens, NegativeTokens};
pub use refresh::RefreshTokens;
pub use revoked::Revocations;
