//! Feishu state: app tickets (issued here, pushed to apps) and access tokens under the
//! 2 h / 30 min overlap rule. Tokens are derived as HMAC(server key, record id) with the
//! dialect's prefix (`a-` store app, `t-` tenant / self-built), so the same token can be
//! answered again while it has enough life left. Every change is committed to the store as an
//! `Op` (`store::op`) and replayed into these maps at start.

use super::op::FsRow;
use crate::token::opaque::{self, TokenHash};
use aws_lc_rs::hmac;
use dashmap::DashMap;

/// What a feishu token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsRecord {
    /// App.
    pub app: String,
    /// `app`, `internal_app`, `internal_tenant` or `tenant:<tenant_key>`.
    pub kind: String,
    /// Record id (what the token is derived from).
    pub id: u128,
    /// `a-` / `t-`.
    pub prefix: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
}

/// How long a feishu token lives, and how long before its end asking again renews it.
#[derive(Debug, Clone, Copy)]
pub struct Life {
    /// Lifetime of a new token, in milliseconds.
    pub ttl_ms: u64,
    /// A current token with less than this left is renewed.
    pub renew_before_ms: u64,
}

/// A token handed out, and how long it has left.
#[derive(Debug, Clone)]
pub struct Obtained {
    /// Record id (what the token is derived from).
    pub id: u128,
    /// The token.
    pub token: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
    /// True when newly minted (not the current token again).
    pub fresh: bool,
}

/// How long the lowering of a token this replica never saw is remembered (longer than any
/// token lives: a replayed row is expired by then).
const UNKNOWN_KEEP_MS: u64 = 7 * 24 * 3_600_000;

/// Feishu tickets and tokens.
#[derive(Debug)]
pub struct FeishuTokens {
    key: hmac::Key,
    records: DashMap<TokenHash, FsRecord>,
    current: DashMap<(String, String), Obtained>,
    tickets: DashMap<String, Vec<(String, u64)>>,
    /// Tokens whose expiry was lowered (revoked), by token hash: the lowered expiry and until
    /// when the mark is kept (the expiry the token had before). A token's expiry only ever
    /// moves down, so a replayed older row never brings a revoked token back, even after the
    /// sweep dropped its record.
    lowered: DashMap<TokenHash, (u64, u64)>,
}

impl Default for FeishuTokens {
    fn default() -> Self {
        Self::new(&opaque::random_bytes::<32>())
    }
}

/// 22 alphanumerics from MAC bytes (as long as Feishu's own tokens after the prefix).
fn alnum22(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .take(22)
        .map(|b| ALPHABET[usize::from(*b) % 62] as char)
        .collect()
}

impl FeishuTokens {
    /// Empty, deriving tokens under `key` (the server key kept sealed in the store).
    pub fn new(key: &[u8]) -> Self {
        FeishuTokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            records: DashMap::new(),
            current: DashMap::new(),
            tickets: DashMap::new(),
            lowered: DashMap::new(),
        }
    }

    /// Notes that the token `hash` now expires at `to_ms`, having had `from_ms`.
    fn lower(&self, hash: TokenHash, to_ms: u64, from_ms: u64) {
        let mut m = self.lowered.entry(hash).or_insert((to_ms, from_ms));
        m.0 = m.0.min(to_ms);
        m.1 = m.1.max(from_ms);
    }

    /// Loads stored tokens (the newest of each app and kind becomes current) and tickets.
    pub fn restore(&self, rows: Vec<FsRow>, tickets: Vec<(String, String, u64)>) {
        let now = crate::token::now_millis();
        for mut r in rows {
            if let Some(m) = self.lowered.get(&r.token_hash) {
                r.expires_ms = r.expires_ms.min(m.0);
            }
            if r.expires_ms <= now {
                // A record never seen here: keep the mark longer than any token lives.
                let before = self
                    .records
                    .get(&r.token_hash)
                    .map_or(now.saturating_add(UNKNOWN_KEEP_MS), |rec| rec.expires_ms);
                self.lower(r.token_hash, r.expires_ms, before);
                // Expired or revoked: never current again.
                let key = (r.app.clone(), r.kind.clone());
                self.current.remove_if(&key, |_, c| c.id == r.id);
                if let Some(mut rec) = self.records.get_mut(&r.token_hash) {
                    rec.expires_ms = r.expires_ms;
                }
                continue;
            }
            let token = self.token_of(r.id, &r.prefix);
            let newer = self
                .current
                .get(&(r.app.clone(), r.kind.clone()))
                .is_none_or(|c| c.expires_ms < r.expires_ms);
            if newer {
                let slot = Obtained {
                    id: r.id,
                    token,
                    expires_ms: r.expires_ms,
                    fresh: false,
                };
                self.current.insert((r.app.clone(), r.kind.clone()), slot);
            }
            self.records.insert(
                r.token_hash,
                FsRecord {
                    app: r.app,
                    kind: r.kind,
                    id: r.id,
                    prefix: r.prefix,
                    expires_ms: r.expires_ms,
                },
            );
        }
        for (app, ticket, expires) in tickets {
            let mut list = self.tickets.entry(app).or_default();
            if !list.iter().any(|(t, _)| *t == ticket) {
                list.push((ticket, expires));
            }
        }
    }

    fn token_of(&self, id: u128, prefix: &str) -> String {
        let tag = hmac::sign(&self.key, &id.to_be_bytes());
        format!("{prefix}{}", alnum22(tag.as_ref()))
    }

    /// The app's current token of `kind` while it has at least `life.renew_before_ms` left;
    /// otherwise a new one (the old stays valid until its own expiry).
    pub fn obtain(&self, app: &str, kind: &str, prefix: &str, life: Life, now_ms: u64) -> Obtained {
        let Life {
            ttl_ms,
            renew_before_ms,
        } = life;
        let mut slot = self
            .current
            .entry((app.to_owned(), kind.to_owned()))
            .or_insert_with(|| Obtained {
                id: 0,
                token: String::new(),
                expires_ms: 0,
                fresh: false,
            });
        if !slot.token.is_empty() && slot.expires_ms >= now_ms + renew_before_ms {
            return Obtained {
                fresh: false,
                ..slot.clone()
            };
        }
        let id = u128::from_be_bytes(opaque::random_bytes::<16>());
        let token = self.token_of(id, prefix);
        let expires_ms = now_ms + ttl_ms;
        self.records.insert(
            opaque::hash(&token),
            FsRecord {
                app: app.to_owned(),
                kind: kind.to_owned(),
                id,
                prefix: prefix.to_owned(),
                expires_ms,
            },
        );
        *slot = Obtained {
            id,
            token,
            expires_ms,
            fresh: true,
        };
        slot.clone()
    }

    /// Every token record held, as rows, and every ticket: (app, ticket, expiry).
    pub fn dump(&self) -> (Vec<FsRow>, Vec<(String, String, u64)>) {
        let rows = self
            .records
            .iter()
            .map(|e| FsRow {
                token_hash: *e.key(),
                id: e.id,
                app: e.app.clone(),
                kind: e.kind.clone(),
                prefix: e.prefix.clone(),
                expires_ms: e.expires_ms,
            })
            .collect();
        let tickets = self
            .tickets
            .iter()
            .flat_map(|e| {
                let app = e.key().clone();
                e.value()
                    .iter()
                    .map(move |(t, x)| (app.clone(), t.clone(), *x))
                    .collect::<Vec<_>>()
            })
            .collect();
        (rows, tickets)
    }

    /// Drops every token and ticket, keeping the lowered-expiry marks (a snapshot replacing
    /// the state follows).
    pub fn clear_records(&self) {
        self.records.clear();
        self.current.clear();
        self.tickets.clear();
    }

    /// True when the token was issued here, live or not (until the sweep drops it).
    pub fn known(&self, hash: &TokenHash) -> bool {
        self.records.contains_key(hash)
    }

    /// The live record of a presented token.
    pub fn lookup(&self, hash: &TokenHash, now_ms: u64) -> Option<FsRecord> {
        self.records
            .get(hash)
            .filter(|r| r.expires_ms > now_ms)
            .map(|r| r.clone())
    }

    /// Issues a new ticket for `app`, valid `ttl_ms`; older unexpired tickets stay valid.
    pub fn issue_ticket(&self, app: &str, ttl_ms: u64, now_ms: u64) -> (String, u64) {
        let ticket = opaque::random_alnum(32);
        let expires = now_ms + ttl_ms;
        let mut list = self.tickets.entry(app.to_owned()).or_default();
        list.retain(|(_, e)| *e > now_ms);
        list.push((ticket.clone(), expires));
        (ticket, expires)
    }

    /// The newest unexpired ticket of `app`.
    pub fn current_ticket(&self, app: &str, now_ms: u64) -> Option<(String, u64)> {
        self.tickets
            .get(app)?
            .iter()
            .filter(|(_, e)| *e > now_ms)
            .max_by_key(|(_, e)| *e)
            .cloned()
    }

    /// True when `ticket` was issued to `app` and has not expired (compared in constant time).
    pub fn ticket_valid(&self, app: &str, ticket: &str, now_ms: u64) -> bool {
        self.tickets.get(app).is_some_and(|list| {
            list.iter()
                .any(|(t, e)| *e > now_ms && crate::secret::ct_eq(t.as_bytes(), ticket.as_bytes()))
        })
    }

    /// Expires a token now; returns its row to store (None when unknown or already expired).
    pub fn revoke(&self, hash: &TokenHash, now_ms: u64) -> Option<(String, String, u64)> {
        let mut rec = self
            .records
            .get_mut(hash)
            .filter(|r| r.expires_ms > now_ms)?;
        let before = rec.expires_ms;
        rec.expires_ms = now_ms;
        self.lower(*hash, now_ms, before);
        let key = (rec.app.clone(), rec.kind.clone());
        // A revoked current token must not be handed out again.
        self.current
            .remove_if(&key, |_, c| opaque::hash(&c.token) == *hash);
        Some((rec.app.clone(), rec.kind.clone(), now_ms))
    }

    /// Number of current (app, kind) slots.
    pub fn current_len(&self) -> usize {
        self.current.len()
    }

    /// Drops expired tokens, current slots and tickets.
    pub fn sweep(&self, now_ms: u64) {
        self.records.retain(|_, r| r.expires_ms > now_ms);
        self.lowered.retain(|_, m| m.1 > now_ms);
        // One current slot per (app, kind): tenant kinds would otherwise pile up forever.
        self.current.retain(|_, c| c.expires_ms > now_ms);
        self.tickets.retain(|_, list| {
            list.retain(|(_, e)| *e > now_ms);
            !list.is_empty()
        });
    }
}

#[cfg(test)]
#[path = "feishu_tests.rs"]
mod tests;
