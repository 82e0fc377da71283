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

/// A `Host` value (RFC 9110 §7.2 / RFC 3986 authority without userinfo): a DNS-style name,
/// an IPv4 address or a bracketed IPv6 literal, and an optional port 1–65535.
pub fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n));
        if !ok {
            return false;
        }
    }
    // reg-name, kept to what DNS names and IPv4 addresses use.
    plain(name, 253, b"-._~")
}

/// `name` with `_` read as `-` equals `target` (names are lower-case already).
pub fn folds_to(name: &str, target: &str) -> bool {
    name.len() == target.len()
        && name
            .bytes()
            .zip(target.bytes())
            .all(|(c, t)| c == t || (c == b'_' && t == b'-'))
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

    #[test]
    fn hosts_are_names_or_ip_literals_with_a_real_port() {
        for ok in [
            "example.com",
            "gw.example:8443",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:9090",
            "localhost",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "user@evil.example",
            "127.0.0.1:99999",
            "evil.example/x",
            "ev il.example",
            "",
            "a:0",
            "a:",
            "[::1",
            "[zz]:1",
            "a:b:c",
            "x:+80",
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
    }
}
