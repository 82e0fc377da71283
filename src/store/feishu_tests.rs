//! Unit tests of `store::feishu`: renewal, per-kind tokens, derivation.

use super::*;

const H: u64 = 3_600_000;

fn life(ttl_ms: u64, renew_before_ms: u64) -> Life {
    Life {
        ttl_ms,
        renew_before_ms,
    }
}

#[test]
fn the_same_token_while_enough_life_is_left_then_a_new_one_and_both_valid() {
    let f = FeishuTokens::default();
    let a = f.obtain("cli", "app", "a-", life(2 * H, H / 2), 0);
    assert!(a.fresh && a.token.starts_with("a-") && a.token.len() == 24);
    let again = f.obtain("cli", "app", "a-", life(2 * H, H / 2), H);
    assert_eq!(again.token, a.token);
    assert!(!again.fresh);
    let b = f.obtain("cli", "app", "a-", life(2 * H, H / 2), 2 * H - H / 2 + 1);
    assert_ne!(b.token, a.token, "under 30 min left: a new token");
    assert!(
        f.lookup(&opaque::hash(&a.token), 2 * H - 1).is_some(),
        "the old one lives until its own expiry"
    );
    assert!(f.lookup(&opaque::hash(&a.token), 2 * H).is_none());
}

#[test]
fn the_sweep_forgets_expired_current_tokens() {
    let f = FeishuTokens::default();
    f.obtain("cli", "tenant:a", "t-", life(H, H / 2), 0);
    f.obtain("cli", "tenant:b", "t-", life(3 * H, H / 2), 0);
    f.sweep(2 * H);
    assert_eq!(f.current_len(), 1);
}

#[test]
fn tickets_are_per_app_and_expire() {
    let f = FeishuTokens::default();
    let (t, _) = f.issue_ticket("cli", H, 0);
    assert!(f.ticket_valid("cli", &t, 10));
    assert!(!f.ticket_valid("other", &t, 10));
    assert!(!f.ticket_valid("cli", &t, H));
    assert!(!f.ticket_valid("cli", "guess", 10));
}
