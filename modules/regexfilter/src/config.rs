//! Options of `regexfilter`.

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use switchyard_api::AddressPattern;

/// Options of a `regexfilter`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexFilterConfig {
    /// The pattern to find in the statement text (`regex` crate syntax), like
    /// `FROM\s+old_table`. Required.
    #[serde(rename = "match")]
    pub pattern: String,
    /// What each match is replaced by; `$1` or `${1}` is the first capture group, `$name` a
    /// named one, `$$` a dollar sign. Required (may be empty).
    pub replace: String,
    /// Match without regard to case; default `true` (as MaxScale's `options=ignorecase`).
    #[serde(default = "default_true")]
    pub ignore_case: bool,
    /// Only for these users; default: every user.
    #[serde(default)]
    pub users: Vec<String>,
    /// Only for clients from these addresses or networks (`10.1.2.3`, `10.0.0.0/8`);
    /// default: every client.
    #[serde(default)]
    pub clients: Vec<AddressPattern>,
}

fn default_true() -> bool {
    true
}

impl RegexFilterConfig {
    /// The compiled pattern; the error names the `match` option and says what is wrong.
    pub fn regex(&self) -> Result<Regex, (&'static str, String)> {
        RegexBuilder::new(&self.pattern)
            .case_insensitive(self.ignore_case)
            .build()
            .map_err(|e| ("match", format!("invalid regular expression: {e}")))
    }

    /// Checks what serde cannot: that the pattern compiles.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        self.regex().map(|_| ())
    }
}
