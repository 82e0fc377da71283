//! Identifier rules shared by the config loader, the issuing endpoints and the guard.
//!
//! Every value here ends up in an identity header sent to the upstream (`X-Tollgate-Scope:
//! TYPE:id:PERM`, `X-Tollgate-User`, `X-Tollgate-Tenant`), so each is a plain token with no
//! separator an upstream could split on (`:`, `,`, space) and no `*`.

/// Longest resource id accepted in a grant or an apply request.
pub const MAX_ID_LEN: usize = 128;

fn plain(s: &str, max: usize, extra: &[u8]) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// A concrete resource id: `[A-Za-z0-9_.-]{1,128}`.
pub fn valid_id(id: &str) -> bool {
    plain(id, MAX_ID_LEN, b"_.-")
}

/// A bkflow user name: `[A-Za-z0-9_.@-]{1,64}`.
pub fn valid_user(user: &str) -> bool {
    plain(user, 64, b"_.@-")
}

/// A feishu `tenant_key`: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_tenant(key: &str) -> bool {
    plain(key, 64, b"_-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_wildcards_and_oversize_ids_are_not_ids() {
        assert!(valid_id("space4_template_55"));
        assert!(valid_id("a.b-c_1"));
        for bad in [
            "",
            "*",
            "1:TEMPLATE:x:MOCK",
            "a b",
            "a,b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        assert!(valid_user("admin@corp"));
        assert!(!valid_user("ad min"));
        assert!(valid_tenant("736588c9260f175d"));
        assert!(!valid_tenant(&"k".repeat(65)));
        assert!(!valid_tenant("a.b"));
    }
}
