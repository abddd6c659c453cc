//! The filter as the runtime drives it, with no broker to talk to: sessions must never wait,
//! and every record must be accounted for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_api::{ClientInfo, Filter, LoginFailure, ReplyInfo, RouteReason, RoutedTo};
use switchyard_protocol::reply::ReplySummary;
use switchyard_protocol::Command;

use crate::spill::Spill;
use crate::{QueryLog, QueryLogConfig};

/// Nothing listens on port 1: connections are refused at once.
const DEAD_BROKER: &str = "127.0.0.1:1";

fn config(options: serde_json::Value) -> QueryLogConfig {
    serde_json::from_value(options).unwrap()
}

fn client(id: u32, user: &str) -> ClientInfo {
    ClientInfo {
        session_id: switchyard_api::SessionId(id),
        user: user.into(),
        client_addr: "10.1.2.3:51544".parse().unwrap(),
        db: None,
        program: None,
        tls: true,
        service: Arc::from("app"),
        listener: Arc::from("app-rw"),
    }
}

/// Runs `n` point selects through a new session; returns the records it made.
fn drive(log: &QueryLog, id: u32, n: u32) -> u64 {
    let mut s = log.new_session(&client(id, "app"));
    let summary = ReplySummary {
        rows: 1,
        status: 2,
        result_sets: 1,
        column_sets: 1,
        bytes: 120,
        ..ReplySummary::default()
    };
    for i in 0..n {
        let sql = format!("SELECT c FROM sbtest1 WHERE id = {i}");
        s.on_command(&mut Command::Query(sql.as_bytes()).into());
        s.on_reply(&ReplyInfo {
            summary: &summary,
            proxy_error: None,
            server: None,
            routed_to: RoutedTo::Replica,
            reason: Some(RouteReason::Read),
            started: Instant::now(),
            first_byte: None,
            last_byte: Duration::from_micros(100),
            statement_id: None,
        });
    }
    s.on_close(None);
    u64::from(n) + 2
}

#[test]
fn a_dead_broker_never_slows_the_sessions() {
    let log = QueryLog::new(
        "dead",
        config(json!({
            "brokers": DEAD_BROKER, "queue_size": 100,
            "kafka": {"queue.buffering.max.messages": 50}
        })),
    )
    .unwrap();
    let started = Instant::now();
    let made = drive(&log, 1, 5000);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "5000 statements took {:?}",
        started.elapsed()
    );
    let stopping = Instant::now();
    log.shutdown(Duration::from_millis(300));
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopping.elapsed()
    );
    let s = log.stats();
    assert_eq!(s.delivered, 0);
    assert!(s.dropped > 0, "{s:?}");
    assert_eq!(s.delivered + s.failed + s.dropped, made, "{s:?}");
    assert_eq!(s.queued, 0);
    assert_eq!(s.spilled, 0);
    // After the shutdown, records are dropped and counted.
    drive(&log, 2, 3);
    assert_eq!(log.stats().dropped, s.dropped + 5);
}

#[test]
fn the_spill_file_keeps_what_kafka_could_not_take() {
    let dir = std::env::temp_dir().join(format!("querylog-unit-{}", uuid::Uuid::now_v7().simple()));
    let log = QueryLog::new(
        "spilly",
        config(json!({
            "brokers": DEAD_BROKER, "spill": dir, "queue_size": 100000,
            "kafka": {"queue.buffering.max.messages": 100}
        })),
    )
    .unwrap();
    let mut made = 0;
    for id in 1..=4 {
        made += drive(&log, id, 250);
    }
    let d = log.diagnostics();
    assert_eq!(
        d["spill_file"],
        json!(dir.join("spilly.spill").display().to_string())
    );
    log.shutdown(Duration::from_millis(300));
    let s = log.stats();
    assert_eq!((s.delivered, s.failed, s.dropped), (0, 0, 0), "{s:?}");
    assert_eq!(s.queued, made, "everything waits in the spill file: {s:?}");
    assert!(s.spilled >= made, "{s:?}");
    drop(log);
    let mut spill = Spill::open(&dir, "spilly", u64::MAX).unwrap();
    assert_eq!(spill.unsent(), made);
    // Every record of every session is in the file. (Those librdkafka held when the filter
    // stopped were purged into it after the rest, so only their set is checked.)
    let mut seqs: std::collections::HashMap<u64, Vec<u64>> = std::collections::HashMap::new();
    while let Some((key, payload)) = spill.peek().unwrap() {
        let r: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(r["session"]["id"], key);
        let seq = r["session"]["seq"].as_u64().unwrap();
        seqs.entry(u64::from(key)).or_default().push(seq);
        spill.consume().unwrap();
    }
    for (id, got) in seqs.iter_mut() {
        got.sort_unstable();
        assert_eq!(*got, (1..=252).collect::<Vec<u64>>(), "session {id}");
    }
    assert_eq!(seqs.len(), 4);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn excluded_sessions_and_login_failures() {
    let log = QueryLog::new(
        "scoped",
        config(json!({
            "brokers": DEAD_BROKER, "exclude_users": ["monitor"], "clients": ["10.0.0.0/8"]
        })),
    )
    .unwrap();
    let mut s = log.new_session(&client(1, "monitor"));
    s.on_command(&mut Command::Ping.into());
    s.on_close(None);
    assert_eq!(log.stats().queued + log.stats().delivered, 0);
    let failure = |user, addr: &str| LoginFailure {
        session_id: switchyard_api::SessionId(9),
        user,
        client_addr: addr.parse().unwrap(),
        db: None,
        service: "app",
        listener: "app-rw",
        error_code: 1045,
        sqlstate: "28000",
        message: "Access denied",
    };
    log.on_login_failed(&failure("monitor", "10.0.0.1:1"));
    log.on_login_failed(&failure("eve", "192.168.0.1:1"));
    assert_eq!(log.stats().queued, 0);
    log.on_login_failed(&failure("eve", "10.0.0.1:1"));
    let s = log.stats();
    assert_eq!(s.queued + s.failed + s.dropped + s.delivered, 1);
    let d = log.diagnostics();
    for key in [
        "topic",
        "brokers",
        "instance",
        "delivered",
        "failed",
        "dropped",
        "spilled",
        "resent",
        "shrunk",
        "queued",
        "queued_bytes",
    ] {
        assert!(d.get(key).is_some(), "{key}");
    }
    assert_eq!(d["spill_file"], serde_json::Value::Null);
    log.shutdown(Duration::from_millis(100));
}

#[test]
fn a_record_too_large_for_librdkafka_is_cut_not_lost() {
    // librdkafka checks a record's size as it takes it, broker or no broker.
    let log = QueryLog::new(
        "cut",
        config(json!({
            "brokers": DEAD_BROKER, "max_text_bytes": 100_000,
            "kafka": {"message.max.bytes": 10_000}
        })),
    )
    .unwrap();
    let mut s = log.new_session(&client(1, "app"));
    let sql = format!("SELECT 1 FROM t_{}", "x".repeat(50_000));
    s.on_command(&mut Command::Query(sql.as_bytes()).into());
    s.on_close(None);
    let until = Instant::now() + Duration::from_secs(5);
    while log.stats().shrunk == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = log.stats();
    assert_eq!(s.shrunk, 1, "{s:?}");
    // Cut, it waits in librdkafka for a broker like any other record.
    assert_eq!((s.failed, s.dropped, s.queued), (0, 0, 3), "{s:?}");
    assert_eq!(log.diagnostics()["shrunk"], 1);
    log.shutdown(Duration::from_millis(200));
    let s = log.stats();
    assert_eq!(s.failed + s.dropped, 3, "{s:?}");
    assert_eq!(log.diagnostics()["queued_bytes"], 0);
}

#[test]
fn new_refuses_bad_options() {
    let err = QueryLog::new("bad", config(json!({"match": "("})))
        .err()
        .unwrap();
    assert!(err.starts_with("match: "), "{err}");
    let err = QueryLog::new("bad", config(json!({"kafka": {"acks": "sometimes"}})))
        .err()
        .unwrap();
    assert!(err.starts_with("kafka: "), "{err}");
}
