//! The configuration of a `mariadbmon` monitor and the servers it watches.

use std::time::Duration;

use switchyard_api::ServerName;

/// Settings of a `mariadbmon` monitor. The runtime reads them from the monitor's entry in the
/// config file (where they are validated); the servers, user and password are passed to
/// [`MariaDbMon::start`](crate::MariaDbMon::start) separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariaDbMonConfig {
    /// Time between two checks of each server.
    pub interval: Duration,
    /// Consecutive failed checks before a server is `down`; until then it keeps its last
    /// known state, marked unreachable.
    pub failcount: u32,
    /// Time allowed to open the monitor's connection to a server and log in.
    pub connect_timeout: Duration,
    /// Time allowed for a server to answer each of the monitor's queries.
    pub read_timeout: Duration,
}

impl Default for MariaDbMonConfig {
    /// 1s between checks, down after 2 failed checks, 2s timeouts.
    fn default() -> Self {
        MariaDbMonConfig {
            interval: Duration::from_secs(1),
            failcount: 2,
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
        }
    }
}

impl MariaDbMonConfig {
    /// The longest one check of one server may take: a connect and a login, then the queries.
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
    fn zeros_are_raised() {
        let c = MariaDbMonConfig {
            interval: Duration::ZERO,
            failcount: 0,
            ..Default::default()
        }
        .sanitized();
        assert!(c.interval > Duration::ZERO);
        assert_eq!(c.failcount, 1);
        assert_eq!(
            MariaDbMonConfig::default().check_deadline(),
            Duration::from_secs(4)
        );
    }
}
