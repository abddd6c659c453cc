//! The router contract: a per-service half that makes per-session halves, and a synchronous
//! `plan()` that decides where a command goes without doing any I/O.

use std::sync::Arc;

use switchyard_protocol::Command;

use crate::server::{Server, ServerSet};

/// What a router knows of the client session it serves.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: u32,
    pub user: String,
    pub client_addr: std::net::SocketAddr,
    pub db: Option<String>,
}

/// Where a command goes.
#[derive(Debug, Clone)]
pub enum RouteTarget {
    /// This server; the runtime opens a connection to it if the session has none.
    Server(Arc<Server>),
    /// No server can take it; the client gets an error saying why.
    Unavailable(String),
}

/// Why a router chose its target; a bounded set, usable as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// The server chosen for the whole connection (readconnroute).
    Connection,
}

impl RouteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Connection => "connection",
        }
    }
}

/// A routing decision.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    pub target: RouteTarget,
    pub reason: RouteReason,
}

/// The per-service half of a router.
pub trait Router: Send + Sync {
    /// Starts the router's half of a new client session.
    fn new_session(&self, session: &SessionInfo) -> Box<dyn RouterSession>;

    /// The router's state for the admin API.
    fn diagnostics(&self) -> serde_json::Value;
}

/// The per-session half of a router. Owned by one session task; never shared.
pub trait RouterSession: Send {
    /// Where the session connects before the client's first command; its reply to the
    /// client's login is the reply of this server (so unknown databases or missing grants are
    /// reported as the server words them).
    fn connect(&mut self, servers: &ServerSet) -> RoutePlan;

    /// Where `cmd` goes. Synchronous and free of I/O, so it can be tested without sockets.
    fn plan(&mut self, cmd: &Command<'_>, servers: &ServerSet) -> RoutePlan;
}
