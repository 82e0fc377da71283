//! Durations as the YAML writes them: `250ms`, `30s`, `1m30s`, `2h`, `7d` or integer seconds.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A duration read from the config; deserializes from `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"` or `42`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

/// Parses a bare integer (seconds) or a `humantime` duration: `250ms`, `30s`, `5m`, `2h`,
/// `7d`, and combinations such as `1m30s` or `1h 15m`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {text:?}: number too large"));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write e.g. 500ms, 30s, 1m30s, 2h, 7d)")
    })
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 250ms, 30s, 1m30s, 2h, 7d or integer seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ConfigDuration(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|v| ConfigDuration(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse(v).map(ConfigDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_documented_unit_parses() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse("42").unwrap(), Duration::from_secs(42));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h 15m").unwrap(), Duration::from_secs(4500));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for bad in [
            "",
            "s",
            "5x",
            "-3s",
            "99999999999999999999d",
            "5mss",
            "5 parsecs",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = parse(&s);
        }

        #[test]
        fn written_durations_round_trip(n in 0u64..1_000_000, unit in prop::sample::select(vec![("s", 1u64), ("m", 60), ("h", 3600), ("d", 86400)])) {
            prop_assert_eq!(parse(&format!("{n}{}", unit.0)).unwrap(), Duration::from_secs(n * unit.1));
        }
    }
}
