//! Audit feed throughput against the real local broker (`bash scripts/kafka.sh up`).
//!
//! N threads (QUERYLOG_BENCH_THREADS, default 4) drive sessions through the public Filter API
//! as fast as they can, for QUERYLOG_BENCH_RECORDS records in all (default 1,000,000), into a
//! fresh topic; then the bench waits until Kafka has acknowledged them. It prints records/s
//! sustained (records / time until all were delivered), the session-side cost per record
//! (time spent in on_command + on_reply), and what was dropped. Target: ≥ 100,000 records/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_api::{
    ClientInfo, Filter, ReplyInfo, RouteReason, RoutedTo, Server, ServerRole, ServerStats,
};
use switchyard_protocol::reply::ReplySummary;
use switchyard_protocol::Command;
use switchyard_querylog::{QueryLog, QueryLogConfig};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{broker, Topic};

/// Statements per session; with its connect and disconnect a session makes this + 2 records.
const STATEMENTS_PER_SESSION: u64 = 998;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// This thread's time on a CPU so far, in ns (0 where the kernel does not say).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Drives sessions until `records` records were made; returns the (wall, on-CPU) time spent
/// in the filter.
fn drive(log: &QueryLog, thread: u32, records: u64) -> (Duration, Duration) {
    let server = {
        let mut s = Server::new(
            "db2",
            "127.0.0.1:3308",
            ServerRole::Replica,
            Arc::new(ServerStats::default()),
        );
        s.server_id = Some(2);
        s
    };
    let statements: Vec<String> = (0..1024)
        .map(|i| format!("SELECT c FROM sbtest1 WHERE id = {}", 4_000 + i * 37))
        .collect();
    let summary = ReplySummary {
        rows: 1,
        status: 2,
        result_sets: 1,
        bytes: 187,
        ..ReplySummary::default()
    };
    let mut spent = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    let mut made = 0;
    let mut session = 0u32;
    while made < records {
        session += 1;
        let client = ClientInfo {
            session_id: switchyard_api::SessionId(thread * 1_000_000 + session),
            user: "sbtest".into(),
            client_addr: "10.1.2.3:51544".parse().unwrap(),
            db: Some("sbtest".into()),
            program: Some("sysbench".into()),
            tls: false,
            service: Arc::from("app"),
            listener: Arc::from("app-rw"),
        };
        let n = STATEMENTS_PER_SESSION
            .min(records - made)
            .saturating_sub(2)
            .max(1);
        let cpu_before = thread_cpu_ns();
        let started = Instant::now();
        let mut s = log.new_session(&client);
        for i in 0..n as usize {
            let sql = &statements[i % statements.len()];
            s.on_command(&mut Command::Query(sql.as_bytes()).into());
            s.on_reply(&ReplyInfo {
                summary: &summary,
                proxy_error: None,
                server: Some(&server),
                routed_to: RoutedTo::Replica,
                reason: Some(RouteReason::Read),
                started: Instant::now(),
                first_byte: Some(Duration::from_micros(180)),
                last_byte: Duration::from_micros(210),
                statement_id: None,
            });
        }
        s.on_close(None);
        spent += started.elapsed();
        cpu += Duration::from_nanos(thread_cpu_ns().saturating_sub(cpu_before));
        made += n + 2;
    }
    (spent, cpu)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let threads = env("QUERYLOG_BENCH_THREADS", 4).max(1) as u32;
    let total = env("QUERYLOG_BENCH_RECORDS", 1_000_000).max(threads.into());
    let per_thread = total / u64::from(threads);
    let total = per_thread * u64::from(threads);

    let topic = Topic::create("bench");

    let config: QueryLogConfig = serde_json::from_value(serde_json::json!({
        "brokers": broker(), "topic": topic.name, "queue_size": 1_048_576,
        // The queue holds every record of the run, so that none is dropped.
        "queue_bytes": 1_usize << 30, "instance": "bench",
    }))
    .expect("config");
    let log = Arc::new(QueryLog::new("bench", config).expect("querylog"));

    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || drive(&log, t + 1, per_thread))
        })
        .collect();
    let (mut spent, mut cpu) = (Duration::ZERO, Duration::ZERO);
    for w in workers {
        let (s, c) = w.join().expect("driver thread");
        spent += s;
        cpu += c;
    }
    let produced = start.elapsed();
    let until = Instant::now() + Duration::from_secs(300);
    let mut s = log.stats();
    while s.delivered + s.failed + s.dropped < total && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
        s = log.stats();
    }
    let all = start.elapsed();
    log.shutdown(Duration::from_secs(10));
    let s = log.stats();
    drop(topic);

    println!("querylog throughput: {total} records, {threads} threads, 1 partition");
    println!(
        "  sessions done in      {:>8.3} s ({:.0} records/s offered)",
        produced.as_secs_f64(),
        total as f64 / produced.as_secs_f64()
    );
    println!("  all delivered in      {:>8.3} s", all.as_secs_f64());
    println!(
        "  sustained             {:>8.0} records/s (delivered / time until all delivered)",
        s.delivered as f64 / all.as_secs_f64()
    );
    println!(
        "  session-side cost     {:>8.0} ns/record (on_command + on_reply, per thread)",
        spent.as_nanos() as f64 / total as f64
    );
    println!(
        "  session-side CPU      {:>8.0} ns/record (on-CPU time of those calls)",
        cpu.as_nanos() as f64 / total as f64
    );
    println!(
        "  delivered {} failed {} dropped {} queued {}",
        s.delivered, s.failed, s.dropped, s.queued
    );
    if s.delivered != total {
        std::process::exit(2);
    }
}
