//! An issuer's signing keys: a JWKS parsed into verification keys, fetched at start, refreshed
//! on `Cache-Control: max-age` (or `jwks_refresh`), fetched again at once for an unknown `kid`
//! (at most once per `jwks_cooldown`), and kept as they were when a fetch fails.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The bounds a `Cache-Control: max-age` is held to.
const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(86_400);
/// After a failed fetch, the next try comes this soon (or at the refresh time, if sooner).
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(10);

/// One verification key.
struct Key {
    kid: Option<String>,
    /// The algorithms it may verify: its `alg`, or every one its type and curve suit.
    algs: Vec<Algorithm>,
    key: DecodingKey,
}

/// The usable keys of one JWKS.
pub struct KeySet {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| k.kid.as_deref()).collect();
        write!(f, "KeySet({kids:?})")
    }
}

fn key_alg(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The algorithms a key's type (and curve) can verify; none for symmetric keys, which a
/// JWKS of public keys must never be used as.
fn suited(jwk: &Jwk) -> Vec<Algorithm> {
    use Algorithm::*;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => vec![],
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![EdDSA],
        _ => vec![],
    }
}

impl KeySet {
    /// Parses a JWKS document; keys that are symmetric, meant for encryption, or not
    /// understood are left out (a document with none usable is an error).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let doc: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let list = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("no \"keys\" array")?;
        let mut keys = Vec::new();
        for v in list {
            let Ok(jwk) = serde_json::from_value::<Jwk>(v.clone()) else {
                continue;
            };
            if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            let mut algs = suited(&jwk);
            if let Some(a) = jwk.common.key_algorithm {
                // A key that names its algorithm verifies that one only, and only if it suits.
                algs.retain(|x| Some(*x) == key_alg(a));
            }
            if algs.is_empty() {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                algs,
                key,
            });
        }
        if keys.is_empty() {
            return Err("no usable signing key in the JWKS".into());
        }
        Ok(KeySet { keys })
    }

    /// The key for a token with header `kid` and `alg`: the one with that kid, which must
    /// suit the alg; without a kid, the only key that suits it.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Found<'_> {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(k) if k.algs.contains(&alg) => Found::Key(&k.key),
                Some(_) => Found::WrongType,
                None => Found::UnknownKid,
            },
            None => {
                let mut suit = self.keys.iter().filter(|k| k.algs.contains(&alg));
                match (suit.next(), suit.next()) {
                    (Some(k), None) => Found::Key(&k.key),
                    _ => Found::WrongType,
                }
            }
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when it holds none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What [`KeySet::find`] found.
pub enum Found<'a> {
    /// The key to verify with.
    Key(&'a DecodingKey),
    /// No key has this kid (a rotation the gateway has not seen yet, or a made-up kid).
    UnknownKid,
    /// A key exists but not of a type that verifies this alg (or no kid and no single key).
    WrongType,
}

/// When to fetch next: `max-age` of the answer's `Cache-Control`, bounded, else `default`.
pub fn refresh_after(headers: &http::HeaderMap, default: Duration) -> Duration {
    let max_age = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|d| {
            d.trim()
                .strip_prefix("max-age=")?
                .trim()
                .parse::<u64>()
                .ok()
        });
    match max_age {
        Some(s) => Duration::from_secs(s).clamp(MIN_REFRESH, MAX_REFRESH),
        None => default,
    }
}

/// Shortest gap between a fetch and a refetch asked for by a `kid` never seen before, while
/// the cooldown keeps inline fetches off: a real rotation is seen within this plus the
/// refresh loop's turn, however many made-up kids arrive meanwhile.
const RECHECK: Duration = Duration::from_secs(3);

/// Longest `kid` worth a fetch (real ones are thumbprints or short names).
const MAX_KID_LEN: usize = 256;

/// Most made-up kids remembered as absent.
const MAX_UNKNOWN_KIDS: usize = 4096;

/// The moments of an issuer's fetches (milliseconds on the gateway clock; 0: never).
#[derive(Debug, Default)]
pub struct Schedule {
    /// The last fetch begun, for the cooldown.
    pub last_try_ms: AtomicU64,
    /// When the refresh loop fetches next.
    pub next_ms: AtomicU64,
    /// When the last fetch that came back ended.
    last_done_ms: AtomicU64,
    /// When the last fetch ended, whatever came of it.
    last_any_ms: AtomicU64,
    /// Unknown kids, by when they were first seen: one a later fetch did not bring is known
    /// to be made up (until the cooldown has passed) and asks for nothing.
    unknown: std::sync::Mutex<std::collections::HashMap<Box<str>, u64>>,
}

/// What a token with an unknown `kid` leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidAction {
    /// Fetch now, inline (the cooldown allows it).
    FetchNow,
    /// A refetch is scheduled (at most one per `RECHECK`), the token refused meanwhile.
    Later,
    /// A kid the last fetch did not bring: refused, nothing asked.
    Ignore,
}

impl Schedule {
    /// After a fetch at `now_ms`: the next one `after` later (sooner after a failure).
    pub fn fetched(&self, now_ms: u64, ok: bool, after: Duration) {
        let after = if ok {
            after
        } else {
            after.min(RETRY_AFTER_ERROR)
        };
        self.next_ms
            .store(now_ms + after.as_millis() as u64, Ordering::Relaxed);
        self.last_any_ms.store(now_ms, Ordering::Relaxed);
        // Only a fetch that came back says which kids the IdP does not have.
        if ok {
            self.last_done_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// What a token whose `kid` the keys held do not have leads to, at `now_ms`.
    pub fn unknown_kid(&self, kid: Option<&str>, now_ms: u64, cooldown: Duration) -> KidAction {
        let cool = cooldown.as_millis() as u64;
        let done = self.last_done_ms.load(Ordering::Relaxed);
        let kid = kid.unwrap_or("");
        if kid.len() > MAX_KID_LEN {
            // No IdP names its keys like this: nothing to ask, nothing to remember.
            return KidAction::Ignore;
        }
        let seen = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&first) = seen.get(kid) {
            if first < done && now_ms < first + cool {
                return KidAction::Ignore;
            }
        }
        drop(seen);
        if self.may_try(now_ms, cooldown) {
            self.remember(kid, now_ms, cool);
            return KidAction::FetchNow;
        }
        self.remember(kid, now_ms, cool);
        let last = self.last_any_ms.load(Ordering::Relaxed);
        let at = now_ms.max(last + RECHECK.as_millis() as u64);
        self.next_ms.fetch_min(at, Ordering::Relaxed);
        KidAction::Later
    }

    /// Notes `kid` first seen at `now_ms` (a full memory first forgets what the cooldown ended).
    fn remember(&self, kid: &str, now_ms: u64, cool: u64) {
        let mut seen = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_UNKNOWN_KIDS {
            seen.retain(|_, first| now_ms < *first + cool);
        }
        if seen.len() < MAX_UNKNOWN_KIDS {
            let e = seen.entry(kid.into()).or_insert(now_ms);
            if now_ms >= *e + cool {
                *e = now_ms;
            }
        }
    }

    /// True (and the try recorded) when a fetch for an unknown kid may go out at `now_ms`.
    pub fn may_try(&self, now_ms: u64, cooldown: Duration) -> bool {
        let last = self.last_try_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms < last + cooldown.as_millis() as u64 {
            return false;
        }
        self.last_try_ms
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_encryption_keys_are_never_used() {
        let doc = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        assert!(KeySet::parse(doc).is_err());
    }

    #[test]
    fn a_key_serves_only_the_algorithms_its_type_and_alg_allow() {
        let doc = br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","alg":"ES256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let set = KeySet::parse(doc).unwrap();
        assert!(matches!(
            set.find(Some("a"), Algorithm::ES256),
            Found::Key(_)
        ));
        assert!(matches!(
            set.find(Some("a"), Algorithm::RS256),
            Found::WrongType
        ));
        assert!(matches!(
            set.find(Some("a"), Algorithm::HS256),
            Found::WrongType
        ));
        assert!(matches!(
            set.find(Some("b"), Algorithm::ES256),
            Found::UnknownKid
        ));
        assert!(matches!(set.find(None, Algorithm::ES256), Found::Key(_)));
    }

    #[test]
    fn made_up_kids_schedule_at_most_one_refetch_and_then_ask_nothing() {
        let s = Schedule::default();
        let cool = Duration::from_secs(30);
        s.fetched(1_000, true, Duration::from_secs(600));
        assert_eq!(s.unknown_kid(Some("a"), 1_500, cool), KidAction::FetchNow);
        s.fetched(1_600, true, Duration::from_secs(600));
        // Within the cooldown: new kids move the next fetch to RECHECK after the last one.
        assert_eq!(s.unknown_kid(Some("b"), 2_000, cool), KidAction::Later);
        assert_eq!(s.next_ms.load(Ordering::Relaxed), 1_600 + 3_000);
        assert_eq!(s.unknown_kid(Some("c"), 2_100, cool), KidAction::Later);
        assert_eq!(s.next_ms.load(Ordering::Relaxed), 1_600 + 3_000);
        // That fetch did not bring them: they ask for nothing more until the cooldown ends.
        s.fetched(4_600, true, Duration::from_secs(600));
        assert_eq!(s.unknown_kid(Some("b"), 5_000, cool), KidAction::Ignore);
        assert_eq!(s.unknown_kid(Some("c"), 5_000, cool), KidAction::Ignore);
        assert_eq!(s.next_ms.load(Ordering::Relaxed), 4_600 + 600_000);
        // A kid never seen before still gets its recheck.
        assert_eq!(s.unknown_kid(Some("new"), 5_000, cool), KidAction::Later);
        assert_eq!(s.next_ms.load(Ordering::Relaxed), 4_600 + 3_000);
    }

    #[test]
    fn max_age_is_bounded() {
        let mut h = http::HeaderMap::new();
        h.insert("cache-control", "public, max-age=5".parse().unwrap());
        assert_eq!(refresh_after(&h, Duration::from_secs(600)), MIN_REFRESH);
        h.insert("cache-control", "max-age=3600".parse().unwrap());
        assert_eq!(
            refresh_after(&h, Duration::from_secs(600)),
            Duration::from_secs(3600)
        );
        h.clear();
        assert_eq!(
            refresh_after(&h, Duration::from_secs(600)),
            Duration::from_secs(600)
        );
    }
}
