//! Tests of `sqlite`.

use super::*;

/// Credential 1 of space 3, named `n`.
fn cred_row(sealed: Vec<u8>) -> CredRow {
    CredRow {
        id: 1,
        space: 3,
        name: "n".into(),
        desc: None,
        kind: "BK_APP".into(),
        app_code: "a".into(),
        sealed,
    }
}

fn refresh(hash: [u8; 32], jti: &str, expires: u64) -> Op {
    Op::Refresh {
        hash,
        record: RefreshRecord {
            app: "app".into(),
            access_jti: jti.into(),
            expires,
            secret_gen: String::new(),
            chain_start: 0,
        },
    }
}

#[tokio::test]
async fn rows_survive_a_reopen_and_expired_ones_are_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let (db, snap) = Db::open(&path, 0, |_| Vec::new()).unwrap();
    assert!(snap.bk.is_empty());
    db.commit(vec![
        Op::Meta {
            key: "k".into(),
            value: vec![1, 2],
        },
        refresh([1; 32], "J", 100),
        refresh([2; 32], "K", 5),
        Op::Revoked {
            jti: "J0".into(),
            until: 100,
        },
        Op::Cred(cred_row(vec![9])),
    ])
    .await
    .unwrap();
    drop(db);
    let (_db, snap) = Db::open(&path, 10_000, |_| Vec::new()).unwrap();
    assert_eq!(snap.meta["k"], vec![1, 2]);
    assert_eq!(
        snap.refresh.len(),
        1,
        "the refresh token expired at 5 s is not loaded"
    );
    assert_eq!(snap.revoked, vec![("J0".to_owned(), 100)]);
    assert_eq!(snap.credentials.len(), 1);
}

#[tokio::test]
async fn a_failing_batch_reports_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(&dir.path().join("t.db"), 0, |_| Vec::new()).unwrap();
    let row = cred_row(vec![]);
    db.commit(vec![Op::Cred(row.clone())]).await.unwrap();
    let clash = CredRow { id: 2, ..row };
    assert!(
        db.commit(vec![Op::Cred(clash)]).await.is_err(),
        "UNIQUE(space, name)"
    );
}

#[tokio::test]
async fn a_renewal_that_lost_the_race_to_a_revocation_never_outlives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let (db, _) = Db::open(&path, 0, |_| Vec::new()).unwrap();
    let row = BkRow {
        id: 7,
        token_hash: [7; 32],
        space: 3,
        app: "app".into(),
        user: "u".into(),
        resource: "TEMPLATE".into(),
        resource_id: "t".into(),
        perm: "VIEW".into(),
        expires_ms: 5_000,
    };
    // The order a racing renewal can reach the writer in: issued, revoked, then renewed; and
    // the original row written again (a replay).
    db.commit(vec![Op::Bk(row.clone())]).await.unwrap();
    db.commit(vec![Op::BkRevoked {
        ids: vec![7],
        at_ms: 999,
    }])
    .await
    .unwrap();
    db.commit(vec![Op::BkExpiry {
        ids: vec![7],
        expires_ms: 1_000_000,
    }])
    .await
    .unwrap();
    db.commit(vec![Op::Bk(row)]).await.unwrap();
    drop(db);
    let (_db, snap) = Db::open(&path, 0, |_| Vec::new()).unwrap();
    assert_eq!(snap.bk.len(), 1);
    assert_eq!(
        snap.bk[0].expires_ms, 999,
        "revoked, and never raised again"
    );
    assert_eq!(
        snap.bk_revoked,
        vec![7],
        "the mark is stored with the record"
    );
}
