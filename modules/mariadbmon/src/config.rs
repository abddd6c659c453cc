//! The configuration of a `mariadbmon` monitor and the servers it watches.

use std::time::Duration;

use serde::Deserialize;
use switchyard_api::ServerName;

use crate::duration;

/// Options of a `mariadbmon` monitor. The servers, user and password come from the monitor's
/// entry in the config file and are passed to [`MariaDbMon::start`](crate::MariaDbMon::start)
/// separately.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MariaDbMonConfig {
    /// Time between two checks of each server, such as `1s` or `200ms`. Default: `1s`.
    #[serde(
        default = "default_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub interval: Duration,
    /// Consecutive failed checks before a server is `down`; until then it keeps its last
    /// known state, marked unreachable. Default: 2.
    #[serde(default = "default_failcount")]
    pub failcount: u32,
    /// Time allowed to open the monitor's connection to a server and log in. Default: `2s`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub connect_timeout: Duration,
    /// Time allowed for a server to answer each of the monitor's queries. Default: `2s`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub read_timeout: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_failcount() -> u32 {
    2
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

impl Default for MariaDbMonConfig {
    fn default() -> Self {
        MariaDbMonConfig {
            interval: default_interval(),
            failcount: default_failcount(),
            connect_timeout: default_timeout(),
            read_timeout: default_timeout(),
        }
    }
}

impl MariaDbMonConfig {
    /// What is wrong with these values, as `(field, message)` pairs; empty when all is well.
    /// [`MariaDbMon::start`](crate::MariaDbMon::start) copes with bad values (it raises zeros
    /// to the smallest workable value), but a config check should refuse them.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errors = Vec::new();
        if self.interval.is_zero() {
            errors.push(("interval", "must be longer than 0".to_string()));
        }
        if self.failcount == 0 {
            errors.push(("failcount", "must be at least 1".to_string()));
        }
        if self.connect_timeout.is_zero() {
            errors.push(("connect_timeout", "must be longer than 0".to_string()));
        }
        if self.read_timeout.is_zero() {
            errors.push(("read_timeout", "must be longer than 0".to_string()));
        }
        errors
    }

    /// The longest one check of one server may take: a connect and a login, then the queries.
    /// A round of checks never takes longer.
    pub fn check_deadline(&self) -> Duration {
        self.connect_timeout.max(MIN_TIMEOUT) + self.read_timeout.max(MIN_TIMEOUT)
    }

    /// The values in force: zeros raised to the smallest workable value.
    pub(crate) fn sanitized(mut self) -> Self {
        self.interval = self.interval.max(MIN_INTERVAL);
        self.failcount = self.failcount.max(1);
        self.connect_timeout = self.connect_timeout.max(MIN_TIMEOUT);
        self.read_timeout = self.read_timeout.max(MIN_TIMEOUT);
        self
    }
}

const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MIN_TIMEOUT: Duration = Duration::from_millis(10);

/// A server the monitor watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoredServer {
    /// The server's name in the config.
    pub name: ServerName,
    /// `host:port`, as the config gives it. Replicas are matched to their source by comparing
    /// this with their `Master_Host:Master_Port` (and by `server_id` when that fails).
    pub address: String,
}

impl MonitoredServer {
    /// A server named `name` at `address` (`host:port`).
    pub fn new(name: &str, address: &str) -> Self {
        MonitoredServer {
            name: ServerName::new(name),
            address: address.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c: MariaDbMonConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, MariaDbMonConfig::default());
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.failcount, 2);
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.read_timeout, Duration::from_secs(2));
        assert!(c.validate().is_empty());
        assert_eq!(c.check_deadline(), Duration::from_secs(4));
    }

    #[test]
    fn values() {
        let c: MariaDbMonConfig = serde_json::from_str(
            r#"{"interval": "200ms", "failcount": 3, "connect_timeout": "1s", "read_timeout": " 500ms "}"#,
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_millis(200));
        assert_eq!(c.failcount, 3);
        assert_eq!(c.read_timeout, Duration::from_millis(500));
    }

    #[test]
    fn errors() {
        let e = serde_json::from_str::<MariaDbMonConfig>(r#"{"interval": "soon"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid duration `soon`"), "{e}");
        let e = serde_json::from_str::<MariaDbMonConfig>(r#"{"intervall": "1s"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `intervall`"), "{e}");
        let e = serde_json::from_str::<MariaDbMonConfig>(r#"{"interval": 1}"#).unwrap_err();
        assert!(e.to_string().contains("a duration such as"), "{e}");
        let c: MariaDbMonConfig =
            serde_json::from_str(r#"{"interval": "0s", "failcount": 0}"#).unwrap();
        let fields: Vec<&str> = c.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["interval", "failcount"]);
        let c = c.sanitized();
        assert!(c.interval > Duration::ZERO);
        assert_eq!(c.failcount, 1);
    }
}
