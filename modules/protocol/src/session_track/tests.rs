use super::*;
use crate::caps::*;
use crate::packets::OkPacket;
use crate::wire::put_lenenc_int;

/// The OK packet from the protocol description, byte by byte: affected rows 1, insert id 0,
/// status AUTOCOMMIT | SESSION_STATE_CHANGED, no warnings, empty info, and a state block with
/// one system variable entry, `last_gtid` = `0-1-7`.
const LAST_GTID_OK: &[u8] = &[
    0x00, // OK header
    0x01, // affected rows
    0x00, // last insert id
    0x02, 0x40, // status 0x4002
    0x00, 0x00, // warnings
    0x00, // info: ""
    0x12, // state block: 18 bytes
    0x00, // SESSION_TRACK_SYSTEM_VARIABLES
    0x10, // entry: 16 bytes
    0x09, b'l', b'a', b's', b't', b'_', b'g', b't', b'i', b'd', //
    0x05, b'0', b'-', b'1', b'-', b'7',
];

/// The same OK as a client without CLIENT_SESSION_TRACK gets it.
const LAST_GTID_OK_UNTRACKED: &[u8] = &[0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00];

fn untracked(p: &[u8]) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    if untrack_ok(p, &mut out) {
        Some(out.to_vec())
    } else {
        assert!(out.is_empty(), "nothing is appended when false");
        None
    }
}

fn sysvar(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    put_lenenc_bytes(&mut data, name);
    put_lenenc_bytes(&mut data, value);
    entry(SESSION_TRACK_SYSTEM_VARIABLES, &data)
}

fn entry(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut e = vec![kind];
    put_lenenc_bytes(&mut e, data);
    e
}

/// An OK packet in the session-tracking format.
fn tracked_ok(
    affected: u64,
    insert_id: u64,
    status: u16,
    info: &[u8],
    entries: &[Vec<u8>],
) -> Vec<u8> {
    let mut p = vec![0x00];
    put_lenenc_int(&mut p, affected);
    put_lenenc_int(&mut p, insert_id);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&3u16.to_le_bytes());
    if status & SERVER_SESSION_STATE_CHANGED != 0 || !info.is_empty() {
        put_lenenc_bytes(&mut p, info);
    }
    if status & SERVER_SESSION_STATE_CHANGED != 0 {
        put_lenenc_bytes(&mut p, &entries.concat());
    }
    p
}

#[test]
fn last_gtid_from_the_spec_example() {
    assert_eq!(
        tracked_variable(LAST_GTID_OK, "last_gtid"),
        Some(&b"0-1-7"[..])
    );
    assert_eq!(
        tracked_variable(LAST_GTID_OK, "LAST_GTID"),
        Some(&b"0-1-7"[..])
    );
    assert_eq!(tracked_variable(LAST_GTID_OK, "last_gti"), None);
    assert_eq!(tracked_variable(LAST_GTID_OK, "autocommit"), None);
    // The block is what OkPacket hands out; the iterator walks it.
    let ok = OkPacket::parse(LAST_GTID_OK, CLIENT_PROTOCOL_41 | CLIENT_SESSION_TRACK).unwrap();
    let entries: Vec<_> = StateEntries::new(ok.session_state)
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(entries, [(0, &LAST_GTID_OK[11..])]);
}

#[test]
fn untrack_the_spec_example() {
    assert_eq!(
        untracked(LAST_GTID_OK).as_deref(),
        Some(LAST_GTID_OK_UNTRACKED)
    );
    let ok = OkPacket::parse(LAST_GTID_OK_UNTRACKED, CLIENT_PROTOCOL_41).unwrap();
    assert_eq!((ok.affected_rows, ok.status, ok.info), (1, 2, &b""[..]));
}

#[test]
fn eof_replacing_ok_keeps_its_header() {
    let mut p = LAST_GTID_OK.to_vec();
    p[0] = 0xFE;
    assert_eq!(tracked_variable(&p, "last_gtid"), Some(&b"0-1-7"[..]));
    let out = untracked(&p).unwrap();
    assert_eq!(out[0], 0xFE);
    assert_eq!(&out[1..], &LAST_GTID_OK_UNTRACKED[1..]);
    // Still shorter than 8 bytes, where clients without DEPRECATE_EOF logic draw the line.
    assert!(out.len() < 8);
}

#[test]
fn appends_to_what_out_holds() {
    let mut out = BytesMut::from(&b"xy"[..]);
    assert!(untrack_ok(LAST_GTID_OK, &mut out));
    assert_eq!(&out[..2], b"xy");
    assert_eq!(&out[2..], LAST_GTID_OK_UNTRACKED);
}

#[test]
fn many_entries_of_every_type() {
    let status = SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT | SERVER_SESSION_STATE_CHANGED;
    let entries = [
        entry(SESSION_TRACK_SCHEMA, b"\x04test"),
        entry(SESSION_TRACK_STATE_CHANGE, b"1"),
        sysvar(b"autocommit", b"ON"),
        // MySQL's GTID entry: encoding specification, then the GTID set.
        entry(
            SESSION_TRACK_GTIDS,
            b"\x00\x2a3e11fa47-71ca-11e1-9e33-c80aa9429562:23",
        ),
        entry(SESSION_TRACK_TRANSACTION_STATE, b"\x08T_______"),
        entry(42, b"some future type"),
        sysvar(b"last_gtid", b"0-1-12345"),
        sysvar(b"character_set_client", b"utf8mb4"),
    ];
    let p = tracked_ok(1, 77, status, b"", &entries);
    assert_eq!(tracked_variable(&p, "autocommit"), Some(&b"ON"[..]));
    assert_eq!(tracked_variable(&p, "last_gtid"), Some(&b"0-1-12345"[..]));
    assert_eq!(
        tracked_variable(&p, "character_set_client"),
        Some(&b"utf8mb4"[..])
    );
    assert_eq!(tracked_variable(&p, "time_zone"), None);

    let ok = OkPacket::parse(&p, CLIENT_PROTOCOL_41 | CLIENT_SESSION_TRACK).unwrap();
    let kinds: Vec<u8> = StateEntries::new(ok.session_state)
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(kinds, [1, 2, 0, 3, 5, 42, 0, 0]);

    let out = untracked(&p).unwrap();
    let ok = OkPacket::parse(&out, CLIENT_PROTOCOL_41).unwrap();
    assert_eq!(
        (ok.affected_rows, ok.last_insert_id, ok.status, ok.warnings),
        (1, 77, SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT, 3)
    );
    assert_eq!(out.len(), 7);
}

#[test]
fn info_is_kept_length_encoded() {
    let info = b"Records: 3  Duplicates: 0  Warnings: 0";
    let p = tracked_ok(
        3,
        1,
        SERVER_STATUS_AUTOCOMMIT | SERVER_SESSION_STATE_CHANGED,
        info,
        &[sysvar(b"last_gtid", b"0-1-9")],
    );
    assert_eq!(tracked_variable(&p, "last_gtid"), Some(&b"0-1-9"[..]));
    let out = untracked(&p).unwrap();
    let mut expected = vec![0x00, 3, 1, 0x02, 0x00, 3, 0, info.len() as u8];
    expected.extend_from_slice(info);
    assert_eq!(out, expected);
    assert_eq!(
        OkPacket::parse(&out, CLIENT_PROTOCOL_41).unwrap().info,
        info
    );
}

#[test]
fn long_lengths_use_multi_byte_prefixes() {
    // Affected rows, insert id, info, entry and block all above 250: 0xFC/0xFD prefixes.
    let value = vec![b'9'; 300];
    let info = vec![b'i'; 70_000];
    let p = tracked_ok(
        1 << 20,
        1 << 40,
        SERVER_SESSION_STATE_CHANGED,
        &info,
        &[sysvar(b"last_gtid", &value)],
    );
    assert_eq!(tracked_variable(&p, "last_gtid"), Some(&value[..]));
    let out = untracked(&p).unwrap();
    // The head is copied as sent (1 + 4 + 9 bytes), then the status and the warnings.
    assert_eq!(&out[..14], &p[..14]);
    assert_eq!(&out[14..16], &[0, 0]);
    assert_eq!(&out[16..18], &p[16..18]);
    let ok = OkPacket::parse(&out, CLIENT_PROTOCOL_41).unwrap();
    assert_eq!(
        (ok.affected_rows, ok.last_insert_id, ok.info),
        (1 << 20, 1 << 40, &info[..])
    );
}

#[test]
fn packets_that_need_no_change() {
    // Nothing after the warnings.
    let p = [0x00, 1, 0, 0x02, 0x00, 0, 0];
    assert_eq!(untracked(&p), None);
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    // An info but no state change: the same bytes in both formats.
    let p = tracked_ok(1, 0, SERVER_STATUS_AUTOCOMMIT, b"Rows matched: 1", &[]);
    assert_eq!(untracked(&p), None);
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
}

#[test]
fn state_flag_without_a_block() {
    // MariaDB sets the flag for clients that do not track; nothing follows the warnings.
    let p = [0x00, 0, 0, 0x02, 0x40, 0, 0];
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    assert_eq!(
        untracked(&p).as_deref(),
        Some(&[0x00, 0, 0, 0x02, 0x00, 0, 0][..])
    );
    // An empty info, then no block.
    let p = [0x00, 0, 0, 0x02, 0x40, 0, 0, 0];
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    assert_eq!(
        untracked(&p).as_deref(),
        Some(&[0x00, 0, 0, 0x02, 0x00, 0, 0][..])
    );
    // An empty block, as MariaDB sends when storing the entries failed.
    let p = [0x00, 0, 0, 0x02, 0x40, 0, 0, 0, 0];
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    assert_eq!(StateEntries::new(&[]).count(), 0);
    assert!(untracked(&p).is_some());
}

#[test]
fn not_ok_packets() {
    let mut err = LAST_GTID_OK.to_vec();
    err[0] = 0xFF;
    assert_eq!(tracked_variable(&err, "last_gtid"), None);
    assert_eq!(untracked(&err), None);
    assert_eq!(tracked_variable(&[], "last_gtid"), None);
    assert_eq!(untracked(&[]), None);
    // A 5-byte EOF is too short to be read as an OK.
    assert_eq!(untracked(&[0xFE, 0, 0, 0x02, 0x40]), None);
    // NULL is not a row count.
    assert_eq!(untracked(&[0x00, 0xFB, 0, 0x02, 0x40, 0, 0]), None);
}

#[test]
fn malformed_blocks() {
    // The block claims more bytes than the packet has.
    let mut p = LAST_GTID_OK.to_vec();
    p[8] = 0x13;
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    assert_eq!(untracked(&p), None);
    // The entry claims more bytes than the block has.
    let mut p = LAST_GTID_OK.to_vec();
    p[10] = 0x11;
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    // The name claims more bytes than the entry has.
    let mut p = LAST_GTID_OK.to_vec();
    p[11] = 0x0F;
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    // The value claims more bytes than the entry has.
    let mut p = LAST_GTID_OK.to_vec();
    p[21] = 0x06;
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    // A NULL value.
    let p = tracked_ok(
        0,
        0,
        SERVER_SESSION_STATE_CHANGED,
        b"",
        &[entry(0, b"\x09last_gtid\xfb")],
    );
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    // A malformed entry before the variable hides it; one after it does not matter.
    let good = sysvar(b"last_gtid", b"0-1-1");
    let bad = entry(0, b"\x20x");
    let p = tracked_ok(
        0,
        0,
        SERVER_SESSION_STATE_CHANGED,
        b"",
        &[bad.clone(), good.clone()],
    );
    assert_eq!(tracked_variable(&p, "last_gtid"), None);
    let p = tracked_ok(0, 0, SERVER_SESSION_STATE_CHANGED, b"", &[good, bad]);
    assert_eq!(tracked_variable(&p, "last_gtid"), Some(&b"0-1-1"[..]));
    // Untracking drops the block without reading its entries.
    assert!(untracked(&p).is_some());
}

#[test]
fn iteration_ends_after_an_error() {
    let block = [0x00, 0x05, 1, 2];
    let mut it = StateEntries::new(&block);
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
    let mut it = StateEntries::new(&[0x02]);
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
fn every_prefix_is_handled() {
    let samples = [
        LAST_GTID_OK.to_vec(),
        tracked_ok(
            1 << 20,
            1 << 40,
            SERVER_SESSION_STATE_CHANGED,
            &[b'i'; 300],
            &[
                entry(SESSION_TRACK_SCHEMA, b"\x04test"),
                sysvar(b"last_gtid", &[b'7'; 260]),
            ],
        ),
    ];
    for p in &samples {
        for n in 0..p.len() {
            let prefix = &p[..n];
            // Every cut loses the variable: it is the last thing in the packet.
            assert_eq!(tracked_variable(prefix, "last_gtid"), None, "prefix {n}");
            if let Some(out) = untracked(prefix) {
                // Only cuts at a part boundary are still well-formed.
                let ok = OkPacket::parse(&out, CLIENT_PROTOCOL_41).unwrap();
                assert_eq!(ok.status & SERVER_SESSION_STATE_CHANGED, 0);
            }
        }
        assert!(tracked_variable(p, "last_gtid").is_some());
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    // Every single-byte corruption of the sample, with a few values that matter to lenenc.
    let p = tracked_ok(
        5,
        9,
        SERVER_SESSION_STATE_CHANGED,
        b"info",
        &[sysvar(b"autocommit", b"ON"), sysvar(b"last_gtid", b"0-1-3")],
    );
    for i in 0..p.len() {
        for v in [0x00, 0x01, 0x7F, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF] {
            let mut q = p.clone();
            q[i] = v;
            let _ = tracked_variable(&q, "last_gtid");
            let _ = untracked(&q);
            let _ = StateEntries::new(&q[i..]).count();
        }
    }
    // And some pseudo-random packets.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..2000 {
        let mut q = Vec::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        for k in 0..(seed % 40) {
            q.push((seed >> (k % 8 * 8)) as u8 ^ k as u8);
        }
        // Mostly OK headers, so that the parse gets past the first byte.
        if let Some(header) = q.first_mut() {
            *header = if *header & 1 == 0 { 0x00 } else { 0xFE };
        }
        let _ = tracked_variable(&q, "last_gtid");
        let _ = untracked(&q);
    }
}
