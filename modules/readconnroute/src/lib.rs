//! `readconnroute`: sends each client connection to one server, chosen once at connect time
//! among the servers whose role matches `router_options` (and that are not in maintenance or
//! draining), balancing by the number of connections each has now. Every command of the
//! connection then goes to that server.

#![forbid(unsafe_code)]

mod config;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchyard_api::{
    RouteError, RoutePlan, RouteReason, RouteTarget, Router, RouterModule, RouterSession, Server,
    ServerRole, ServerSet, SessionInfo, Statement,
};

pub use config::{ReadConnRouteConfig, RoleOption, RoleOptions};

/// The per-service half.
#[derive(Debug, Clone)]
pub struct ReadConnRoute {
    config: Arc<ReadConnRouteConfig>,
    sessions: Arc<AtomicU64>,
}

impl ReadConnRoute {
    pub fn new(config: ReadConnRouteConfig) -> Self {
        ReadConnRoute {
            config: Arc::new(config),
            sessions: Arc::default(),
        }
    }

    /// The server a new connection should use, if any qualifies.
    pub fn choose(&self, servers: &ServerSet) -> Option<Arc<Server>> {
        let roles = self.config.roles();
        let best = |wanted: &dyn Fn(ServerRole) -> bool| {
            servers
                .servers
                .iter()
                .filter(|s| s.accepts_new_sessions() && wanted(s.role))
                .min_by_key(|s| s.stats.connections())
                .cloned()
        };
        best(&|role| roles.iter().any(|r| r.matches(role))).or_else(|| {
            // As in MaxScale: a replica-only service falls back to the primary when no replica
            // is available.
            let replica_only = roles.iter().all(|r| *r == RoleOption::Replica);
            if replica_only {
                best(&|role| role == ServerRole::Primary)
            } else {
                None
            }
        })
    }
}

impl RouterModule for ReadConnRoute {
    const NAME: &'static str = "readconnroute";
    type Config = ReadConnRouteConfig;

    fn build(config: ReadConnRouteConfig) -> Arc<dyn Router> {
        Arc::new(ReadConnRoute::new(config))
    }
}

impl Router for ReadConnRoute {
    fn new_session(&self, _session: &SessionInfo) -> Box<dyn RouterSession> {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        Box::new(ReadConnSession {
            router: self.clone(),
            chosen: None,
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        serde_json::json!({
            "router_options": self.config.roles(),
            "sessions_started": self.sessions.load(Ordering::Relaxed),
        })
    }
}

struct ReadConnSession {
    router: ReadConnRoute,
    chosen: Option<Arc<Server>>,
}

impl RouterSession for ReadConnSession {
    fn connect(&mut self, servers: &ServerSet) -> RoutePlan {
        self.chosen = self.router.choose(servers);
        self.current()
    }

    fn plan(&mut self, _stmt: &mut Statement<'_>, _servers: &ServerSet) -> RoutePlan {
        self.current()
    }
}

impl ReadConnSession {
    fn current(&self) -> RoutePlan {
        let target = match &self.chosen {
            Some(server) => RouteTarget::Server(server.clone()),
            None => RouteTarget::Close(RouteError::unavailable(format!(
                "no server with role {} is available",
                self.router.config.describe_roles()
            ))),
        };
        RoutePlan::new(target, RouteReason::Connection)
    }
}

#[cfg(test)]
mod tests;
