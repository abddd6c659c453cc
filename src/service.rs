//! A service: a router, the servers it routes to, and the accounts its clients log in with.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_api::{
    ClusterState, Filter, Monitor, Router, Server, ServerRole, ServerSet, ServerStats,
};
use tokio::sync::watch;

use crate::accounts::{AccountSource, Accounts};
use crate::config::{Config, Role, ServiceConfig};

/// One configured service, shared by its listeners' sessions.
pub struct Service {
    pub name: String,
    pub router: Arc<dyn Router>,
    /// The filters each statement passes through, in order; empty for none.
    pub filters: Vec<Arc<dyn Filter>>,
    /// The monitor that supplies the servers' roles, kept running while the service is used.
    pub monitor: Option<Arc<dyn Monitor>>,
    /// The servers as routers see them now; replaced whole when their state changes.
    pub servers: ArcSwap<ServerSet>,
    pub accounts: Accounts,
    pub connect_timeout: Duration,
    pub max_connections: Option<u32>,
    sessions: AtomicU32,
    /// Bumped whenever `servers` changes, so that idle sessions can react (maintenance).
    changes: watch::Sender<u64>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Builds a service from its config; `stats` holds the process-wide counters of each
    /// server, shared by every service that uses it.
    pub fn new(
        config: &ServiceConfig,
        all: &Config,
        router: Arc<dyn Router>,
        filters: Vec<Arc<dyn Filter>>,
        monitor: Option<Arc<dyn Monitor>>,
        stats: &dyn Fn(&str) -> Arc<ServerStats>,
    ) -> Service {
        let servers = config
            .servers
            .iter()
            .filter_map(|name| all.servers.iter().find(|s| &s.name == name))
            .map(|s| {
                let role = match s.role {
                    Role::Primary => ServerRole::Primary,
                    Role::Replica => ServerRole::Replica,
                    Role::Running => ServerRole::Running,
                };
                Arc::new(Server::new(&s.name, &s.address, role, stats(&s.name)))
            })
            .collect();
        Service {
            name: config.name.clone(),
            router,
            filters,
            monitor,
            servers: ArcSwap::from_pointee(ServerSet { servers }),
            accounts: Accounts::new(AccountSource {
                user: config.user.clone(),
                password: config.password.clone(),
                connect_timeout: config.connect_timeout,
                refresh_interval: config.users_refresh_interval,
            }),
            connect_timeout: config.connect_timeout,
            max_connections: config.max_connections,
            sessions: AtomicU32::new(0),
            changes: watch::Sender::new(0),
        }
    }

    /// Takes roles and operator flags from a monitor's snapshot. Servers the snapshot does not
    /// know are down: a service with a monitor trusts only what the monitor has seen.
    pub fn apply(&self, cluster: &ClusterState) {
        let current = self.servers.load();
        let servers: Vec<Arc<Server>> = current
            .servers
            .iter()
            .map(|old| {
                let state = cluster.get(old.name.as_str());
                let (role, maintenance, drain) = state
                    .map_or((ServerRole::Down, false, false), |s| {
                        (s.role, s.maintenance, s.drain)
                    });
                let lag_seconds = state.and_then(|s| s.lag_seconds);
                let gtid = state.and_then(|s| s.gtid_current_pos.as_deref());
                let server_id = state.and_then(|s| s.server_id).or(old.server_id);
                let same = (role, maintenance, drain, lag_seconds, server_id)
                    == (
                        old.role,
                        old.maintenance,
                        old.drain,
                        old.lag_seconds,
                        old.server_id,
                    )
                    && gtid == old.gtid_pos.as_deref();
                if same {
                    old.clone()
                } else {
                    Arc::new(Server {
                        role,
                        maintenance,
                        drain,
                        lag_seconds,
                        gtid_pos: gtid.map(Arc::from),
                        server_id,
                        ..Server::clone(old)
                    })
                }
            })
            .collect();
        let changed = servers
            .iter()
            .zip(&current.servers)
            .any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            self.servers.store(Arc::new(ServerSet { servers }));
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Notified whenever the service's servers change.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Where to read the account table: the primary first, then the others, skipping servers
    /// known to be down.
    pub fn account_servers(&self) -> Vec<String> {
        let set = self.servers.load();
        let mut servers: Vec<_> = set
            .servers
            .iter()
            .filter(|s| s.role != ServerRole::Down)
            .collect();
        servers.sort_by_key(|s| s.role != ServerRole::Primary);
        servers.iter().map(|s| s.address.clone()).collect()
    }

    /// Reloads the account table if the throttle allows.
    pub async fn reload_accounts(&self) -> bool {
        self.accounts.reload(&self.account_servers()).await
    }

    /// Counts a new client session; `None` if the service is at its connection limit.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let n = self.sessions.fetch_add(1, Ordering::AcqRel) + 1;
        let admission = Admission(self.clone());
        if self.max_connections.is_some_and(|max| n > max) {
            return None;
        }
        Some(admission)
    }
}

/// A client session counted against its service's limit until dropped.
pub struct Admission(Arc<Service>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}
