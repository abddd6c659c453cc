//! The options of a `mariadbmon` monitor, the `options:` of its entry in the config file.

use std::time::Duration;

use serde::Deserialize;
use switchyard_api::OptionError;

pub use switchyard_api::MonitoredServer;

/// Settings of a `mariadbmon` monitor; every one has a default. The servers, user and
/// password are the monitor entry's own keys and are passed to
/// [`MariaDbMon::start`](crate::MariaDbMon::start) separately.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MariaDbMonConfig {
    /// Time between two checks of each server.
    #[serde(with = "switchyard_api::duration")]
    pub interval: Duration,
    /// Consecutive failed checks before a server is `down`; until then it keeps its last
    /// known state, marked unreachable.
    pub failcount: u32,
    /// Time allowed to open the monitor's connection to a server and log in.
    #[serde(with = "switchyard_api::duration")]
    pub connect_timeout: Duration,
    /// Time allowed for a server to answer each of the monitor's queries.
    #[serde(with = "switchyard_api::duration")]
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
    /// Refuses values no monitor can work with: zero times, a `failcount` of zero.
    pub fn check(&self) -> Result<(), OptionError> {
        for (key, value) in [
            ("interval", self.interval),
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
        ] {
            if value.is_zero() {
                return Err((key, "must be greater than zero".into()));
            }
        }
        if self.failcount == 0 {
            return Err(("failcount", "must be at least 1".into()));
        }
        Ok(())
    }

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

    #[test]
    fn check_names_the_option() {
        let zero = |f: fn(&mut MariaDbMonConfig)| {
            let mut c = MariaDbMonConfig::default();
            f(&mut c);
            c.check().unwrap_err().0
        };
        assert_eq!(zero(|c| c.interval = Duration::ZERO), "interval");
        assert_eq!(zero(|c| c.read_timeout = Duration::ZERO), "read_timeout");
        assert_eq!(zero(|c| c.failcount = 0), "failcount");
        assert!(MariaDbMonConfig::default().check().is_ok());
    }
}
