//! A service: a router, the servers it routes to, and the accounts its clients log in with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
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
    pub max_connections: u32,
    sessions: AtomicU32,
    max_pending_logins: u32,
    max_pending_logins_per_host: u32,
    /// Connections that have not logged in yet, in all and by client address.
    pending: Mutex<Pending>,
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
            max_pending_logins: config.max_pending_logins,
            max_pending_logins_per_host: config.max_pending_logins_per_host,
            pending: Mutex::default(),
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

    /// True if the service has as many sessions as `max_connections` allows.
    pub fn is_full(&self) -> bool {
        self.sessions.load(Ordering::Acquire) >= self.max_connections
    }

    /// Counts a logged-in client session; `None` if the service is at its connection limit.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let n = self.sessions.fetch_add(1, Ordering::AcqRel) + 1;
        let admission = Admission(self.clone());
        (n <= self.max_connections).then_some(admission)
    }

    /// Counts a connection from `ip` that is about to log in, until the guard is dropped; the
    /// limit it would exceed otherwise.
    pub fn begin_login(self: &Arc<Self>, ip: IpAddr) -> Result<PendingLogin, PendingLimit> {
        let mut pending = self.lock_pending();
        if pending.total >= self.max_pending_logins {
            return Err(PendingLimit::Service(self.max_pending_logins));
        }
        let per_host = pending.by_host.entry(ip).or_insert(0);
        if *per_host >= self.max_pending_logins_per_host {
            return Err(PendingLimit::Host(self.max_pending_logins_per_host));
        }
        *per_host += 1;
        pending.total += 1;
        Ok(PendingLogin {
            service: self.clone(),
            ip,
        })
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Plain counts: a table left half-updated by a panic is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
struct Pending {
    total: u32,
    by_host: HashMap<IpAddr, u32>,
}

/// Which limit on connections that have not logged in yet a new one would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingLimit {
    /// `max_pending_logins` of the service.
    Service(u32),
    /// `max_pending_logins_per_host` of the service.
    Host(u32),
}

/// A connection counted as logging in until dropped.
pub struct PendingLogin {
    service: Arc<Service>,
    ip: IpAddr,
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        let mut pending = self.service.lock_pending();
        pending.total -= 1;
        if let Some(n) = pending.by_host.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                pending.by_host.remove(&self.ip);
            }
        }
    }
}

/// A client session counted against its service's limit until dropped.
pub struct Admission(Arc<Service>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}
