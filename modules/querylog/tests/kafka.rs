//! The audit feed against the real local Kafka broker (127.0.0.1:9092, started by
//! `bash scripts/kafka.sh up`). Each test creates its own topic and deletes it at the end.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use switchyard_api::{
    ClientInfo, Filter, FilterSession, LoginFailure, ReplyInfo, RouteReason, RoutedTo, Server,
    ServerRole, ServerStats,
};
use switchyard_protocol::reply::{ReplyError, ReplySummary};
use switchyard_protocol::Command;
use switchyard_querylog::{QueryLog, QueryLogConfig};

mod common;

use common::{broker, Topic};

/// Reading a topic back.
impl Topic {
    /// Every record on the topic, waiting until there are `n` (or `timeout` passes). With
    /// `exact`, a record past `n` fails the test.
    fn consume(&self, n: usize, timeout: Duration, exact: bool) -> Vec<(String, Value)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker())
            .set("group.id", format!("{}-reader", self.name))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.name, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).expect("assign");
        let until = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < until {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap();
                    let value: Value =
                        serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
                    out.push((key, value));
                }
                Some(Err(e)) => panic!("consumer error: {e}"),
                None => {}
            }
        }
        // Anything past `n` would be a duplicate: give it a moment to show up.
        if exact {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
                panic!("more records than expected: {:?}", m.payload_view::<str>());
            }
        }
        out
    }
}

fn config(options: Value) -> QueryLogConfig {
    serde_json::from_value(options).unwrap()
}

fn client(id: u32) -> ClientInfo {
    ClientInfo {
        session_id: switchyard_api::SessionId(id),
        user: "app".into(),
        client_addr: "10.1.2.3:51544".parse().unwrap(),
        db: Some("shop".into()),
        program: Some("itest".into()),
        tls: false,
        service: Arc::from("app"),
        listener: Arc::from("app-rw"),
    }
}

fn ok(rows: u64, affected: u64) -> ReplySummary {
    ReplySummary {
        rows,
        affected_rows: affected,
        status: 2,
        result_sets: 1,
        bytes: 100,
        ..ReplySummary::default()
    }
}

fn info<'a>(
    summary: &'a ReplySummary,
    server: Option<&'a Server>,
    stmt: Option<u32>,
) -> ReplyInfo<'a> {
    ReplyInfo {
        summary,
        proxy_error: None,
        server,
        routed_to: RoutedTo::Primary,
        reason: Some(RouteReason::Write),
        started: Instant::now(),
        first_byte: Some(Duration::from_micros(50)),
        last_byte: Duration::from_micros(80),
        statement_id: stmt.map(switchyard_api::StmtId),
    }
}

fn step(s: &mut dyn FilterSession, cmd: Command<'_>, reply: &ReplyInfo<'_>) {
    s.on_command(&mut cmd.into());
    s.on_reply(reply);
}

/// Runs `n` statements through a session of `log`; returns how many records it made.
fn simple_session(log: &QueryLog, id: u32, n: u32) -> u64 {
    let mut s = log.new_session(&client(id));
    let summary = ok(1, 0);
    for i in 0..n {
        let sql = format!("SELECT c FROM t WHERE id = {i}");
        step(
            &mut *s,
            Command::Query(sql.as_bytes()),
            &info(&summary, None, None),
        );
    }
    s.on_close(None);
    u64::from(n) + 2
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_record_per_event_in_order_per_session() {
    let topic = Topic::create("events");
    let log = QueryLog::new(
        "itest",
        config(json!({"brokers": broker(), "topic": topic.name, "instance": "itest-proxy"})),
    )
    .unwrap();
    let mut db1 = Server::new(
        "db1",
        "127.0.0.1:3307",
        ServerRole::Primary,
        Arc::new(ServerStats::default()),
    );
    db1.server_id = Some(1);

    let mut a = log.new_session(&client(101));
    let mut b = log.new_session(&client(202));
    let done = ok(0, 0);
    step(
        &mut *a,
        Command::Query(b"USE crm"),
        &info(&done, Some(&db1), None),
    );
    step(
        &mut *b,
        Command::Query(b"INSERT INTO t VALUES (1, 'x')"),
        &info(&ok(0, 1), Some(&db1), None),
    );
    let prepared = ReplySummary::default();
    step(
        &mut *a,
        Command::StmtPrepare(b"SELECT * FROM t WHERE id = ?"),
        &info(&prepared, Some(&db1), Some(1)),
    );
    step(
        &mut *a,
        Command::StmtExecute {
            stmt_id: 1,
            flags: 0,
        },
        &info(&ok(3, 0), Some(&db1), Some(1)),
    );
    step(
        &mut *a,
        Command::StmtClose { stmt_id: 1 },
        &info(&prepared, None, Some(1)),
    );
    let failed = ReplySummary {
        error: Some(ReplyError {
            code: 1146,
            sqlstate: *b"42S02",
        }),
        ..ReplySummary::default()
    };
    step(
        &mut *b,
        Command::Query(b"SELECT * FROM missing"),
        &info(&failed, Some(&db1), None),
    );
    step(
        &mut *b,
        Command::Query(b"SET PASSWORD = PASSWORD('hunter2')"),
        &info(&done, Some(&db1), None),
    );
    log.on_login_failed(&LoginFailure {
        session_id: switchyard_api::SessionId(303),
        user: "mallory",
        client_addr: "10.6.6.6:4000".parse().unwrap(),
        db: None,
        service: "app",
        listener: "app-rw",
        error_code: 1045,
        sqlstate: "28000",
        message: "Access denied for user 'mallory'",
    });
    b.on_close(Some("idle timeout"));
    a.on_close(None);
    // a: connect, USE, prepare, execute, close, disconnect; b: connect, 3 queries, disconnect.
    let total = 6 + 5 + 1;

    log.shutdown(Duration::from_secs(15));
    let s = log.stats();
    assert_eq!(
        (s.delivered, s.failed, s.dropped, s.queued),
        (total, 0, 0, 0),
        "{s:?}"
    );

    let records = topic.consume(total as usize, Duration::from_secs(20), true);
    assert_eq!(records.len(), total as usize);
    let ids: HashSet<&str> = records
        .iter()
        .map(|(_, r)| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), records.len(), "event ids are unique");
    let mut by_session: HashMap<String, Vec<&Value>> = HashMap::new();
    for (key, r) in &records {
        assert_eq!(
            key,
            &r["session"]["id"].to_string(),
            "the key is the session id"
        );
        assert_eq!(r["schema"], "switchyard.audit.v1");
        assert_eq!(r["proxy"]["instance"], "itest-proxy");
        by_session.entry(key.clone()).or_default().push(r);
    }
    for (key, recs) in &by_session {
        let seqs: Vec<u64> = recs
            .iter()
            .map(|r| r["session"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=recs.len() as u64).collect::<Vec<_>>(),
            "session {key} in order"
        );
    }
    let events = |k: &str| -> Vec<String> {
        by_session[k]
            .iter()
            .map(|r| {
                let e = r["event"].as_str().unwrap();
                match r["query"]["command"].as_str() {
                    Some(c) => format!("{e}:{c}"),
                    None => e.to_string(),
                }
            })
            .collect()
    };
    assert_eq!(
        events("101"),
        [
            "connect",
            "query:COM_QUERY",
            "query:COM_STMT_PREPARE",
            "query:COM_STMT_EXECUTE",
            "query:COM_STMT_CLOSE",
            "disconnect"
        ]
    );
    assert_eq!(
        events("202"),
        [
            "connect",
            "query:COM_QUERY",
            "query:COM_QUERY",
            "query:COM_QUERY",
            "disconnect"
        ]
    );
    assert_eq!(events("303"), ["login_failed"]);

    let a = &by_session["101"];
    assert_eq!(a[2]["db"], "crm", "USE moved the session");
    assert_eq!(a[3]["query"]["text"], "SELECT * FROM t WHERE id = ?");
    assert_eq!(a[3]["query"]["statement_id"], 1);
    assert_eq!(a[3]["result"]["rows_sent"], 3);
    assert_eq!(
        a[3]["backend"],
        json!({"name": "db1", "addr": "127.0.0.1:3307", "server_id": 1})
    );
    let b = &by_session["202"];
    assert_eq!(b[1]["result"]["rows_affected"], 1);
    assert_eq!(b[2]["result"]["error_code"], 1146);
    assert_eq!(b[3]["query"]["text"], "SET PASSWORD = PASSWORD('***')");
    assert_eq!(b[4]["reason"], "idle timeout");
    assert_eq!(by_session["303"][0]["result"]["error_code"], 1045);
    assert!(!records
        .iter()
        .any(|(_, r)| r.to_string().contains("hunter2")));
}

#[test]
fn a_spill_file_from_an_earlier_run_is_sent_at_start() {
    let topic = Topic::create("respill");
    let dir =
        std::env::temp_dir().join(format!("querylog-itest-{}", uuid::Uuid::now_v7().simple()));
    // First run: no broker at all; everything ends in the spill file.
    let dead = QueryLog::new(
        "respill",
        config(
            json!({"brokers": "127.0.0.1:1", "topic": topic.name, "spill": dir,
                      "kafka": {"queue.buffering.max.messages": 20}}),
        ),
    )
    .unwrap();
    let made = simple_session(&dead, 1, 100) + simple_session(&dead, 2, 50);
    dead.shutdown(Duration::from_millis(300));
    assert_eq!(dead.stats().queued, made, "{:?}", dead.stats());
    drop(dead);
    let file = dir.join("respill.spill");
    assert!(std::fs::metadata(&file).unwrap().len() > 0);

    // Second run: the broker is there; the file is sent, then emptied.
    let log = QueryLog::new(
        "respill",
        config(json!({"brokers": broker(), "topic": topic.name, "spill": dir})),
    )
    .unwrap();
    wait_for("the spilled records", Duration::from_secs(30), || {
        log.stats().delivered == made
    });
    wait_for(
        "the spill file to be emptied",
        Duration::from_secs(5),
        || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(1) == 0,
    );
    let s = log.stats();
    assert_eq!(
        (s.resent, s.failed, s.dropped, s.queued),
        (made, 0, 0, 0),
        "{s:?}"
    );
    // New records go straight to Kafka once the file is empty.
    let more = simple_session(&log, 3, 10);
    log.shutdown(Duration::from_secs(10));
    assert_eq!(log.stats().delivered, made + more);

    let records = topic.consume((made + more) as usize, Duration::from_secs(20), true);
    let mut seqs: HashMap<String, Vec<u64>> = HashMap::new();
    for (key, r) in &records {
        seqs.entry(key.clone())
            .or_default()
            .push(r["session"]["seq"].as_u64().unwrap());
    }
    for (key, n) in [("1", 102), ("2", 52), ("3", 12)] {
        let mut got = seqs.remove(key).unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (1..=n).collect::<Vec<u64>>(), "session {key}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn failed_deliveries_are_spilled_and_sent_again() {
    // The topic does not exist yet: deliveries time out and go to the spill file.
    let topic = Topic::named("late");
    let dir =
        std::env::temp_dir().join(format!("querylog-itest-{}", uuid::Uuid::now_v7().simple()));
    let log = QueryLog::new(
        "late",
        config(
            json!({"brokers": broker(), "topic": topic.name, "spill": dir,
                      "kafka": {"message.timeout.ms": 1000}}),
        ),
    )
    .unwrap();
    let made = simple_session(&log, 7, 40);
    wait_for("records to be spilled", Duration::from_secs(20), || {
        log.stats().spilled >= made
    });
    assert_eq!(log.stats().delivered, 0);
    topic.make();
    wait_for(
        "the spilled records to be delivered",
        Duration::from_secs(60),
        || log.stats().delivered == made,
    );
    log.shutdown(Duration::from_secs(10));
    let s = log.stats();
    assert_eq!(
        (s.delivered, s.failed, s.dropped, s.queued),
        (made, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.resent > 0, "{s:?}");
    // A record whose delivery timed out just as the topic appeared may have arrived twice: the
    // feed is at-least-once.
    let records = topic.consume(made as usize, Duration::from_secs(20), false);
    let mut seen = HashSet::new();
    let mut seqs: Vec<u64> = records
        .iter()
        .filter(|(_, r)| seen.insert(r["event_id"].as_str().unwrap().to_string()))
        .map(|(_, r)| r["session"]["seq"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=made).collect::<Vec<u64>>());
    std::fs::remove_dir_all(&dir).ok();
}

/// Text that compression cannot shrink (hex of a pseudo-random sequence), so that its size
/// on the wire is its size.
fn incompressible(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdef"[(x & 15) as usize])
        })
        .collect()
}

#[test]
fn records_too_large_for_the_topic_are_cut_and_sent_again() {
    // The topic takes at most 20,000 bytes per batch: librdkafka's own limit (1 MB) lets the
    // large record through, and the broker refuses it in the delivery report.
    let topic = Topic::named("toolarge");
    topic.make_with(&[("max.message.bytes", "20000")]);
    let log = QueryLog::new(
        "toolarge",
        config(json!({"brokers": broker(), "topic": topic.name, "max_text_bytes": 200_000})),
    )
    .unwrap();
    let mut s = log.new_session(&client(31));
    let summary = ok(1, 0);
    // An identifier, so that the digest text is as long as the text.
    let sql = format!("SELECT 1 FROM t_{}", incompressible(60_000));
    step(
        &mut *s,
        Command::Query(sql.as_bytes()),
        &info(&summary, None, None),
    );
    step(
        &mut *s,
        Command::Query(b"SELECT 2"),
        &info(&summary, None, None),
    );
    s.on_close(None);
    wait_for("every record to settle", Duration::from_secs(60), || {
        let s = log.stats();
        s.queued == 0 && s.delivered + s.failed == 4
    });
    log.shutdown(Duration::from_secs(10));
    let st = log.stats();
    assert_eq!((st.delivered, st.failed, st.dropped), (4, 0, 0), "{st:?}");
    assert!(st.shrunk >= 1, "{st:?}");
    let records = topic.consume(4, Duration::from_secs(20), false);
    let big = records
        .iter()
        .map(|(_, r)| r)
        .find(|r| r["session"]["seq"] == 2)
        .expect("the large record arrived");
    assert_eq!(big["shrunk"], 1, "{big}");
    assert_eq!(big["query"]["truncated"], true);
    let text = big["query"]["text"].as_str().unwrap();
    assert!(sql.starts_with(text.split('…').next().unwrap()));
    assert!(text.contains(" more bytes]"), "{text}");
    // The small ones went as they were (those batched with the large one may have been sent
    // again, unchanged but for their `shrunk` mark).
    let small = records
        .iter()
        .map(|(_, r)| r)
        .find(|r| r["session"]["seq"] == 3)
        .expect("the small record arrived");
    assert_eq!(small["query"]["text"], "SELECT 2");
}

#[test]
fn records_too_large_for_librdkafka_are_cut_before_they_leave() {
    let topic = Topic::create("toolarge-local");
    let log = QueryLog::new(
        "toolarge-local",
        config(
            json!({"brokers": broker(), "topic": topic.name, "max_text_bytes": 200_000,
                      "kafka": {"message.max.bytes": 10_000}}),
        ),
    )
    .unwrap();
    let mut s = log.new_session(&client(32));
    let summary = ok(1, 0);
    let sql = format!("SELECT 1 FROM t_{}", incompressible(50_000));
    step(
        &mut *s,
        Command::Query(sql.as_bytes()),
        &info(&summary, None, None),
    );
    s.on_close(None);
    wait_for("every record to settle", Duration::from_secs(60), || {
        let s = log.stats();
        s.queued == 0 && s.delivered + s.failed == 3
    });
    log.shutdown(Duration::from_secs(10));
    let st = log.stats();
    assert_eq!((st.delivered, st.failed, st.shrunk), (3, 0, 1), "{st:?}");
    let records = topic.consume(3, Duration::from_secs(20), true);
    let big = &records[1].1;
    assert_eq!(big["shrunk"], 1);
    assert_eq!(big["query"]["truncated"], true);
    assert!(records[0].1.get("shrunk").is_none());
}
