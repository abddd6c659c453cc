//! The YAML configuration: typed structs with their defaults, and a loader that reports every
//! problem at once, each with its file, line, column and path.
//!
//! - this file: the config types (their `///` lines are the reference docs);
//! - `load.rs`: [`load`]/[`parse`], and where each part of a config was written;
//! - `yaml.rs`: the YAML document as a tree of located nodes (`saphyr-parser` events);
//! - `de.rs`: serde over that tree; errors take the location of the key or value at fault,
//!   and parsing goes on past them to find the others;
//! - `validate.rs`: the checks across fields (unique names, references, addresses);
//! - `options.rs`: [`ModuleOptions`], a module's own options, parsed later by the module with
//!   located errors;
//! - `error.rs`: [`ConfigError`], [`ConfigErrors`].

mod admin_section;
mod de;
mod error;
mod legacy;
mod load;
mod options;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use switchyard_api::duration;

pub use admin_section::{admin_section, AdminSection};
pub use error::{ConfigError, ConfigErrors};
pub use load::{load, parse, parse_checked, ModuleCheck};
pub use options::ModuleOptions;

use load::Source;

/// The embedded default configuration, matching the local sandbox (a primary and two replicas
/// on 127.0.0.1:3307-3309).
pub const SANDBOX: &str = include_str!("../../config/sandbox.yaml");

/// The origin named in errors about [`SANDBOX`].
pub const SANDBOX_ORIGIN: &str = "<embedded sandbox.yaml>";

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Session workers: threads with an event loop each, a session on one of them; default: one
    /// per core.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Logging: output format and level.
    #[serde(default = "default_log")]
    pub log: LogConfig,
    /// The backend database servers; at least one.
    #[serde(default)]
    pub servers: Vec<ServerConfig>,
    /// The services: each a router and the servers it routes to; at least one.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// The listeners: the addresses clients connect to, each serving one service; at least one.
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    /// The monitors: tasks that check servers and give the services using them live roles.
    #[serde(default)]
    pub monitors: Vec<MonitorConfig>,
    /// The filters: modules that see each statement before the router and each reply after
    /// it; services list the ones they use.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    /// The local admin HTTP API; left out, there is none.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// At SIGTERM, how long sessions may take to finish their transactions before they are
    /// closed; default `30s`.
    #[serde(default = "default_drain_timeout", with = "duration")]
    pub drain_timeout: Duration,
    /// Failed logins from one client address after which its logins are refused (error 1129)
    /// for `auth_block_time`; 0 turns throttling off. Default: 10 (MaxScale's).
    #[serde(default = "default_max_auth_errors")]
    pub max_auth_errors_until_block: u32,
    /// How long a blocked address stays blocked after its last failure, and how long failures
    /// are remembered; default `60s`.
    #[serde(default = "default_auth_block_time", with = "duration")]
    pub auth_block_time: Duration,
    /// Where each part was written, for errors found after loading (not part of the config's
    /// value: two configs that differ only in their source compare equal).
    #[serde(skip)]
    source: Source,
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Output format: `text` (for people) or `json` (one object per line); default `text`.
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// Which events to log: a level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or an
    /// `EnvFilter` directive like `info,switchyard=debug`; default `info`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A backend database server.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Name of the server, unique among servers; services refer to it.
    pub name: String,
    /// Address of the server as `host:port`, like `127.0.0.1:3306`, `db1.example:3306` or
    /// `[::1]:3306`.
    pub address: String,
    /// Role of the server until a monitor supplies live ones: `primary`, `replica` or
    /// `running` (up, role unknown); default `running`.
    #[serde(default = "default_role")]
    pub role: Role,
}

/// What a server is in the replication topology.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Takes writes.
    Primary,
    /// Replicates from the primary; takes reads.
    Replica,
    /// Up, role unknown.
    #[default]
    Running,
}

impl Role {
    /// The name used in the config: `primary`, `replica` or `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Running => "running",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service: a router and the servers it routes to.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Name of the service, unique among services; listeners refer to it.
    pub name: String,
    /// The router module that picks a server for each statement, like `readconnroute`.
    pub router: String,
    /// Names of the servers the service routes to; at least one, each defined in `servers`.
    pub servers: Vec<String>,
    /// The service user: it reads `mysql.user` on the servers to authenticate clients.
    pub user: String,
    /// Password of the service user.
    pub password: String,
    /// The router's own options; what they are depends on the router. Default: none.
    #[serde(default = "default_options")]
    pub options: ModuleOptions,
    /// Least time between two reloads of the account table from the servers (a reload is
    /// tried when a client fails to authenticate); default `1s`.
    #[serde(default = "default_users_refresh_interval", with = "duration")]
    pub users_refresh_interval: Duration,
    /// How long to wait for a backend connection to be established; default `3s`.
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// Most logged-in client sessions the service has at once; default 1000.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Most connections of the service that have not logged in yet; default 512. Apart from
    /// `max_connections`, so that sockets that never log in cannot take real clients' slots.
    #[serde(default = "default_max_pending_logins")]
    pub max_pending_logins: u32,
    /// Most of those from one client address; default 128.
    #[serde(default = "default_max_pending_logins_per_host")]
    pub max_pending_logins_per_host: u32,
    /// The monitor that supplies the live roles of the service's servers (which must all be
    /// among its servers); without one, the roles written in `servers` are used.
    #[serde(default)]
    pub monitor: Option<String>,
    /// Names of the filters each statement passes through, in order, before the router (and
    /// its reply after it, in the same order); each defined in `filters`. Default: none.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Where the service was written, for [`ServiceConfig::error_at`] (not part of its value).
    #[serde(skip)]
    source: Source,
    /// The service's path in the document, like `services[0]`.
    #[serde(skip)]
    path: String,
}

impl ServiceConfig {
    /// An error about the service's `field` (like `router`), located where it was written, or
    /// at the service when the field was left out. For the checks the runtime makes after
    /// loading, such as an unknown router name.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> ConfigError {
        self.source
            .error_at(&format!("{}.{field}", self.path), message)
    }
}

impl fmt::Debug for ServiceConfig {
    /// Like the derived one, with the password left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("name", &self.name)
            .field("router", &self.router)
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("options", &self.options)
            .field("users_refresh_interval", &self.users_refresh_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_pending_logins", &self.max_pending_logins)
            .field(
                "max_pending_logins_per_host",
                &self.max_pending_logins_per_host,
            )
            .field("monitor", &self.monitor)
            .field("filters", &self.filters)
            .finish()
    }
}

/// A filter: a module, and its own options written beside `name` and `module`, like
/// `{ name: patch, module: regexfilter, match: "FROM t1", replace: "FROM t2" }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FilterConfig {
    /// Name of the filter, unique among filters; services refer to it.
    pub name: String,
    /// The filter module, like `querylog` or `regexfilter`.
    pub module: String,
    /// Every other key of the filter: the module's options, parsed by the module.
    #[serde(skip)]
    pub options: ModuleOptions,
}

/// A listener: an address clients connect to, serving one service.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name of the listener, unique among listeners.
    pub name: String,
    /// Name of the service that clients of this listener use; defined in `services`.
    pub service: String,
    /// Address to listen on as `host:port`, like `127.0.0.1:4006` or `0.0.0.0:4006`; each
    /// listener has its own.
    pub address: String,
}

/// A monitor: checks its servers every `interval` and publishes their live state.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Name of the monitor, unique among monitors; services refer to it.
    pub name: String,
    /// The monitor module, like `mariadbmon`.
    pub module: String,
    /// Names of the servers to check; each defined in `servers`.
    pub servers: Vec<String>,
    /// The monitor's user on the servers.
    pub user: String,
    /// Password of the monitor's user.
    pub password: String,
    /// The monitor module's own options, like `interval`; default: none. (Older files wrote
    /// them beside `module`; they are still read, with a warning.)
    #[serde(default = "default_options")]
    pub options: ModuleOptions,
}

impl fmt::Debug for MonitorConfig {
    /// Like the derived one, with the password left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorConfig")
            .field("name", &self.name)
            .field("module", &self.module)
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("options", &self.options)
            .finish()
    }
}

/// The local admin HTTP API (and `/metrics`, `/health`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on as `host:port`; default `127.0.0.1:8989`. Changing it takes a
    /// restart.
    #[serde(default = "default_admin_address")]
    pub address: String,
    /// The user of HTTP basic authentication, required for everything but `/health`.
    /// Required (with `password`) unless `address` is a loopback address.
    #[serde(default)]
    pub user: Option<String>,
    /// The password of `user`.
    #[serde(default)]
    pub password: Option<String>,
}

impl fmt::Debug for AdminConfig {
    /// Like the derived one, with the password left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_auth_errors() -> u32 {
    10
}

fn default_max_connections() -> u32 {
    1000
}

fn default_max_pending_logins() -> u32 {
    512
}

fn default_max_pending_logins_per_host() -> u32 {
    128
}

fn default_auth_block_time() -> Duration {
    Duration::from_secs(60)
}

fn default_admin_address() -> String {
    "127.0.0.1:8989".to_string()
}

fn default_log() -> LogConfig {
    LogConfig {
        format: default_log_format(),
        level: default_log_level(),
    }
}

fn default_log_format() -> LogFormat {
    LogFormat::Text
}

fn default_log_level() -> String {
    "info".to_string()
}

fn default_role() -> Role {
    Role::Running
}

fn default_options() -> ModuleOptions {
    ModuleOptions::default()
}

fn default_users_refresh_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(3)
}

impl Default for LogConfig {
    fn default() -> Self {
        default_log()
    }
}

impl Config {
    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// What the file spells in a deprecated way, located like errors; read as before.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.source.warnings
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The file (or other origin) this config was read from.
    pub fn origin(&self) -> &str {
        &self.source.origin
    }

    /// An error about the part of the config at `path` (like `services[0].router`), located
    /// where that part was written, or where its closest written parent was. For the checks
    /// the runtime makes after loading, such as an unknown router name.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        self.source.error_at(path, message)
    }
}
