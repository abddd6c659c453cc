//! Routing cost per statement: `plan()` plus `on_reply()` as a session runs them, with
//! readconnroute's `plan()` (no classification) and the classification alone for comparison.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard_api::{
    Reply, Router, RouterSession, Server, ServerRole, ServerSet, ServerStats, SessionInfo,
};
use switchyard_protocol::caps::{SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS};
use switchyard_protocol::reply::ReplySummary;
use switchyard_protocol::Command;
use switchyard_readconnroute::{ReadConnRoute, ReadConnRouteConfig, RoleOption, RoleOptions};
use switchyard_readwritesplit::{ReadWriteSplit, ReadWriteSplitConfig};

const POINT_SELECT: &[u8] = b"SELECT c FROM sbtest1 WHERE id=4242";
const UPDATE: &[u8] = b"UPDATE sbtest1 SET k=k+1 WHERE id=5003";

fn servers() -> ServerSet {
    let server = |name: &str, role| {
        Arc::new(Server::new(
            name,
            "127.0.0.1:3306",
            role,
            Arc::new(ServerStats::default()),
        ))
    };
    ServerSet {
        servers: vec![
            server("db1", ServerRole::Primary),
            server("db2", ServerRole::Replica),
            server("db3", ServerRole::Replica),
        ],
    }
}

fn info() -> SessionInfo {
    SessionInfo {
        id: switchyard_api::SessionId(1),
        user: "bench".into(),
        client_addr: "127.0.0.1:40000".parse().unwrap(),
        db: None,
    }
}

/// Plans `sql` and answers it with `status` from the planned server (or the primary).
fn step(session: &mut dyn RouterSession, servers: &ServerSet, sql: &[u8], reply: &Reply<'_>) {
    let plan = session.plan(&mut Command::Query(black_box(sql)).into(), servers);
    black_box(&plan);
    session.on_reply(reply);
}

fn route_benches(c: &mut Criterion) {
    let servers = servers();
    let router = ReadWriteSplit::new(ReadWriteSplitConfig::default());
    // The runtime reports replies with the name from the server set (the same `Arc`).
    let primary = servers.get("db1").unwrap().name.clone();
    let replica = servers.get("db2").unwrap().name.clone();
    let autocommit = ReplySummary {
        status: SERVER_STATUS_AUTOCOMMIT,
        ..ReplySummary::default()
    };
    let in_trx = ReplySummary {
        status: SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS_IN_TRANS,
        ..ReplySummary::default()
    };
    let reply = |server, summary| Reply {
        server,
        summary,
        prepared_id: None,
        last_gtid: None,
    };

    let mut g = c.benchmark_group("route");
    let mut session = router.new_session(&info());
    session.connect(&servers);
    g.bench_function("rwsplit_point_select", |b| {
        let r = reply(&replica, &autocommit);
        b.iter(|| step(&mut *session, &servers, POINT_SELECT, &r))
    });
    g.bench_function("rwsplit_update", |b| {
        let r = reply(&primary, &autocommit);
        b.iter(|| step(&mut *session, &servers, UPDATE, &r))
    });
    g.bench_function("rwsplit_begin_commit", |b| {
        let begun = reply(&primary, &in_trx);
        let committed = reply(&primary, &autocommit);
        b.iter(|| {
            step(&mut *session, &servers, b"BEGIN", &begun);
            step(&mut *session, &servers, b"COMMIT", &committed);
        })
    });

    let readconn = ReadConnRoute::new(ReadConnRouteConfig {
        router_options: RoleOptions::One(RoleOption::Replica),
    });
    let mut session = readconn.new_session(&info());
    session.connect(&servers);
    g.bench_function("readconnroute_point_select", |b| {
        b.iter(|| {
            black_box(session.plan(
                &mut Command::Query(black_box(POINT_SELECT)).into(),
                &servers,
            ))
        })
    });
    for (name, sql) in [
        ("classify_point_select", POINT_SELECT),
        ("classify_update", UPDATE),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| switchyard_sql::classify(black_box(sql)))
        });
    }
    g.finish();
}

criterion_group!(benches, route_benches);
criterion_main!(benches);
