//! The handles sessions count through: one set per service, resolved once, and per session
//! the gauges it holds up while it lives.

use std::sync::{Arc, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus::{Histogram, IntCounter, IntGauge};
use switchyard_api::{RoutedTo, Server, ServerName};
use switchyard_protocol::reply::ReplySummary;

use super::*;

/// Why a client connection was turned away or its login failed.
pub(super) fn login_reason(code: u16) -> Option<&'static str> {
    use switchyard_protocol::packets::errors::*;
    Some(match code {
        ER_ACCESS_DENIED | ER_ACCESS_DENIED_NO_PASSWORD | ER_NOT_SUPPORTED_AUTH_MODE => {
            "access_denied"
        }
        ER_HOST_NOT_PRIVILEGED => "host_not_allowed",
        ER_BAD_DB => "unknown_database",
        ER_DBACCESS_DENIED => "database_denied",
        ER_HANDSHAKE | ER_NET_PACKETS_OUT_OF_ORDER => "bad_handshake",
        // Errors of the router or of the backend connection, not of the client's login.
        _ => return None,
    })
}

/// A slot for a handle made on first use: series that never happen are never shown.
type Lazy<T> = OnceLock<T>;

/// One service's handles, shared by its sessions for the life of the process.
pub struct ServiceMetrics {
    name: String,
    sessions: IntGauge,
    client_received: IntCounter,
    client_sent: IntCounter,
    proxy_statements: IntCounter,
    /// By target, except proxy.
    latency: [Lazy<Histogram>; 4],
    errors: [[Lazy<IntCounter>; ERROR_CLASSES.len()]; TARGETS.len()],
    /// Read without a lock; a session looks a server up here once.
    pub(super) servers: ArcSwap<Vec<Arc<ServerMetrics>>>,
}

/// A service's handles for one server.
pub(super) struct ServerMetrics {
    name: ServerName,
    /// By target: primary, replica, server, all.
    statements: [Lazy<IntCounter>; 4],
    received: IntCounter,
    sent: IntCounter,
}

/// A request to the admin API had a wrong user or password.
pub fn admin_login_failed() {
    METRICS.admin_login_failures.inc();
}

/// The handles of `service`, made on first use (takes a lock: call once per session, not per
/// statement).
pub fn service(name: &str) -> Arc<ServiceMetrics> {
    let m = &*METRICS;
    let mut services = m.services.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = services.get(name) {
        return s.clone();
    }
    let s = Arc::new(ServiceMetrics {
        name: name.to_string(),
        sessions: m.sessions.with_label_values(&[name]),
        client_received: m.client_received.with_label_values(&[name]),
        client_sent: m.client_sent.with_label_values(&[name]),
        proxy_statements: m.statements.with_label_values(&[name, "proxy", ""]),
        latency: Default::default(),
        errors: Default::default(),
        servers: ArcSwap::default(),
    });
    services.insert(name.to_string(), s.clone());
    s
}

impl ServiceMetrics {
    /// A client connected through `listener`.
    pub fn accepted(&self, listener: &str) {
        METRICS
            .connections
            .with_label_values(&[&self.name, listener])
            .inc();
    }

    /// A client was turned away: the service is at its `max_connections`.
    pub fn refused_full(&self) {
        self.refuse("max_connections");
    }

    /// A client was turned away: the service, or the client's address, has as many
    /// connections that have not logged in yet as it may.
    pub fn refused_pending(&self) {
        self.refuse("pending_logins");
    }

    /// A client was turned away: its address is blocked after too many failed logins.
    fn refused_blocked(&self) {
        self.refuse("host_blocked");
    }

    fn refuse(&self, reason: &str) {
        METRICS
            .refused
            .with_label_values(&[&self.name, reason])
            .inc();
    }

    /// A client's login ended with error `code` (the proxy's or a backend's): a login
    /// failure, or a refusal for want of a backend.
    pub fn login_refused(&self, code: u16) {
        use switchyard_protocol::packets::errors::{ER_CON_COUNT, ER_HOST_IS_BLOCKED};
        match (code, login_reason(code)) {
            (_, Some(reason)) => self.login_failed(reason),
            (ER_HOST_IS_BLOCKED, None) => self.refused_blocked(),
            (ER_CON_COUNT, None) => self.refused_full(),
            (_, None) => self.refuse("no_backend"),
        }
    }

    /// A client's login broke off: `timeout` when it did not answer in time, else a protocol
    /// error.
    pub fn login_broke_off(&self, timeout: bool) {
        self.login_failed(if timeout { "timeout" } else { "protocol" });
    }

    fn login_failed(&self, reason: &str) {
        METRICS
            .login_failures
            .with_label_values(&[&self.name, reason])
            .inc();
    }

    /// A client session logged in; it counts as open until the returned handles are dropped.
    pub fn session(self: &Arc<Self>) -> SessionMetrics {
        self.sessions.inc();
        SessionMetrics {
            service: self.clone(),
            servers: Vec::new(),
        }
    }

    fn error(&self, to: RoutedTo, sqlstate: &[u8]) -> &IntCounter {
        let class = error_class(sqlstate);
        self.errors[target_index(to)][class].get_or_init(|| {
            METRICS
                .errors
                .with_label_values(&[&self.name, to.as_str(), ERROR_CLASSES[class]])
        })
    }

    /// This service's handles for `server`, made on first use.
    fn server(&self, name: &ServerName) -> Arc<ServerMetrics> {
        if let Some(s) = self.servers.load().iter().find(|s| &s.name == name) {
            return s.clone();
        }
        let made = Arc::new(ServerMetrics {
            name: name.clone(),
            statements: Default::default(),
            received: METRICS
                .backend_received
                .with_label_values(&[&self.name, name.as_str()]),
            sent: METRICS
                .backend_sent
                .with_label_values(&[&self.name, name.as_str()]),
        });
        let mut found = None;
        // Two sessions may race to add the same server: the first one's stays.
        self.servers.rcu(|list| {
            found = list.iter().find(|s| &s.name == name).cloned();
            let mut list = Vec::clone(list);
            if found.is_none() {
                list.push(made.clone());
            }
            list
        });
        found.unwrap_or(made)
    }
}

/// A session's handles: its service's, and those of each server it has used. Counts the session
/// as open until dropped.
pub struct SessionMetrics {
    service: Arc<ServiceMetrics>,
    pub(super) servers: Vec<Arc<ServerMetrics>>,
}

impl Drop for SessionMetrics {
    fn drop(&mut self) {
        self.service.sessions.dec();
    }
}

impl SessionMetrics {
    /// The handles of the session's service.
    pub fn service(&self) -> &ServiceMetrics {
        &self.service
    }

    /// The index in `servers` of the handles for `name`, fetched on first use.
    fn server(&mut self, name: &ServerName) -> usize {
        match self.servers.iter().position(|s| &s.name == name) {
            Some(i) => i,
            None => {
                self.servers.push(self.service.server(name));
                self.servers.len() - 1
            }
        }
    }

    /// A command ran on `server` (on every backend, with `all`, the client getting `server`'s
    /// reply), which ended as `reply` says after `elapsed`; `backend_bytes` are the bytes read
    /// from and written to that backend since last counted.
    pub fn replied(
        &mut self,
        server: &Server,
        all: bool,
        reply: &ReplySummary,
        elapsed: Duration,
        backend_bytes: (u64, u64),
    ) {
        let to = if all {
            RoutedTo::All
        } else {
            RoutedTo::for_role(server.role)
        };
        let t = target_index(to);
        let i = self.server(&server.name);
        let handles = &self.servers[i];
        let service = &*self.service;
        handles.statements[t]
            .get_or_init(|| {
                METRICS.statements.with_label_values(&[
                    &service.name,
                    to.as_str(),
                    server.name.as_str(),
                ])
            })
            .inc();
        add(&handles.received, backend_bytes.0);
        add(&handles.sent, backend_bytes.1);
        service.latency[t]
            .get_or_init(|| {
                METRICS
                    .latency
                    .with_label_values(&[&service.name, to.as_str()])
            })
            .observe(elapsed.as_secs_f64());
        if let Some(e) = &reply.error {
            service.error(to, &e.sqlstate).inc();
        }
    }

    /// The proxy answered a command itself, with an error of `sqlstate`.
    pub fn answered(&self, sqlstate: &str) {
        self.service.proxy_statements.inc();
        self.unsolicited(sqlstate);
    }

    /// The proxy sent the client an error of `sqlstate` that answers no command (the last
    /// words of a session it ends).
    pub fn unsolicited(&self, sqlstate: &str) {
        self.service
            .error(RoutedTo::Proxy, sqlstate.as_bytes())
            .inc();
    }

    /// Bytes read from and written to the client since last counted.
    pub fn client_bytes(&self, (received, sent): (u64, u64)) {
        add(&self.service.client_received, received);
        add(&self.service.client_sent, sent);
    }

    /// Bytes read from and written to the backend on `server` since last counted.
    pub fn backend_bytes(&mut self, server: &ServerName, (received, sent): (u64, u64)) {
        if received == 0 && sent == 0 {
            return;
        }
        let i = self.server(server);
        let handles = &self.servers[i];
        add(&handles.received, received);
        add(&handles.sent, sent);
    }
}

fn add(counter: &IntCounter, n: u64) {
    if n > 0 {
        counter.inc_by(n);
    }
}

/// A backend connection to `server` was opened (`ok`) or could not be. Per connection, not
/// per statement: the handle is looked up each time.
pub fn backend_connected(server: &str, ok: bool) {
    let m = &*METRICS;
    let vec = if ok {
        &m.backend_connections
    } else {
        &m.backend_failures
    };
    vec.with_label_values(&[server]).inc();
}

/// Counts a config reload.
pub fn config_reloaded(ok: bool) {
    METRICS
        .config_reloads
        .with_label_values(&[if ok { "ok" } else { "failed" }])
        .inc();
}

/// Whether the proxy is draining before it stops.
pub fn set_draining(on: bool) {
    METRICS.draining.set(i64::from(on));
}
