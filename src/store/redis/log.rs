//! The shared log's integrity: every stream entry is MACed together with its place in one
//! sequence, and every snapshot with the sequence it covers. A replica keeps the highest
//! sequence it applied ([`Position`]) and takes only the next one: an entry at or below it is
//! a replay, one past it leaves a gap that only a newer snapshot can explain. The head (the
//! highest sequence appended) is MACed too, so a hole at the end of the log is seen, and a
//! counter set by anyone else is told from a real one.

use super::super::credentials::MasterKey;
use super::super::op::Op;

/// MAC label of entries, the head and snapshots. Unsequenced entries and snapshots of earlier
/// versions (`tollgate shared log v1`) are not read: their MAC said nothing of their place.
const V2: &[u8] = b"tollgate shared log v2";

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

/// The MAC of the head: "entries up to `seq` were appended".
pub fn head_tag(master: &MasterKey, seq: u64) -> String {
    master.fingerprint(&[V2, b"head", &seq.to_be_bytes()])
}

/// The MAC of a snapshot (its JSON carries the sequence it covers).
pub fn snapshot_tag(master: &MasterKey, json: &str) -> String {
    master.fingerprint(&[V2, b"snapshot", json.as_bytes()])
}

/// The sequence a stored head (`tollgate:seq`, `tollgate:head`) proves, if its MAC checks.
pub fn verified_head(master: &MasterKey, raw: Option<&str>, mac: Option<&str>) -> Option<u64> {
    let seq = raw?.parse::<u64>().ok()?;
    crate::secret::ct_eq(head_tag(master, seq).as_bytes(), mac?.as_bytes()).then_some(seq)
}

/// One stream entry as read: `ops` is `None` when it has no sequence or its MAC does not check.
#[derive(Debug)]
pub struct Entry {
    /// Stream id.
    pub id: String,
    /// Its sequence (0 when it has none).
    pub seq: u64,
    /// The ops, when authentic.
    pub ops: Option<Vec<Op>>,
}

/// Reads one entry's fields and checks its MAC.
pub fn parse(master: &MasterKey, id: String, fields: &redis::streams::StreamId) -> Entry {
    let json = fields.get::<String>("ops");
    let mac = fields.get::<String>("mac");
    let seq = fields
        .get::<String>("seq")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(0);
    let ops = match (json, mac) {
        (Some(json), Some(mac))
            if seq > 0
                && crate::secret::ct_eq(
                    entry_tag(master, seq, &json).as_bytes(),
                    mac.as_bytes(),
                ) =>
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
    /// At or below what is held: refuse it.
    Replay,
    /// Entries `from..=to` are missing before it.
    Gap {
        /// First missing sequence.
        from: u64,
        /// Last missing sequence.
        to: u64,
    },
}

/// The step for an entry with sequence `seq` (at least 1) when `held` is applied.
pub fn step(held: u64, seq: u64) -> Step {
    if seq <= held {
        Step::Replay
    } else if seq == held + 1 {
        Step::Apply
    } else {
        Step::Gap {
            from: held + 1,
            to: seq - 1,
        }
    }
}

/// The compacted state as stored: every live record as of one entry.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// The last stream entry it covers.
    pub id: String,
    /// The sequence of that entry.
    pub seq: u64,
    /// Every live record, as ops.
    pub ops: Vec<Op>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_next_sequence_applies() {
        assert_eq!(step(0, 1), Step::Apply);
        assert_eq!(step(4, 5), Step::Apply);
        assert_eq!(step(5, 5), Step::Replay, "the same entry again");
        assert_eq!(step(5, 2), Step::Replay, "an older one");
        assert_eq!(step(5, 9), Step::Gap { from: 6, to: 8 });
        assert_eq!(step(u64::MAX - 1, u64::MAX), Step::Apply, "no overflow");
    }

    #[test]
    fn the_mac_binds_the_sequence_and_the_head_is_checked() {
        let m = MasterKey::parse(&"11".repeat(32)).unwrap();
        let json = r#"[{"Sweep":[1,2]}]"#;
        assert_ne!(entry_tag(&m, 1, json), entry_tag(&m, 2, json));
        let mac = head_tag(&m, 7);
        assert_eq!(verified_head(&m, Some("7"), Some(&mac)), Some(7));
        assert_eq!(
            verified_head(&m, Some("8"), Some(&mac)),
            None,
            "a counter moved by hand"
        );
        assert_eq!(verified_head(&m, Some("x"), Some(&mac)), None);
        assert_eq!(verified_head(&m, Some("7"), None), None);
    }
}
