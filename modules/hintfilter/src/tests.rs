use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_api::{
    FilterSession, ReplyInfo, RouteHint, RoutedTo, Server, ServerName, ServerRole, ServerStats,
    SqlDialect, Verdict,
};
use switchyard_protocol::reply::{ReplyError, ReplySummary};
use switchyard_protocol::Command;

use super::{Counters, HintSession, MAX_DEPTH};

fn session() -> (HintSession, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    (HintSession::new(counters.clone()), counters)
}

fn server(name: &str) -> Server {
    Server::new(
        name,
        "127.0.0.1:3308",
        ServerRole::Replica,
        Arc::new(ServerStats::default()),
    )
}

/// Autocommit on, no transaction.
const AUTOCOMMIT: u16 = 2;

fn answered(s: &mut HintSession, by: &str, summary: ReplySummary, statement_id: Option<u32>) {
    let server = server(by);
    s.on_reply(&ReplyInfo {
        summary: &summary,
        proxy_error: None,
        server: Some(&server),
        routed_to: RoutedTo::Replica,
        reason: None,
        started: Instant::now(),
        first_byte: None,
        last_byte: Duration::ZERO,
        statement_id: statement_id.map(switchyard_api::StmtId),
    });
}

fn ok() -> ReplySummary {
    ReplySummary {
        status: AUTOCOMMIT,
        ..ReplySummary::default()
    }
}

/// Runs a query and its (successful) reply from db1; the hint it got.
fn query(s: &mut HintSession, sql: &str) -> Option<RouteHint> {
    let hint = hint_of(s.on_command(&mut Command::Query(sql.as_bytes()).into()));
    answered(s, "db1", ok(), None);
    hint
}

fn hint_of(v: Verdict) -> Option<RouteHint> {
    match v {
        Verdict::Hint(h) => Some(h),
        Verdict::Pass => None,
        other => panic!("unexpected verdict {other:?}"),
    }
}

fn named(name: &str) -> Option<RouteHint> {
    Some(RouteHint::Server(ServerName::new(name)))
}

#[test]
fn one_statement_hints() {
    let (mut s, counters) = session();
    assert_eq!(
        query(&mut s, "SELECT 1 -- maxscale route to master"),
        Some(RouteHint::Primary)
    );
    assert_eq!(query(&mut s, "SELECT 1"), None);
    assert_eq!(
        query(&mut s, "/* maxscale route to slave */ SELECT 1"),
        Some(RouteHint::Replica)
    );
    assert_eq!(
        query(&mut s, "SELECT 1 # maxscale route to server db3"),
        named("db3")
    );
    assert_eq!(
        query(
            &mut s,
            "SELECT 1 /* maxscale max_slave_replication_lag=7 */"
        ),
        Some(RouteHint::MaxReplicationLag(Duration::from_secs(7)))
    );
    // Other comments before it do not hide it; a string is not a comment.
    assert_eq!(
        query(
            &mut s,
            "/* app:orders */ SELECT 1 /* maxscale route to master */"
        ),
        Some(RouteHint::Primary)
    );
    assert_eq!(query(&mut s, "SELECT '-- maxscale route to master'"), None);
    assert_eq!(
        counters.hinted.load(std::sync::atomic::Ordering::Relaxed),
        5
    );
}

#[test]
fn route_to_last_follows_the_previous_reply() {
    let (mut s, _) = session();
    // Nothing ran yet: no hint.
    let v = s.on_command(&mut Command::Query(b"SELECT 1 -- maxscale route to last").into());
    assert_eq!(hint_of(v), None);
    answered(&mut s, "db2", ok(), None);
    let v = s.on_command(&mut Command::Query(b"SELECT 2 -- maxscale route to last").into());
    assert_eq!(hint_of(v), named("db2"));
}

#[test]
fn named_hints_and_the_stack() {
    let (mut s, _) = session();
    assert_eq!(
        query(
            &mut s,
            "SELECT 1 -- maxscale reports prepare route to server db3"
        ),
        None
    );
    // Pushing applies to the statement that pushes and those after it, until `end`.
    assert_eq!(
        query(&mut s, "SELECT 1 -- maxscale reports begin"),
        named("db3")
    );
    assert_eq!(query(&mut s, "SELECT 2"), named("db3"));
    // A statement's own hint wins over the stack.
    assert_eq!(
        query(&mut s, "SELECT 3 -- maxscale route to master"),
        Some(RouteHint::Primary)
    );
    assert_eq!(
        query(&mut s, "SELECT 4 -- maxscale begin route to slave"),
        Some(RouteHint::Replica)
    );
    assert_eq!(query(&mut s, "SELECT 5"), Some(RouteHint::Replica));
    assert_eq!(query(&mut s, "SELECT 6 -- maxscale end"), named("db3"));
    assert_eq!(
        query(&mut s, "SELECT 7 -- maxscale writes begin route to master"),
        Some(RouteHint::Primary)
    );
    assert_eq!(query(&mut s, "SELECT 8 -- maxscale end"), named("db3"));
    assert_eq!(query(&mut s, "SELECT 9 -- maxscale end"), None);
    assert_eq!(query(&mut s, "SELECT 10 -- maxscale end"), None);
    // `writes` was defined by its `begin`.
    assert_eq!(
        query(&mut s, "SELECT 11 -- maxscale writes begin"),
        Some(RouteHint::Primary)
    );
}

#[test]
fn nonsense_is_ignored_and_counted() {
    let (mut s, counters) = session();
    assert_eq!(query(&mut s, "SELECT 1 -- maxscale route to nowhere"), None);
    assert_eq!(query(&mut s, "SELECT 1 -- maxscale unknown begin"), None);
    assert_eq!(
        counters.ignored.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // The stack has a limit.
    for _ in 0..MAX_DEPTH + 5 {
        query(&mut s, "SELECT 1 -- maxscale begin route to master");
    }
    assert_eq!(s.stack.len(), MAX_DEPTH);
    assert_eq!(
        counters.ignored.load(std::sync::atomic::Ordering::Relaxed),
        7
    );
}

#[test]
fn prepared_statements_keep_their_hint() {
    let (mut s, _) = session();
    let v = s.on_command(&mut Command::StmtPrepare(b"SELECT ? -- maxscale route to master").into());
    // The preparation itself goes everywhere.
    assert_eq!(hint_of(v), None);
    answered(&mut s, "db1", ok(), Some(1));
    let v = s.on_command(&mut Command::StmtPrepare(b"SELECT ?").into());
    assert_eq!(hint_of(v), None);
    answered(&mut s, "db1", ok(), Some(2));
    let execute = |s: &mut HintSession, id| {
        let v = s.on_command(
            &mut Command::StmtExecute {
                stmt_id: id,
                flags: 0,
            }
            .into(),
        );
        hint_of(v)
    };
    assert_eq!(execute(&mut s, 1), Some(RouteHint::Primary));
    assert_eq!(execute(&mut s, 2), None);
    assert_eq!(execute(&mut s, 1), Some(RouteHint::Primary));
    // A failed preparation keeps nothing.
    s.on_command(&mut Command::StmtPrepare(b"SELEC ? -- maxscale route to master").into());
    let failed = ReplySummary {
        error: Some(ReplyError {
            code: 1064,
            sqlstate: *b"42000",
        }),
        ..ReplySummary::default()
    };
    answered(&mut s, "db1", failed, Some(3));
    assert_eq!(execute(&mut s, 3), None);
    s.on_command(&mut Command::StmtClose { stmt_id: 1 }.into());
    assert_eq!(execute(&mut s, 1), None);
}

#[test]
fn the_sessions_sql_mode_decides_what_is_a_comment() {
    let (mut s, _) = session();
    let sql = br"SELECT 'a\' -- maxscale route to master
'";
    assert_eq!(hint_of(s.on_command(&mut Command::Query(sql).into())), None);
    let mut dialect = SqlDialect::default();
    let nbe = ReplySummary {
        status: AUTOCOMMIT | 0x200,
        ..ReplySummary::default()
    };
    dialect.on_reply(&mut Command::Query(b"SELECT 1").into(), &nbe);
    assert_eq!(
        hint_of(s.on_command(&mut dialect.statement(Command::Query(sql)))),
        Some(RouteHint::Primary)
    );
}

#[test]
fn reset_connection_forgets_everything() {
    let (mut s, _) = session();
    query(&mut s, "SELECT 1 -- maxscale x begin route to master");
    s.on_command(&mut Command::ResetConnection.into());
    answered(&mut s, "db1", ok(), None);
    assert_eq!(query(&mut s, "SELECT 1"), None);
    assert_eq!(query(&mut s, "SELECT 1 -- maxscale x begin"), None);
}
