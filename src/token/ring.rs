//! The signing key ring kept in the store: the active key last, the retired ones before it,
//! each retired key kept until every token it signed has expired.

use serde::{Deserialize, Serialize};

/// Most retired keys kept beside the active one: a rotation that would retire one more is
/// refused until the oldest has no live token left, so a rotation flood can neither grow the
/// JWKS without bound nor log everyone out.
pub const MAX_RETIRED: usize = 4;

/// One key of the ring.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RingKey {
    /// PKCS#8 PEM (HS256: the secret as hex).
    pub pem: String,
    /// When it was made (seconds since the epoch).
    pub created: u64,
    /// Retired keys verify until this (seconds); `None` for the active key.
    pub until: Option<u64>,
}

/// Every signing key still needed, the active one last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRing {
    /// The keys, oldest first.
    pub keys: Vec<RingKey>,
    /// Moves forward with every rotation: a replica never takes a ring older than its own.
    #[serde(default)]
    pub version: u64,
}

impl KeyRing {
    /// Reads what the store keeps: a ring, or (as earlier versions kept it) one bare PEM.
    pub fn from_stored(text: &str, now: u64) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| KeyRing {
            keys: vec![RingKey {
                pem: text.to_owned(),
                created: now,
                until: None,
            }],
            version: 0,
        })
    }

    /// As the store keeps it.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).expect("a ring serializes")
    }

    /// The active key.
    pub fn active(&self) -> &RingKey {
        self.keys.last().expect("a ring is never empty")
    }

    /// When the ring is full at `now` ([`MAX_RETIRED`] retired keys still verifying live
    /// tokens): the moment the first of them may go; `None` when a rotation may retire one more.
    pub fn full_until(&self, now: u64) -> Option<u64> {
        let live: Vec<u64> = self
            .keys
            .iter()
            .filter_map(|k| k.until)
            .filter(|u| *u > now)
            .collect();
        (live.len() >= MAX_RETIRED).then(|| live.into_iter().min().unwrap_or(now))
    }

    /// Retires the active key until `until` and makes `pem` the active one; drops keys whose
    /// time is over at `now`, and beyond [`MAX_RETIRED`] the oldest retired ones.
    pub fn rotate(&mut self, pem: String, now: u64, until: u64) {
        if let Some(k) = self.keys.last_mut() {
            k.until = Some(until);
        }
        self.keys.push(RingKey {
            pem,
            created: now,
            until: None,
        });
        self.version += 1;
        self.keys.retain(|k| k.until.is_none_or(|u| u > now));
        let excess = self.keys.len().saturating_sub(MAX_RETIRED + 1);
        self.keys.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_the_old_key_until_its_time_and_a_bare_pem_is_a_ring() {
        let mut r = KeyRing::from_stored("PEM-A", 10);
        assert_eq!(r.active().pem, "PEM-A");
        r.rotate("PEM-B".into(), 100, 200);
        assert_eq!(r.active().pem, "PEM-B");
        assert_eq!(r.keys.len(), 2);
        r.rotate("PEM-C".into(), 250, 400);
        assert_eq!(
            r.keys.iter().map(|k| k.pem.as_str()).collect::<Vec<_>>(),
            ["PEM-B", "PEM-C"],
            "A's time was over at 250"
        );
        assert_eq!(KeyRing::from_stored(&r.to_stored(), 0), r);
    }

    #[test]
    fn many_rotations_keep_at_most_max_retired_old_keys() {
        let mut r = KeyRing::from_stored("K0", 0);
        for i in 1..=20 {
            r.rotate(format!("K{i}"), i, 10_000);
        }
        assert_eq!(r.keys.len(), MAX_RETIRED + 1);
        assert_eq!(r.active().pem, "K20");
        assert_eq!(r.keys[0].pem, format!("K{}", 20 - MAX_RETIRED));
        // Full: the next rotation must wait until the first retired key's time is over.
        assert_eq!(r.full_until(30), Some(10_000));
        assert_eq!(r.full_until(10_000), None);
    }
}
