//! Prometheus metrics, served as text by the admin API's `/metrics`: counters and histograms that
//! sessions update through handles resolved once, and gauges set at scrape time from [`Scrape`].
//!
//! Every label value comes from the config (service, listener, server, monitor and filter names)
//! or from a fixed set named here; SQL text and user names are never labels.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use switchyard_api::{ClusterState, RoutedTo, Server, ServerName};
use switchyard_protocol::reply::ReplySummary;

/// Statement latency buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The `class` label of `switchyard_errors_total`: the SQLSTATE class (its first two
/// characters) of the error the client got, or `other` for classes not listed. `08` connection,
/// `0A` not supported, `21` cardinality, `22` data, `23` integrity constraint (duplicate key),
/// `25` transaction state (read-only transaction), `28` authorization, `3D` no database
/// selected, `40` rollback (deadlock), `42` syntax or access rule (unknown table, no grant),
/// `45` raised by SIGNAL, `70` interrupted (KILL QUERY), `HY` general (lock wait timeout, lost
/// connection).
pub const ERROR_CLASSES: [&str; 14] = [
    "08", "0A", "21", "22", "23", "25", "28", "3D", "40", "42", "45", "70", "HY", "other",
];

/// The `target` label: where a command went (see [`RoutedTo`]).
const TARGETS: [RoutedTo; 5] = [
    RoutedTo::Primary,
    RoutedTo::Replica,
    RoutedTo::Server,
    RoutedTo::All,
    RoutedTo::Proxy,
];

/// The `state` label of `switchyard_server_state`.
pub const SERVER_STATES: [&str; 4] = ["primary", "replica", "running", "down"];

/// The index of `sqlstate`'s class in [`ERROR_CLASSES`].
pub fn error_class(sqlstate: &[u8]) -> usize {
    let other = ERROR_CLASSES.len() - 1;
    let Some(class) = sqlstate.get(..2) else {
        return other;
    };
    ERROR_CLASSES[..other]
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(class))
        .unwrap_or(other)
}

fn target_index(to: RoutedTo) -> usize {
    match to {
        RoutedTo::Primary => 0,
        RoutedTo::Replica => 1,
        RoutedTo::Server => 2,
        RoutedTo::All => 3,
        RoutedTo::Proxy => 4,
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's registry and every metric in it.
struct Metrics {
    registry: Registry,
    connections: IntCounterVec,
    refused: IntCounterVec,
    login_failures: IntCounterVec,
    sessions: IntGaugeVec,
    statements: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    client_received: IntCounterVec,
    client_sent: IntCounterVec,
    backend_received: IntCounterVec,
    backend_sent: IntCounterVec,
    backend_connections: IntCounterVec,
    backend_failures: IntCounterVec,
    config_reloads: IntCounterVec,
    draining: IntGauge,
    blocked_hosts: IntGauge,
    admin_login_failures: IntCounter,
    server_state: IntGaugeVec,
    server_reachable: IntGaugeVec,
    server_maintenance: IntGaugeVec,
    server_drain: IntGaugeVec,
    server_lag: IntGaugeVec,
    server_gtid_behind: IntGaugeVec,
    server_connections: IntGaugeVec,
    monitor_check: GaugeVec,
    monitor_ticks: IntCounterVec,
    /// Each service's handles, made on its first session.
    services: Mutex<HashMap<String, Arc<ServiceMetrics>>>,
    /// One scrape at a time: a scrape resets and refills the scrape-time gauges.
    scrape: Mutex<()>,
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let build = IntGaugeVec::new(
            Opts::new(
                "switchyard_build_info",
                "Always 1; the label says which Switchyard version runs.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        register(r, build);
        let started = Gauge::new(
            "switchyard_start_time_seconds",
            "When the proxy process started, in seconds since the Unix epoch.",
        )
        .expect("valid metric");
        started.set(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        register(r, started);
        let draining = IntGauge::new(
            "switchyard_draining",
            "1 while the proxy drains before stopping (listeners closed, sessions finishing), \
             else 0.",
        )
        .expect("valid metric");
        register(r, draining.clone());
        let blocked_hosts = IntGauge::new(
            "switchyard_blocked_hosts",
            "Client addresses whose logins are refused now, after max_auth_errors_until_block \
             failed logins.",
        )
        .expect("valid metric");
        register(r, blocked_hosts.clone());
        let admin_login_failures = IntCounter::new(
            "switchyard_admin_login_failures_total",
            "Admin API requests with a wrong user or password.",
        )
        .expect("valid metric");
        register(r, admin_login_failures.clone());
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_statement_duration_seconds",
                "Time from sending a client command to a backend until the last byte of its \
                 reply reached the client, by service and route target. Commands the proxy \
                 answered itself are not observed.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service", "target"],
        )
        .expect("valid metric");
        register(r, latency.clone());
        Metrics {
            connections: counter(
                r,
                "switchyard_client_connections_total",
                "Client connections accepted, by service and listener.",
                &["service", "listener"],
            ),
            refused: counter(
                r,
                "switchyard_client_connections_refused_total",
                "Client connections turned away for reasons other than their credentials: \
                 max_connections (the service is full), pending_logins (too many connections \
                 of the service or of the address have not logged in yet), no_backend (no \
                 server could take the session) or host_blocked (too many failed logins from \
                 the address).",
                &["service", "reason"],
            ),
            login_failures: counter(
                r,
                "switchyard_login_failures_total",
                "Failed client logins, by reason: access_denied, host_not_allowed, \
                 unknown_database, database_denied, bad_handshake, timeout, protocol, other.",
                &["service", "reason"],
            ),
            sessions: gauge(
                r,
                "switchyard_sessions",
                "Client sessions logged in now.",
                &["service"],
            ),
            statements: counter(
                r,
                "switchyard_statements_total",
                "Client commands answered, by service, route target (primary, replica, server, \
                 all: a session command on every backend, proxy: answered by the proxy itself) \
                 and the server whose reply the client got (empty for proxy). COM_QUIT, \
                 COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA have no reply and are not counted.",
                &["service", "target", "server"],
            ),
            errors: counter(
                r,
                "switchyard_errors_total",
                "Error replies sent to clients, by service, route target (proxy: the proxy's \
                 own errors) and SQLSTATE class (08, 0A, 21, 22, 23, 25, 28, 3D, 40, 42, 45, \
                 70, HY, other).",
                &["service", "target", "class"],
            ),
            latency,
            client_received: counter(
                r,
                "switchyard_client_received_bytes_total",
                "Bytes received from clients of sessions that logged in, their login included.",
                &["service"],
            ),
            client_sent: counter(
                r,
                "switchyard_client_sent_bytes_total",
                "Bytes sent to clients of sessions that logged in, their login included.",
                &["service"],
            ),
            backend_received: counter(
                r,
                "switchyard_backend_received_bytes_total",
                "Bytes received from backend servers on sessions' connections (logins, session \
                 commands on every backend and replays included).",
                &["service", "server"],
            ),
            backend_sent: counter(
                r,
                "switchyard_backend_sent_bytes_total",
                "Bytes sent to backend servers on sessions' connections (logins, session \
                 commands on every backend and replays included).",
                &["service", "server"],
            ),
            backend_connections: counter(
                r,
                "switchyard_backend_connections_total",
                "Backend connections opened and logged in, by server.",
                &["server"],
            ),
            backend_failures: counter(
                r,
                "switchyard_backend_connection_failures_total",
                "Backend connections that could not be opened or logged in, by server.",
                &["server"],
            ),
            config_reloads: counter(
                r,
                "switchyard_config_reloads_total",
                "Config reloads (SIGHUP or the admin API), by result: ok, or failed (the \
                 running config was kept).",
                &["result"],
            ),
            draining,
            blocked_hosts,
            admin_login_failures,
            server_state: gauge(
                r,
                "switchyard_server_state",
                "1 for the server's current state (primary, replica, running, down), 0 for the \
                 others.",
                &["server", "state"],
            ),
            server_reachable: gauge(
                r,
                "switchyard_server_reachable",
                "1 if the server answered its monitor's last check, else 0; absent without a \
                 monitor.",
                &["server"],
            ),
            server_maintenance: gauge(
                r,
                "switchyard_server_maintenance",
                "1 while the operator flag maintenance is set: no new traffic.",
                &["server"],
            ),
            server_drain: gauge(
                r,
                "switchyard_server_drain",
                "1 while the operator flag drain is set: no new sessions.",
                &["server"],
            ),
            server_lag: gauge(
                r,
                "switchyard_server_replication_lag_seconds",
                "Seconds_Behind_Master of a replica as its monitor last saw it; absent when \
                 unknown.",
                &["server"],
            ),
            server_gtid_behind: gauge(
                r,
                "switchyard_server_gtid_behind_transactions",
                "Transactions a replica is behind the primary, by GTID sequence numbers; \
                 absent when unknown.",
                &["server"],
            ),
            server_connections: gauge(
                r,
                "switchyard_server_connections",
                "Backend connections open to the server now, over all sessions.",
                &["server"],
            ),
            monitor_check: {
                let g = GaugeVec::new(
                    Opts::new(
                        "switchyard_monitor_check_duration_seconds",
                        "Round-trip time of the monitor's last check of the server.",
                    ),
                    &["monitor", "server"],
                )
                .expect("valid metric");
                register(r, g.clone());
                g
            },
            monitor_ticks: counter(
                r,
                "switchyard_monitor_ticks_total",
                "Monitor rounds completed (checks of every server).",
                &["monitor"],
            ),
            services: Mutex::default(),
            scrape: Mutex::default(),
            registry,
        }
    }
}

fn register<M: prometheus::core::Collector + 'static>(registry: &Registry, metric: M) {
    registry
        .register(Box::new(metric))
        .expect("metric names are unique");
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(r, c.clone());
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(r, g.clone());
    g
}

/// Why a client connection was turned away or its login failed.
fn login_reason(code: u16) -> Option<&'static str> {
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
    servers: ArcSwap<Vec<Arc<ServerMetrics>>>,
}

/// A service's handles for one server.
struct ServerMetrics {
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
    servers: Vec<Arc<ServerMetrics>>,
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

/// What a scrape shows of the live state, filled from the admin API's sources.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Each server once.
    pub servers: Vec<ServerSample>,
    pub monitors: Vec<MonitorSample>,
    /// What the filters report of themselves.
    pub modules: Vec<ModuleSamples>,
    /// Client addresses whose logins are refused now (login throttling).
    pub blocked_hosts: usize,
}

/// One server as the proxy sees it now.
#[derive(Debug, Clone, Default)]
pub struct ServerSample {
    pub name: String,
    /// `primary`, `replica`, `running` or `down`; anything else shows as no state at all.
    pub role: String,
    /// Whether it answered its monitor's last check; `None` without a monitor.
    pub reachable: Option<bool>,
    pub maintenance: bool,
    pub drain: bool,
    pub lag_seconds: Option<u64>,
    pub gtid_behind: Option<u64>,
    /// Backend connections open to it now.
    pub connections: u64,
}

/// One monitor.
#[derive(Debug, Clone, Default)]
pub struct MonitorSample {
    pub name: String,
    /// Rounds completed.
    pub ticks: u64,
    /// The round-trip time of the last check of each server that answered, in µs.
    pub check_us: Vec<(String, u64)>,
}

impl MonitorSample {
    /// The monitor `name` from its latest snapshot (`Monitor::subscribe().borrow()`).
    pub fn from_cluster(name: &str, cluster: &ClusterState) -> Self {
        MonitorSample {
            name: name.to_string(),
            ticks: cluster.ticks,
            check_us: cluster
                .servers
                .iter()
                .filter_map(|s| Some((s.name.to_string(), s.check_time?.as_micros() as u64)))
                .collect(),
        }
    }
}

/// Sets the scrape-time gauges from `scrape` and returns every metric in the Prometheus text
/// format (version 0.0.4; serve it as `text/plain; version=0.0.4; charset=utf-8`).
pub fn render(scrape: &Scrape) -> String {
    let m = &*METRICS;
    let _one_at_a_time = m.scrape.lock().unwrap_or_else(PoisonError::into_inner);
    // Reset and refilled whole, so that servers, monitors and filters no longer configured
    // disappear.
    for g in [
        &m.server_state,
        &m.server_reachable,
        &m.server_maintenance,
        &m.server_drain,
        &m.server_lag,
        &m.server_gtid_behind,
        &m.server_connections,
    ] {
        g.reset();
    }
    m.monitor_ticks.reset();
    m.monitor_check.reset();
    m.blocked_hosts
        .set(i64::try_from(scrape.blocked_hosts).unwrap_or(i64::MAX));
    let set = |g: &IntGaugeVec, labels: &[&str], v: u64| {
        g.with_label_values(labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    };
    for s in &scrape.servers {
        let name = s.name.as_str();
        for state in SERVER_STATES {
            let on = s.role.eq_ignore_ascii_case(state);
            set(&m.server_state, &[name, state], u64::from(on));
        }
        if let Some(r) = s.reachable {
            set(&m.server_reachable, &[name], u64::from(r));
        }
        set(&m.server_maintenance, &[name], u64::from(s.maintenance));
        set(&m.server_drain, &[name], u64::from(s.drain));
        if let Some(lag) = s.lag_seconds {
            set(&m.server_lag, &[name], lag);
        }
        if let Some(behind) = s.gtid_behind {
            set(&m.server_gtid_behind, &[name], behind);
        }
        set(&m.server_connections, &[name], s.connections);
    }
    for mon in &scrape.monitors {
        m.monitor_ticks
            .with_label_values(&[&mon.name])
            .inc_by(mon.ticks);
        for (server, us) in &mon.check_us {
            m.monitor_check
                .with_label_values(&[mon.name.as_str(), server.as_str()])
                .set(*us as f64 / 1e6);
        }
    }
    let mut out = String::with_capacity(16 * 1024);
    let mut families = m.registry.gather();
    let taken: HashSet<&str> = families.iter().map(|f| f.name()).collect();
    let from_modules = modules::gather(&scrape.modules, &taken);
    families.extend(from_modules);
    // Encoding only fails on invalid metric families, which the registries do not produce.
    let _ = TextEncoder::new().encode_utf8(&families, &mut out);
    out
}

mod modules;

pub use modules::ModuleSamples;

#[cfg(test)]
mod tests;
