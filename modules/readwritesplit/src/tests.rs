//! `plan()` tests without sockets: one per row of the routing table, then the options.

use super::*;
use std::time::Duration;
use switchyard_api::{
    Reply, RouteError, RouteHint, RoutePlan, RouteReason, RouteTarget, Server, ServerName,
    ServerRole, ServerSet, ServerStats, SqlDialect, Statement,
};
use switchyard_protocol::caps::{
    SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS, SERVER_STATUS_IN_TRANS_READONLY,
};
use switchyard_protocol::reply::{ReplyError, ReplySummary};
use switchyard_protocol::Command;

const AUTOCOMMIT: u16 = SERVER_STATUS_AUTOCOMMIT;
const IN_TRX: u16 = SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS_IN_TRANS;
const IN_RO_TRX: u16 = IN_TRX | SERVER_STATUS_IN_TRANS_READONLY;

fn set(roles: &[(&str, ServerRole)]) -> ServerSet {
    ServerSet {
        servers: roles
            .iter()
            .map(|(name, role)| {
                Arc::new(Server::new(
                    name,
                    "127.0.0.1:1",
                    *role,
                    Arc::new(ServerStats::default()),
                ))
            })
            .collect(),
    }
}

/// db1 primary, db2 and db3 replicas.
fn cluster() -> ServerSet {
    set(&[
        ("db1", ServerRole::Primary),
        ("db2", ServerRole::Replica),
        ("db3", ServerRole::Replica),
    ])
}

/// Replaces a server of `servers` with a changed copy, as a new snapshot would.
fn edit(servers: &mut ServerSet, name: &str, f: impl FnOnce(&mut Server)) {
    let slot = servers
        .servers
        .iter_mut()
        .find(|s| s.name.as_str() == name)
        .unwrap();
    let mut s = Server::clone(slot);
    f(&mut s);
    *slot = Arc::new(s);
}

fn info() -> SessionInfo {
    SessionInfo {
        id: switchyard_api::SessionId(1),
        user: "app".into(),
        client_addr: "127.0.0.1:5000".parse().unwrap(),
        db: None,
    }
}

/// `sql` with a filter's routing hint.
fn hinted_query(sql: &str, hint: RouteHint) -> Statement<'_> {
    Statement::from(Command::Query(sql.as_bytes())).with_hint(Some(hint))
}

/// A session of a router with `config`, connected to `servers`, with the session's dialect as
/// the runtime follows it.
struct Fixture {
    router: ReadWriteSplit,
    session: Box<dyn RouterSession>,
    servers: ServerSet,
    dialect: SqlDialect,
}

impl Fixture {
    fn new(config: ReadWriteSplitConfig, servers: ServerSet) -> Self {
        let router = ReadWriteSplit::new(config);
        let mut session = router.new_session(&info());
        session.connect(&servers);
        Fixture {
            router,
            session,
            servers,
            dialect: SqlDialect::default(),
        }
    }

    fn default() -> Self {
        Fixture::new(ReadWriteSplitConfig::default(), cluster())
    }

    fn plan(&mut self, cmd: Command<'_>) -> RoutePlan {
        self.session
            .plan(&mut self.dialect.statement(cmd), &self.servers)
    }

    fn q(&mut self, sql: &str) -> RoutePlan {
        self.plan(Command::Query(sql.as_bytes()))
    }

    /// Where `sql` goes, in short, with the reason.
    fn route(&mut self, sql: &str) -> (String, RouteReason) {
        let p = self.q(sql);
        (target(&p), p.reason)
    }

    /// Plans `sql` and answers it from the planned server (the primary for `All`) with
    /// `status`.
    fn run(&mut self, sql: &str, status: u16) -> RoutePlan {
        let mut stmt = self.dialect.statement(Command::Query(sql.as_bytes()));
        let p = self.session.plan(&mut stmt, &self.servers);
        let server = match &p.target {
            RouteTarget::Server(s) => s.name.clone(),
            _ => ServerName::new("db1"),
        };
        self.reply(&server, status);
        let summary = ReplySummary {
            status,
            ..ReplySummary::default()
        };
        self.dialect.on_reply(&mut stmt, &summary);
        p
    }

    fn reply(&mut self, server: &ServerName, status: u16) {
        self.reply_with(server, status, None, None);
    }

    fn reply_with(
        &mut self,
        server: &ServerName,
        status: u16,
        prepared_id: Option<u32>,
        last_gtid: Option<&str>,
    ) {
        let summary = ReplySummary {
            status,
            ..ReplySummary::default()
        };
        self.session.on_reply(&Reply {
            server,
            summary: &summary,
            prepared_id: prepared_id.map(switchyard_api::StmtId),
            last_gtid,
        });
    }

    fn reply_error(&mut self, server: &ServerName) {
        let summary = ReplySummary {
            error: Some(ReplyError {
                code: 1064,
                sqlstate: *b"42000",
            }),
            ..ReplySummary::default()
        };
        self.session.on_reply(&Reply {
            server,
            summary: &summary,
            prepared_id: None,
            last_gtid: None,
        });
    }

    fn closed(&mut self, server: &str) -> Option<RouteError> {
        self.session
            .on_backend_closed(&ServerName::new(server), "connection reset")
    }
}

fn name(s: &str) -> ServerName {
    ServerName::new(s)
}

fn target(p: &RoutePlan) -> String {
    match &p.target {
        RouteTarget::Server(s) => s.name.to_string(),
        RouteTarget::All { dedup: true } => "all+dedup".into(),
        RouteTarget::All { dedup: false } => "all".into(),
        RouteTarget::Error(e) => format!("error {}", e.code),
        RouteTarget::Close(e) => format!("close {}", e.code),
    }
}

fn is_replica(t: &str) -> bool {
    t == "db2" || t == "db3"
}

fn message(p: &RoutePlan) -> &str {
    match &p.target {
        RouteTarget::Error(e) | RouteTarget::Close(e) => &e.message,
        _ => panic!("not an error: {p:?}"),
    }
}

// ---- The routing table, row by row.

#[test]
fn writes_ddl_and_unknown_statements_go_to_the_primary() {
    let mut f = Fixture::default();
    for sql in [
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1 WHERE id = 2",
        "DELETE FROM t",
        "REPLACE INTO t VALUES (1)",
        "CREATE TABLE t (a INT)",
        "ALTER TABLE t ADD b INT",
        "LOCK TABLES t WRITE",
        "UNLOCK TABLES",
        "GRANT SELECT ON *.* TO u",
        "FROBNICATE everything",
        "SAVEPOINT a",
        "",
    ] {
        assert_eq!(f.route(sql), ("db1".into(), RouteReason::Write), "{sql}");
        assert!(!f.q(sql).retryable, "{sql}");
    }
    let p = f.plan(Command::Other(0x20));
    assert_eq!((target(&p), p.reason), ("db1".into(), RouteReason::Write));
}

#[test]
fn autocommit_reads_go_to_a_replica_and_may_be_retried() {
    let mut f = Fixture::default();
    for sql in [
        "SELECT c FROM sbtest1 WHERE id=1",
        "SHOW TABLES",
        "EXPLAIN SELECT 1",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "SELECT @a",
    ] {
        let p = f.q(sql);
        assert!(is_replica(&target(&p)), "{sql}: {p:?}");
        assert_eq!(p.reason, RouteReason::Read);
        assert!(p.retryable);
        assert!(p.wait_gtid.is_none());
    }
    let p = f.plan(Command::FieldList(b"t\0"));
    assert!(is_replica(&target(&p)), "{p:?}");
}

#[test]
fn read_write_transaction_stays_on_the_primary() {
    let mut f = Fixture::default();
    let p = f.run("BEGIN", IN_TRX);
    assert_eq!(
        (target(&p), p.reason),
        ("db1".into(), RouteReason::Transaction)
    );
    assert_eq!(
        f.route("SELECT 1"),
        ("db1".into(), RouteReason::Transaction)
    );
    let p = f.q("SELECT * FROM t /* switchyard: route=replica */");
    assert_eq!(
        (target(&p), p.reason, p.retryable),
        ("db1".into(), RouteReason::Transaction, false)
    );
    assert_eq!(
        f.route("SAVEPOINT a"),
        ("db1".into(), RouteReason::Transaction)
    );
    // Session commands still go everywhere.
    assert_eq!(f.route("SET NAMES utf8mb4").0, "all+dedup");
    f.reply(&name("db1"), IN_TRX);
    assert_eq!(f.route("SELECT 1").0, "db1");
    assert_eq!(f.run("COMMIT", AUTOCOMMIT).reason, RouteReason::Transaction);
    assert!(is_replica(&f.route("SELECT 1").0));
    // START TRANSACTION and the flags set when the reply comes.
    assert_eq!(f.route("START TRANSACTION").0, "db1");
    f.reply(&name("db1"), IN_TRX);
    assert_eq!(f.route("SELECT 1").0, "db1");
    f.run("ROLLBACK", AUTOCOMMIT);
    assert!(is_replica(&f.route("SELECT 1").0));
}

#[test]
fn autocommit_off_keeps_everything_on_the_primary() {
    let mut f = Fixture::default();
    let p = f.run("SET autocommit=0", 0);
    assert_eq!(
        (target(&p), p.reason),
        ("all+dedup".into(), RouteReason::SessionCommand)
    );
    assert_eq!(
        f.route("SELECT 1"),
        ("db1".into(), RouteReason::Transaction)
    );
    f.run("SELECT * FROM t", SERVER_STATUS_IN_TRANS);
    assert_eq!(
        f.route("SELECT 1"),
        ("db1".into(), RouteReason::Transaction)
    );
    f.run("COMMIT", 0);
    assert_eq!(
        f.route("SELECT 1"),
        ("db1".into(), RouteReason::Transaction)
    );
    // A read-only transaction with autocommit off stays on the primary too.
    assert_eq!(f.route("START TRANSACTION READ ONLY").0, "db1");
    assert_eq!(target(&f.run("SET autocommit=1", AUTOCOMMIT)), "all+dedup");
    assert!(is_replica(&f.route("SELECT 1").0));
}

#[test]
fn read_only_transaction_uses_one_replica_to_the_end() {
    let mut f = Fixture::default();
    let p = f.q("START TRANSACTION READ ONLY");
    let replica = target(&p);
    assert!(is_replica(&replica), "{p:?}");
    assert_eq!(p.reason, RouteReason::ReadOnlyTransaction);
    f.reply(&name(&replica), IN_RO_TRX);
    // Make the other replica the better choice: the transaction must not move.
    let other = if replica == "db2" { "db3" } else { "db2" };
    f.servers.get(&replica).unwrap().stats.operation_started();
    for sql in [
        "SELECT 1",
        "SELECT * FROM t",
        "UPDATE t SET a=1",
        "SHOW WARNINGS",
    ] {
        assert_eq!(
            f.route(sql),
            (replica.clone(), RouteReason::ReadOnlyTransaction),
            "{sql}"
        );
    }
    // A session command answered by the primary says nothing of the replica's transaction.
    assert_eq!(target(&f.run("SET @a = 1", AUTOCOMMIT)), "all");
    assert_eq!(f.route("SELECT 1").0, replica);
    let p = f.run("COMMIT", AUTOCOMMIT);
    assert_eq!(
        (target(&p), p.reason),
        (replica.clone(), RouteReason::ReadOnlyTransaction)
    );
    assert_eq!(f.route("SELECT 1"), (other.to_string(), RouteReason::Read));
}

#[test]
fn read_only_transaction_without_replicas_runs_on_the_primary() {
    let servers = set(&[("db1", ServerRole::Primary), ("db2", ServerRole::Down)]);
    let config = ReadWriteSplitConfig {
        primary_accepts_reads: false,
        ..ReadWriteSplitConfig::default()
    };
    let mut f = Fixture::new(config, servers);
    let p = f.run("START TRANSACTION READ ONLY", IN_RO_TRX);
    assert_eq!(
        (target(&p), p.reason),
        ("db1".into(), RouteReason::ReadOnlyTransaction)
    );
    assert_eq!(f.route("SELECT 1").0, "db1");
    assert_eq!(f.route("CREATE TABLE t (a INT)").0, "db1");
}

#[test]
fn statement_ending_a_read_only_transaction_leaves_its_replica_alone() {
    let mut f = Fixture::default();
    let replica = target(&f.run("START TRANSACTION READ ONLY", IN_RO_TRX));
    // BEGIN commits the read-only transaction implicitly; it goes to the primary.
    assert_eq!(
        f.run("BEGIN", IN_TRX).reason,
        RouteReason::Transaction,
        "BEGIN"
    );
    assert_eq!(f.route("SELECT 1").0, "db1");
    f.run("COMMIT", AUTOCOMMIT);
    // The replica still holds the old snapshot: autocommit reads avoid it.
    for _ in 0..4 {
        let t = f.route("SELECT 1").0;
        assert!(is_replica(&t) && t != replica, "{t}");
    }
    // DDL in a read-only transaction goes to the primary as well.
    f.run("START TRANSACTION READ ONLY", IN_RO_TRX);
    assert_eq!(f.route("DROP TABLE t"), ("db1".into(), RouteReason::Write));
}

#[test]
fn locking_reads_go_to_the_primary() {
    let mut f = Fixture::default();
    for sql in [
        "SELECT * FROM t WHERE id = 1 FOR UPDATE",
        "SELECT * FROM t FOR SHARE",
        "SELECT * FROM t LOCK IN SHARE MODE",
    ] {
        assert_eq!(
            f.route(sql),
            ("db1".into(), RouteReason::LockingRead),
            "{sql}"
        );
    }
}

#[test]
fn primary_only_functions_and_statements() {
    let mut f = Fixture::default();
    for sql in [
        "SELECT LAST_INSERT_ID()",
        "SELECT @@identity",
        "SELECT GET_LOCK('a', 1)",
        "SELECT RELEASE_LOCK('a')",
        "CALL p()",
        "SELECT NEXTVAL(s)",
        "SELECT NEXT VALUE FOR s",
        "SELECT 1; SELECT 2",
        "LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
        "SELECT * FROM t INTO OUTFILE '/tmp/x'",
        "XA START 'x'",
        "SET GLOBAL max_connections = 10",
    ] {
        assert_eq!(
            f.route(sql),
            ("db1".into(), RouteReason::PrimaryOnly),
            "{sql}"
        );
    }
    // SET GLOBAL is server state, not session state: the session may still read anywhere.
    assert!(is_replica(&f.route("SELECT 1").0));
}

#[test]
fn reads_of_temporary_tables_go_to_the_primary() {
    let mut f = Fixture::default();
    assert_eq!(
        f.route("CREATE TEMPORARY TABLE tmp (a INT)"),
        ("db1".into(), RouteReason::Write)
    );
    assert_eq!(
        f.route("SELECT * FROM tmp WHERE a = 1"),
        ("db1".into(), RouteReason::TempTable)
    );
    assert_eq!(
        f.route("SELECT * FROM t JOIN `TMP` USING (a)"),
        ("db1".into(), RouteReason::TempTable)
    );
    let p = f.plan(Command::FieldList(b"tmp\0"));
    assert_eq!(
        (target(&p), p.reason),
        ("db1".into(), RouteReason::TempTable)
    );
    assert!(is_replica(&f.route("SELECT * FROM t").0));
    assert!(is_replica(&f.route("SELECT 'tmp'").0));
    assert_eq!(f.route("DROP TEMPORARY TABLE tmp").0, "db1");
    assert!(is_replica(&f.route("SELECT * FROM tmp").0));
}

#[test]
fn session_commands_go_everywhere_deduplicated_when_order_does_not_matter() {
    let mut f = Fixture::default();
    for (sql, expected) in [
        ("SET autocommit=1", "all+dedup"),
        ("SET NAMES utf8mb4", "all+dedup"),
        ("USE shop", "all+dedup"),
        ("SET SESSION sql_mode = 'ANSI'", "all+dedup"),
        ("SET @@session.time_zone = '+00:00'", "all+dedup"),
        ("SET @a = 1", "all"),
        ("SET @a = @a + 1", "all"),
        ("SET sql_mode = CONCAT(@@sql_mode, ',ANSI')", "all"),
        ("SET time_zone = @@global.time_zone", "all"),
        ("SELECT @a := 1", "all"),
        ("SELECT c INTO @c FROM t WHERE id = 1", "all"),
        ("PREPARE s FROM 'SELECT 1'", "all"),
        ("DEALLOCATE PREPARE s", "all"),
    ] {
        let p = f.q(sql);
        assert_eq!(
            (target(&p), p.reason),
            (expected.to_string(), RouteReason::SessionCommand),
            "{sql}"
        );
    }
    for cmd in [Command::InitDb(b"shop"), Command::SetOption(1)] {
        let p = f.plan(cmd);
        assert_eq!(target(&p), "all+dedup");
    }
    // Inside a read-write transaction too.
    f.run("BEGIN", IN_TRX);
    assert_eq!(f.route("SET autocommit=1").0, "all+dedup");
    assert_eq!(f.route("USE shop").0, "all+dedup");
    assert_eq!(f.route("SELECT @a := 2").0, "all");
}

#[test]
fn user_variables_set_on_the_primary_only_keep_their_readers_there() {
    let mut f = Fixture::default();
    assert_eq!(
        f.route("SELECT LAST_INSERT_ID() INTO @id"),
        ("db1".into(), RouteReason::PrimaryOnly)
    );
    assert_eq!(
        f.route("SELECT @id"),
        ("db1".into(), RouteReason::PrimaryOnly)
    );
    assert!(is_replica(&f.route("SELECT 1").0));

    let mut f = Fixture::default();
    assert_eq!(f.route("SET @id = LAST_INSERT_ID()").0, "db1");
    assert_eq!(f.route("SELECT * FROM t WHERE id = @id").0, "db1");
    assert!(is_replica(&f.route("SELECT 1").0));
}

#[test]
fn session_variables_a_stored_program_may_have_set_are_read_on_the_primary() {
    let mut f = Fixture::default();
    // A write pins the user variables only (a trigger's `SET @x`).
    assert_eq!(f.route("INSERT INTO t VALUES (1)").0, "db1");
    assert!(is_replica(&f.route("SELECT @@sort_buffer_size").0));
    assert_eq!(f.route("SELECT @x").0, "db1");
    // A stored function may `SET @@sort_buffer_size` (MariaDB's main.ps_11bugs).
    assert_eq!(f.route("SELECT f1(2)").0, "db1");
    assert_eq!(
        f.route("SELECT CONCAT(@@sort_buffer_size)"),
        ("db1".into(), RouteReason::PrimaryOnly)
    );
    assert_eq!(f.route("SELECT @@session.sql_mode").0, "db1");
    assert!(is_replica(&f.route("SELECT @@global.max_connections").0));
    assert!(is_replica(&f.route("SELECT 1").0));
}

#[test]
fn session_command_in_a_multi_statement_pins_the_session_to_the_primary() {
    let mut f = Fixture::default();
    assert_eq!(
        f.route("SET NAMES latin1; SELECT 1"),
        ("db1".into(), RouteReason::PrimaryOnly)
    );
    assert_eq!(
        f.route("SELECT 1"),
        ("db1".into(), RouteReason::PrimaryOnly)
    );
    assert_eq!(f.route("SET NAMES utf8mb4").0, "all+dedup");
}

#[test]
fn found_rows_and_warnings_follow_the_previous_statement() {
    let mut f = Fixture::default();
    let replica = target(&f.run("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", AUTOCOMMIT));
    assert!(is_replica(&replica));
    for sql in [
        "SELECT FOUND_ROWS()",
        "SHOW WARNINGS",
        "SHOW ERRORS",
        "SELECT @@warning_count",
    ] {
        assert_eq!(
            f.route(sql),
            (replica.clone(), RouteReason::Previous),
            "{sql}"
        );
    }
    f.run("UPDATE t SET a = 1", AUTOCOMMIT);
    assert_eq!(
        f.route("SHOW WARNINGS"),
        ("db1".into(), RouteReason::Previous)
    );
    assert_eq!(
        f.route("SELECT ROW_COUNT()"),
        ("db1".into(), RouteReason::Previous)
    );
    // A session command's reply is the primary's.
    f.reply(&name(&replica), AUTOCOMMIT);
    f.run("SET @x = 1", AUTOCOMMIT);
    assert_eq!(f.route("SHOW WARNINGS").0, "db1");
    // The previous server is gone: an ordinary read.
    f.reply(&name("db3"), AUTOCOMMIT);
    assert!(f.closed("db3").is_none());
    assert_eq!(f.route("SHOW WARNINGS"), ("db2".into(), RouteReason::Read));
}

#[test]
fn ping_goes_where_the_session_was_last() {
    let mut f = Fixture::default();
    let p = f.plan(Command::Ping);
    assert_eq!(
        (target(&p), p.reason),
        ("db1".into(), RouteReason::Previous)
    );
    f.reply(&name("db3"), AUTOCOMMIT);
    assert_eq!(target(&f.plan(Command::Ping)), "db3");
    assert_eq!(target(&f.plan(Command::Statistics)), "db3");
}

#[test]
fn text_prepared_statements_route_like_their_text() {
    let mut f = Fixture::default();
    assert_eq!(
        f.route("PREPARE r FROM 'SELECT * FROM t WHERE id = ?'").0,
        "all"
    );
    assert_eq!(
        f.route("PREPARE w FROM 'UPDATE t SET a = ? WHERE id = ?'")
            .0,
        "all"
    );
    assert_eq!(f.route("PREPARE v FROM @sql").0, "all");
    assert_eq!(f.route("PREPARE s FROM 'SET @x = ?'").0, "all");
    let p = f.q("EXECUTE r USING @id");
    assert!(
        is_replica(&target(&p)) && p.reason == RouteReason::Read,
        "{p:?}"
    );
    assert!(is_replica(&f.route("execute R").0), "names ignore case");
    assert_eq!(
        f.route("EXECUTE w USING @a, @b"),
        ("db1".into(), RouteReason::Write)
    );
    assert_eq!(f.route("EXECUTE v"), ("db1".into(), RouteReason::Write));
    assert_eq!(f.route("EXECUTE nope"), ("db1".into(), RouteReason::Write));
    assert_eq!(
        f.route("EXECUTE s USING @v").0,
        "all",
        "a session command, not deduplicated"
    );
    // Prepared again under the same name: the new text counts.
    f.route("PREPARE r FROM 'DELETE FROM t'");
    assert_eq!(f.route("EXECUTE r").0, "db1");
    f.route("PREPARE r FROM 'SELECT 1'");
    assert!(is_replica(&f.route("EXECUTE r").0));
    f.route("DEALLOCATE PREPARE r");
    assert_eq!(f.route("EXECUTE r").0, "db1");
    // Temporary tables are checked in the prepared text.
    f.route("CREATE TEMPORARY TABLE tmp (a INT)");
    f.route("PREPARE t FROM 'SELECT * FROM tmp'");
    assert_eq!(f.route("EXECUTE t"), ("db1".into(), RouteReason::TempTable));
}

#[test]
fn found_rows_prepared_after_a_read_follows_the_read() {
    // mysqltest --ps-protocol (MariaDB's main.select_found): the prepare of FOUND_ROWS()
    // runs everywhere and answers from the primary; the read before it stays the previous.
    let mut f = Fixture::default();
    let replica = target(&f.run("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", AUTOCOMMIT));
    assert!(is_replica(&replica));
    f.plan(Command::StmtPrepare(b"SELECT FOUND_ROWS()"));
    f.reply_with(&name("db1"), AUTOCOMMIT, Some(3), None);
    let p = f.plan(Command::StmtExecute {
        stmt_id: 3,
        flags: 0,
    });
    assert_eq!((target(&p), p.reason), (replica, RouteReason::Previous));
}

#[test]
fn binary_prepared_statements_route_like_their_text() {
    let mut f = Fixture::default();
    let p = f.plan(Command::StmtPrepare(b"SELECT c FROM t WHERE id = ?"));
    assert_eq!(
        (target(&p), p.reason),
        ("all".into(), RouteReason::SessionCommand)
    );
    f.reply_with(&name("db1"), AUTOCOMMIT, Some(7), None);
    f.plan(Command::StmtPrepare(b"UPDATE t SET a = ? WHERE id = ?"));
    f.reply_with(&name("db1"), AUTOCOMMIT, Some(8), None);
    f.plan(Command::StmtPrepare(b"SELECT broken syntax ("));
    f.reply_error(&name("db1"));
    f.plan(Command::StmtPrepare(b"SELECT c FROM t FOR UPDATE"));
    f.reply_with(&name("db1"), AUTOCOMMIT, Some(9), None);

    let p = f.plan(Command::StmtExecute {
        stmt_id: 7,
        flags: 0,
    });
    assert!(is_replica(&target(&p)) && p.retryable, "{p:?}");
    let p = f.plan(Command::StmtExecute {
        stmt_id: 8,
        flags: 0,
    });
    assert_eq!((target(&p), p.reason), ("db1".into(), RouteReason::Write));
    let p = f.plan(Command::StmtExecute {
        stmt_id: 9,
        flags: 0,
    });
    assert_eq!(p.reason, RouteReason::LockingRead);
    let p = f.plan(Command::StmtExecute {
        stmt_id: 99,
        flags: 0,
    });
    assert_eq!((target(&p), p.reason), ("db1".into(), RouteReason::Write));
    // Long data goes where the execute that follows it will run.
    let long_data =
        |f: &mut Fixture, stmt_id| target(&f.plan(Command::StmtSendLongData { stmt_id }));
    assert!(is_replica(&long_data(&mut f, 7)));
    assert_eq!(long_data(&mut f, 8), "db1");
    // In a transaction, executions follow it.
    f.run("BEGIN", IN_TRX);
    let p = f.plan(Command::StmtExecute {
        stmt_id: 7,
        flags: 0,
    });
    assert_eq!(
        (target(&p), p.reason),
        ("db1".into(), RouteReason::Transaction)
    );
}

#[test]
fn hints_route_outside_transactions() {
    let mut f = Fixture::default();
    assert_eq!(
        f.route("SELECT 1 /* switchyard: route=primary */"),
        ("db1".into(), RouteReason::Hint)
    );
    let p = f.q("UPDATE t SET a = 1 -- switchyard: route=replica");
    assert!(is_replica(&target(&p)) && p.reason == RouteReason::Hint);
    assert!(!p.retryable, "a write is never retried");
    let p = f.q("# switchyard: route=server:db3\nSELECT 1");
    assert_eq!(
        (target(&p), p.reason, p.retryable),
        ("db3".into(), RouteReason::Hint, true)
    );
    // Unknown, down or maintenance servers: the hint is ignored.
    assert_eq!(
        f.route("SELECT 1 /* switchyard: route=server:db9 */").1,
        RouteReason::Read
    );
    edit(&mut f.servers, "db3", |s| s.role = ServerRole::Down);
    assert_eq!(
        f.route("SELECT 1 /* switchyard: route=server:db3 */"),
        ("db2".into(), RouteReason::Read)
    );
    edit(&mut f.servers, "db2", |s| s.maintenance = true);
    assert_eq!(
        f.route("SELECT 1 /* switchyard: route=server:db2 */").1,
        RouteReason::ReadOnPrimary
    );
    // Session commands and transactions do not move.
    assert_eq!(
        f.route("SET NAMES utf8 /* switchyard: route=primary */").0,
        "all+dedup"
    );
    f.run("BEGIN /* switchyard: route=replica */", IN_TRX);
    assert_eq!(
        f.route("SELECT 1 /* switchyard: route=server:db2 */"),
        ("db1".into(), RouteReason::Transaction)
    );
}

#[test]
fn filter_hints_route_like_comment_hints() {
    let mut f = Fixture::default();
    let hinted = |f: &mut Fixture, sql: &str, hint: RouteHint| {
        let p = f.session.plan(&mut hinted_query(sql, hint), &f.servers);
        (target(&p), p.reason)
    };
    assert_eq!(
        hinted(&mut f, "SELECT 1", RouteHint::Primary),
        ("db1".into(), RouteReason::Hint)
    );
    let server = RouteHint::Server(ServerName::new("db3"));
    assert_eq!(
        hinted(&mut f, "SELECT 1", server.clone()),
        ("db3".into(), RouteReason::Hint)
    );
    // The filter's hint replaces a comment hint; the next statement has none.
    assert_eq!(
        hinted(
            &mut f,
            "SELECT 1 /* switchyard: route=primary */",
            server.clone()
        ),
        ("db3".into(), RouteReason::Hint)
    );
    assert_eq!(f.route("SELECT 1").1, RouteReason::Read);
    f.run("BEGIN", IN_TRX);
    assert_eq!(
        hinted(&mut f, "SELECT 1", server),
        ("db1".into(), RouteReason::Transaction)
    );
}

// ---- Servers failing.

fn no_primary() -> ServerSet {
    set(&[
        ("db1", ServerRole::Down),
        ("db2", ServerRole::Replica),
        ("db3", ServerRole::Replica),
    ])
}

fn mode(m: PrimaryFailureMode) -> ReadWriteSplitConfig {
    ReadWriteSplitConfig {
        primary_failure_mode: m,
        ..ReadWriteSplitConfig::default()
    }
}

#[test]
fn connect_goes_to_the_primary() {
    let router = ReadWriteSplit::new(ReadWriteSplitConfig::default());
    let mut s = router.new_session(&info());
    let p = s.connect(&cluster());
    assert_eq!((target(&p), p.reason), ("db1".into(), RouteReason::Write));
    let p = s.connect(&no_primary());
    assert_eq!(target(&p), "close 1105");

    let router = ReadWriteSplit::new(mode(PrimaryFailureMode::FailOnWrite));
    let mut s = router.new_session(&info());
    let p = s.connect(&no_primary());
    assert!(
        is_replica(&target(&p)) && p.reason == RouteReason::Read,
        "{p:?}"
    );
    let p = s.connect(&set(&[("db1", ServerRole::Down)]));
    assert_eq!(target(&p), "close 1105");
    // A draining primary takes no new sessions.
    let mut servers = cluster();
    edit(&mut servers, "db1", |s| s.drain = true);
    let router = ReadWriteSplit::new(ReadWriteSplitConfig::default());
    assert_eq!(
        target(&router.new_session(&info()).connect(&servers)),
        "close 1105"
    );
}

#[test]
fn fail_instantly_closes_the_session_without_a_primary() {
    let mut f = Fixture::default();
    f.servers = no_primary();
    for sql in ["SELECT 1", "UPDATE t SET a = 1", "SET NAMES utf8"] {
        let p = f.q(sql);
        assert_eq!(target(&p), "close 1105", "{sql}");
        assert!(
            message(&p).starts_with("the primary server is lost: 'db1'"),
            "{p:?}"
        );
    }
    let mut f = Fixture::default();
    assert!(f.closed("db2").is_none());
    let e = f.closed("db1").unwrap();
    assert_eq!(e.code, 1105);
    assert!(e.message.starts_with("the primary server is lost"));
}

#[test]
fn fail_on_write_keeps_reads_going() {
    let mut f = Fixture::new(mode(PrimaryFailureMode::FailOnWrite), cluster());
    assert!(f.closed("db1").is_none());
    f.servers = no_primary();
    assert!(is_replica(&f.route("SELECT 1").0));
    assert_eq!(f.route("SET NAMES utf8").0, "all+dedup");
    assert_eq!(
        f.route("UPDATE t SET a = 1"),
        ("close 1105".into(), RouteReason::Unavailable)
    );
    assert_eq!(f.route("BEGIN").0, "close 1105");
    assert_eq!(f.route("SELECT 1 FOR UPDATE").0, "close 1105");
}

#[test]
fn error_on_write_answers_writes_with_read_only_errors() {
    let mut f = Fixture::new(mode(PrimaryFailureMode::ErrorOnWrite), no_primary());
    let p = f.q("INSERT INTO t VALUES (1)");
    match &p.target {
        RouteTarget::Error(e) => {
            assert_eq!((e.code, e.sqlstate), (1290, "HY000"));
            assert!(e.message.contains("--read-only"));
        }
        other => panic!("{other:?}"),
    }
    assert!(is_replica(&f.route("SELECT 1").0));
    // The primary comes back: writes go there again.
    f.servers = cluster();
    assert_eq!(f.route("INSERT INTO t VALUES (1)").0, "db1");
}

#[test]
fn primary_in_maintenance_is_no_primary_except_for_its_open_transaction() {
    let mut f = Fixture::new(mode(PrimaryFailureMode::ErrorOnWrite), cluster());
    f.run("BEGIN", IN_TRX);
    edit(&mut f.servers, "db1", |s| s.maintenance = true);
    assert_eq!(
        f.route("UPDATE t SET a = 1"),
        ("db1".into(), RouteReason::Transaction)
    );
    f.run("COMMIT", AUTOCOMMIT);
    assert_eq!(f.route("UPDATE t SET a = 1").0, "error 1290");
}

#[test]
fn primary_change_moves_a_session_outside_transactions_only() {
    let mut f = Fixture::new(mode(PrimaryFailureMode::FailOnWrite), cluster());
    f.run("UPDATE t SET a = 1", AUTOCOMMIT);
    let switched = set(&[
        ("db1", ServerRole::Replica),
        ("db2", ServerRole::Primary),
        ("db3", ServerRole::Replica),
    ]);
    f.servers = switched.clone();
    assert_eq!(f.route("UPDATE t SET a = 1").0, "db2");
    f.run("BEGIN", IN_TRX);
    f.servers = cluster();
    let p = f.q("UPDATE t SET a = 2");
    assert_eq!(target(&p), "close 1927");
    assert!(
        message(&p).contains("'db2' is no longer the primary"),
        "{p:?}"
    );
}

#[test]
fn losing_the_backend_of_an_open_transaction_ends_the_session() {
    let mut f = Fixture::new(mode(PrimaryFailureMode::FailOnWrite), cluster());
    f.run("BEGIN", IN_TRX);
    let e = f.closed("db1").unwrap();
    assert_eq!((e.code, e.sqlstate), (1927, "70100"));
    let mut f = Fixture::default();
    let replica = target(&f.run("START TRANSACTION READ ONLY", IN_RO_TRX));
    let other = if replica == "db2" { "db3" } else { "db2" };
    assert!(f.closed(other).is_none());
    assert!(f.closed(&replica).is_some());
    // With autocommit off but no transaction started yet, nothing is lost.
    let mut f = Fixture::new(mode(PrimaryFailureMode::FailOnWrite), cluster());
    f.run("SET autocommit = 0", 0);
    assert!(f.closed("db1").is_none());
}

#[test]
fn failed_replicas_are_avoided_for_a_while() {
    let mut f = Fixture::default();
    assert!(f.closed("db2").is_none());
    for _ in 0..3 {
        assert_eq!(f.route("SELECT 1").0, "db3");
    }
    // Its role changes (down, then back): it qualifies again.
    edit(&mut f.servers, "db2", |s| s.role = ServerRole::Down);
    assert_eq!(f.route("SELECT 1").0, "db3");
    edit(&mut f.servers, "db2", |s| s.role = ServerRole::Replica);
    f.servers.get("db3").unwrap().stats.operation_started();
    assert_eq!(f.route("SELECT 1").0, "db2");
    // A reply from it also shows it works.
    assert!(f.closed("db2").is_none());
    assert_eq!(f.route("SELECT 1").0, "db3");
    f.reply(&name("db2"), AUTOCOMMIT);
    assert_eq!(f.route("SELECT 1").0, "db2");
}

#[test]
fn reads_fall_back_to_the_primary_unless_told_not_to() {
    let servers = set(&[("db1", ServerRole::Primary), ("db2", ServerRole::Down)]);
    let mut f = Fixture::new(ReadWriteSplitConfig::default(), servers.clone());
    let p = f.q("SELECT 1");
    assert_eq!(
        (target(&p), p.reason, p.retryable),
        ("db1".into(), RouteReason::ReadOnPrimary, true)
    );
    let config = ReadWriteSplitConfig {
        primary_accepts_reads: false,
        ..ReadWriteSplitConfig::default()
    };
    let mut f = Fixture::new(config, servers);
    let p = f.q("SELECT 1");
    assert_eq!(
        (target(&p), p.reason),
        ("error 1105".into(), RouteReason::Unavailable)
    );
    assert!(message(&p).starts_with("no replica is available for a read"));
    assert_eq!(f.route("UPDATE t SET a = 1").0, "db1");
}

// ---- Replica selection and lag.

#[test]
fn least_current_operations_then_open_then_fewest_connections() {
    let mut f = Fixture::default();
    let stats = |f: &Fixture, n: &str| f.servers.get(n).unwrap().stats.clone();
    stats(&f, "db2").operation_started();
    stats(&f, "db2").operation_started();
    stats(&f, "db3").operation_started();
    assert_eq!(f.route("SELECT 1").0, "db3");
    stats(&f, "db2").operation_finished();
    stats(&f, "db2").operation_finished();
    stats(&f, "db3").operation_finished();
    // A tie: the fewest connections...
    stats(&f, "db2").connection_opened();
    assert_eq!(f.route("SELECT 1").0, "db3");
    // ...unless the session already has a connection to one of them.
    stats(&f, "db3").connection_opened();
    stats(&f, "db3").connection_opened();
    f.reply(&name("db3"), AUTOCOMMIT);
    assert_eq!(f.route("SELECT 1").0, "db3");
    assert!(f.closed("db3").is_none());
    assert_eq!(f.route("SELECT 1").0, "db2");
}

#[test]
fn round_robin_is_shared_by_the_sessions_of_a_service() {
    let config = ReadWriteSplitConfig {
        replica_selection: ReplicaSelection::RoundRobin,
        ..ReadWriteSplitConfig::default()
    };
    let mut f = Fixture::new(config, cluster());
    let mut other = f.router.new_session(&info());
    let mut seen = Vec::new();
    for i in 0..4 {
        let p = if i % 2 == 0 {
            f.q("SELECT 1")
        } else {
            other.plan(&mut Command::Query(b"SELECT 1").into(), &f.servers)
        };
        seen.push(target(&p));
    }
    assert_eq!(seen, ["db2", "db3", "db2", "db3"]);
}

#[test]
fn adaptive_prefers_fast_replicas() {
    let config = ReadWriteSplitConfig {
        replica_selection: ReplicaSelection::Adaptive,
        ..ReadWriteSplitConfig::default()
    };
    let mut f = Fixture::new(config, cluster());
    f.servers.get("db2").unwrap().stats.record_response(100);
    f.servers.get("db3").unwrap().stats.record_response(1000);
    let fast = (0..1000).filter(|_| f.route("SELECT 1").0 == "db2").count();
    // Expected share: 100/101.
    assert!(fast > 950, "{fast}");
}

#[test]
fn maintenance_and_drain() {
    let mut f = Fixture::default();
    edit(&mut f.servers, "db2", |s| s.maintenance = true);
    assert_eq!(f.route("SELECT 1").0, "db3");
    edit(&mut f.servers, "db3", |s| s.drain = true);
    assert_eq!(f.route("SELECT 1").1, RouteReason::ReadOnPrimary);
    // A draining server the session already uses may go on serving it.
    f.reply(&name("db3"), AUTOCOMMIT);
    assert_eq!(f.route("SELECT 1").0, "db3");
}

#[test]
fn replication_lag_limit() {
    let config = ReadWriteSplitConfig {
        max_replication_lag: Some(Duration::from_secs(5)),
        ..ReadWriteSplitConfig::default()
    };
    let mut f = Fixture::new(config, cluster());
    // Unknown lag does not qualify while a limit is set.
    assert_eq!(f.route("SELECT 1").1, RouteReason::ReadOnPrimary);
    edit(&mut f.servers, "db2", |s| s.lag_seconds = Some(10));
    edit(&mut f.servers, "db3", |s| s.lag_seconds = Some(5));
    assert_eq!(f.route("SELECT 1").0, "db3");
    let p = f.run("START TRANSACTION READ ONLY", IN_RO_TRX);
    assert_eq!(target(&p), "db3");
    f.run("COMMIT", AUTOCOMMIT);
    edit(&mut f.servers, "db3", |s| s.lag_seconds = Some(6));
    assert_eq!(f.route("SELECT 1").1, RouteReason::ReadOnPrimary);
    // Without a limit, lag does not matter.
    let mut f = Fixture::default();
    edit(&mut f.servers, "db2", |s| s.lag_seconds = Some(1000));
    edit(&mut f.servers, "db3", |s| s.lag_seconds = None);
    assert!(is_replica(&f.route("SELECT 1").0));
}

#[test]
fn a_filter_hint_sets_the_lag_limit_of_one_statement() {
    let mut f = Fixture::default();
    edit(&mut f.servers, "db2", |s| s.lag_seconds = Some(10));
    edit(&mut f.servers, "db3", |s| s.lag_seconds = Some(3));
    let limit = |secs| RouteHint::MaxReplicationLag(Duration::from_secs(secs));
    let mut hinted = |sql: &str, hint: RouteHint| {
        let p = f.session.plan(&mut hinted_query(sql, hint), &f.servers);
        (target(&p), p.reason)
    };
    assert_eq!(
        hinted("SELECT 1", limit(5)),
        ("db3".into(), RouteReason::Read)
    );
    assert_eq!(hinted("SELECT 1", limit(1)).1, RouteReason::ReadOnPrimary);
    // A comment hint still routes; writes stay on the primary.
    assert_eq!(
        hinted("SELECT 1 /* switchyard: route=server:db2 */", limit(1)),
        ("db2".into(), RouteReason::Hint)
    );
    assert_eq!(hinted("DELETE FROM t", limit(5)).0, "db1");
    // The limit was for those statements only.
    assert_eq!(f.route("SELECT 1").1, RouteReason::Read);
}

// ---- Causal reads.

fn causal(mode: CausalReads) -> ReadWriteSplitConfig {
    ReadWriteSplitConfig {
        causal_reads: mode,
        causal_reads_timeout: Duration::from_millis(250),
        ..ReadWriteSplitConfig::default()
    }
}

fn wait_of(p: &RoutePlan) -> Option<(&str, Duration)> {
    p.wait_gtid.as_ref().map(|w| (&*w.gtid, w.timeout))
}

#[test]
fn causal_local_waits_for_the_last_write_once_per_replica() {
    let mut f = Fixture::new(causal(CausalReads::Local), cluster());
    assert!(f.router.wants_gtid());
    assert_eq!(wait_of(&f.q("SELECT 1")), None, "no write yet");
    f.q("UPDATE t SET a = 1");
    f.reply_with(&name("db1"), AUTOCOMMIT, None, Some("0-1-5"));
    let p = f.q("SELECT 1");
    assert_eq!(wait_of(&p), Some(("0-1-5", Duration::from_millis(250))));
    assert!(p.retryable);
    let fallback = p.wait_gtid.as_ref().and_then(|w| w.fallback.as_ref());
    assert_eq!(
        fallback.map(|s| s.name.as_str()),
        Some("db1"),
        "a late replica: the primary"
    );
    // The wait timed out: the runtime ran the read on the primary.
    f.reply(&name("db1"), AUTOCOMMIT);
    let p = f.q("SELECT 1");
    assert!(p.wait_gtid.is_some());
    // This time the replica answered: it is past the GTID.
    let replica2 = target(&p);
    f.reply(&name(&replica2), AUTOCOMMIT);
    let p = f.q("SELECT 1");
    assert_eq!(target(&p), replica2, "the open replica wins the tie");
    assert_eq!(wait_of(&p), None);
    // A new write: wait again.
    f.q("INSERT INTO t VALUES (1)");
    f.reply_with(&name("db1"), AUTOCOMMIT, None, Some("0-1-6"));
    assert_eq!(wait_of(&f.q("SELECT 1")).unwrap().0, "0-1-6");
    // A replica the monitor saw past the GTID needs no wait.
    f.reply(&name("db1"), AUTOCOMMIT);
    for n in ["db2", "db3"] {
        edit(&mut f.servers, n, |s| s.gtid_pos = Some("0-1-6".into()));
    }
    assert_eq!(wait_of(&f.q("SELECT 1")), None);
    // Read-only transactions wait too.
    for n in ["db2", "db3"] {
        edit(&mut f.servers, n, |s| s.gtid_pos = None);
    }
    f.reply(&name("db1"), AUTOCOMMIT);
    let p = f.q("START TRANSACTION READ ONLY");
    assert!(p.wait_gtid.is_some() && p.reason == RouteReason::ReadOnlyTransaction);
}

#[test]
fn causal_reads_stay_on_the_primary_after_a_write_whose_gtid_was_not_seen() {
    let mut f = Fixture::new(causal(CausalReads::Local), cluster());
    // A write that failed half-way (a non-transactional table keeps what it wrote).
    f.q("INSERT INTO t VALUES (1), (2)");
    f.reply_error(&name("db1"));
    assert_eq!(
        f.route("SELECT * FROM t"),
        ("db1".into(), RouteReason::ReadOnPrimary)
    );
    f.reply(&name("db1"), AUTOCOMMIT);
    // A stored function that wrote, answered by a result set ending in an EOF.
    f.q("SELECT f()");
    f.reply(&name("db1"), AUTOCOMMIT);
    assert_eq!(f.route("SELECT * FROM t").0, "db1");
    f.reply(&name("db1"), AUTOCOMMIT);
    // Reads and session commands leave it as it is; the next write's GTID ends it.
    f.run("SET @a = 1", AUTOCOMMIT);
    assert_eq!(f.route("SELECT * FROM t").0, "db1");
    f.reply(&name("db1"), AUTOCOMMIT);
    f.q("INSERT INTO t VALUES (3)");
    f.reply_with(&name("db1"), AUTOCOMMIT, None, Some("0-1-9"));
    let p = f.q("SELECT * FROM t");
    assert_ne!(target(&p), "db1");
    assert_eq!(wait_of(&p).map(|w| w.0), Some("0-1-9"));
    // Without causal reads nothing of this applies.
    let mut f = Fixture::default();
    f.q("INSERT INTO t VALUES (1)");
    f.reply_error(&name("db1"));
    assert_ne!(f.route("SELECT * FROM t").0, "db1");
}

#[test]
fn causal_fast_reads_only_where_the_write_has_arrived() {
    let config = ReadWriteSplitConfig {
        primary_accepts_reads: false,
        ..causal(CausalReads::Fast)
    };
    let mut f = Fixture::new(config, cluster());
    edit(&mut f.servers, "db2", |s| s.gtid_pos = Some("0-1-3".into()));
    edit(&mut f.servers, "db3", |s| {
        s.gtid_pos = Some("0-1-7,1-2-4".into())
    });
    f.servers.get("db3").unwrap().stats.operation_started();
    assert_eq!(f.route("SELECT 1").0, "db2", "no write yet: by policy");
    f.q("UPDATE t SET a = 1");
    f.reply_with(&name("db1"), AUTOCOMMIT, None, Some("0-1-5"));
    let p = f.q("SELECT 1");
    assert_eq!((target(&p), wait_of(&p)), ("db3".into(), None));
    f.reply_with(&name("db1"), AUTOCOMMIT, None, Some("0-1-9"));
    let p = f.q("SELECT 1");
    assert_eq!(
        (target(&p), p.reason),
        ("db1".into(), RouteReason::ReadOnPrimary)
    );
}

#[test]
fn no_causal_reads_no_gtid() {
    let f = Fixture::default();
    assert!(!f.router.wants_gtid());
    assert_eq!(
        f.router.history_limit(),
        Some(switchyard_api::HistoryLimit {
            commands: 50,
            bytes: 1 << 20
        })
    );
}

// ---- Session state learnt from replies.

#[test]
fn error_replies_leave_the_transaction_state_alone() {
    let mut f = Fixture::default();
    f.run("BEGIN", IN_TRX);
    f.q("SELECT nonsense(");
    f.reply_error(&name("db1"));
    assert_eq!(f.route("SELECT 1").0, "db1");
    // A COM_STMT_PREPARE reply carries no status: no change either.
    f.plan(Command::StmtPrepare(b"SELECT 1"));
    f.reply_with(&name("db1"), 0, Some(1), None);
    assert_eq!(f.route("SELECT 1").0, "db1");
}

#[test]
fn no_backslash_escapes_changes_how_statements_are_read() {
    let mut f = Fixture::default();
    let sql = r"SELECT 'a\'; UPDATE t SET a = 1; -- '";
    assert!(is_replica(&f.route(sql).0));
    f.run("SET sql_mode = 'NO_BACKSLASH_ESCAPES'", AUTOCOMMIT | 0x200);
    assert_eq!(f.route(sql).0, "db1");
}

// ---- Options.

#[test]
fn options_parse_with_defaults() {
    let c: ReadWriteSplitConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(
        c.replica_selection,
        ReplicaSelection::LeastCurrentOperations
    );
    assert_eq!(c.max_replication_lag, None);
    assert!(c.primary_accepts_reads);
    assert_eq!(c.causal_reads, CausalReads::None);
    assert_eq!(c.causal_reads_timeout, Duration::from_secs(10));
    assert_eq!(c.primary_failure_mode, PrimaryFailureMode::FailInstantly);
    assert_eq!(c.max_history, 50);

    let c: ReadWriteSplitConfig = serde_json::from_str(
        r#"{"replica_selection": "adaptive", "max_replication_lag": "1s 500ms",
            "primary_accepts_reads": false, "causal_reads": "fast",
            "causal_reads_timeout": "500ms", "primary_failure_mode": "error_on_write",
            "max_sescmd_history": 7}"#,
    )
    .unwrap();
    assert_eq!(c.replica_selection, ReplicaSelection::Adaptive);
    assert_eq!(c.max_replication_lag, Some(Duration::from_millis(1500)));
    assert!(!c.primary_accepts_reads);
    assert_eq!(c.causal_reads, CausalReads::Fast);
    assert_eq!(c.causal_reads_timeout, Duration::from_millis(500));
    assert_eq!(c.primary_failure_mode, PrimaryFailureMode::ErrorOnWrite);
    assert_eq!(c.max_history, 7);
    let c: ReadWriteSplitConfig = serde_json::from_str(r#"{"max_replication_lag": null}"#).unwrap();
    assert_eq!(c.max_replication_lag, None);

    let router = ReadWriteSplit::new(ReadWriteSplitConfig {
        max_replication_lag: Some(Duration::from_secs(5)),
        ..ReadWriteSplitConfig::default()
    });
    let d = router.diagnostics();
    assert_eq!(d["replica_selection"], "least_current_operations");
    assert_eq!(d["max_replication_lag"], "5s");
    assert_eq!(d["causal_reads_timeout"], "10s");
    assert_eq!(d["primary_failure_mode"], "fail_instantly");
    router.new_session(&info());
    assert_eq!(router.diagnostics()["sessions_started"], 1);
}

#[test]
fn bad_options_are_rejected() {
    let err = |json: &str| {
        serde_json::from_str::<ReadWriteSplitConfig>(json)
            .unwrap_err()
            .to_string()
    };
    assert!(err(r#"{"strict_multi_stmt": true}"#).contains("unknown field"));
    assert!(err(r#"{"max_replication_lag": "5"}"#).contains("invalid duration `5`"));
    assert!(err(r#"{"causal_reads_timeout": "soon"}"#).contains("invalid duration"));
    assert!(err(r#"{"replica_selection": "random"}"#).contains("unknown variant"));
    assert!(err(r#"{"max_history": 0}"#).contains("at least 1"));
}

#[test]
fn a_reset_forgets_transactions_temporary_tables_and_prepared_statements() {
    let mut f = Fixture::default();
    f.run("CREATE TEMPORARY TABLE tmp (a INT)", AUTOCOMMIT);
    f.run("PREPARE r FROM 'SELECT 1'", AUTOCOMMIT);
    f.plan(Command::StmtPrepare(b"SELECT 1"));
    f.reply_with(&name("db1"), AUTOCOMMIT, Some(3), None);
    f.run("SET autocommit = 0", 0);
    f.run("BEGIN", SERVER_STATUS_IN_TRANS);
    assert_eq!(
        f.route("SELECT 1"),
        ("db1".into(), RouteReason::Transaction)
    );
    f.session.on_reset();
    assert!(is_replica(&f.route("SELECT 1").0), "autocommit is back on");
    assert!(is_replica(&f.route("SELECT * FROM tmp").0));
    assert_eq!(f.route("EXECUTE r"), ("db1".into(), RouteReason::Write));
    let p = f.plan(Command::StmtExecute {
        stmt_id: 3,
        flags: 0,
    });
    assert_eq!((target(&p), p.reason), ("db1".into(), RouteReason::Write));
}

#[test]
fn a_closed_statement_is_forgotten() {
    let mut f = Fixture::default();
    f.plan(Command::StmtPrepare(b"SELECT 1"));
    f.reply_with(&name("db1"), AUTOCOMMIT, Some(3), None);
    let exec = Command::StmtExecute {
        stmt_id: 3,
        flags: 0,
    };
    assert!(is_replica(&target(&f.plan(exec))));
    f.session.on_statement_closed(switchyard_api::StmtId(3));
    // Unknown statements go to the primary (which answers with the server's error).
    assert_eq!(target(&f.plan(exec)), "db1");
}

#[test]
fn dropping_the_default_database_keeps_the_session_on_the_primary() {
    let mut f = Fixture::default();
    f.run("USE db3", AUTOCOMMIT);
    f.run("DROP DATABASE other", AUTOCOMMIT);
    assert_ne!(f.route("SELECT * FROM t1").0, "db1");
    f.reply(&name("db2"), AUTOCOMMIT);
    f.run("DROP DATABASE `DB3`", AUTOCOMMIT);
    assert_eq!(f.route("SELECT * FROM t1").0, "db1");
    // A USE that failed does not change the default database.
    let mut f = Fixture::default();
    f.q("USE nowhere");
    f.reply_error(&name("db1"));
    f.run("DROP DATABASE nowhere", AUTOCOMMIT);
    assert_ne!(f.route("SELECT * FROM t1").0, "db1");
    // COM_INIT_DB chooses it too.
    let mut f = Fixture::default();
    f.plan(Command::InitDb(b"shop"));
    f.reply(&name("db1"), AUTOCOMMIT);
    f.run("DROP SCHEMA IF EXISTS shop", AUTOCOMMIT);
    assert_eq!(f.route("SELECT 1").0, "db1");
}

#[test]
fn locked_tables_keep_reads_on_the_primary() {
    let mut f = Fixture::default();
    f.run("LOCK TABLES t1 READ", AUTOCOMMIT);
    assert_eq!(
        f.route("SELECT * FROM v1"),
        ("db1".into(), RouteReason::LockedTables)
    );
    f.reply(&name("db1"), AUTOCOMMIT);
    f.run("UNLOCK TABLES", AUTOCOMMIT);
    assert_ne!(f.route("SELECT * FROM v1").0, "db1");
    f.reply(&name("db2"), AUTOCOMMIT);
    // A transaction's start releases the locks too.
    f.run("LOCK TABLE t1 WRITE", AUTOCOMMIT);
    f.run("BEGIN", IN_TRX);
    f.run("COMMIT", AUTOCOMMIT);
    assert_ne!(f.route("SELECT * FROM v1").0, "db1");
}

#[test]
fn the_sessions_sql_mode_is_followed_quoted_or_bare() {
    let mut f = Fixture::default();
    assert!(!f.route("max_sort_length:=1030").0.starts_with("all"));
    f.run("SET sql_mode=ORACLE", AUTOCOMMIT);
    assert!(f.route("max_sort_length:=1030").0.starts_with("all"));
    f.run("SET sql_mode=DEFAULT", AUTOCOMMIT);
    assert!(!f.route("max_sort_length:=1030").0.starts_with("all"));
    f.run("SET SESSION sql_mode = 'oracle'", AUTOCOMMIT);
    assert!(f.route("max_sort_length:=1030").0.starts_with("all"));
    // An expression is not followed: the mode stays as it was.
    f.run("SET sql_mode = CONCAT(@@sql_mode, ',ANSI')", AUTOCOMMIT);
    assert!(f.route("max_sort_length:=1030").0.starts_with("all"));
}

#[test]
fn several_backends_answer_with_the_primarys_reply() {
    let f = Fixture::default();
    let open = |names: &[&str]| -> usize {
        let names: Vec<ServerName> = names.iter().map(|n| name(n)).collect();
        f.session.reply_from(&mut names.iter(), &f.servers)
    };
    assert_eq!(open(&["db2", "db1", "db3"]), 1);
    assert_eq!(open(&["db1"]), 0);
    // Without the primary open, the first backend opened.
    assert_eq!(open(&["db3", "db2"]), 0);
    let mut no_primary = cluster();
    edit(&mut no_primary, "db1", |s| s.role = ServerRole::Down);
    let names = [name("db2"), name("db1")];
    assert_eq!(f.session.reply_from(&mut names.iter(), &no_primary), 0);
}
