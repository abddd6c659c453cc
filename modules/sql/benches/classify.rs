//! Classification cost of typical OLTP statements (target: median ≤ 1 µs each).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use switchyard_sql::{classify, reads_thread_ids};

fn classify_benches(c: &mut Criterion) {
    let cases: [(&str, &[u8]); 6] = [
        ("point_select", b"SELECT c FROM sbtest1 WHERE id=4242"),
        ("simple_insert", b"INSERT INTO sbtest1 (id, k, c, pad) VALUES (0, 5012, '83868641912-28773972837-60736120486-75162659906-27563526494-20381887404-41576422241-93426793964-56405065102-33518432330', '67847967377-48000963322-62604785301-91415491898-96926520291')"),
        ("simple_update", b"UPDATE sbtest1 SET k=k+1 WHERE id=5003"),
        ("begin", b"BEGIN"),
        ("set", b"SET autocommit=0"),
        ("select_for_update_commented", b"/* app:orders */ SELECT id, status FROM orders WHERE customer_id = 17 AND status IN ('new', 'paid') ORDER BY id LIMIT 10 FOR UPDATE"),
    ];
    let mut g = c.benchmark_group("classify");
    for (name, sql) in cases {
        g.bench_function(name, |b| b.iter(|| classify(black_box(sql))));
    }
    g.finish();
    // Run by the session for every statement, with every router.
    let mut g = c.benchmark_group("reads_thread_ids");
    for (name, sql) in cases {
        g.bench_function(name, |b| b.iter(|| reads_thread_ids(black_box(sql))));
    }
    g.finish();
}

criterion_group!(benches, classify_benches);
criterion_main!(benches);
