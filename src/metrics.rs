//! Prometheus metrics, served as text by the admin API's `/metrics`: counters and histograms that
//! sessions update through handles resolved once, and gauges set at scrape time from [`Scrape`].
//!
//! Every label value comes from the config (service, listener, server, monitor and filter names)
//! or from a fixed set named here; SQL text and user names are never labels.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};
use switchyard_api::RoutedTo;

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
    worker_sessions: IntGaugeVec,
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
            worker_sessions: gauge(
                r,
                "switchyard_worker_sessions",
                "Client sessions on each session worker (a thread with its own event loop; \
                 `threads` sets how many).",
                &["worker"],
            ),
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

mod handles;
mod modules;
mod scrape;

pub use handles::*;
pub use modules::ModuleSamples;
pub use scrape::*;

#[cfg(test)]
mod tests;
