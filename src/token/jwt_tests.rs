//! Tests of `jwt`.

use super::*;

fn signing(alg: SigningAlg) -> Signing {
    Signing {
        alg,
        key_file: None,
        issuer: "https://gw.test".into(),
        leeway: std::time::Duration::from_secs(LEEWAY_SECS),
        rotate_every: None,
    }
}

fn claims(exp_offset: i64) -> AccessClaims {
    let now = super::super::now_secs();
    AccessClaims {
        iss: "https://gw.test".into(),
        client_id: "coupang".into(),
        jti: "J1".into(),
        iat: now,
        nbf: now,
        exp: (now as i64 + exp_offset) as u64,
        scope: Scope::List(vec!["bailunApi".into()]),
        dialect: Some("oauth".into()),
        extra: Default::default(),
    }
}

#[test]
fn every_algorithm_signs_and_verifies_its_own_tokens() {
    for alg in [
        SigningAlg::RS256,
        SigningAlg::ES256,
        SigningAlg::EdDSA,
        SigningAlg::HS256,
    ] {
        let s = signing(alg);
        let keys = JwtKeys::from_material(&s, &generate(alg).unwrap()).unwrap();
        let t = keys.sign(&claims(60), "at+jwt").unwrap();
        assert_eq!(keys.verify(&t).unwrap(), claims(60), "{alg:?}");
        let jwks: serde_json::Value = serde_json::from_slice(&keys.jwks()).unwrap();
        let n = jwks["keys"].as_array().unwrap().len();
        assert_eq!(
            n,
            usize::from(alg != SigningAlg::HS256),
            "{alg:?}: HS256 must not publish its secret"
        );
    }
}

#[test]
fn expired_and_foreign_tokens_are_refused() {
    let s = signing(SigningAlg::ES256);
    let keys = JwtKeys::from_material(&s, &generate(SigningAlg::ES256).unwrap()).unwrap();
    let old = keys
        .sign(&claims(-(LEEWAY_SECS as i64) - 5), "at+jwt")
        .unwrap();
    assert_eq!(keys.verify(&old), Err(VerifyError::Expired));
    let other = JwtKeys::from_material(&s, &generate(SigningAlg::ES256).unwrap()).unwrap();
    assert_eq!(
        keys.verify(&other.sign(&claims(60), "at+jwt").unwrap()),
        Err(VerifyError::Invalid)
    );
    assert_eq!(keys.verify("not.a.jwt"), Err(VerifyError::Invalid));
}
