//! The shared log's integrity: every stream entry is MACed together with its place in one
//! sequence, and every snapshot with the sequence it covers. A replica keeps the highest
//! sequence it applied ([`Position`]) and takes only the next one: an entry at or below it is
//! a replay, one past it leaves a gap that only a newer snapshot can explain.

use super::super::credentials::MasterKey;
use super::super::op::Op;

/// MAC label of sequenced entries (v2); unsequenced v1 entries used `tollgate shared log v1`.
const V2: &[u8] = b"tollgate shared log v2";
/// MAC label of v1 entries, credential rows and snapshots.
const V1: &[u8] = b"tollgate shared log v1";

/// Where a replica stands in the shared log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The stream id of the last entry read (`0-0` before any).
    pub id: String,
    /// The sequence of the last entry applied (0 before any sequenced entry).
    pub seq: u64,
}

impl Default for Position {
    fn default() -> Self {
        Position {
            id: "0-0".into(),
            seq: 0,
        }
    }
}

/// The MAC of a sequenced entry: its sequence and its content together.
pub fn entry_tag(master: &MasterKey, seq: u64, json: &str) -> String {
    master.fingerprint(&[V2, b"ops", &seq.to_be_bytes(), json.as_bytes()])
}

/// The MAC of an unsequenced (v1) entry, a credential row (`cred`) or a snapshot.
pub fn tag(master: &MasterKey, what: &[u8], json: &str) -> String {
    master.fingerprint(&[V1, what, json.as_bytes()])
}

/// One stream entry as read: `ops` is `None` when its MAC does not check.
#[derive(Debug)]
pub struct Entry {
    /// Stream id.
    pub id: String,
    /// Its sequence (`None`: a v1 entry written before sequences).
    pub seq: Option<u64>,
    /// The ops, when authentic.
    pub ops: Option<Vec<Op>>,
}

/// Reads one entry's fields and checks its MAC.
pub fn parse(master: &MasterKey, id: String, fields: &redis::streams::StreamId) -> Entry {
    let json = fields.get::<String>("ops");
    let mac = fields.get::<String>("mac");
    let seq = fields.get::<String>("seq");
    let (seq, expected) = match (&seq, &json) {
        (Some(s), Some(j)) => match s.parse::<u64>() {
            Ok(n) if n > 0 => (Some(n), Some(entry_tag(master, n, j))),
            _ => (Some(0), None),
        },
        (None, Some(j)) => (None, Some(tag(master, b"ops", j))),
        _ => (None, None),
    };
    let ops = match (expected, mac, json) {
        (Some(want), Some(mac), Some(json))
            if crate::secret::ct_eq(want.as_bytes(), mac.as_bytes()) =>
        {
            serde_json::from_str::<Vec<Op>>(&json).ok()
        }
        _ => None,
    };
    Entry { id, seq, ops }
}

/// What to do with an authentic entry, given the sequence a replica holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The next one: apply it.
    Apply,
    /// At or below what is held, or unsequenced after sequenced ones: refuse it.
    Replay,
    /// Entries `from..=to` are missing before it.
    Gap {
        /// First missing sequence.
        from: u64,
        /// Last missing sequence.
        to: u64,
    },
}

/// The step for an entry with sequence `seq` (`None`: v1) when `held` is applied.
pub fn step(held: u64, seq: Option<u64>) -> Step {
    match seq {
        // History from before sequences: taken only until the first sequenced entry.
        None if held == 0 => Step::Apply,
        None => Step::Replay,
        Some(s) if s <= held => Step::Replay,
        Some(s) if s == held + 1 => Step::Apply,
        Some(s) => Step::Gap {
            from: held + 1,
            to: s - 1,
        },
    }
}

/// The compacted state as stored: every live record as of one entry.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// The last stream entry it covers.
    pub id: String,
    /// The sequence of that entry (0: a snapshot written before sequences).
    #[serde(default)]
    pub seq: u64,
    /// Every live record, as ops.
    pub ops: Vec<Op>,
}

/// Stream ids (`ms-seq`) in order.
pub fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_next_sequence_applies() {
        assert_eq!(step(0, Some(1)), Step::Apply);
        assert_eq!(step(4, Some(5)), Step::Apply);
        assert_eq!(step(5, Some(5)), Step::Replay, "the same entry again");
        assert_eq!(step(5, Some(2)), Step::Replay, "an older one");
        assert_eq!(step(5, Some(9)), Step::Gap { from: 6, to: 8 });
        assert_eq!(step(0, None), Step::Apply, "v1 history before sequences");
        assert_eq!(step(3, None), Step::Replay, "v1 after sequences");
    }

    #[test]
    fn the_mac_binds_the_sequence() {
        let m = MasterKey::parse(&"11".repeat(32)).unwrap();
        let json = r#"[{"Sweep":[1,2]}]"#;
        assert_ne!(entry_tag(&m, 1, json), entry_tag(&m, 2, json));
        assert_ne!(entry_tag(&m, 1, json), tag(&m, b"ops", json));
    }
}
