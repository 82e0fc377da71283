//! Tests of `credentials`.

use super::*;

fn creds() -> Credentials {
    Credentials::new(std::sync::Arc::new(
        MasterKey::parse(&hex::encode([7u8; 32])).unwrap(),
    ))
}

fn fields(name: &str, secret: &str) -> CredentialFields {
    CredentialFields {
        name: name.into(),
        desc: None,
        app_code: "app".into(),
        app_secret: secret.into(),
    }
}

#[test]
fn secrets_are_sealed_and_names_unique_per_space() {
    let c = creds();
    let a = c.create(3, fields("prod", "s3cret"), None).unwrap();
    assert!(
        !a.sealed_secret.windows(6).any(|w| w == b"s3cret"),
        "sealed, not in clear"
    );
    assert_eq!(c.secret(&a).as_deref(), Some("s3cret"));
    assert_eq!(
        c.create(3, fields("prod", "x"), None).unwrap_err(),
        CredentialError::Duplicate
    );
    assert!(
        c.create(4, fields("prod", "x"), None).is_ok(),
        "same name in another space"
    );
    assert_eq!(a.display()["content"]["bk_app_secret"], "*********");
    let h = c.header_for(3, "prod").unwrap();
    assert!(h.is_sensitive());
    assert!(h.to_str().unwrap().contains("s3cret"));
}

#[test]
fn a_sealed_secret_does_not_open_in_another_context() {
    let k = MasterKey::parse(&hex::encode([1u8; 32])).unwrap();
    let sealed = k.seal("s", b"a");
    assert_eq!(k.open(&sealed, b"a").as_deref(), Some("s"));
    assert_eq!(k.open(&sealed, b"b"), None);
    assert!(MasterKey::parse("short").is_err());
}
