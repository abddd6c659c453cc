//! The monitor contract: a monitor polls its servers and publishes the cluster as it is now,
//! as immutable [`ClusterState`] snapshots that the runtime turns into each service's
//! [`ServerSet`](crate::ServerSet). Readers never lock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use crate::server::{ServerName, ServerRole};

/// One replication source of a replica (`SHOW ALL SLAVES STATUS`, one row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationSource {
    /// The multi-source connection name; empty for the default connection.
    pub connection_name: String,
    pub source_host: String,
    pub source_port: u16,
    pub io_running: bool,
    pub sql_running: bool,
    /// `Seconds_Behind_Master`; `None` when replication is not running.
    pub seconds_behind: Option<u64>,
    /// The last IO or SQL error, if any.
    pub last_error: Option<String>,
}

/// What the monitor knows of one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerState {
    pub name: ServerName,
    pub address: String,
    pub role: ServerRole,
    /// Answered the last check (a server is only `Down` after `failcount` failed checks).
    pub reachable: bool,
    pub read_only: Option<bool>,
    pub server_id: Option<u32>,
    pub version: Option<String>,
    pub replication: Vec<ReplicationSource>,
    /// A replica whose replication is stopped or failing; not a valid read target.
    pub replication_broken: bool,
    /// `Seconds_Behind_Master` of the replication from the primary.
    pub lag_seconds: Option<u64>,
    /// How many transactions this replica is behind the primary, by GTID sequence numbers in
    /// the primary's domains: judges lag below one second.
    pub gtid_behind: Option<u64>,
    pub gtid_current_pos: Option<String>,
    pub gtid_binlog_pos: Option<String>,
    /// Round-trip time of the last check.
    #[serde(serialize_with = "micros")]
    pub check_time: Option<Duration>,
    /// Operator flag: no new traffic; sessions move off when outside a transaction.
    pub maintenance: bool,
    /// Operator flag: no new sessions; existing ones finish.
    pub drain: bool,
    /// Why the server is down or broken, in words.
    pub last_error: Option<String>,
}

impl ServerState {
    /// A state with nothing known yet (before the first check).
    pub fn unknown(name: ServerName, address: String) -> Self {
        ServerState {
            name,
            address,
            role: ServerRole::Down,
            reachable: false,
            read_only: None,
            server_id: None,
            version: None,
            replication: Vec::new(),
            replication_broken: false,
            lag_seconds: None,
            gtid_behind: None,
            gtid_current_pos: None,
            gtid_binlog_pos: None,
            check_time: None,
            maintenance: false,
            drain: false,
            last_error: None,
        }
    }
}

fn micros<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_micros() as u64)),
        None => s.serialize_none(),
    }
}

/// The cluster at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterState {
    pub servers: Vec<ServerState>,
    /// The primary, when exactly one qualifies.
    pub primary: Option<ServerName>,
    /// Problems an operator must see, such as two writable servers or none.
    pub problems: Vec<String>,
    /// When this snapshot was made.
    #[serde(serialize_with = "unix_millis")]
    pub updated: SystemTime,
    /// Completed monitor rounds.
    pub ticks: u64,
}

fn unix_millis<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    s.serialize_u64(ms)
}

impl ClusterState {
    pub fn get(&self, name: &str) -> Option<&ServerState> {
        self.servers.iter().find(|s| s.name.as_str() == name)
    }
}

/// An operator flag on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminFlag {
    Maintenance,
    Drain,
}

impl AdminFlag {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "maintenance" => Some(AdminFlag::Maintenance),
            "drain" => Some(AdminFlag::Drain),
            _ => None,
        }
    }
}

/// A running monitor.
pub trait Monitor: Send + Sync {
    fn name(&self) -> &str;

    /// The latest cluster state, and every later one.
    fn subscribe(&self) -> watch::Receiver<Arc<ClusterState>>;

    /// Sets or clears an operator flag; the change is published at once, not at the next poll.
    fn set_flag(&self, server: &str, flag: AdminFlag, on: bool) -> Result<(), String>;

    /// The monitor's own state for the admin API.
    fn diagnostics(&self) -> serde_json::Value;

    /// The longest one round of checks may take. The runtime waits for the first round (a
    /// little longer than this) before its services count servers as down.
    fn round_deadline(&self) -> Duration;
}
