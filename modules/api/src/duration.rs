//! Durations written like `500ms`, `1s`, `2m` or `1h 30m`, for the runtime's config and the
//! modules' options alike: `#[serde(with = "switchyard_api::duration")]`, or
//! `switchyard_api::duration::option` for an optional one.

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
        f.write_str("a duration such as `500ms`, `1s` or `2m`")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            E::custom(format_args!(
                "invalid duration `{text}`: {e}; write it like `500ms`, `1s` or `2m`"
            ))
        })
    }
}

/// An optional duration: absent or `null` is `None`.
pub mod option {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        struct OptionalVisitor;

        impl<'de> Visitor<'de> for OptionalVisitor {
            type Value = Option<Duration>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                super::DurationVisitor.expecting(f)
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                super::deserialize(d).map(Some)
            }
        }

        deserializer.deserialize_option(OptionalVisitor)
    }
}
