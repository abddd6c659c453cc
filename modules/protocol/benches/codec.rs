//! Packet codec throughput and per-packet cost.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchyard_protocol::codec;
use switchyard_protocol::command::Command;
use switchyard_protocol::reply::ReplyTracker;
use switchyard_protocol::session_track::{tracked_variable, untrack_ok};

fn codec_benches(c: &mut Criterion) {
    let query = b"\x03SELECT c FROM sbtest1 WHERE id=4242";
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_decode_small", |b| {
        let mut buf = BytesMut::with_capacity(1024);
        b.iter(|| {
            codec::encode(&mut buf, 0, black_box(query));
            let p = codec::decode(&mut buf, 1 << 30).unwrap().unwrap();
            black_box(Command::parse(&p.payload).unwrap());
        })
    });
    // A result set of 100 rows as the server frames it: the tracker follows each frame.
    let mut reply = BytesMut::new();
    let mut seq = codec::encode(&mut reply, 1, &[1]);
    seq = codec::encode(&mut reply, seq, b"\x03def\x06sbtest\x07sbtest1\x07sbtest1\x01c\x01c\x0c\x08\x00\x78\x00\x00\x00\xfe\x00\x00\x00\x00\x00");
    seq = codec::encode(&mut reply, seq, &[0xFE, 0, 0, 2, 0]);
    for _ in 0..100 {
        seq = codec::encode(&mut reply, seq, &[120; 121]);
    }
    codec::encode(&mut reply, seq, &[0xFE, 0, 0, 2, 0]);
    let reply = reply.freeze();
    g.throughput(Throughput::Bytes(reply.len() as u64));
    g.bench_function("track_result_set_100_rows", |b| {
        let mut t = ReplyTracker::new(switchyard_protocol::caps::CLIENT_PROTOCOL_41);
        b.iter(|| {
            t.start(&Command::Query(b"SELECT"));
            let mut rest = &reply[..];
            while let Some((len, _)) = codec::frame_header(rest) {
                t.on_frame(&rest[4..4 + len]).unwrap();
                rest = &rest[4 + len..];
            }
            assert!(t.is_done());
        })
    });
    g.finish();
}

fn session_track_benches(c: &mut Criterion) {
    // The OK of an INSERT on a backend tracking `last_gtid`: one row, insert id 4242, status
    // AUTOCOMMIT | SESSION_STATE_CHANGED, no info, one system variable entry.
    let ok: &[u8] =
        b"\x00\x01\xfc\x92\x10\x02\x40\x00\x00\x00\x16\x00\x14\x09last_gtid\x090-1-12345";
    assert_eq!(tracked_variable(ok, "last_gtid"), Some(&b"0-1-12345"[..]));
    let mut g = c.benchmark_group("session_track");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tracked_variable_last_gtid", |b| {
        b.iter(|| black_box(tracked_variable(black_box(ok), "last_gtid")))
    });
    g.bench_function("untrack_ok_insert", |b| {
        let mut out = BytesMut::with_capacity(64);
        b.iter(|| {
            out.clear();
            black_box(untrack_ok(black_box(ok), &mut out));
        })
    });
    g.finish();
}

criterion_group!(benches, codec_benches, session_track_benches);
criterion_main!(benches);
