//! Allocations per statement in steady state: the proxy runs in this process, under a counting
//! allocator, and a client in a child process (this test binary again) sends the same statement
//! over one connection, a few thousand times more in one session than in another. The
//! difference, divided by the extra statements, is what one more statement costs the proxy;
//! login, the first statement and the session's end cancel out. A statement must cost none
//! (with the audit feed: none of the proxy's own, see [`AUDIT_BUDGET`]). The audit feed needs
//! the sandbox's Kafka broker (`scripts/kafka.sh up`, as `scripts/test.sh` does first).
//!
//! `harness = false`: the binary is its own client, and the counts must not see a test harness's
//! threads.

mod common;

use std::alloc::System;
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Set in the child: `PORT MODE COUNT`.
const CLIENT: &str = "SWITCHYARD_ALLOC_CLIENT";

/// The extra statements of the longer session.
const EXTRA: u64 = 10_000;

/// Allocations per statement allowed: none, up to a rare one of the runtime's own (a timer
/// wheel or a map growing once) over the extra statements.
const BUDGET: f64 = 0.01;

/// With the audit feed, the statement path allocates none either (a session writes each
/// record into a buffer the producer thread handed back, and refills its own text buffers),
/// but rdkafka-rs 0.38 allocates on the producer thread: `BaseProducer::send` copies the topic
/// name into a `CString` for every record, and `poll` makes a `Vec` for each batch of delivery
/// reports. Its safe API offers no way around either.
const AUDIT_BUDGET: f64 = 1.05;

fn main() {
    if let Ok(spec) = std::env::var(CLIENT) {
        client(&spec);
        return;
    }
    common::sandbox();
    let (rcr, rws, audit) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let text = format!(
        r#"servers:
  - {{ name: db1, address: 127.0.0.1:3307, role: primary }}
  - {{ name: db2, address: 127.0.0.1:3308, role: replica }}
  - {{ name: db3, address: 127.0.0.1:3309, role: replica }}
filters:
  - {{ name: audit, module: querylog, brokers: "127.0.0.1:9092", topic: mysql-audit }}
services:
  - {{ name: audit, router: readconnroute, servers: [db1], user: switchyard, password: switchyard, options: {{ router_options: primary }}, filters: [audit] }}
  - {{ name: rcr, router: readconnroute, servers: [db1], user: switchyard, password: switchyard, options: {{ router_options: primary }} }}
  - {{ name: rws, router: readwritesplit, servers: [db1, db2, db3], user: switchyard, password: switchyard }}
listeners:
  - {{ name: audit, service: audit, address: 127.0.0.1:{audit} }}
  - {{ name: rcr, service: rcr, address: 127.0.0.1:{rcr} }}
  - {{ name: rws, service: rws, address: 127.0.0.1:{rws} }}
"#
    );
    let config =
        switchyard::config::parse_checked(&text, "steady_state_alloc", &switchyard::validate)
            .unwrap_or_else(|e| panic!("the test's config: {e:?}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runtime = rt
        .block_on(switchyard::runtime::Runtime::start(config, None))
        .expect("the proxy starts");
    let mut over = Vec::new();
    let services = [
        ("readconnroute", rcr, BUDGET),
        ("readwritesplit", rws, BUDGET),
        ("querylog", audit, AUDIT_BUDGET),
    ];
    for (service, port, budget) in services {
        for mode in ["text", "wide", "prepared"] {
            run_client(port, mode, 100);
            let short = allocations(|| run_client(port, mode, 1_000));
            let long = allocations(|| run_client(port, mode, 1_000 + EXTRA));
            let per = long.saturating_sub(short) as f64 / EXTRA as f64;
            println!("{service:<15} {mode:<9} {per:.4} allocations per statement ({short} in a session of 1000, {long} of {})", 1_000 + EXTRA);
            if per > budget {
                over.push(format!(
                    "{service} {mode}: {per:.4}, at most {budget} allowed"
                ));
            }
        }
    }
    drop(runtime);
    rt.shutdown_timeout(Duration::from_secs(5));
    if !over.is_empty() {
        eprintln!("statements allocate in steady state: {}", over.join("; "));
        std::process::exit(1);
    }
}

/// Allocations made in this process while `f` runs.
fn allocations(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    region.change().allocations
}

/// Runs one client session in a child process and waits for it to end.
fn run_client(port: u16, mode: &str, count: u64) {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .env(CLIENT, format!("{port} {mode} {count}"))
        .output()
        .expect("the client process runs");
    assert!(
        out.status.success(),
        "the client ({mode}, {count} statements) failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child: one session through the proxy on `PORT`, `COUNT` times `SELECT 1` as a text
/// query, a text query with a 5 KB reply, or an execute of one prepared statement (`MODE` =
/// text | wide | prepared).
fn client(spec: &str) {
    let mut it = spec.split(' ');
    let port: u16 = it.next().and_then(|p| p.parse().ok()).expect("PORT");
    let mode = it.next().expect("MODE").to_string();
    let count: u64 = it.next().and_then(|c| c.parse().ok()).expect("COUNT");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let opts: mysql_async::Opts = common::builder(port, common::APP.0, common::APP.1).into();
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .expect("login through the proxy");
        if mode != "prepared" {
            // `wide`: a reply larger than a read buffer starts with, which must grow once.
            let sql = if mode == "text" {
                "SELECT 1"
            } else {
                "SELECT REPEAT('x', 5000)"
            };
            for _ in 0..count {
                conn.query_drop(sql).await.expect(sql);
            }
        } else {
            let stmt = conn.prep("SELECT ?").await.expect("prepare");
            for i in 0..count {
                conn.exec_drop(&stmt, (i,)).await.expect("execute");
            }
        }
        conn.disconnect().await.expect("quit");
    });
}
