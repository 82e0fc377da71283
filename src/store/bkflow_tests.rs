//! Tests of `bkflow`.

use super::*;

fn grant(id: &str, perm: Perm) -> Grant {
    Grant {
        resource: Resource::Template,
        id: id.into(),
        perm,
    }
}

/// An apply in space 3 by app `app` for `user`, 1 s of lifetime.
fn apply(t: &BkflowTokens, user: &str, g: Grant, renew: bool, now: u64) -> Applied {
    t.apply(
        Owner {
            space: 3,
            app: "app",
            user,
        },
        g,
        1000,
        renew,
        now,
    )
}

#[test]
fn a_repeated_apply_returns_the_same_token_renewed() {
    let t = BkflowTokens::default();
    let a = apply(&t, "admin", grant("1", Perm::View), true, 10_000);
    assert_eq!(a.token.len(), 32);
    let b = apply(&t, "admin", grant("1", Perm::View), true, 10_500);
    assert_eq!(a.token, b.token);
    assert!(b.reused);
    assert_eq!(b.record.expires_ms, 11_500);
    assert_ne!(
        apply(&t, "bob", grant("1", Perm::View), true, 10_500).token,
        a.token
    );
    assert_ne!(
        apply(&t, "admin", grant("1", Perm::Edit), true, 10_500).token,
        a.token
    );
    assert_ne!(
        apply(&t, "admin", grant("2", Perm::View), true, 10_500).token,
        a.token
    );
}

#[test]
fn an_expired_token_is_replaced_and_a_revoked_one_fails_at_once() {
    let t = BkflowTokens::default();
    let a = apply(&t, "u", grant("1", Perm::View), false, 0);
    let h = opaque::hash(&a.token);
    assert!(t.lookup(&h, 500).is_some());
    let b = apply(&t, "u", grant("1", Perm::View), false, 2000);
    assert_ne!(a.token, b.token, "past its expiry a new token is made");
    let revoked = t.revoke(3, &RevokeFilter::default(), 2100);
    assert_eq!(revoked.len(), 1, "only still-valid tokens count");
    assert!(t.lookup(&opaque::hash(&b.token), 2100).is_none());
    assert!(t.revoke(4, &RevokeFilter::default(), 2100).is_empty());
}

#[test]
fn a_replayed_row_never_revives_a_revoked_token_even_after_the_sweep() {
    let t = BkflowTokens::default();
    let a = apply(&t, "admin", grant("1", Perm::View), true, 10_000);
    let hash = opaque::hash(&a.token);
    let (rows, _) = t.dump();
    let original = rows.into_iter().find(|r| r.id == a.record.id).unwrap();
    assert!(t.lookup(&hash, 10_100).is_some());
    t.revoke_ids(&[a.record.id], 10_100);
    assert!(t.lookup(&hash, 10_200).is_none());
    // The record is swept (expired long enough ago), then its original row comes again.
    t.sweep(10_300, 0);
    t.restore(vec![original.clone()]);
    assert!(
        t.lookup(&hash, 10_400).is_none(),
        "still revoked after a replay"
    );
    // A renewal entry replayed is ignored too.
    t.set_expiry(&[a.record.id], 99_999);
    assert!(t.lookup(&hash, 10_500).is_none());
}
