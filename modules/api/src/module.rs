//! Module kinds: what a router, filter or monitor crate gives the runtime so that a config file
//! can name it. Each module implements the trait of its kind once; the runtime keeps one table
//! per kind, built from these impls, and does the rest (locating option errors in the file,
//! starting, reloading).

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{Filter, Monitor, Router, ServerName};

/// A problem with one option: its key and what is wrong with it, so that the runtime can
/// point at the option's line in the config file.
pub type OptionError = (&'static str, String);

/// A router module, named by a service's `router:`.
pub trait RouterModule {
    /// The name the config uses, like `readwritesplit`.
    const NAME: &'static str;
    /// The service's `options:`. Deserialized by the runtime, which reports unknown keys and
    /// wrong types with their place in the file (so use `deny_unknown_fields`).
    type Config: DeserializeOwned;

    /// What serde cannot check (two options that contradict each other, a range).
    fn check(_config: &Self::Config) -> Result<(), OptionError> {
        Ok(())
    }

    /// The router of one service.
    fn build(config: Self::Config) -> Arc<dyn Router>;
}

/// A filter module, named by a filter's `module:`; its options are the filter's other keys.
pub trait FilterModule {
    /// The name the config uses, like `querylog`.
    const NAME: &'static str;
    /// The filter's options (see [`RouterModule::Config`]).
    type Config: DeserializeOwned;

    /// What serde cannot check (a regex that does not compile).
    fn check(_config: &Self::Config) -> Result<(), OptionError> {
        Ok(())
    }

    /// Starts the filter called `name`. An error is reported as it is, after the filter's
    /// name; the filter is not started.
    fn build(name: &str, config: Self::Config) -> Result<Arc<dyn Filter>, String>;
}

/// A monitor module, named by a monitor's `module:`; its options are under `options:`.
pub trait MonitorModule {
    /// The name the config uses, like `mariadbmon`.
    const NAME: &'static str;
    /// The monitor's `options:` (see [`RouterModule::Config`]).
    type Config: DeserializeOwned;

    /// What serde cannot check (an interval of zero).
    fn check(_config: &Self::Config) -> Result<(), OptionError> {
        Ok(())
    }

    /// Starts watching `servers` with the monitor's account, on the current tokio runtime.
    fn start(
        name: &str,
        servers: Vec<MonitoredServer>,
        account: MonitorAccount,
        config: Self::Config,
    ) -> Arc<dyn Monitor>;
}

/// A server a monitor watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoredServer {
    /// The server's name in the config.
    pub name: ServerName,
    /// `host:port`, as the config gives it.
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

/// The account a monitor logs in to its servers with.
#[derive(Clone)]
pub struct MonitorAccount {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for MonitorAccount {
    /// The user only: a password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorAccount")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}
