//! Which sessions and statements are recorded: user and client-address lists, checked once
//! per session, and the `match` / `exclude` regexes, checked per statement.

use std::net::IpAddr;

use regex::Regex;
use switchyard_api::AddressPattern;

use crate::config::QueryLogConfig;

/// The compiled include/exclude rules of one filter.
#[derive(Debug)]
pub(crate) struct Scope {
    users: Vec<String>,
    exclude_users: Vec<String>,
    clients: Vec<AddressPattern>,
    exclude_clients: Vec<AddressPattern>,
    matches: Option<Regex>,
    exclude: Option<Regex>,
}

impl Scope {
    /// Compiles the rules of `config` (already checked).
    pub(crate) fn new(config: &QueryLogConfig) -> Result<Scope, String> {
        let regex = |re: &Option<String>| -> Result<Option<Regex>, String> {
            re.as_deref()
                .map(|r| Regex::new(r).map_err(|e| e.to_string()))
                .transpose()
        };
        Ok(Scope {
            users: config.users.clone(),
            exclude_users: config.exclude_users.clone(),
            clients: config.clients.clone(),
            exclude_clients: config.exclude_clients.clone(),
            matches: regex(&config.match_)?,
            exclude: regex(&config.exclude)?,
        })
    }

    /// True if the sessions of `user` from `ip` are recorded.
    pub(crate) fn session(&self, user: &str, ip: IpAddr) -> bool {
        (self.users.is_empty() || self.users.iter().any(|u| u == user))
            && !self.exclude_users.iter().any(|u| u == user)
            && (self.clients.is_empty() || self.clients.iter().any(|n| n.matches(ip)))
            && !self.exclude_clients.iter().any(|n| n.matches(ip))
    }

    /// True if statement regexes are configured (so the text must be looked at).
    pub(crate) fn has_regexes(&self) -> bool {
        self.matches.is_some() || self.exclude.is_some()
    }

    /// True if a command with this text (`None`: a command without text) is recorded.
    pub(crate) fn statement(&self, text: Option<&str>) -> bool {
        match text {
            None => self.matches.is_none(),
            Some(t) => {
                self.matches.as_ref().is_none_or(|re| re.is_match(t))
                    && !self.exclude.as_ref().is_some_and(|re| re.is_match(t))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn scope(v: serde_json::Value) -> Scope {
        let c: QueryLogConfig = serde_json::from_value(v).unwrap();
        c.check().unwrap();
        Scope::new(&c).unwrap()
    }

    #[test]
    fn users_and_clients() {
        let s = scope(serde_json::json!({
            "users": ["app", "report"], "exclude_users": ["report"],
            "clients": ["10.0.0.0/8", "::1"], "exclude_clients": ["10.6.6.6"]
        }));
        assert!(s.session("app", ip("10.1.1.1")));
        assert!(s.session("app", ip("::1")));
        assert!(
            !s.session("App", ip("10.1.1.1")),
            "user names are case-sensitive"
        );
        assert!(!s.session("report", ip("10.1.1.1")));
        assert!(!s.session("other", ip("10.1.1.1")));
        assert!(!s.session("app", ip("192.168.0.1")));
        assert!(!s.session("app", ip("10.6.6.6")));
        assert!(!s.session("app", ip("::ffff:10.6.6.6")));

        let all = scope(serde_json::json!({ "exclude_users": ["monitor"] }));
        assert!(all.session("anyone", ip("203.0.113.9")));
        assert!(!all.session("monitor", ip("203.0.113.9")));
    }

    #[test]
    fn statement_regexes() {
        let none = scope(serde_json::json!({}));
        assert!(!none.has_regexes());
        assert!(none.statement(Some("SELECT 1")) && none.statement(None));

        let s =
            scope(serde_json::json!({ "match": "(?i)^\\s*(delete|update)", "exclude": "tmp_" }));
        assert!(s.has_regexes());
        assert!(s.statement(Some("DELETE FROM t")));
        assert!(s.statement(Some("  update t set a = 1")));
        assert!(!s.statement(Some("SELECT 1")));
        assert!(!s.statement(Some("DELETE FROM tmp_x")));
        assert!(!s.statement(None), "no text cannot match");

        let ex = scope(serde_json::json!({ "exclude": "^SELECT 1$" }));
        assert!(!ex.statement(Some("SELECT 1")));
        assert!(ex.statement(Some("SELECT 12")));
        assert!(
            ex.statement(None),
            "exclude never drops commands without text"
        );
    }
}
