use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use switchyard_api::{
    ClientInfo, FilterSession, LoginFailure, ReplyInfo, RouteReason, RoutedTo, Server, ServerRole,
    ServerStats,
};
use switchyard_protocol::reply::{ReplyError, ReplySummary};
use switchyard_protocol::Command;

use super::{login_failed_record, QueryLogSession, Shared};
use crate::config::QueryLogConfig;
use crate::feed::{Counters, Feed, Item};
use crate::scope::Scope;

fn setup(options: Value) -> (Arc<Shared>, Receiver<Item>) {
    let config: QueryLogConfig = serde_json::from_value(options).unwrap();
    config.check().unwrap();
    let (feed, rx) = Feed::new(1000, 1 << 20, Arc::new(Counters::default()));
    let shared = Shared {
        instance: "proxy-a".into(),
        canonical_only: config.canonical_only,
        max_text_bytes: config.max_text_bytes,
        scope: Scope::new(&config).unwrap(),
        feed,
    };
    (Arc::new(shared), rx)
}

fn client() -> ClientInfo {
    ClientInfo {
        session_id: switchyard_api::SessionId(8812345),
        user: "app".into(),
        client_addr: "10.1.2.3:51544".parse().unwrap(),
        db: Some("shop".into()),
        program: Some("mysql-connector-j".into()),
        tls: false,
        service: Arc::from("app"),
        listener: Arc::from("app-rw"),
    }
}

fn session(options: Value) -> (QueryLogSession, Receiver<Item>) {
    let (shared, rx) = setup(options);
    (QueryLogSession::new(shared, &client()), rx)
}

/// Every record queued so far, parsed, with its key checked.
fn drain(rx: &Receiver<Item>) -> Vec<Value> {
    rx.try_iter()
        .map(|item| {
            assert_eq!(item.key, 8812345);
            serde_json::from_slice(&item.payload).unwrap()
        })
        .collect()
}

fn server() -> Server {
    let mut s = Server::new(
        "db2",
        "127.0.0.1:3308",
        ServerRole::Replica,
        Arc::new(ServerStats::default()),
    );
    s.server_id = Some(2);
    s
}

/// Status flags: autocommit on, no transaction.
const AUTOCOMMIT: u16 = 2;

fn ok_rows(rows: u64) -> ReplySummary {
    ReplySummary {
        rows,
        status: AUTOCOMMIT,
        result_sets: 1,
        column_sets: 1,
        bytes: 4096,
        ..ReplySummary::default()
    }
}

fn ok_affected(n: u64) -> ReplySummary {
    ReplySummary {
        affected_rows: n,
        status: AUTOCOMMIT,
        result_sets: 1,
        bytes: 11,
        ..ReplySummary::default()
    }
}

fn err(code: u16, state: &[u8; 5]) -> ReplySummary {
    ReplySummary {
        error: Some(ReplyError {
            code,
            sqlstate: *state,
        }),
        bytes: 40,
        ..ReplySummary::default()
    }
}

fn reply<'a>(summary: &'a ReplySummary, server: Option<&'a Server>) -> ReplyInfo<'a> {
    ReplyInfo {
        summary,
        proxy_error: None,
        server,
        routed_to: RoutedTo::Replica,
        reason: Some(RouteReason::Read),
        started: Instant::now() - Duration::from_micros(1544),
        first_byte: Some(Duration::from_micros(900)),
        last_byte: Duration::from_micros(1544),
        statement_id: None,
    }
}

/// Runs one command and its reply; returns the records it produced.
fn run(
    s: &mut QueryLogSession,
    rx: &Receiver<Item>,
    cmd: Command<'_>,
    r: &ReplyInfo<'_>,
) -> Vec<Value> {
    s.on_command(&mut cmd.into());
    s.on_reply(r);
    drain(rx)
}

fn query(s: &mut QueryLogSession, rx: &Receiver<Item>, sql: &str) -> Value {
    let summary = ok_rows(1);
    let mut recs = run(
        s,
        rx,
        Command::Query(sql.as_bytes()),
        &reply(&summary, None),
    );
    assert_eq!(recs.len(), 1, "{sql}");
    recs.remove(0)
}

#[test]
fn connect_record() {
    let (_s, rx) = session(json!({}));
    let recs = drain(&rx);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r["schema"], "switchyard.audit.v1");
    assert_eq!(r["event"], "connect");
    assert_eq!(r["event_id"].as_str().unwrap().len(), 36);
    assert_eq!(
        r["proxy"],
        json!({"instance": "proxy-a", "service": "app", "listener": "app-rw"})
    );
    assert_eq!(
        r["session"],
        json!({"id": 8812345, "seq": 1, "in_txn": null, "autocommit": null})
    );
    assert_eq!(
        r["client"],
        json!({"user": "app", "ip": "10.1.2.3", "port": 51544, "tls": false,
               "program": "mysql-connector-j"})
    );
    assert_eq!(r["db"], "shop");
    for absent in [
        "query",
        "route",
        "backend",
        "result",
        "duration_us",
        "ttfb_us",
        "reason",
    ] {
        assert!(r.get(absent).is_none(), "{absent} in a connect record");
    }
}

#[test]
fn query_record_has_every_field() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let srv = server();
    let summary = ok_rows(10);
    let before = SystemTime::now();
    let recs = run(
        &mut s,
        &rx,
        Command::Query(b"SELECT * FROM t WHERE id = 42"),
        &reply(&summary, Some(&srv)),
    );
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r["event"], "query");
    assert_eq!(r["duration_us"], 1544);
    assert_eq!(r["ttfb_us"], 900);
    assert_eq!(r["session"]["seq"], 2);
    assert_eq!(r["session"]["in_txn"], false);
    assert_eq!(r["session"]["autocommit"], true);
    assert_eq!(r["db"], "shop");
    let q = &r["query"];
    assert_eq!(q["command"], "COM_QUERY");
    assert_eq!(q["text"], "SELECT * FROM t WHERE id = 42");
    assert_eq!(q["truncated"], false);
    assert!(q.get("invalid_utf8").is_none());
    assert!(q.get("statement_id").is_none());
    assert_eq!(q["digest_text"], "SELECT * FROM t WHERE id = ?");
    let fp = switchyard_sql::fingerprint("SELECT * FROM t WHERE id = ?");
    assert_eq!(q["digest"], format!("{fp:016x}"));
    assert_eq!(
        r["route"],
        json!({"target": "replica", "reason": "autocommit_read"})
    );
    assert_eq!(
        r["backend"],
        json!({"name": "db2", "addr": "127.0.0.1:3308", "server_id": 2})
    );
    assert_eq!(
        r["result"],
        json!({"ok": true, "error_code": 0, "sqlstate": "00000", "rows_sent": 10,
               "rows_affected": null, "warnings": 0, "reply_bytes": 4096})
    );
    // ts is when the command arrived: 1544 µs before the reply, to the microsecond.
    let ts = humantime::parse_rfc3339(r["ts"].as_str().unwrap()).unwrap();
    assert!(ts <= before && before.duration_since(ts).unwrap() < Duration::from_secs(1));
    assert!(r["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["ts"].as_str().unwrap().len(), 27);
}

#[test]
fn writes_errors_and_proxy_answers() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let srv = server();
    let summary = ok_affected(3);
    let r = &run(
        &mut s,
        &rx,
        Command::Query(b"UPDATE t SET a = 1"),
        &reply(&summary, Some(&srv)),
    )[0];
    assert_eq!(r["result"]["rows_sent"], 0);
    assert_eq!(r["result"]["rows_affected"], 3);

    // A result set without rows has no affected count either.
    let summary = ok_rows(0);
    let r = &run(
        &mut s,
        &rx,
        Command::Query(b"SELECT a FROM t WHERE false"),
        &reply(&summary, Some(&srv)),
    )[0];
    assert_eq!(r["result"]["rows_sent"], 0);
    assert_eq!(r["result"]["rows_affected"], json!(null));

    let summary = err(1146, b"42S02");
    let r = &run(
        &mut s,
        &rx,
        Command::Query(b"SELECT * FROM nope"),
        &reply(&summary, Some(&srv)),
    )[0];
    assert_eq!(r["result"]["ok"], false);
    assert_eq!(r["result"]["error_code"], 1146);
    assert_eq!(r["result"]["sqlstate"], "42S02");
    assert!(r["result"].get("message").is_none());
    // An error carries no status flags: the last known ones stay.
    assert_eq!(r["session"]["autocommit"], true);

    let summary = err(2003, b"HY000");
    let mut info = reply(&summary, None);
    info.proxy_error = Some("No server can take the command");
    info.routed_to = RoutedTo::Proxy;
    info.reason = None;
    info.first_byte = None;
    let r = &run(&mut s, &rx, Command::Query(b"SELECT 1"), &info)[0];
    assert_eq!(r["backend"], Value::Null);
    assert_eq!(r["route"], json!({"target": "proxy", "reason": null}));
    assert_eq!(r["ttfb_us"], Value::Null);
    assert_eq!(r["result"]["message"], "No server can take the command");
    assert_eq!(r["session"]["seq"], 5);
}

#[test]
fn transaction_flags_follow_the_replies() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let mut summary = ok_affected(0);
    summary.status = 1; // in a transaction, autocommit off
    let r = &run(
        &mut s,
        &rx,
        Command::Query(b"BEGIN"),
        &reply(&summary, None),
    )[0];
    assert_eq!(r["session"]["in_txn"], true);
    assert_eq!(r["session"]["autocommit"], false);
}

#[test]
fn disconnect_and_unanswered_commands() {
    let (mut s, rx) = session(json!({}));
    s.on_command(&mut Command::Query(b"SELECT SLEEP(100)").into());
    s.on_close(Some("killed by an operator"));
    s.on_close(None);
    let recs = drain(&rx);
    assert_eq!(recs.len(), 3);
    let q = &recs[1];
    assert_eq!(q["event"], "query");
    assert_eq!(q["query"]["text"], "SELECT SLEEP(100)");
    assert_eq!(q["result"], Value::Null);
    assert_eq!(q["route"], Value::Null);
    assert_eq!(q["backend"], Value::Null);
    assert_eq!(q["duration_us"], Value::Null);
    let d = &recs[2];
    assert_eq!(d["event"], "disconnect");
    assert_eq!(d["reason"], "killed by an operator");
    assert_eq!(d["session"]["seq"], 3);
    assert!(d["duration_us"].is_u64());
    assert!(d.get("query").is_none());

    // A client that quits: no record of COM_QUIT, no reason.
    let (mut s, rx) = session(json!({}));
    s.on_command(&mut Command::Quit.into());
    s.on_close(None);
    let recs = drain(&rx);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["event"], "disconnect");
    assert!(recs[1].get("reason").is_none());
}

#[test]
fn login_failed_record_shape() {
    let f = LoginFailure {
        session_id: switchyard_api::SessionId(77),
        user: "mallory",
        client_addr: "[2001:db8::5]:40000".parse::<SocketAddr>().unwrap(),
        db: Some("hr"),
        service: "app",
        listener: "app-rw",
        error_code: 1045,
        sqlstate: "28000",
        message: "Access denied for user 'mallory'",
    };
    let r: Value = serde_json::from_slice(&login_failed_record("proxy-a", &f)).unwrap();
    assert_eq!(r["event"], "login_failed");
    assert_eq!(r["session"]["id"], 77);
    assert_eq!(r["session"]["seq"], 1);
    assert_eq!(
        r["client"],
        json!({"user": "mallory", "ip": "2001:db8::5", "port": 40000, "tls": null, "program": null})
    );
    assert_eq!(r["db"], "hr");
    assert_eq!(
        r["result"],
        json!({"ok": false, "error_code": 1045, "sqlstate": "28000",
               "message": "Access denied for user 'mallory'"})
    );
    assert!(r.get("query").is_none());
}

#[test]
fn passwords_are_redacted_in_text_but_digest_is_intact() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let r = query(&mut s, &rx, "CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2'");
    assert_eq!(
        r["query"]["text"],
        "CREATE USER 'bob'@'%' IDENTIFIED BY '***'"
    );
    assert_eq!(
        r["query"]["digest_text"],
        "CREATE USER ? @ ? IDENTIFIED BY ?"
    );
    assert!(!r.to_string().contains("hunter2"));
}

#[test]
fn no_sql_mode_reading_leaks_a_password_into_the_digest() {
    for options in [json!({}), json!({"canonical_only": true})] {
        let (mut s, rx) = session(options);
        drain(&rx);
        // With NO_BACKSLASH_ESCAPES, `hunter2` is the argument of PASSWORD(); with escapes it
        // is a word between two strings, and the digest keeps words.
        let r = query(&mut s, &rx, r"SELECT 'a\' , PASSWORD('hunter2') -- '");
        assert!(!r.to_string().contains("hunter2"), "{r}");
        let r = query(
            &mut s,
            &rx,
            "PREPARE s FROM 'ALTER USER u IDENTIFIED BY ''hunter2'''",
        );
        assert!(!r.to_string().contains("hunter2"), "{r}");
        assert_eq!(r["query"]["digest_text"], "PREPARE s FROM ?");
    }
}

#[test]
fn text_is_capped_on_a_char_boundary() {
    let (mut s, rx) = session(json!({"max_text_bytes": 10}));
    drain(&rx);
    // "SELECT 'é" is 10 bytes: the é (2 bytes) would straddle byte 10 if one more came first.
    let r = query(&mut s, &rx, "SELECT 'aé' FROM t");
    assert_eq!(r["query"]["text"], "SELECT 'a");
    assert_eq!(r["query"]["truncated"], true);
    assert!(r["query"]["digest_text"].as_str().unwrap().len() <= 10);
    let r = query(&mut s, &rx, "SELECT 1");
    assert_eq!(r["query"]["text"], "SELECT 1");
    assert_eq!(r["query"]["truncated"], false);
    let r = query(&mut s, &rx, "SELECT 'é");
    assert_eq!(r["query"]["text"], "SELECT 'é");
    assert_eq!(r["query"]["truncated"], false);
}

#[test]
fn redaction_happens_before_capping() {
    let (mut s, rx) = session(json!({"max_text_bytes": 40}));
    drain(&rx);
    let r = query(
        &mut s,
        &rx,
        "ALTER USER u IDENTIFIED BY 'a-very-long-secret-password-indeed'",
    );
    assert_eq!(r["query"]["text"], "ALTER USER u IDENTIFIED BY '***'");
    assert_eq!(r["query"]["truncated"], false);
}

#[test]
fn invalid_utf8_is_replaced_and_flagged() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let summary = ok_rows(0);
    let r = &run(
        &mut s,
        &rx,
        Command::Query(b"SELECT 'caf\xe9' FROM t"),
        &reply(&summary, None),
    )[0];
    assert_eq!(r["query"]["text"], "SELECT 'caf\u{fffd}' FROM t");
    assert_eq!(r["query"]["invalid_utf8"], true);
    assert_eq!(r["query"]["truncated"], false);
    assert_eq!(r["query"]["digest_text"], "SELECT ? FROM t");

    // Capped and invalid at once: still within the cap, still flagged.
    let (mut s, rx) = session(json!({"max_text_bytes": 8}));
    drain(&rx);
    let r = &run(
        &mut s,
        &rx,
        Command::Query(b"SELECT \xff\xfe\xfd\xfc\xfb"),
        &reply(&summary, None),
    )[0];
    let text = r["query"]["text"].as_str().unwrap();
    assert!(text.len() <= 8, "{text}");
    assert_eq!(r["query"]["truncated"], true);
    assert_eq!(r["query"]["invalid_utf8"], true);
}

#[test]
fn canonical_only_writes_the_digest() {
    let (mut s, rx) = session(json!({"canonical_only": true}));
    drain(&rx);
    let r = query(&mut s, &rx, "SELECT * FROM t WHERE name = 'alice'");
    assert_eq!(r["query"]["text"], "SELECT * FROM t WHERE name = ?");
    assert_eq!(r["query"]["digest_text"], r["query"]["text"]);
    assert!(!r.to_string().contains("alice"));
}

#[test]
fn match_and_exclude_apply_per_statement() {
    let (mut s, rx) = session(json!({"match": "(?i)^(delete|use)", "exclude": "audit_"}));
    assert_eq!(drain(&rx).len(), 1, "connect is always recorded");
    let summary = ok_rows(1);
    assert!(run(
        &mut s,
        &rx,
        Command::Query(b"SELECT 1"),
        &reply(&summary, None)
    )
    .is_empty());
    assert!(run(&mut s, &rx, Command::Ping, &reply(&summary, None)).is_empty());
    assert!(run(
        &mut s,
        &rx,
        Command::Query(b"DELETE FROM audit_x"),
        &reply(&summary, None)
    )
    .is_empty());
    let r = &run(
        &mut s,
        &rx,
        Command::Query(b"delete from t"),
        &reply(&summary, None),
    )[0];
    // Records that were left out do not take a number.
    assert_eq!(r["session"]["seq"], 2);
    s.on_close(None);
    assert_eq!(drain(&rx)[0]["event"], "disconnect");
}

#[test]
fn excluded_statements_still_move_the_database() {
    let (mut s, rx) = session(json!({"exclude": "^USE"}));
    drain(&rx);
    let summary = ok_affected(0);
    assert!(run(
        &mut s,
        &rx,
        Command::Query(b"USE crm"),
        &reply(&summary, None)
    )
    .is_empty());
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], "crm");
}

#[test]
fn database_tracking() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let ok = ok_affected(0);
    let failed = err(1049, b"42000");
    // The USE record itself shows the database it ran in.
    let r = &run(&mut s, &rx, Command::Query(b"USE crm"), &reply(&ok, None))[0];
    assert_eq!(r["db"], "shop");
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], "crm");
    run(
        &mut s,
        &rx,
        Command::Query(b"/* x */ use `we``ird db`;"),
        &reply(&ok, None),
    );
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], "we`ird db");
    run(
        &mut s,
        &rx,
        Command::Query(b"USE nosuchdb"),
        &reply(&failed, None),
    );
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], "we`ird db");
    let r = &run(&mut s, &rx, Command::InitDb(b"billing"), &reply(&ok, None))[0];
    assert_eq!(r["query"]["command"], "COM_INIT_DB");
    assert_eq!(r["query"]["text"], "billing");
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], "billing");
    run(&mut s, &rx, Command::InitDb(b"nope"), &reply(&failed, None));
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], "billing");
    // Not a USE statement.
    run(
        &mut s,
        &rx,
        Command::Query(b"USE a; SELECT 1"),
        &reply(&ok, None),
    );
    run(
        &mut s,
        &rx,
        Command::Query(b"SELECT 'USE x'"),
        &reply(&ok, None),
    );
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], "billing");

    let mut c = client();
    c.db = None;
    let (shared, rx) = setup(json!({}));
    let _s = QueryLogSession::new(shared, &c);
    assert_eq!(drain(&rx)[0]["db"], Value::Null);
}

#[test]
fn prepared_statements_carry_their_text() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let prepared = ReplySummary {
        status: AUTOCOMMIT,
        result_sets: 0,
        bytes: 60,
        ..ReplySummary::default()
    };
    let mut info = reply(&prepared, None);
    info.statement_id = Some(switchyard_api::StmtId(5));
    let r = &run(
        &mut s,
        &rx,
        Command::StmtPrepare(b"SELECT c FROM t WHERE id = ?"),
        &info,
    )[0];
    assert_eq!(r["query"]["command"], "COM_STMT_PREPARE");
    assert_eq!(r["query"]["statement_id"], 5);
    assert_eq!(r["query"]["text"], "SELECT c FROM t WHERE id = ?");

    let rows = ok_rows(1);
    let mut info = reply(&rows, None);
    info.statement_id = Some(switchyard_api::StmtId(5));
    let r = &run(
        &mut s,
        &rx,
        Command::StmtExecute {
            stmt_id: 5,
            flags: 0,
        },
        &info,
    )[0];
    assert_eq!(r["query"]["command"], "COM_STMT_EXECUTE");
    assert_eq!(r["query"]["statement_id"], 5);
    assert_eq!(r["query"]["text"], "SELECT c FROM t WHERE id = ?");
    assert_eq!(r["query"]["digest_text"], "SELECT c FROM t WHERE id = ?");

    for cmd in [
        Command::StmtFetch {
            stmt_id: 5,
            rows: 10,
        },
        Command::StmtReset { stmt_id: 5 },
        Command::StmtSendLongData { stmt_id: 5 },
    ] {
        let r = &run(&mut s, &rx, cmd, &info)[0];
        assert_eq!(
            r["query"]["text"], "SELECT c FROM t WHERE id = ?",
            "{cmd:?}"
        );
    }

    let none = ReplySummary::default();
    let r = &run(
        &mut s,
        &rx,
        Command::StmtClose { stmt_id: 5 },
        &reply(&none, None),
    )[0];
    assert_eq!(r["query"]["command"], "COM_STMT_CLOSE");
    assert_eq!(r["query"]["text"], "SELECT c FROM t WHERE id = ?");
    // Gone after the close.
    let r = &run(
        &mut s,
        &rx,
        Command::StmtExecute {
            stmt_id: 5,
            flags: 0,
        },
        &info,
    )[0];
    assert_eq!(r["query"]["text"], Value::Null);
    assert_eq!(r["query"]["digest"], Value::Null);
    assert_eq!(r["query"]["statement_id"], 5);

    // A failed prepare remembers nothing.
    let failed = err(1064, b"42000");
    let mut info = reply(&failed, None);
    info.statement_id = Some(switchyard_api::StmtId(6));
    run(&mut s, &rx, Command::StmtPrepare(b"SELEC oops"), &info);
    let r = &run(
        &mut s,
        &rx,
        Command::StmtExecute {
            stmt_id: 6,
            flags: 0,
        },
        &reply(&rows, None),
    )[0];
    assert_eq!(r["query"]["text"], Value::Null);
}

#[test]
fn a_reset_forgets_prepared_statements() {
    let (mut s, rx) = session(json!({}));
    let mut info_summary = ok_affected(0);
    info_summary.result_sets = 0;
    let mut info = reply(&info_summary, None);
    info.statement_id = Some(switchyard_api::StmtId(1));
    run(&mut s, &rx, Command::StmtPrepare(b"SELECT ?"), &info);
    let ok = ok_affected(0);
    run(&mut s, &rx, Command::ResetConnection, &reply(&ok, None));
    let r = &run(
        &mut s,
        &rx,
        Command::StmtExecute {
            stmt_id: 1,
            flags: 0,
        },
        &reply(&ok, None),
    )[0];
    assert_eq!(r["query"]["text"], Value::Null);
}

#[test]
fn excluded_prepares_exclude_their_executions() {
    let (mut s, rx) = session(json!({"exclude": "secret_table"}));
    drain(&rx);
    let summary = ReplySummary::default();
    let mut info = reply(&summary, None);
    info.statement_id = Some(switchyard_api::StmtId(3));
    assert!(run(
        &mut s,
        &rx,
        Command::StmtPrepare(b"SELECT * FROM secret_table"),
        &info
    )
    .is_empty());
    assert!(run(
        &mut s,
        &rx,
        Command::StmtExecute {
            stmt_id: 3,
            flags: 0
        },
        &info
    )
    .is_empty());
    assert!(run(&mut s, &rx, Command::StmtClose { stmt_id: 3 }, &info).is_empty());
    info.statement_id = Some(switchyard_api::StmtId(4));
    assert_eq!(
        run(&mut s, &rx, Command::StmtPrepare(b"SELECT 1"), &info).len(),
        1
    );
}

#[test]
fn other_commands_have_no_text() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let ok = ok_affected(0);
    for (cmd, name) in [
        (Command::Ping, "COM_PING"),
        (Command::FieldList(b"t"), "COM_FIELD_LIST"),
        (Command::Statistics, "COM_STATISTICS"),
        (Command::ProcessKill(9), "COM_PROCESS_KILL"),
        (Command::SetOption(1), "COM_SET_OPTION"),
        (Command::Other(0x1d), "COM_OTHER"),
    ] {
        let r = &run(&mut s, &rx, cmd, &reply(&ok, None))[0];
        assert_eq!(r["query"]["command"], name);
        assert_eq!(r["query"]["text"], Value::Null);
        assert_eq!(r["query"]["digest_text"], Value::Null);
        assert_eq!(r["query"]["truncated"], false);
    }
}

/// The size every record stays under when the client pads each field it chooses: the text
/// caps (default 4096 bytes, twice: text and digest) plus the name, program and message caps,
/// each JSON-escaped at worst six bytes a byte, plus the fixed fields.
const PADDED_RECORD_MAX: usize = 6 * (2 * 4096 + 2 * 512 + 1024 + 512 + 4 * 24) + 2048;

#[test]
fn client_chosen_names_are_capped_with_a_marker() {
    let (shared, rx) = setup(json!({}));
    let mut c = client();
    c.user = "u".repeat(70_000);
    c.db = Some("d".repeat(1 << 20));
    // Control characters: each becomes a six-byte JSON escape.
    c.program = Some("\u{1}".repeat(65_000));
    let mut s = QueryLogSession::new(shared, &c);
    let mut records = Vec::new();
    let summary = ok_rows(1);
    let long = format!("SELECT '{}'", "\u{2}".repeat(1 << 20));
    for sql in ["SELECT 1", long.as_str()] {
        s.on_command(&mut Command::Query(sql.as_bytes()).into());
        s.on_reply(&reply(&summary, None));
    }
    s.on_close(None);
    for item in rx.try_iter() {
        assert!(
            item.payload.len() < PADDED_RECORD_MAX,
            "{}",
            item.payload.len()
        );
        records.push(serde_json::from_slice::<Value>(&item.payload).unwrap());
    }
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(
            r["client"]["user"],
            format!("{}…[69488 more bytes]", "u".repeat(512))
        );
        assert_eq!(
            r["db"],
            format!("{}…[{} more bytes]", "d".repeat(512), (1 << 20) - 512)
        );
        assert_eq!(
            r["client"]["program"],
            format!("{}…[63976 more bytes]", "\u{1}".repeat(1024))
        );
    }
    assert_eq!(records[2]["query"]["truncated"], true);
}

#[test]
fn names_the_server_accepts_are_never_cut() {
    let (shared, rx) = setup(json!({}));
    let mut c = client();
    // 128 four-byte characters: more than a MariaDB user name may have.
    c.user = "𝔘".repeat(128);
    c.db = Some("é".repeat(64));
    c.program = Some("p".repeat(1024));
    let s = QueryLogSession::new(shared, &c);
    let r = &drain_any(&rx)[0];
    assert_eq!(r["client"]["user"], c.user);
    assert_eq!(r["db"], json!(c.db));
    assert_eq!(r["client"]["program"], json!(c.program));
    drop(s);
}

/// Every record queued so far, parsed, whatever its key.
fn drain_any(rx: &Receiver<Item>) -> Vec<Value> {
    rx.try_iter()
        .map(|item| serde_json::from_slice(&item.payload).unwrap())
        .collect()
}

#[test]
fn a_padded_failed_login_is_capped() {
    let db = "x".repeat(1 << 20);
    let user = "é".repeat(40_000);
    let message = format!("Unknown database '{db}'");
    let f = LoginFailure {
        session_id: switchyard_api::SessionId(78),
        user: &user,
        client_addr: "10.0.0.1:4000".parse::<SocketAddr>().unwrap(),
        db: Some(&db),
        service: "app",
        listener: "app-rw",
        error_code: 1049,
        sqlstate: "42000",
        message: &message,
    };
    let json = login_failed_record("proxy-a", &f);
    assert!(json.len() < 4096, "{}", json.len());
    let r: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        r["client"]["user"],
        format!("{}…[79488 more bytes]", "é".repeat(256))
    );
    assert!(r["db"].as_str().unwrap().ends_with("…[1048064 more bytes]"));
    let m = r["result"]["message"].as_str().unwrap();
    assert!(m.starts_with("Unknown database 'xxx"), "{m}");
    assert!(m.ends_with(&format!("…[{} more bytes]", message.len() - 512)));
}

#[test]
fn padded_databases_and_messages_of_statements_are_capped() {
    let (mut s, rx) = session(json!({}));
    drain(&rx);
    let ok = ok_affected(0);
    let name = "n".repeat(100_000);
    run(
        &mut s,
        &rx,
        Command::InitDb(name.as_bytes()),
        &reply(&ok, None),
    );
    let db = query(&mut s, &rx, "SELECT 1")["db"].clone();
    assert_eq!(db, format!("{}…[99488 more bytes]", "n".repeat(512)));
    let use_sql = format!("USE `{name}`");
    run(
        &mut s,
        &rx,
        Command::Query(use_sql.as_bytes()),
        &reply(&ok, None),
    );
    assert_eq!(query(&mut s, &rx, "SELECT 1")["db"], db);
    // Not UTF-8: replaced, and still capped.
    let mut latin = vec![0xe9u8; 3000];
    latin.extend_from_slice(b"tail");
    run(&mut s, &rx, Command::InitDb(&latin), &reply(&ok, None));
    let db = query(&mut s, &rx, "SELECT 1")["db"].clone();
    let db = db.as_str().unwrap();
    assert!(db.ends_with("…[2492 more bytes]"), "{db}");
    assert!(db.len() < 512 * 3 + 32);

    let summary = err(1049, b"42000");
    let message = format!("Unknown database '{name}'");
    let mut info = reply(&summary, None);
    info.proxy_error = Some(&message);
    let r = &run(&mut s, &rx, Command::Query(b"SELECT 1"), &info)[0];
    let m = r["result"]["message"].as_str().unwrap();
    assert!(
        m.ends_with(&format!("…[{} more bytes]", message.len() - 512)),
        "{m}"
    );
}
