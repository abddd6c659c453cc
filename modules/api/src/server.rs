//! Backend servers as routers see them: a name, an address, a role and live counters.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// The configured name of a backend server (`db1`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServerName(Arc<str>);

impl ServerName {
    pub fn new(name: &str) -> Self {
        ServerName(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// What a server is for in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    /// Accepts writes.
    Primary,
    /// Replicates from the primary; serves reads.
    Replica,
    /// Reachable, but neither primary nor replica.
    Running,
    /// Not reachable, or not to be used.
    Down,
}

impl ServerRole {
    /// The name used in the API and metrics: `primary`, `replica`, `running` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Primary => "primary",
            ServerRole::Replica => "replica",
            ServerRole::Running => "running",
            ServerRole::Down => "down",
        }
    }
}

/// Counters that sessions update and routers read to balance load.
///
/// Shared by every session of the process; plain atomics, no lock.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections: AtomicU64,
    total_connections: AtomicU64,
    statements: AtomicU64,
    operations: AtomicU64,
    /// Average reply time in µs, exponentially weighted (each reply counts 1/16).
    response_us: AtomicU64,
}

impl ServerStats {
    /// Backend connections open to this server right now.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Backend connections opened since start.
    pub fn total_connections(&self) -> u64 {
        self.total_connections.load(Ordering::Relaxed)
    }

    /// Commands routed to this server since start.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.total_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn statement_routed(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands running on this server right now, over all sessions.
    pub fn current_operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    pub fn operation_started(&self) {
        self.operations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn operation_finished(&self) {
        // Saturating: a counter that is off by one must not wrap around.
        let _ = self
            .operations
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The average time this server took to answer, in µs; 0 before its first reply.
    pub fn response_time_us(&self) -> u64 {
        self.response_us.load(Ordering::Relaxed)
    }

    /// Folds one reply time into the average. Racing updates may lose one sample; an average
    /// does not need every one.
    pub fn record_response(&self, micros: u64) {
        let old = self.response_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            micros.max(1)
        } else {
            (old * 15 + micros) / 16
        };
        self.response_us.store(new.max(1), Ordering::Relaxed);
    }
}

/// One backend server: what the config says of it plus its live counters.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: ServerName,
    /// `host:port` as configured.
    pub address: String,
    pub role: ServerRole,
    /// Operator flag: no new traffic; sessions move off (or, with routers that cannot move
    /// them, are closed) once outside a transaction.
    pub maintenance: bool,
    /// Operator flag: no new sessions; existing ones finish.
    pub drain: bool,
    /// Replication lag in seconds as the monitor last saw it (replicas only).
    pub lag_seconds: Option<u64>,
    /// `gtid_current_pos` as the monitor last saw it.
    pub gtid_pos: Option<Arc<str>>,
    /// `@@server_id` as the monitor last saw it.
    pub server_id: Option<u32>,
    pub stats: Arc<ServerStats>,
}

impl Server {
    /// A server with a role and nothing else known yet (configs without a monitor, tests).
    pub fn new(name: &str, address: &str, role: ServerRole, stats: Arc<ServerStats>) -> Self {
        Server {
            name: ServerName::new(name),
            address: address.to_string(),
            role,
            maintenance: false,
            drain: false,
            server_id: None,
            lag_seconds: None,
            gtid_pos: None,
            stats,
        }
    }

    /// True if new sessions may use this server.
    pub fn accepts_new_sessions(&self) -> bool {
        self.role != ServerRole::Down && !self.maintenance && !self.drain
    }
}

/// The servers of one service at one moment. Replaced whole when the state changes, so a
/// router reads it without locks.
#[derive(Debug, Default, Clone)]
pub struct ServerSet {
    pub servers: Vec<Arc<Server>>,
}

impl ServerSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Server>> {
        self.servers.iter().find(|s| s.name.as_str() == name)
    }

    /// Servers with `role`, in configuration order.
    pub fn with_role(&self, role: ServerRole) -> impl Iterator<Item = &Arc<Server>> {
        self.servers.iter().filter(move |s| s.role == role)
    }

    pub fn primary(&self) -> Option<&Arc<Server>> {
        self.with_role(ServerRole::Primary).next()
    }
}
