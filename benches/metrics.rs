//! What recording one statement's metrics costs the statement path: the handles a session
//! holds, alone and with another thread recording on the same series.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard::metrics;
use switchyard_api::{Server, ServerRole, ServerStats};
use switchyard_protocol::reply::ReplySummary;

fn record(c: &mut Criterion) {
    let server = Server::new(
        "db2",
        "127.0.0.1:3308",
        ServerRole::Replica,
        Arc::new(ServerStats::default()),
    );
    let reply = ReplySummary::default();
    let service = metrics::service("bench");
    let mut session = service.session();
    let one = |session: &mut metrics::SessionMetrics| {
        session.replied(
            black_box(&server),
            false,
            black_box(&reply),
            black_box(Duration::from_micros(300)),
            (120, 40),
        );
        session.client_bytes(black_box((40, 120)));
    };
    c.bench_function("statement recorded", |b| b.iter(|| one(&mut session)));

    // Another session on the same series, recording as fast as it can on another core.
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let stop = stop.clone();
        let service = service.clone();
        let server = server.clone();
        std::thread::spawn(move || {
            let mut session = service.session();
            let reply = ReplySummary::default();
            while !stop.load(Ordering::Relaxed) {
                session.replied(&server, false, &reply, Duration::from_micros(300), (1, 1));
                session.client_bytes((1, 1));
            }
        })
    };
    c.bench_function("statement recorded, contended", |b| {
        b.iter(|| one(&mut session))
    });
    stop.store(true, Ordering::Relaxed);
    let _ = other.join();
}

criterion_group!(benches, record);
criterion_main!(benches);
