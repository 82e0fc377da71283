//! The outcome of an authorization, as metrics label it.

/// The outcome of an authorization: the `decision` label of `tollgate_auth_decisions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let through.
    Allowed,
    /// No token.
    Missing,
    /// A token (or app credentials) not accepted.
    Invalid,
    /// A token past its expiry.
    Expired,
    /// A revoked token.
    Revoked,
    /// Valid, but not allowed this.
    Forbidden,
}

impl Decision {
    /// Every decision, in label order.
    pub const ALL: [Decision; 6] = [
        Decision::Allowed,
        Decision::Missing,
        Decision::Invalid,
        Decision::Expired,
        Decision::Revoked,
        Decision::Forbidden,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Missing => "missing",
            Decision::Invalid => "invalid",
            Decision::Expired => "expired",
            Decision::Revoked => "revoked",
            Decision::Forbidden => "forbidden",
        }
    }
}
