use std::time::{Duration, SystemTime};

use switchyard_api::{AdminFlag, ClusterState, ReplicationSource, ServerRole};

use super::*;
use crate::config::MonitoredServer;
use crate::probe::{CheckError, Probe, SourceStatus};

use ServerRole::{Down, Primary, Replica, Running};

fn servers() -> Vec<MonitoredServer> {
    vec![
        MonitoredServer::new("db1", "127.0.0.1:3307"),
        MonitoredServer::new("db2", "127.0.0.1:3308"),
        MonitoredServer::new("db3", "127.0.0.1:3309"),
    ]
}

fn source(host: &str, port: u16, io: &str, sql: &str, behind: Option<u64>) -> SourceStatus {
    SourceStatus {
        source: ReplicationSource {
            connection_name: String::new(),
            source_host: host.to_string(),
            source_port: port,
            io_running: io == "Yes",
            sql_running: sql == "Yes",
            seconds_behind: behind,
            last_error: None,
        },
        io_state: io.to_string(),
        sql_state: sql.to_string(),
        master_server_id: None,
        gtid_io_pos: None,
        using_gtid: Some("Slave_Pos".to_string()),
    }
}

fn healthy(port: u16) -> SourceStatus {
    source("127.0.0.1", port, "Yes", "Yes", Some(0))
}

fn probe(id: u32, read_only: bool, gtid: &str, sources: Vec<SourceStatus>) -> Probe {
    Probe {
        server_id: Some(id),
        read_only: Some(read_only),
        version: Some("10.11.19-MariaDB-log".to_string()),
        gtid_current_pos: Some(gtid.to_string()),
        gtid_binlog_pos: Some(gtid.to_string()),
        sources: Ok(sources),
        rtt: Duration::from_micros(300),
    }
}

fn primary(id: u32, gtid: &str) -> Result<Probe, CheckError> {
    Ok(probe(id, false, gtid, vec![]))
}

fn replica_of(id: u32, port: u16, gtid: &str) -> Result<Probe, CheckError> {
    Ok(probe(id, true, gtid, vec![healthy(port)]))
}

fn refused() -> Result<Probe, CheckError> {
    Err(CheckError::Connect("connection refused".to_string()))
}

fn healthy_round() -> Vec<Result<Probe, CheckError>> {
    vec![
        primary(1, "0-1-100"),
        replica_of(2, 3307, "0-1-100"),
        replica_of(3, 3307, "0-1-100"),
    ]
}

fn topology(failcount: u32) -> Topology {
    Topology::new(&servers(), failcount, SystemTime::UNIX_EPOCH)
}

fn round(
    t: &mut Topology,
    results: Vec<Result<Probe, CheckError>>,
) -> (Arc<ClusterState>, Vec<Event>) {
    t.round(
        results.into_iter().enumerate().collect(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1),
    )
}

fn roles(state: &ClusterState) -> Vec<ServerRole> {
    state.servers.iter().map(|s| s.role).collect()
}

fn messages(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.server() {
            Some(s) => format!("{s}: {}", e.message()),
            None => e.message(),
        })
        .collect()
}

#[test]
fn before_the_first_round_everything_is_down() {
    let t = topology(2);
    let s = t.current();
    assert_eq!(s.ticks, 0);
    assert_eq!(roles(s), [Down, Down, Down]);
    assert_eq!(s.primary, None);
}

#[test]
fn healthy_cluster() {
    let mut t = topology(2);
    let (s, events) = round(&mut t, healthy_round());
    assert_eq!(s.ticks, 1);
    assert_eq!(s.primary.as_ref().map(|p| p.as_str()), Some("db1"));
    assert_eq!(roles(&s), [Primary, Replica, Replica]);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    for r in &s.servers[1..] {
        assert_eq!(r.lag_seconds, Some(0));
        assert_eq!(r.gtid_behind, Some(0));
        assert!(r.reachable && !r.replication_broken);
        assert_eq!(r.replication.len(), 1);
        assert_eq!(r.check_time, Some(Duration::from_micros(300)));
    }
    assert_eq!(s.servers[0].lag_seconds, None);
    assert_eq!(s.servers[0].gtid_behind, None);
    assert_eq!(
        messages(&events),
        [
            "db1: server is up: primary",
            "db2: server is up: replica, replication running, lag 0s",
            "db3: server is up: replica, replication running, lag 0s",
            "primary is now db1",
        ]
    );
    // The same again: nothing to log.
    let (s, events) = round(&mut t, healthy_round());
    assert_eq!(s.ticks, 2);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn primary_found_whatever_the_config_order() {
    let mut t = topology(2);
    let (s, _) = round(
        &mut t,
        vec![
            replica_of(2, 3309, "0-3-5"),
            replica_of(1, 3309, "0-3-5"),
            primary(3, "0-3-5"),
        ],
    );
    assert_eq!(s.primary.as_ref().map(|p| p.as_str()), Some("db3"));
    assert_eq!(roles(&s), [Replica, Replica, Primary]);
}

#[test]
fn lag_by_seconds_and_gtid() {
    let mut t = topology(2);
    let mut lagging = probe(
        2,
        true,
        "0-1-90,1-1-4",
        vec![source("127.0.0.1", 3307, "Yes", "Yes", Some(3))],
    );
    lagging.gtid_binlog_pos = Some("0-1-90".to_string());
    let (s, _) = round(
        &mut t,
        vec![
            primary(1, "0-1-100,1-1-5"),
            Ok(lagging),
            replica_of(3, 3307, "0-1-101,1-1-5"),
        ],
    );
    assert_eq!(s.servers[1].lag_seconds, Some(3));
    assert_eq!(s.servers[1].gtid_behind, Some(11));
    // Ahead (sampled a moment later than the primary) is not behind.
    assert_eq!(s.servers[2].gtid_behind, Some(0));
    // Garbage positions: unknown, not a panic.
    let mut odd = probe(2, true, "garbage", vec![healthy(3307)]);
    odd.gtid_current_pos = None;
    let (s, _) = round(
        &mut t,
        vec![primary(1, "0-1-100"), Ok(odd), replica_of(3, 3307, "x-y-z")],
    );
    assert_eq!(s.servers[1].gtid_behind, None);
    assert_eq!(s.servers[2].gtid_behind, None);
    assert_eq!(roles(&s), [Primary, Replica, Replica]);
}

#[test]
fn two_writable_servers_mean_no_primary() {
    let mut t = topology(2);
    round(&mut t, healthy_round());
    let (s, events) = round(
        &mut t,
        vec![
            primary(1, "0-1-100"),
            Ok(probe(2, false, "0-1-100", vec![healthy(3307)])),
            replica_of(3, 3307, "0-1-100"),
        ],
    );
    assert_eq!(s.primary, None);
    assert_eq!(roles(&s), [Running, Running, Replica]);
    assert_eq!(
        s.problems,
        ["2 writable servers (db1, db2): no primary chosen; writes are refused until only one is writable"]
    );
    assert_eq!(
        messages(&events),
        [
            "db1: role changed from primary to running: running (writable, but not the only writable server)",
            "db2: role changed from replica to running: running (writable, but not the only writable server)",
            "db2: read_only is now OFF",
            "no primary any more (was db1): writes are refused",
            "2 writable servers (db1, db2): no primary chosen; writes are refused until only one is writable",
        ]
    );
    assert_eq!(events[3].level(), Level::Warn);
    // Same state: logged once only.
    let (_, again) = round(
        &mut t,
        vec![
            primary(1, "0-1-100"),
            Ok(probe(2, false, "0-1-100", vec![healthy(3307)])),
            replica_of(3, 3307, "0-1-100"),
        ],
    );
    assert!(again.is_empty(), "{again:?}");
    // db2 read-only again: db1 is the primary once more.
    let (s, events) = round(&mut t, healthy_round());
    assert_eq!(s.primary.as_ref().map(|p| p.as_str()), Some("db1"));
    assert!(s.problems.is_empty());
    let m = messages(&events);
    assert!(m.contains(&"primary is now db1".to_string()), "{m:?}");
    assert!(
        m.iter()
            .any(|l| l.starts_with("resolved: 2 writable servers")),
        "{m:?}"
    );
}

#[test]
fn no_writable_server() {
    let mut t = topology(2);
    round(&mut t, healthy_round());
    let (s, events) = round(
        &mut t,
        vec![
            Ok(probe(1, true, "0-1-100", vec![])),
            replica_of(2, 3307, "0-1-100"),
            replica_of(3, 3307, "0-1-100"),
        ],
    );
    assert_eq!(s.primary, None);
    assert_eq!(
        s.problems,
        ["no writable server: every reachable server is read-only; writes are refused"]
    );
    // Reads go on: the replicas of the read-only top server stay replicas.
    assert_eq!(roles(&s), [Running, Replica, Replica]);
    let m = messages(&events);
    assert!(m.contains(&"db1: read_only is now ON".to_string()), "{m:?}");
    assert!(
        m.contains(&"no primary any more (was db1): writes are refused".to_string()),
        "{m:?}"
    );
}

#[test]
fn all_down() {
    let mut t = topology(1);
    let (s, events) = round(&mut t, vec![refused(), refused(), refused()]);
    assert_eq!(roles(&s), [Down, Down, Down]);
    assert_eq!(s.problems, ["no writable server: all servers are down"]);
    assert_eq!(
        messages(&events)[0],
        "db1: server is down: cannot connect: connection refused (1 failed check)"
    );
    assert_eq!(
        s.servers[0].last_error.as_deref(),
        Some("cannot connect: connection refused")
    );
}

#[test]
fn broken_replica() {
    let mut t = topology(2);
    round(&mut t, healthy_round());
    let mut broken = source("127.0.0.1", 3307, "Yes", "No", None);
    broken.source.last_error =
        Some("Error 'Duplicate entry '1' for key 'PRIMARY'' on query".to_string());
    let round2 = || {
        vec![
            primary(1, "0-1-110"),
            Ok(probe(2, true, "0-1-100", vec![broken.clone()])),
            replica_of(3, 3307, "0-1-110"),
        ]
    };
    let (s, events) = round(&mut t, round2());
    let db2 = &s.servers[1];
    assert_eq!(db2.role, Running);
    assert!(db2.replication_broken && db2.reachable);
    assert_eq!(db2.lag_seconds, None);
    assert_eq!(db2.gtid_behind, Some(10));
    assert_eq!(
        messages(&events),
        ["db2: replication broken: Slave_IO_Running=Yes, Slave_SQL_Running=No, error: Error 'Duplicate entry '1' for key 'PRIMARY'' on query"]
    );
    assert_eq!(events[0].level(), Level::Warn);
    assert_eq!(s.primary.as_ref().map(|p| p.as_str()), Some("db1"));
    // Still broken: nothing new to log.
    let (_, events) = round(&mut t, round2());
    assert!(events.is_empty(), "{events:?}");
    // Repaired.
    let (s, events) = round(&mut t, healthy_round());
    assert_eq!(s.servers[1].role, Replica);
    assert!(!s.servers[1].replication_broken);
    assert_eq!(s.servers[1].last_error, None);
    assert_eq!(
        messages(&events),
        ["db2: replica is back: replication running, lag 0s"]
    );
}

#[test]
fn stopped_or_reconnecting_replication_is_broken() {
    let mut t = topology(2);
    let (s, events) = round(
        &mut t,
        vec![
            primary(1, "0-1-1"),
            Ok(probe(
                2,
                true,
                "0-1-1",
                vec![source("127.0.0.1", 3307, "No", "No", None)],
            )),
            Ok(probe(
                3,
                true,
                "0-1-1",
                vec![source("127.0.0.1", 3307, "Connecting", "Yes", None)],
            )),
        ],
    );
    assert_eq!(roles(&s), [Primary, Running, Running]);
    assert!(s.servers[1].replication_broken && s.servers[2].replication_broken);
    assert_eq!(
        messages(&events)[1..3],
        [
            "db2: server is up: running",
            "db2: replication broken: Slave_IO_Running=No, Slave_SQL_Running=No",
        ]
    );
    assert_eq!(
        s.servers[2].last_error.as_deref(),
        Some("Slave_IO_Running=Connecting, Slave_SQL_Running=Yes")
    );
    // Threads running but an error reported: broken too.
    let mut erring = healthy(3307);
    erring.source.last_error = Some("boom".to_string());
    let (s, _) = round(
        &mut t,
        vec![
            primary(1, "0-1-1"),
            Ok(probe(2, true, "0-1-1", vec![erring])),
            replica_of(3, 3307, "0-1-1"),
        ],
    );
    assert!(s.servers[1].replication_broken);
    assert_eq!(roles(&s), [Primary, Running, Replica]);
}

#[test]
fn multi_source_replication() {
    let mut t = topology(2);
    let mut external = source("10.0.0.9", 3306, "Connecting", "Yes", None);
    external.source.connection_name = "ext".to_string();
    let mut main = healthy(3307);
    main.source.connection_name = "main".to_string();
    // The source towards the primary works, another one does not: still a replica.
    let (s, _) = round(
        &mut t,
        vec![
            primary(1, "0-1-5"),
            Ok(probe(
                2,
                true,
                "0-1-5,7-9-3",
                vec![external.clone(), main.clone()],
            )),
            replica_of(3, 3307, "0-1-5"),
        ],
    );
    assert_eq!(s.servers[1].role, Replica);
    assert!(!s.servers[1].replication_broken);
    assert_eq!(s.servers[1].replication.len(), 2);
    assert_eq!(s.servers[1].gtid_behind, Some(0));
    // The source towards the primary is stopped, the other works: broken.
    let mut main_stopped = source("127.0.0.1", 3307, "No", "No", None);
    main_stopped.source.connection_name = "main".to_string();
    let healthy_external = source("10.0.0.9", 3306, "Yes", "Yes", Some(0));
    let (s, events) = round(
        &mut t,
        vec![
            primary(1, "0-1-5"),
            Ok(probe(
                2,
                true,
                "0-1-5",
                vec![healthy_external, main_stopped],
            )),
            replica_of(3, 3307, "0-1-5"),
        ],
    );
    assert_eq!(s.servers[1].role, Running);
    assert!(s.servers[1].replication_broken);
    assert_eq!(
        messages(&events),
        ["db2: replication broken: connection 'main': Slave_IO_Running=No, Slave_SQL_Running=No"]
    );
}

#[test]
fn failcount_and_recovery() {
    let mut t = topology(3);
    round(&mut t, healthy_round());
    let failing = || vec![primary(1, "0-1-1"), refused(), replica_of(3, 3307, "0-1-1")];

    // 1st failure: last state kept, unreachable, logged at debug.
    let (s, events) = round(&mut t, failing());
    let db2 = &s.servers[1];
    assert_eq!(db2.role, Replica);
    assert!(!db2.reachable);
    assert_eq!(db2.check_time, None);
    assert_eq!(
        db2.last_error.as_deref(),
        Some("cannot connect: connection refused")
    );
    assert_eq!(db2.server_id, Some(2));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].level(), Level::Debug);
    // 2nd: still in grace, nothing logged.
    let (s, events) = round(&mut t, failing());
    assert_eq!(s.servers[1].role, Replica);
    assert!(events.is_empty(), "{events:?}");
    // 3rd: down, logged once with the reason.
    let (s, events) = round(&mut t, failing());
    assert_eq!(s.servers[1].role, Down);
    assert_eq!(s.servers[1].lag_seconds, None);
    assert_eq!(
        messages(&events),
        ["db2: server is down: cannot connect: connection refused (3 failed checks)"]
    );
    assert_eq!(events[0].level(), Level::Warn);
    let (s, events) = round(&mut t, failing());
    assert_eq!(s.servers[1].role, Down);
    assert!(events.is_empty(), "{events:?}");
    let failures: Vec<u32> = t.failures().map(|(_, n)| n).collect();
    assert_eq!(failures, [0, 4, 0]);
    // One success: up again at once.
    let (s, events) = round(&mut t, healthy_round());
    assert_eq!(s.servers[1].role, Replica);
    assert!(s.servers[1].reachable);
    assert_eq!(s.servers[1].last_error, None);
    assert_eq!(
        messages(&events),
        ["db2: server is up: replica, replication running, lag 0s"]
    );
}

#[test]
fn a_blip_shorter_than_failcount_moves_nothing() {
    let mut t = topology(2);
    round(&mut t, healthy_round());
    let (s, _) = round(
        &mut t,
        vec![
            refused(),
            replica_of(2, 3307, "0-1-100"),
            replica_of(3, 3307, "0-1-100"),
        ],
    );
    // The primary keeps its role while unreachable within failcount.
    assert_eq!(s.primary.as_ref().map(|p| p.as_str()), Some("db1"));
    assert_eq!(roles(&s), [Primary, Replica, Replica]);
    assert!(!s.servers[0].reachable);
    let (s, events) = round(&mut t, healthy_round());
    assert!(s.servers[0].reachable);
    assert_eq!(messages(&events), ["db1: check succeeded again"]);
    assert_eq!(events[0].level(), Level::Debug);
}

#[test]
fn startup_with_a_dead_server() {
    let mut t = topology(2);
    let first = || vec![primary(1, "0-1-1"), replica_of(2, 3307, "0-1-1"), refused()];
    let (s, events) = round(&mut t, first());
    assert_eq!(roles(&s), [Primary, Replica, Down]);
    // Not yet failcount failures: nothing about db3.
    assert!(
        messages(&events).iter().all(|m| !m.starts_with("db3")),
        "{events:?}"
    );
    let (_, events) = round(&mut t, first());
    assert_eq!(
        messages(&events),
        ["db3: server is down: cannot connect: connection refused (2 failed checks)"]
    );
}

#[test]
fn primary_lost_then_replica_promoted() {
    let mut t = topology(1);
    round(&mut t, healthy_round());
    let reconnecting = || source("127.0.0.1", 3307, "Connecting", "Yes", None);
    let (s, events) = round(
        &mut t,
        vec![
            refused(),
            Ok(probe(2, true, "0-1-100", vec![reconnecting()])),
            Ok(probe(3, true, "0-1-100", vec![reconnecting()])),
        ],
    );
    // Without a primary, the replicas of the lost one serve reads with what they have.
    assert_eq!(s.primary, None);
    assert_eq!(roles(&s), [Down, Replica, Replica]);
    assert!(!s.servers[1].replication_broken && !s.servers[2].replication_broken);
    assert_eq!(s.servers[1].lag_seconds, None);
    let m = messages(&events);
    assert!(m.contains(
        &"db1: server is down: cannot connect: connection refused (1 failed check)".to_string()
    ));
    assert!(m.contains(&"no primary any more (was db1): writes are refused".to_string()));
    // An operator promotes db2; db3 still points at db1.
    let (s, _) = round(
        &mut t,
        vec![
            refused(),
            Ok(probe(2, false, "0-1-100", vec![])),
            Ok(probe(3, true, "0-1-100", vec![reconnecting()])),
        ],
    );
    assert_eq!(s.primary.as_ref().map(|p| p.as_str()), Some("db2"));
    assert_eq!(roles(&s), [Down, Primary, Running]);
    assert!(s.servers[2].replication_broken);
    // db3 now replicates from db2.
    let (s, events) = round(
        &mut t,
        vec![
            refused(),
            Ok(probe(2, false, "0-2-3", vec![])),
            replica_of(3, 3308, "0-2-3"),
        ],
    );
    assert_eq!(roles(&s), [Down, Primary, Replica]);
    assert_eq!(
        messages(&events),
        ["db3: replica is back: replication running, lag 0s"]
    );
    // The old primary comes back read-only and replicating from db2.
    let (s, events) = round(
        &mut t,
        vec![
            replica_of(1, 3308, "0-2-3"),
            Ok(probe(2, false, "0-2-3", vec![])),
            replica_of(3, 3308, "0-2-3"),
        ],
    );
    assert_eq!(roles(&s), [Replica, Primary, Replica]);
    assert_eq!(
        messages(&events),
        ["db1: server is up: replica, replication running, lag 0s"]
    );
}

#[test]
fn sources_matched_by_loopback_name_or_server_id() {
    let mut t = topology(2);
    let by_name = source("LOCALHOST", 3307, "Yes", "Yes", Some(0));
    let mut by_id = source("db1.internal", 3306, "Yes", "Yes", Some(1));
    by_id.master_server_id = Some(1);
    let (s, _) = round(
        &mut t,
        vec![
            primary(1, "0-1-1"),
            Ok(probe(2, true, "0-1-1", vec![by_name])),
            Ok(probe(3, true, "0-1-1", vec![by_id])),
        ],
    );
    assert_eq!(roles(&s), [Primary, Replica, Replica]);
    assert_eq!(s.servers[2].lag_seconds, Some(1));
}

#[test]
fn relay_and_external_replication_are_running() {
    let mut t = topology(2);
    let (s, _) = round(
        &mut t,
        vec![
            primary(1, "0-1-1"),
            replica_of(2, 3307, "0-1-1"),
            // db3 replicates from db2, a replica: a relay setup.
            replica_of(3, 3308, "0-1-1"),
        ],
    );
    assert_eq!(roles(&s), [Primary, Replica, Running]);
    assert!(!s.servers[2].replication_broken);
    let (s, events) = round(
        &mut t,
        vec![
            primary(1, "0-1-1"),
            replica_of(2, 3307, "0-1-1"),
            Ok(probe(
                3,
                true,
                "0-1-1",
                vec![source("10.1.1.1", 3306, "Yes", "Yes", Some(0))],
            )),
        ],
    );
    assert_eq!(s.servers[2].role, Running);
    assert!(events.is_empty(), "{events:?}");
    // A standalone read-only server.
    let (s, events) = round(
        &mut t,
        vec![
            primary(1, "0-1-1"),
            replica_of(2, 3307, "0-1-1"),
            Ok(probe(3, true, "", vec![])),
        ],
    );
    assert_eq!(s.servers[2].role, Running);
    assert!(events.is_empty(), "{events:?}");
    // It starts replicating from the primary.
    let (_, events) = round(&mut t, healthy_round());
    assert_eq!(
        messages(&events),
        ["db3: role changed from running to replica: replica, replication running, lag 0s"]
    );
}

#[test]
fn unknown_replication_status_is_not_a_replica() {
    let mut t = topology(2);
    let mut p = probe(2, true, "0-1-1", vec![]);
    p.sources = Err("server error 1227 (42000): Access denied".to_string());
    let (s, events) = round(
        &mut t,
        vec![primary(1, "0-1-1"), Ok(p), replica_of(3, 3307, "0-1-1")],
    );
    assert_eq!(roles(&s), [Primary, Running, Replica]);
    assert_eq!(
        s.servers[1].last_error.as_deref(),
        Some("replication status unknown: server error 1227 (42000): Access denied")
    );
    assert!(messages(&events).contains(
        &"db2: server is up: running (replication status unknown: server error 1227 (42000): Access denied)".to_string()
    ));
}

#[test]
fn odd_probes_are_unknowns() {
    let mut t = topology(2);
    let nulls = Probe {
        server_id: None,
        read_only: None,
        version: None,
        gtid_current_pos: None,
        gtid_binlog_pos: None,
        sources: Ok(vec![source("", 0, "", "", None)]),
        rtt: Duration::ZERO,
    };
    let (s, _) = round(
        &mut t,
        vec![Ok(nulls.clone()), Ok(nulls.clone()), Ok(nulls)],
    );
    assert_eq!(roles(&s), [Running, Running, Running]);
    assert_eq!(s.primary, None);
    assert_eq!(s.problems.len(), 1);
    // Fewer results than servers (cannot happen, but must not panic).
    let (s, _) = round(&mut t, vec![primary(1, "0-1-1")]);
    assert_eq!(s.servers[0].role, Primary);
    assert_eq!(s.servers[1].role, Running);
}

#[test]
fn operator_flags() {
    let mut t = topology(2);
    round(&mut t, healthy_round());
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
    let (s, event) = t
        .set_flag("db2", AdminFlag::Maintenance, true, now)
        .unwrap();
    assert!(s.servers[1].maintenance);
    assert!(!s.servers[1].drain);
    assert_eq!(s.ticks, 1, "a flag is published at once, not as a round");
    assert_eq!(s.updated, now);
    assert_eq!(s.servers[1].role, Replica, "flags do not change roles");
    let event = event.unwrap();
    assert_eq!(event.message(), "maintenance set");
    assert!(Arc::ptr_eq(&s, t.current()));
    // Setting it again changes nothing.
    let (_, event) = t
        .set_flag("db2", AdminFlag::Maintenance, true, now)
        .unwrap();
    assert_eq!(event, None);
    t.set_flag("db1", AdminFlag::Drain, true, now).unwrap();
    // Kept across rounds.
    let (s, events) = round(&mut t, healthy_round());
    assert!(s.servers[1].maintenance && s.servers[0].drain);
    assert!(events.is_empty(), "{events:?}");
    let (s, event) = t
        .set_flag("db2", AdminFlag::Maintenance, false, now)
        .unwrap();
    assert!(!s.servers[1].maintenance);
    assert_eq!(event.unwrap().message(), "maintenance cleared");
    let err = t.set_flag("db9", AdminFlag::Drain, true, now).unwrap_err();
    assert_eq!(
        err,
        "unknown server 'db9' (this monitor watches: db1, db2, db3)"
    );
}

#[test]
fn addresses_split() {
    assert_eq!(split_address("127.0.0.1:3307"), Some(("127.0.0.1", 3307)));
    assert_eq!(split_address("[::1]:3307"), Some(("::1", 3307)));
    assert_eq!(split_address("db1"), None);
    assert_eq!(split_address("db1:x"), None);
    assert!(same_host("localhost", "127.0.0.1"));
    assert!(same_host("DB1", "db1"));
    assert!(!same_host("db1", "db2"));
}

#[test]
fn a_check_under_way_keeps_the_state() {
    let mut t = topology(2);
    let now = SystemTime::UNIX_EPOCH;
    // db3 hangs from the start: unknown until its check ends.
    let (s, _) = t.round(
        vec![(1, replica_of(2, 3307, "0-1-1")), (0, primary(1, "0-1-1"))],
        now,
    );
    assert_eq!(roles(&s), [Primary, Replica, Down]);
    assert_eq!(
        s.servers[2].last_error.as_deref(),
        Some("no check has completed yet")
    );
    // db2's check is under way: it keeps its role, reachable as before. db3's first check
    // ended (refused) and the next one too, within the same round: both count.
    let (s, events) = t.round(
        vec![
            (0, primary(1, "0-1-1")),
            (2, refused()),
            (2, refused()),
            (9, refused()),
        ],
        now,
    );
    assert_eq!(roles(&s), [Primary, Replica, Down]);
    assert!(s.servers[1].reachable);
    assert_eq!(s.ticks, 2);
    let failures: Vec<u32> = t.failures().map(|(_, n)| n).collect();
    assert_eq!(failures, [0, 0, 2]);
    assert_eq!(
        messages(&events),
        ["db3: server is down: cannot connect: connection refused (2 failed checks)"]
    );
}
