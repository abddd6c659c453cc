//! Durations written like `200ms`, `1s` or `2m` (for `#[serde(deserialize_with = ...)]`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::Deserializer;

/// Reads a duration from its human form.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as `200ms`, `1s` or `2m`")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            E::custom(format_args!(
                "invalid duration `{text}`: {e}; write it like `200ms`, `1s` or `2m`"
            ))
        })
    }
}
