//! Property tests of every parser that reads peer bytes: whatever a client or a server sends,
//! parsing returns a value or an error, never panics, and what it returns is bounded by what
//! it read (borrowed views lie within the input; built payloads are no larger than the input
//! and what was asked to be added). Allocation itself is measured in `proptest_alloc.rs`.

mod strategies;

use std::collections::HashMap;

use bytes::BytesMut;
use proptest::prelude::*;

use strategies::*;
use switchyard_protocol::caps::*;
use switchyard_protocol::command::*;
use switchyard_protocol::handshake::{
    connect_attribute, is_ssl_request, parse_auth_switch, ChangeUser, HandshakeResponse,
    ServerHandshake,
};
use switchyard_protocol::packets::{parse_eof, ErrPacket, OkPacket};
use switchyard_protocol::reply::{PacketKind, Progress, ReplyTracker};
use switchyard_protocol::session_track::{tracked_variable, untrack_ok, StateEntries};
use switchyard_protocol::stmt::{
    execute_param_types, execute_with_types, set_command_stmt_id, set_prepare_ok_stmt_id,
};
use switchyard_protocol::thread_ids::{IdRewrite, RowFormat};
use switchyard_protocol::wire::{lenenc_int_len, put_lenenc_bytes, put_lenenc_int, Reader};
use switchyard_protocol::{auth, Command};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

// ---------------------------------------------------------------------------------------------
// wire

/// One read of a [`Reader`], as a parser would chain them.
#[derive(Debug, Clone, Copy)]
enum Read {
    U8,
    U16,
    U24,
    U32,
    U64,
    Take(usize),
    LenencInt,
    LenencIntOrNull,
    LenencBytes,
    LenencBytesOrNull,
    NullTerminated,
}

fn read() -> impl Strategy<Value = Read> {
    prop_oneof![
        Just(Read::U8),
        Just(Read::U16),
        Just(Read::U24),
        Just(Read::U32),
        Just(Read::U64),
        (0usize..64).prop_map(Read::Take),
        Just(Read::Take(usize::MAX)),
        Just(Read::LenencInt),
        Just(Read::LenencIntOrNull),
        Just(Read::LenencBytes),
        Just(Read::LenencBytesOrNull),
        Just(Read::NullTerminated),
    ]
}

/// Payloads made of length-encoded strings (some claiming more than follows) and any bytes.
fn lenenc_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![lenenc_string(), bytes(6)], 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config(1000))]

    /// Any sequence of reads over any bytes: each read either fails or consumes what it
    /// returns, and a length-encoded string is never longer than what was left.
    #[test]
    fn reader_reads_stay_within_the_input(input in lenenc_soup(), reads in prop::collection::vec(read(), 0..12)) {
        let mut r = Reader::new(&input);
        for op in reads {
            let before = r.remaining();
            let slice: Option<&[u8]> = match op {
                Read::U8 => r.u8().ok().map(|_| &[][..]),
                Read::U16 => r.u16().ok().map(|_| &[][..]),
                Read::U24 => r.u24().ok().map(|v| { assert!(v < 1 << 24); &[][..] }),
                Read::U32 => r.u32().ok().map(|_| &[][..]),
                Read::U64 => r.u64().ok().map(|_| &[][..]),
                Read::Take(n) => r.take(n).ok(),
                Read::LenencInt => r.lenenc_int().ok().map(|_| &[][..]),
                Read::LenencIntOrNull => r.lenenc_int_or_null().ok().map(|_| &[][..]),
                Read::LenencBytes => r.lenenc_bytes().ok(),
                Read::LenencBytesOrNull => r.lenenc_bytes_or_null().ok().map(Option::unwrap_or_default),
                Read::NullTerminated => Some(r.null_terminated()),
            };
            prop_assert!(r.remaining() <= before);
            if let Some(s) = slice {
                prop_assert!(within(&input, s));
                prop_assert!(s.len() <= before - r.remaining());
            }
        }
    }

    /// Length-encoded integers and strings read back as written, in the size announced.
    #[test]
    fn lenenc_round_trip(n in lenenc_value(), s in bytes(300)) {
        let mut v = Vec::new();
        put_lenenc_int(&mut v, n);
        prop_assert_eq!(v.len(), lenenc_int_len(n));
        let mut r = Reader::new(&v);
        prop_assert_eq!(r.lenenc_int().unwrap(), n);
        prop_assert!(r.is_empty());

        let mut v = Vec::new();
        put_lenenc_bytes(&mut v, &s);
        let mut r = Reader::new(&v);
        prop_assert_eq!(r.lenenc_bytes().unwrap(), &s[..]);
        prop_assert!(r.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// handshake

/// A server greeting as [`ServerHandshake::write`] makes it, with any fields.
fn greeting() -> impl Strategy<Value = Vec<u8>> {
    (
        bytes(24),
        any::<u32>(),
        prop::collection::vec(1u8..=255, 20),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        bytes(24),
    )
        .prop_map(
            |(version, id, seed, caps, ext, collation, status, plugin)| {
                let strip = |v: Vec<u8>| v.into_iter().filter(|&b| b != 0).collect::<Vec<u8>>();
                let hs = ServerHandshake {
                    server_version: strip(version).into(),
                    connection_id: id,
                    seed: seed.into(),
                    capabilities: caps,
                    extended_capabilities: ext,
                    collation,
                    status,
                    auth_plugin: strip(plugin).into(),
                };
                let mut buf = BytesMut::new();
                hs.write(&mut buf);
                buf.to_vec()
            },
        )
}

/// A handshake response as [`HandshakeResponse::write`] makes it, with any fields.
fn handshake_response() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u32>(),
        any::<u32>(),
        bytes(12),
        bytes(24),
        prop::option::of(bytes(12)),
        prop::option::of(bytes(24)),
        prop::option::of(lenenc_soup()),
    )
        .prop_map(|(caps, ext, user, auth, db, plugin, attrs)| {
            let strip = |v: &[u8]| v.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>();
            let (user, db, plugin) = (
                strip(&user),
                db.map(|d| strip(&d)),
                plugin.map(|p| strip(&p)),
            );
            let resp = HandshakeResponse {
                capabilities: caps | CLIENT_PROTOCOL_41,
                extended_capabilities: ext,
                max_packet: 1 << 24,
                collation: 45,
                user: &user,
                auth_response: &auth,
                db: db.as_deref(),
                auth_plugin: plugin.as_deref(),
                attributes: attrs.as_deref(),
            };
            let mut buf = BytesMut::new();
            resp.write(&mut buf);
            buf.to_vec()
        })
}

proptest! {
    #![proptest_config(config(1000))]

    /// The greeting of any server: parsed or refused, and what is kept is no larger than the
    /// greeting.
    #[test]
    fn server_greeting_never_panics(p in prop_oneof![mutated(greeting()), bytes(64)]) {
        if let Ok(hs) = ServerHandshake::parse(&p) {
            prop_assert!(hs.seed.len() >= 8);
            prop_assert!(hs.server_version.len() + hs.seed.len() + hs.auth_plugin.len() <= p.len());
        }
    }

    /// The first packet of any client: a view of it, or an error.
    #[test]
    fn handshake_response_never_panics(p in prop_oneof![3 => mutated(handshake_response()), 1 => bytes(64)]) {
        let _ = is_ssl_request(&p);
        if let Ok(resp) = HandshakeResponse::parse(&p) {
            prop_assert!(resp.capabilities & CLIENT_PROTOCOL_41 != 0);
            for part in [resp.user, resp.auth_response, resp.db.unwrap_or_default(),
                         resp.auth_plugin.unwrap_or_default(), resp.attributes.unwrap_or_default()] {
                prop_assert!(within(&p, part));
            }
            for key in [&b"_client_name"[..], b"", b"program_name"] {
                if let Some(v) = resp.attribute(key) {
                    prop_assert!(within(&p, v));
                }
            }
        }
    }

    /// What the proxy writes for a backend login reads back as it was written.
    #[test]
    fn handshake_response_round_trip(
        caps in any::<u32>(),
        user in bytes(12),
        auth in bytes(300),
        db in prop::option::of(prop::collection::vec(1u8..=255, 1..12)),
        plugin in prop::collection::vec(1u8..=255, 0..24),
        attrs in prop::option::of(lenenc_soup()),
    ) {
        let user: Vec<u8> = user.into_iter().filter(|&b| b != 0).collect();
        let resp = HandshakeResponse {
            capabilities: caps | CLIENT_PROTOCOL_41 | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS,
            extended_capabilities: 0,
            max_packet: 1 << 24,
            collation: 45,
            user: &user,
            auth_response: &auth,
            db: db.as_deref(),
            auth_plugin: Some(&plugin),
            attributes: attrs.as_deref(),
        };
        let mut buf = BytesMut::new();
        resp.write(&mut buf);
        let back = HandshakeResponse::parse(&buf).unwrap();
        prop_assert_eq!(back.user, &user[..]);
        prop_assert_eq!(back.auth_response, &auth[..]);
        prop_assert_eq!(back.db, db.as_deref());
        prop_assert_eq!(back.auth_plugin, Some(&plugin[..]));
        prop_assert_eq!(back.attributes, attrs.as_deref());
    }

    /// COM_CHANGE_USER bodies, connect attributes and auth switches from anyone.
    #[test]
    fn change_user_and_auth_switch_never_panic(
        body in prop_oneof![lenenc_soup(), bytes(48)],
        caps in any::<u32>(),
        key in bytes(4),
    ) {
        if let Ok(c) = ChangeUser::parse(&body, caps) {
            for part in [c.user, c.auth_response, c.db.unwrap_or_default(),
                         c.auth_plugin.unwrap_or_default(), c.attributes.unwrap_or_default()] {
                prop_assert!(within(&body, part));
            }
        }
        if let Some(v) = connect_attribute(&body, &key) {
            prop_assert!(within(&body, v));
        }
        if let Ok((plugin, seed)) = parse_auth_switch(&body) {
            prop_assert!(within(&body, plugin) && within(&body, seed));
        }
    }

    /// A client's scramble, of any length, against any stored hash.
    #[test]
    fn native_auth_never_panics(response in bytes(40), seed in bytes(24), stage2 in any::<Option<[u8; 20]>>(), hash in ".{0,48}") {
        let _ = auth::verify_native(&response, &seed, stage2.as_ref());
        let _ = auth::parse_native_hash(&hash);
    }
}

// ---------------------------------------------------------------------------------------------
// commands

proptest! {
    #![proptest_config(config(2000))]

    /// Any command packet: parsed into a view of it, or an error only when a fixed-size field
    /// is cut short.
    #[test]
    fn command_parse_is_total(p in prop_oneof![
        bytes(16),
        (prop::sample::select(vec![COM_PROCESS_KILL, COM_STMT_EXECUTE, COM_STMT_SEND_LONG_DATA,
            COM_STMT_CLOSE, COM_STMT_RESET, COM_SET_OPTION, COM_STMT_FETCH]), bytes(12))
            .prop_map(|(code, rest)| [&[code][..], &rest].concat()),
    ]) {
        let needs = match p.first() {
            None => 1,
            Some(&COM_PROCESS_KILL | &COM_STMT_SEND_LONG_DATA | &COM_STMT_CLOSE | &COM_STMT_RESET) => 5,
            Some(&COM_STMT_EXECUTE) => 6,
            Some(&COM_SET_OPTION) => 3,
            Some(&COM_STMT_FETCH) => 9,
            Some(_) => 1,
        };
        match Command::parse(&p) {
            Ok(cmd) => {
                prop_assert!(p.len() >= needs);
                prop_assert!(!cmd.name().is_empty());
                let _ = (cmd.expects_reply(), cmd.reply_has_status());
                if let Command::InitDb(s) | Command::Query(s) | Command::FieldList(s)
                    | Command::ChangeUser(s) | Command::StmtPrepare(s) = cmd {
                    prop_assert!(within(&p, s));
                    prop_assert_eq!(s.len(), p.len() - 1);
                }
            }
            Err(_) => prop_assert!(p.len() < needs),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// OK / ERR / EOF and the reply tracker

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn generic_packets_never_panic(p in reply_packet(), caps in any::<u32>()) {
        if let Ok(ok) = OkPacket::parse(&p, caps) {
            prop_assert!(within(&p, ok.info) && within(&p, ok.session_state));
        }
        if let Ok(e) = ErrPacket::parse(&p) {
            prop_assert!(e.sqlstate.len() == 5);
            prop_assert!(within(&p, e.message));
            let _ = e.to_error();
        }
        let _ = parse_eof(&p);
    }

    /// Any server, any command, any frames: the tracker answers each frame or errors; it
    /// counts every byte, never reports more rows than frames, and after `Done` refuses more.
    #[test]
    fn reply_tracker_never_panics(
        caps in any::<u32>(),
        cmds in prop::collection::vec((command(), prop::collection::vec(reply_frame(), 0..16)), 1..4),
    ) {
        let mut big = Vec::new();
        let mut t = ReplyTracker::new(caps);
        for (cmd, frames) in &cmds {
            let expects = t.start(cmd);
            prop_assert_eq!(expects, cmd.expects_reply());
            prop_assert_eq!(t.is_done(), !expects);
            let mut bytes = 0u64;
            let mut failed = false;
            for (i, frame) in frames.iter().enumerate() {
                let rows = t.summary().rows;
                let was_done = t.is_done();
                let payload = frame.bytes(&mut big);
                let progress = t.on_frame(payload);
                bytes += payload.len() as u64 + 4;
                prop_assert_eq!(t.summary().bytes, bytes);
                prop_assert!(t.summary().rows <= rows + 1);
                prop_assert!(t.summary().rows as usize <= i + 1);
                prop_assert!(t.summary().column_sets <= t.summary().result_sets);
                if t.last_kind() == PacketKind::Row {
                    prop_assert_eq!(t.summary().rows, rows + 1);
                }
                match progress {
                    // The proxy drops a connection whose reply it cannot follow; feeding on
                    // must still not panic.
                    Err(_) => failed = true,
                    Ok(_) if was_done && !failed => {
                        prop_assert!(false, "a frame after the end of the reply was accepted");
                    }
                    Ok(Progress::Done) => prop_assert!(t.is_done()),
                    Ok(Progress::LocalInfile) => t.local_infile_sent(),
                    Ok(Progress::More) => prop_assert!(!t.is_done()),
                }
            }
        }
    }

    /// Well-formed result sets, chained with `SERVER_MORE_RESULTS_EXISTS`: the tracker says
    /// `Done` at the last packet and not before, and counts the rows.
    #[test]
    fn reply_tracker_follows_well_formed_result_sets(
        deprecate_eof in any::<bool>(),
        sets in prop::collection::vec((1u64..5, prop::collection::vec(row(), 0..5)), 1..4),
    ) {
        let caps = CLIENT_PROTOCOL_41 | if deprecate_eof { CLIENT_DEPRECATE_EOF } else { 0 };
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut rows = 0;
        for (i, (columns, set_rows)) in sets.iter().enumerate() {
            let more = if i + 1 < sets.len() { SERVER_MORE_RESULTS_EXISTS } else { 0 };
            frames.push(lenenc(*columns));
            for _ in 0..*columns {
                frames.push(b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00".to_vec());
            }
            if !deprecate_eof {
                frames.push(vec![0xFE, 0, 0, 2, 0]);
            }
            for r in set_rows {
                // A row is never empty, never starts with 0xFF (no length-encoded value does,
                // and a binary row starts with 0x00), nor with 0xFE unless it is 16 MiB long.
                let mut r = r.clone();
                if r.first().is_none_or(|&b| b >= 0xFE) {
                    r.insert(0, 0);
                }
                frames.push(r);
                rows += 1;
            }
            let status = 2 | more;
            frames.push(if deprecate_eof {
                [&[0xFE, 0, 0][..], &status.to_le_bytes(), &[0, 0]].concat()
            } else {
                [&[0xFE, 0, 0][..], &status.to_le_bytes()].concat()
            });
        }
        let mut t = ReplyTracker::new(caps);
        prop_assert!(t.start(&Command::Query(b"SELECT 1")));
        for (i, f) in frames.iter().enumerate() {
            let progress = t.on_frame(f).unwrap();
            let last = i + 1 == frames.len();
            prop_assert_eq!(progress, if last { Progress::Done } else { Progress::More });
        }
        prop_assert_eq!(t.summary().rows, rows);
        prop_assert_eq!(t.summary().column_sets as usize, sets.len());
        prop_assert!(t.summary().error.is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// session tracking

proptest! {
    #![proptest_config(config(2000))]

    /// Any OK packet: a tracked variable is a view of it, and the untracked rewrite is never
    /// longer than the original.
    #[test]
    fn session_track_never_panics(p in prop_oneof![3 => mutated(ok_packet()), 1 => bytes(32)], name in var_name()) {
        if let Some(v) = tracked_variable(&p, &name) {
            prop_assert!(within(&p, v));
        }
        let mut out = BytesMut::new();
        if untrack_ok(&p, &mut out) {
            prop_assert!(out.len() <= p.len());
            // It reserves the head plus a length-encoded info's largest prefix, nine bytes.
            prop_assert!(out.capacity() <= p.len() + 16, "capacity {} for {} bytes", out.capacity(), p.len());
        } else {
            prop_assert!(out.is_empty());
        }
    }

    /// Any state block: each entry consumes bytes, so there are never more entries than bytes,
    /// and an error ends the iteration.
    #[test]
    fn state_entries_are_bounded(block in prop_oneof![state_block(), bytes(32)]) {
        let mut n = 0;
        let mut entries = StateEntries::new(&block);
        for e in entries.by_ref() {
            n += 1;
            prop_assert!(n <= block.len());
            match e {
                Ok((_, data)) => prop_assert!(within(&block, data)),
                Err(_) => break,
            }
        }
        prop_assert!(entries.next().is_none());
    }

    /// A well-formed tracked OK: the first entry of a variable is found (names compare ASCII
    /// case-insensitively), and the untracked rewrite keeps every other field.
    #[test]
    fn session_track_well_formed(
        affected in lenenc_value(),
        id in lenenc_value(),
        status in status(),
        warnings in any::<u16>(),
        info in bytes(16),
        block in state_block(),
        name in var_name(),
    ) {
        let mut p = vec![0x00];
        put_lenenc_int(&mut p, affected);
        put_lenenc_int(&mut p, id);
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&warnings.to_le_bytes());
        let changed = status & SERVER_SESSION_STATE_CHANGED != 0;
        put_lenenc_bytes(&mut p, &info);
        if changed {
            put_lenenc_bytes(&mut p, &block);
        }

        // The expected value: the first well-formed variable entry of that name, if the block
        // has no malformed entry before it.
        let mut expected = None;
        if changed {
            for e in StateEntries::new(&block) {
                let Ok((kind, data)) = e else { break };
                if kind != 0 {
                    continue;
                }
                let mut r = Reader::new(data);
                let Ok(n) = r.lenenc_bytes() else { break };
                if n.eq_ignore_ascii_case(name.as_bytes()) {
                    expected = r.lenenc_bytes().ok();
                    break;
                }
            }
        }
        prop_assert_eq!(tracked_variable(&p, &name), expected);

        let mut out = BytesMut::new();
        prop_assert_eq!(untrack_ok(&p, &mut out), changed);
        if changed {
            let tracked = OkPacket::parse(&p, CLIENT_SESSION_TRACK).unwrap();
            let plain = OkPacket::parse(&out, 0).unwrap();
            prop_assert_eq!(plain.affected_rows, affected);
            prop_assert_eq!(plain.last_insert_id, id);
            prop_assert_eq!(plain.status, status & !SERVER_SESSION_STATE_CHANGED);
            prop_assert_eq!(plain.warnings, warnings);
            prop_assert_eq!(plain.info, tracked.info);
            prop_assert!(out.len() <= p.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// prepared statements

/// A COM_STMT_EXECUTE-like payload: the header, a bitmap, a bound flag and parameter bytes.
fn execute_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (any::<u32>(), bytes(4), any::<u8>(), bytes(24)).prop_map(|(id, bitmap, flag, rest)| {
            let mut p = vec![COM_STMT_EXECUTE];
            p.extend_from_slice(&id.to_le_bytes());
            p.extend_from_slice(&[0, 1, 0, 0, 0]);
            p.extend_from_slice(&bitmap);
            p.push(flag % 3);
            p.extend_from_slice(&rest);
            p
        }),
        1 => bytes(24),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// Statement ids are overwritten in place, in the id's four bytes only, and only in the
    /// packets that carry one.
    #[test]
    fn stmt_id_rewrites_are_in_place(mut p in prop_oneof![bytes(12), prepare_ok_packet(), execute_payload()], id in any::<u32>()) {
        let original = p.clone();
        let is_stmt_command = matches!(p.first(), Some(&(COM_STMT_EXECUTE | COM_STMT_SEND_LONG_DATA
            | COM_STMT_CLOSE | COM_STMT_RESET | COM_STMT_FETCH)));
        let changed = set_command_stmt_id(&mut p, id);
        prop_assert_eq!(changed, is_stmt_command && p.len() >= 5);
        if changed {
            prop_assert_eq!(&p[1..5], &id.to_le_bytes());
            prop_assert_eq!(&p[5..], &original[5..]);
        } else {
            prop_assert_eq!(&p, &original);
        }

        let mut q = original.clone();
        let changed = set_prepare_ok_stmt_id(&mut q, id);
        prop_assert_eq!(changed, q.len() >= 10 && q[0] == 0);
        if !changed {
            prop_assert_eq!(&q, &original);
        }
    }

    /// Parameter types are a view of the execute, two bytes per parameter; putting them into
    /// an execute without them adds exactly them, and they read back.
    #[test]
    fn execute_types_are_bounded(
        p in execute_payload(),
        num_params in prop_oneof![0u16..20, any::<u16>()],
        types in prop_oneof![bytes(40), any::<u16>().prop_map(|n| vec![0xFD; 2 * usize::from(n % 20)])],
    ) {
        if let Some(t) = execute_param_types(&p, num_params) {
            prop_assert!(within(&p, t));
            prop_assert_eq!(t.len(), 2 * usize::from(num_params));
        }
        let mut out = BytesMut::new();
        if execute_with_types(&p, num_params, &types, &mut out) {
            prop_assert_eq!(types.len(), 2 * usize::from(num_params));
            prop_assert_eq!(out.len(), p.len() + types.len());
            prop_assert!(out.capacity() <= p.len() + types.len() + 16);
            prop_assert_eq!(execute_param_types(&out, num_params), Some(&types[..]));
        } else {
            prop_assert!(out.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// thread ids in result sets

/// A reply's packets as the thread-id rewrite sees them.
fn result_packets() -> impl Strategy<Value = Vec<(PacketKind, Vec<u8>)>> {
    prop::collection::vec(
        prop_oneof![
            1 => lenenc_value().prop_map(|n| (PacketKind::ColumnCount, lenenc(n))),
            3 => mutated(column_def()).prop_map(|d| (PacketKind::ColumnDef, d)),
            4 => row().prop_map(|r| (PacketKind::Row, r)),
            1 => bytes(8).prop_map(|b| (PacketKind::Other, b)),
        ],
        0..12,
    )
}

proptest! {
    #![proptest_config(config(2000))]

    /// Any result set from a server: rows are rewritten or left alone, never with a panic; a
    /// binary row keeps its length, and a text row grows by at most the digits of an id per
    /// column.
    #[test]
    fn thread_id_rewrite_never_panics(
        binary in any::<bool>(),
        ext in any::<bool>(),
        packets in result_packets(),
        own in any::<u64>(),
    ) {
        let format = if binary { RowFormat::Binary } else { RowFormat::Text };
        let sessions = HashMap::from([(1, 1001), (40, u64::MAX), (own, 7)]);
        let ext = if ext { MARIADB_CLIENT_EXTENDED_METADATA } else { 0 };
        let mut r = IdRewrite::new(format, sessions, (own, 3), ext);
        let mut columns = 0usize;
        for (kind, mut payload) in packets {
            match kind {
                PacketKind::ColumnCount => columns = 0,
                PacketKind::ColumnDef => columns += 1,
                _ => {}
            }
            let len = payload.len();
            let mut out = BytesMut::new();
            if r.on_packet(kind, &mut payload, &mut out) {
                prop_assert_eq!(kind, PacketKind::Row);
                prop_assert_eq!(format, RowFormat::Text);
                // Each value becomes at most a one-byte length and 20 digits.
                prop_assert!(out.len() <= len + 21 * columns);
            }
            prop_assert_eq!(payload.len(), len);
        }
    }
}
