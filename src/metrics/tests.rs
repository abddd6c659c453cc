use std::sync::Arc;
use std::time::Duration;

use switchyard_api::{
    ClusterState, MetricSample, Server, ServerName, ServerRole, ServerState, ServerStats,
};
use switchyard_protocol::reply::{ReplyError, ReplySummary};

use super::handles::login_reason;

use super::*;

fn server(name: &str, role: ServerRole) -> Server {
    Server::new(name, "127.0.0.1:1", role, Arc::new(ServerStats::default()))
}

fn failed(sqlstate: &[u8; 5]) -> ReplySummary {
    ReplySummary {
        error: Some(ReplyError {
            code: 1064,
            sqlstate: *sqlstate,
        }),
        ..ReplySummary::default()
    }
}

fn statements(service: &str, target: &str, server: &str) -> u64 {
    METRICS
        .statements
        .with_label_values(&[service, target, server])
        .get()
}

fn errors(service: &str, target: &str, class: &str) -> u64 {
    METRICS
        .errors
        .with_label_values(&[service, target, class])
        .get()
}

/// The value of the series `name{labels}` in `text`, labels as the encoder writes them (sorted
/// by name, `le` last).
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().expect("a number"))
}

#[test]
fn error_classes_are_bounded() {
    let class = |s: &str| ERROR_CLASSES[error_class(s.as_bytes())];
    assert_eq!(class("42S02"), "42");
    assert_eq!(class("42000"), "42");
    assert_eq!(class("23000"), "23");
    assert_eq!(class("HY000"), "HY");
    assert_eq!(class("08S01"), "08");
    assert_eq!(class("40001"), "40");
    assert_eq!(class("3d000"), "3D");
    assert_eq!(class("XAE07"), "other");
    assert_eq!(class("01000"), "other");
    assert_eq!(class("4"), "other");
    assert_eq!(class(""), "other");
    assert_eq!(class("\u{0}\u{0}\u{0}"), "other");
}

#[test]
fn login_codes_have_reasons() {
    use switchyard_protocol::packets::errors::*;
    assert_eq!(login_reason(ER_ACCESS_DENIED), Some("access_denied"));
    assert_eq!(
        login_reason(ER_HOST_NOT_PRIVILEGED),
        Some("host_not_allowed")
    );
    assert_eq!(login_reason(ER_BAD_DB), Some("unknown_database"));
    assert_eq!(login_reason(ER_DBACCESS_DENIED), Some("database_denied"));
    assert_eq!(login_reason(ER_HANDSHAKE), Some("bad_handshake"));
    assert_eq!(login_reason(ER_UNKNOWN_ERROR), None);
    assert_eq!(login_reason(ER_CONNECTION_KILLED), None);

    let svc = service("t-login");
    svc.login_refused(ER_ACCESS_DENIED);
    svc.login_refused(ER_UNKNOWN_ERROR);
    svc.login_broke_off(true);
    svc.refused_full();
    let failures = |r: &str| {
        METRICS
            .login_failures
            .with_label_values(&["t-login", r])
            .get()
    };
    let refused = |r: &str| METRICS.refused.with_label_values(&["t-login", r]).get();
    assert_eq!(failures("access_denied"), 1);
    assert_eq!(failures("timeout"), 1);
    assert_eq!(refused("no_backend"), 1);
    assert_eq!(refused("max_connections"), 1);
}

#[test]
fn statements_count_by_target_server_and_error_class() {
    let svc = service("t-stmts");
    let mut session = svc.session();
    let db1 = server("db1", ServerRole::Primary);
    let db2 = server("db2", ServerRole::Replica);
    let ok = ReplySummary::default();
    let ms = Duration::from_millis(1);
    session.replied(&db2, false, &ok, ms, (100, 10));
    session.replied(&db2, false, &failed(b"42S02"), ms, (0, 0));
    session.replied(&db1, false, &failed(b"23000"), ms, (0, 0));
    session.replied(&db1, true, &ok, ms, (0, 0));
    session.answered("HY000");
    session.unsolicited("08S01");
    session.client_bytes((7, 300));

    assert_eq!(statements("t-stmts", "replica", "db2"), 2);
    assert_eq!(statements("t-stmts", "primary", "db1"), 1);
    assert_eq!(statements("t-stmts", "all", "db1"), 1);
    assert_eq!(statements("t-stmts", "proxy", ""), 1);
    assert_eq!(errors("t-stmts", "replica", "42"), 1);
    assert_eq!(errors("t-stmts", "primary", "23"), 1);
    assert_eq!(errors("t-stmts", "proxy", "HY"), 1);
    assert_eq!(errors("t-stmts", "proxy", "08"), 1);
    let latency = |t: &str| {
        METRICS
            .latency
            .with_label_values(&["t-stmts", t])
            .get_sample_count()
    };
    assert_eq!(latency("replica"), 2);
    assert_eq!(latency("primary"), 1);
    assert_eq!(latency("all"), 1);
    let bytes = |v: &IntCounterVec, l: &[&str]| v.with_label_values(l).get();
    assert_eq!(bytes(&METRICS.backend_received, &["t-stmts", "db2"]), 100);
    assert_eq!(bytes(&METRICS.backend_sent, &["t-stmts", "db2"]), 10);
    assert_eq!(bytes(&METRICS.client_received, &["t-stmts"]), 7);
    assert_eq!(bytes(&METRICS.client_sent, &["t-stmts"]), 300);
}

#[test]
fn handles_are_made_once_and_shared() {
    let a = service("t-handles");
    let b = service("t-handles");
    assert!(Arc::ptr_eq(&a, &b));
    let db1 = server("db1", ServerRole::Primary);
    let ok = ReplySummary::default();
    let mut first = a.session();
    let mut second = b.session();
    for _ in 0..3 {
        first.replied(&db1, false, &ok, Duration::ZERO, (1, 1));
        second.replied(&db1, false, &ok, Duration::ZERO, (1, 1));
    }
    second.backend_bytes(&db1.name, (1, 1));
    assert_eq!(first.servers.len(), 1);
    assert_eq!(second.servers.len(), 1);
    assert!(Arc::ptr_eq(&first.servers[0], &second.servers[0]));
    assert_eq!(a.servers.load().len(), 1);
    assert_eq!(statements("t-handles", "primary", "db1"), 6);
    assert_eq!(
        METRICS
            .backend_sent
            .with_label_values(&["t-handles", "db1"])
            .get(),
        7
    );
}

#[test]
fn sessions_gauge_follows_the_session_handles() {
    let svc = service("t-sessions");
    let open = || METRICS.sessions.with_label_values(&["t-sessions"]).get();
    let one = svc.session();
    let two = svc.session();
    assert_eq!(open(), 2);
    drop(one);
    assert_eq!(open(), 1);
    drop(two);
    assert_eq!(open(), 0);
}

/// What a `querylog` filter reports of itself (see its `Filter::metrics`).
fn feed(delivered: u64, dropped: u64, queued: u64) -> ModuleSamples {
    let records = |outcome: &'static str, n: u64| {
        MetricSample::counter("audit_records_total", "Audit records.", n).label("outcome", outcome)
    };
    ModuleSamples {
        label: "filter",
        instance: "render-audit".into(),
        samples: vec![
            records("delivered", delivered),
            records("dropped", dropped),
            MetricSample::gauge("audit_records_queued", "In flight.", queued as f64),
        ],
    }
}

#[test]
fn module_samples_that_do_not_fit_are_left_out() {
    let bad = ModuleSamples {
        label: "filter",
        instance: "odd".into(),
        samples: vec![
            // The runtime's own family: not a module's to report.
            MetricSample::gauge("sessions", "Sessions.", 1.0),
            MetricSample::counter("odd_total", "Odd.", 3),
            // Another kind, then other labels, than the family's first sample.
            MetricSample::gauge("odd_total", "Odd.", 4.0),
            MetricSample::counter("odd_total", "Odd.", 5).label("x", "y"),
        ],
    };
    let text = render(&Scrape {
        modules: vec![bad],
        ..Scrape::default()
    });
    assert_eq!(
        sample(&text, "switchyard_odd_total", r#"filter="odd""#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        text.matches("# TYPE switchyard_sessions ").count(),
        1,
        "{text}"
    );
    assert!(!text.contains(r#"x="y""#), "{text}");
}

#[test]
fn monitor_samples_come_from_the_cluster_state() {
    let mut up = ServerState::unknown(ServerName::new("db1"), "127.0.0.1:3307".into());
    up.check_time = Some(Duration::from_micros(1500));
    let down = ServerState::unknown(ServerName::new("db2"), "127.0.0.1:3308".into());
    let cluster = ClusterState {
        servers: vec![up, down],
        primary: None,
        problems: Vec::new(),
        updated: SystemTime::now(),
        ticks: 42,
    };
    let m = MonitorSample::from_cluster("repl", &cluster);
    assert_eq!(m.ticks, 42);
    assert_eq!(m.check_us, vec![("db1".to_string(), 1500)]);
}

#[test]
fn render_shows_scrape_gauges_and_drops_servers_gone() {
    let mut session = service("t-render").session();
    session.replied(
        &server("render-db1", ServerRole::Primary),
        false,
        &ReplySummary::default(),
        Duration::from_micros(300),
        (0, 0),
    );
    config_reloaded(true);
    let mut scrape = Scrape {
        servers: vec![
            ServerSample {
                name: "render-db1".into(),
                role: "primary".into(),
                reachable: Some(true),
                connections: 3,
                ..ServerSample::default()
            },
            ServerSample {
                name: "render-db2".into(),
                role: "replica".into(),
                reachable: Some(false),
                maintenance: true,
                lag_seconds: Some(7),
                gtid_behind: Some(12),
                ..ServerSample::default()
            },
        ],
        monitors: vec![MonitorSample {
            name: "render-mon".into(),
            ticks: 9,
            check_us: vec![("render-db1".into(), 2500)],
        }],
        modules: vec![feed(5, 1, 2)],
        blocked_hosts: 2,
        worker_sessions: vec![3, 4],
    };
    let text = render(&scrape);
    let has = |name: &str, labels: &str| sample(&text, name, labels);
    assert_eq!(
        has(
            "switchyard_statements_total",
            r#"server="render-db1",service="t-render",target="primary""#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        has("switchyard_worker_sessions", r#"worker="1""#),
        Some(4.0)
    );
    assert_eq!(
        has(
            "switchyard_statement_duration_seconds_bucket",
            r#"service="t-render",target="primary",le="0.0005""#
        ),
        Some(1.0)
    );
    assert_eq!(
        has(
            "switchyard_statement_duration_seconds_count",
            r#"service="t-render",target="primary""#
        ),
        Some(1.0)
    );
    assert_eq!(
        has(
            "switchyard_server_state",
            r#"server="render-db2",state="replica""#
        ),
        Some(1.0)
    );
    assert_eq!(
        has(
            "switchyard_server_state",
            r#"server="render-db2",state="primary""#
        ),
        Some(0.0)
    );
    assert_eq!(
        has("switchyard_server_reachable", r#"server="render-db2""#),
        Some(0.0)
    );
    assert_eq!(
        has("switchyard_server_maintenance", r#"server="render-db2""#),
        Some(1.0)
    );
    assert_eq!(
        has(
            "switchyard_server_replication_lag_seconds",
            r#"server="render-db2""#
        ),
        Some(7.0)
    );
    assert_eq!(
        has(
            "switchyard_server_replication_lag_seconds",
            r#"server="render-db1""#
        ),
        None
    );
    assert_eq!(
        has(
            "switchyard_server_gtid_behind_transactions",
            r#"server="render-db2""#
        ),
        Some(12.0)
    );
    assert_eq!(
        has("switchyard_server_connections", r#"server="render-db1""#),
        Some(3.0)
    );
    assert_eq!(
        has(
            "switchyard_monitor_check_duration_seconds",
            r#"monitor="render-mon",server="render-db1""#
        ),
        Some(0.0025)
    );
    assert_eq!(
        has("switchyard_monitor_ticks_total", r#"monitor="render-mon""#),
        Some(9.0)
    );
    assert_eq!(
        has(
            "switchyard_audit_records_total",
            r#"filter="render-audit",outcome="delivered""#
        ),
        Some(5.0)
    );
    assert_eq!(
        has(
            "switchyard_audit_records_total",
            r#"filter="render-audit",outcome="dropped""#
        ),
        Some(1.0)
    );
    assert_eq!(
        has(
            "switchyard_audit_records_queued",
            r#"filter="render-audit""#
        ),
        Some(2.0)
    );
    assert!(has("switchyard_config_reloads_total", r#"result="ok""#).is_some_and(|n| n >= 1.0));
    assert!(text.contains("# TYPE switchyard_statement_duration_seconds histogram"));
    assert!(text.contains("# HELP switchyard_statements_total "));
    assert!(text.contains("switchyard_build_info{version="));

    // A later scrape without db2, the monitor and the feed shows none of them, and counters
    // sampled from elsewhere follow their source.
    scrape.servers.truncate(1);
    scrape.monitors.clear();
    scrape.modules = vec![feed(6, 1, 2)];
    let text = render(&scrape);
    assert!(!text.contains("render-db2"), "{text}");
    assert!(!text.contains("render-mon"));
    assert_eq!(
        sample(
            &text,
            "switchyard_audit_records_total",
            r#"filter="render-audit",outcome="delivered""#
        ),
        Some(6.0)
    );
}

#[test]
fn role_names() {
    assert_eq!(ServerRole::Replica.as_str(), "replica");
    assert_eq!(RoutedTo::for_role(ServerRole::Running), RoutedTo::Server);
}
