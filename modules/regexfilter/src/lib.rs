//! `regexfilter`: rewrites statement text by regular expression, to hot-patch what an
//! application sends without redeploying it (MaxScale's filter of the same name).
//!
//! Every match of `match` in the text of a `COM_QUERY` or `COM_STMT_PREPARE` is replaced by
//! `replace`, in which `$1`, `${name}` refer to capture groups. Optionally only for some users
//! or client addresses. The syntax is the `regex` crate's: Perl-like, without look-around or
//! backreferences in the pattern, and linear time on any input.

#![forbid(unsafe_code)]

mod config;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use regex::bytes::Regex;
use switchyard_api::{
    ClientInfo, Filter, FilterModule, FilterSession, OptionError, Statement, Verdict,
};

pub use config::RegexFilterConfig;

/// One configured `regexfilter`, shared by the services that list it.
pub struct RegexFilter {
    shared: Arc<Shared>,
}

struct Shared {
    pattern: Regex,
    replace: Vec<u8>,
    config: RegexFilterConfig,
    /// Statements seen and statements rewritten, for the admin API.
    seen: AtomicU64,
    rewritten: AtomicU64,
}

impl RegexFilter {
    /// Builds the filter; the error names the option at fault (the pattern) and says why.
    pub fn new(config: RegexFilterConfig) -> Result<Self, (&'static str, String)> {
        let pattern = config.regex()?;
        Ok(RegexFilter {
            shared: Arc::new(Shared {
                pattern,
                replace: config.replace.clone().into_bytes(),
                config,
                seen: AtomicU64::new(0),
                rewritten: AtomicU64::new(0),
            }),
        })
    }

    fn applies_to(&self, user: &str, client: SocketAddr) -> bool {
        let c = &self.shared.config;
        (c.users.is_empty() || c.users.iter().any(|u| u == user))
            && (c.clients.is_empty() || c.clients.iter().any(|p| p.matches(client.ip())))
    }
}

impl FilterModule for RegexFilter {
    const NAME: &'static str = "regexfilter";
    type Config = RegexFilterConfig;

    fn check(config: &RegexFilterConfig) -> Result<(), OptionError> {
        config.check()
    }

    fn build(_name: &str, config: RegexFilterConfig) -> Result<Arc<dyn Filter>, String> {
        Ok(Arc::new(RegexFilter::new(config).map_err(|(_, e)| e)?))
    }
}

impl Filter for RegexFilter {
    fn new_session(&self, client: &ClientInfo) -> Box<dyn FilterSession> {
        Box::new(RegexSession {
            shared: self
                .applies_to(&client.user, client.client_addr)
                .then(|| self.shared.clone()),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        let s = &self.shared;
        serde_json::json!({
            "match": s.config.pattern,
            "replace": s.config.replace,
            "seen": s.seen.load(Ordering::Relaxed),
            "rewritten": s.rewritten.load(Ordering::Relaxed),
        })
    }
}

/// A session's half; `None` for sessions whose user or address the filter does not apply to.
struct RegexSession {
    shared: Option<Arc<Shared>>,
}

impl FilterSession for RegexSession {
    fn on_command(&mut self, stmt: &mut Statement<'_>) -> Verdict {
        let (Some(s), Some(sql)) = (&self.shared, stmt.sql()) else {
            return Verdict::Pass;
        };
        s.seen.fetch_add(1, Ordering::Relaxed);
        match s.pattern.replace_all(sql, s.replace.as_slice()) {
            std::borrow::Cow::Borrowed(_) => Verdict::Pass,
            std::borrow::Cow::Owned(text) => {
                s.rewritten.fetch_add(1, Ordering::Relaxed);
                Verdict::Rewrite(text)
            }
        }
    }
}

#[cfg(test)]
mod tests;
