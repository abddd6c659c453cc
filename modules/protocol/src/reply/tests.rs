use super::*;
use crate::caps::*;
use crate::packets::{write_eof, write_err, write_ok};
use bytes::BytesMut;

const CAPS: u32 = CLIENT_PROTOCOL_41 | CLIENT_SESSION_TRACK;

fn ok(status: u16) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_ok(&mut b, 1, 1, 5, status, 0);
    b[4..].to_vec()
}

fn ok_eof(status: u16) -> Vec<u8> {
    let mut p = ok(status);
    p[0] = 0xFE;
    p
}

fn eof(status: u16) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_eof(&mut b, 1, 0, status);
    b[4..].to_vec()
}

fn err() -> Vec<u8> {
    let mut b = BytesMut::new();
    write_err(&mut b, 1, 1146, "42S02", "Table 'test.nope' doesn't exist");
    b[4..].to_vec()
}

fn coldef() -> Vec<u8> {
    b"\x03def\x04test\x01t\x01t\x01a\x01a\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00"
        .to_vec()
}

fn feed(t: &mut ReplyTracker, packets: &[Vec<u8>]) -> Vec<Progress> {
    packets.iter().map(|p| t.on_frame(p).unwrap()).collect()
}

#[test]
fn ok_reply() {
    let mut t = ReplyTracker::new(CAPS);
    assert!(t.start(&Command::Query(b"INSERT")));
    assert_eq!(
        feed(&mut t, &[ok(SERVER_STATUS_AUTOCOMMIT)]),
        [Progress::Done]
    );
    assert_eq!(t.summary().affected_rows, 1);
    assert_eq!(t.summary().last_insert_id, 5);
}

#[test]
fn result_set_with_eof() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::Query(b"SELECT"));
    let p = feed(
        &mut t,
        &[
            vec![2],
            coldef(),
            coldef(),
            eof(2),
            b"\x011\x012".to_vec(),
            b"\x00\xfb".to_vec(),
            eof(2),
        ],
    );
    assert_eq!(*p.last().unwrap(), Progress::Done);
    assert!(p[..p.len() - 1].iter().all(|x| *x == Progress::More));
    assert_eq!(t.summary().rows, 2);
    assert_eq!(t.summary().result_sets, 1);
    assert_eq!(t.summary().column_sets, 1);
}

#[test]
fn result_set_deprecate_eof_and_multi_results() {
    let mut t = ReplyTracker::new(CAPS | CLIENT_DEPRECATE_EOF);
    t.start(&Command::Query(b"SELECT 1; SELECT 2"));
    let more = SERVER_STATUS_AUTOCOMMIT | SERVER_MORE_RESULTS_EXISTS;
    let p = feed(
        &mut t,
        &[
            vec![1],
            coldef(),
            b"\x011".to_vec(),
            ok_eof(more),
            vec![1],
            coldef(),
            b"\x012".to_vec(),
            ok_eof(2),
        ],
    );
    assert_eq!(p[3], Progress::More);
    assert_eq!(*p.last().unwrap(), Progress::Done);
    assert_eq!(t.summary().rows, 2);
    assert_eq!(t.summary().result_sets, 2);
    assert_eq!(t.summary().column_sets, 2);
}

#[test]
fn error_in_the_middle_of_rows() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::Query(b"SELECT"));
    let p = feed(
        &mut t,
        &[vec![1], coldef(), eof(2), b"\x011".to_vec(), err()],
    );
    assert_eq!(*p.last().unwrap(), Progress::Done);
    assert_eq!(t.summary().error.unwrap().code, 1146);
}

#[test]
fn multi_statement_error_stops() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::Query(b"INSERT; SELECT nope"));
    let p = feed(&mut t, &[ok(SERVER_MORE_RESULTS_EXISTS), err()]);
    assert_eq!(p, [Progress::More, Progress::Done]);
    assert_eq!(&t.summary().error.unwrap().sqlstate, b"42S02");
}

#[test]
fn local_infile() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::Query(b"LOAD DATA LOCAL INFILE 'x' INTO TABLE t"));
    assert_eq!(t.on_frame(b"\xfbx").unwrap(), Progress::LocalInfile);
    t.local_infile_sent();
    assert_eq!(t.on_frame(&ok(2)).unwrap(), Progress::Done);
}

#[test]
fn prepare_with_params_and_columns() {
    for deprecate in [false, true] {
        let caps = if deprecate {
            CAPS | CLIENT_DEPRECATE_EOF
        } else {
            CAPS
        };
        let mut t = ReplyTracker::new(caps);
        t.start(&Command::StmtPrepare(b"SELECT ?, ?, a FROM t"));
        let mut packets = vec![vec![0, 9, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0], coldef(), coldef()];
        if !deprecate {
            packets.push(eof(2));
        }
        packets.push(coldef());
        if !deprecate {
            packets.push(eof(2));
        }
        let p = feed(&mut t, &packets);
        assert_eq!(
            *p.last().unwrap(),
            Progress::Done,
            "deprecate_eof={deprecate}"
        );
        assert!(p[..p.len() - 1].iter().all(|x| *x == Progress::More));
        assert_eq!(
            t.summary().prepared,
            Some(Prepared {
                stmt_id: 9,
                columns: 1,
                params: 2
            })
        );
    }
}

#[test]
fn prepare_without_definitions() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::StmtPrepare(b"DO 1"));
    assert_eq!(
        t.on_frame(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
        Progress::Done
    );
}

#[test]
fn execute_opening_a_cursor_then_fetch() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::StmtExecute {
        stmt_id: 1,
        flags: 1,
    });
    let p = feed(
        &mut t,
        &[vec![1], coldef(), eof(SERVER_STATUS_CURSOR_EXISTS)],
    );
    assert_eq!(*p.last().unwrap(), Progress::Done);
    t.start(&Command::StmtFetch {
        stmt_id: 1,
        rows: 10,
    });
    let p = feed(&mut t, &[vec![0, 0, 1], eof(SERVER_STATUS_LAST_ROW_SENT)]);
    assert_eq!(p, [Progress::More, Progress::Done]);
    assert_eq!(t.summary().rows, 1);
}

#[test]
fn cursor_flag_of_a_stored_program_does_not_end_a_result() {
    // A cursor that a stored program opened sets CURSOR_EXISTS in the EOF after the columns of
    // any result: of a text query, of a CALL (with more results to come), and of an execute
    // that asked for no cursor. The rows follow all the same.
    let cursor = SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS_CURSOR_EXISTS;
    let more = cursor | SERVER_MORE_RESULTS_EXISTS;
    let commands = [
        (
            Command::Query(b"BEGIN ... OPEN cur; ... SELECT v; END"),
            cursor,
        ),
        (Command::Query(b"CALL p()"), more),
        (
            Command::StmtExecute {
                stmt_id: 1,
                flags: 0,
            },
            cursor,
        ),
        (
            Command::StmtExecute {
                stmt_id: 1,
                flags: 1,
            },
            more,
        ),
    ];
    for (cmd, status) in commands {
        let mut t = ReplyTracker::new(CAPS);
        t.start(&cmd);
        let mut reply = vec![
            vec![1],
            coldef(),
            eof(status),
            b"\x011".to_vec(),
            eof(status),
        ];
        if status & SERVER_MORE_RESULTS_EXISTS != 0 {
            reply.push(ok(SERVER_STATUS_AUTOCOMMIT));
        }
        let p = feed(&mut t, &reply);
        assert!(
            p[..p.len() - 1].iter().all(|x| *x == Progress::More),
            "{cmd:?}: {p:?}"
        );
        assert_eq!(*p.last().unwrap(), Progress::Done, "{cmd:?}");
        assert_eq!(t.summary().rows, 1, "{cmd:?}");
    }
}

#[test]
fn error_after_results_ends_the_reply() {
    let mut t = ReplyTracker::new(CAPS | CLIENT_DEPRECATE_EOF);
    t.start(&Command::Query(
        b"SELECT 1; DO 1; SELECT * FROM nope; SELECT 2",
    ));
    let more = SERVER_STATUS_AUTOCOMMIT | SERVER_MORE_RESULTS_EXISTS;
    let p = feed(
        &mut t,
        &[
            vec![1],
            coldef(),
            b"\x011".to_vec(),
            ok_eof(more),
            ok(more),
            err(),
        ],
    );
    assert_eq!(*p.last().unwrap(), Progress::Done);
    assert_eq!(t.summary().error.map(|e| e.code), Some(1146));
    assert_eq!(t.summary().result_sets, 2);
}

#[test]
fn statistics_and_field_list() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::Statistics);
    assert_eq!(
        t.on_frame(b"Uptime: 5  Threads: 1").unwrap(),
        Progress::Done
    );
    t.start(&Command::FieldList(b"t\0"));
    assert_eq!(
        feed(&mut t, &[coldef(), coldef(), eof(2)]),
        [Progress::More, Progress::More, Progress::Done]
    );
}

#[test]
fn large_row_spanning_frames() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::Query(b"SELECT big"));
    feed(&mut t, &[vec![1], coldef(), eof(2)]);
    let mut big = vec![0xFEu8; MAX_FRAME];
    big[0] = 0xFE; // a row whose first column is a string of 16 MiB or more
    assert_eq!(t.on_frame(&big).unwrap(), Progress::More);
    // The continuation starts with bytes that would look like an EOF or ERR.
    assert_eq!(t.on_frame(&[0xFE, 0, 0, 2, 0]).unwrap(), Progress::More);
    assert_eq!(t.on_frame(&eof(2)).unwrap(), Progress::Done);
    assert_eq!(t.summary().rows, 1);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut t = ReplyTracker::new(CAPS);
    t.start(&Command::Query(b"x"));
    assert!(t.on_frame(&[]).is_err());
    t.start(&Command::Query(b"x"));
    assert!(t.on_frame(&[0xFC, 1]).is_err());
    t.start(&Command::Ping);
    assert!(t.on_frame(&[0xFF, 1]).is_err());
    t.start(&Command::StmtPrepare(b"x"));
    assert!(t.on_frame(&[0x00, 1]).is_err());
}

/// Found by `tests/proptest_parsers.rs`: two OK results whose affected-row counts add past
/// `u64::MAX` overflowed the summary (a panic in debug builds). The sum saturates.
#[test]
fn affected_rows_of_many_results_saturate() {
    let mut t = ReplyTracker::new(0);
    t.start(&Command::InitDb(b"test"));
    let first = [
        0x00, // OK
        0xFE, 0xBF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // affected rows 2^64 - 65
        0x00, // last insert id
        0x38, 0x13, // status, with SERVER_MORE_RESULTS_EXISTS
        0x00, 0x00, // warnings
    ];
    assert_eq!(t.on_frame(&first).unwrap(), Progress::More);
    assert_eq!(
        t.on_frame(&[0x00, 65, 0, 0, 0, 0, 0]).unwrap(),
        Progress::Done
    );
    assert_eq!(t.summary().affected_rows, u64::MAX);
}
