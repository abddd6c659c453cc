//! Generators of peer bytes for the property tests: random bytes alone rarely get past a
//! parser's first check, so most inputs here are packets of the right shape with edge-case
//! fields (length-encoded integers near their limits, status flags that change the format),
//! then mutated and truncated.

// Each test binary that includes this module uses a different subset of it.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;

use switchyard_protocol::caps::*;
use switchyard_protocol::codec::MAX_FRAME;
use switchyard_protocol::wire::{put_lenenc_bytes, put_lenenc_int};
use switchyard_protocol::Command;

/// `cases` cases, with failures reported but not saved to files: every failure found is kept
/// as a named regression test beside the code it was found in.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// True if `inner` is empty or lies within `outer`: what a borrowed parser returns must be
/// a view of its input, never bytes from elsewhere (and so never larger than the input).
pub fn within(outer: &[u8], inner: &[u8]) -> bool {
    if inner.is_empty() {
        return true;
    }
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    o.start <= i.start && i.end <= o.end
}

/// Values of length-encoded integers: the boundaries between the 1-, 3-, 4- and 9-byte forms,
/// the values that overflow additions, and any other.
pub fn lenenc_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..300,
        1 => prop::sample::select(vec![
            250u64,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::from(u32::MAX),
            i64::MAX as u64,
            u64::MAX
        ]),
        1 => (u64::MAX - 64)..=u64::MAX,
        2 => any::<u64>(),
    ]
}

pub fn lenenc(n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    put_lenenc_int(&mut v, n);
    v
}

/// Bytes in which a length-encoded length may claim more than what follows.
pub fn lenenc_string() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..24).prop_map(|s| {
            let mut v = Vec::new();
            put_lenenc_bytes(&mut v, &s);
            v
        }),
        1 => (lenenc_value(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(n, tail)| {
            let mut v = lenenc(n);
            v.extend_from_slice(&tail);
            v
        }),
        1 => Just(vec![0xFB]),
        1 => Just(vec![0xFF]),
    ]
}

/// Server status flags, biased towards the ones that change how a reply goes on.
pub fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        2 => any::<u16>(),
        1 => prop::sample::select(vec![
            0u16,
            SERVER_STATUS_AUTOCOMMIT,
            SERVER_MORE_RESULTS_EXISTS,
            SERVER_STATUS_CURSOR_EXISTS,
            SERVER_STATUS_CURSOR_EXISTS | SERVER_STATUS_LAST_ROW_SENT,
            SERVER_SESSION_STATE_CHANGED,
            SERVER_SESSION_STATE_CHANGED | SERVER_MORE_RESULTS_EXISTS,
        ]),
    ]
}

/// A mutation of a well-formed packet: some bytes overwritten, then maybe cut short.
#[derive(Debug, Clone)]
pub struct Mutation {
    edits: Vec<(Index, u8)>,
    cut: Option<Index>,
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    (
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        prop::option::weighted(0.3, any::<Index>()),
    )
        .prop_map(|(edits, cut)| Mutation { edits, cut })
}

impl Mutation {
    pub fn apply(&self, mut p: Vec<u8>) -> Vec<u8> {
        if p.is_empty() {
            return p;
        }
        for (at, b) in &self.edits {
            let i = at.index(p.len());
            p[i] = *b;
        }
        if let Some(cut) = &self.cut {
            p.truncate(cut.index(p.len() + 1));
        }
        p
    }
}

/// A well-formed packet shape, mutated half of the time.
pub fn mutated(base: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (base, prop::option::of(mutation())).prop_map(|(p, m)| match m {
        Some(m) => m.apply(p),
        None => p,
    })
}

/// An OK packet as a server writes it, in either format: with `CLIENT_SESSION_TRACK` the info
/// may be followed by a state block.
pub fn ok_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x00u8, 0xFE]),
        lenenc_value(),
        lenenc_value(),
        status(),
        any::<u16>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
        prop::option::of(state_block()),
    )
        .prop_map(|(header, affected, id, status, warnings, info, state)| {
            let mut p = vec![header];
            put_lenenc_int(&mut p, affected);
            put_lenenc_int(&mut p, id);
            p.extend_from_slice(&status.to_le_bytes());
            p.extend_from_slice(&warnings.to_le_bytes());
            if info.is_some() || state.is_some() {
                put_lenenc_bytes(&mut p, info.as_deref().unwrap_or_default());
            }
            if let Some(state) = state {
                put_lenenc_bytes(&mut p, &state);
            }
            p
        })
}

/// A session state block (without its length): entries of a type byte and length-encoded
/// data, system variables with a name and a value inside.
pub fn state_block() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(state_entry(), 0..4).prop_map(|entries| entries.concat())
}

pub fn state_entry() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => (var_name(), prop::collection::vec(any::<u8>(), 0..12)).prop_map(|(name, value)| {
            let mut data = Vec::new();
            put_lenenc_bytes(&mut data, name.as_bytes());
            put_lenenc_bytes(&mut data, &value);
            let mut e = vec![0u8];
            put_lenenc_bytes(&mut e, &data);
            e
        }),
        1 => (0u8..8, prop::collection::vec(any::<u8>(), 0..12)).prop_map(|(kind, data)| {
            let mut e = vec![kind];
            put_lenenc_bytes(&mut e, &data);
            e
        }),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ]
}

/// Variable names from a small set, in mixed case, so that entries repeat names.
pub fn var_name() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["last_gtid", "autocommit", "sql_mode", "x"]),
        any::<u8>(),
    )
        .prop_map(|(name, case)| {
            name.chars()
                .enumerate()
                .map(|(i, c)| {
                    if case >> (i % 8) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
}

/// An EOF packet: the classic five bytes, or a bare `0xFE`.
pub fn eof_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<u16>(), status()).prop_map(|(warnings, status)| {
            let mut p = vec![0xFE];
            p.extend_from_slice(&warnings.to_le_bytes());
            p.extend_from_slice(&status.to_le_bytes());
            p
        }),
        Just(vec![0xFE]),
    ]
}

pub fn err_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 5)),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(code, sqlstate, message)| {
            let mut p = vec![0xFF];
            p.extend_from_slice(&code.to_le_bytes());
            if let Some(state) = sqlstate {
                p.push(b'#');
                p.extend_from_slice(&state);
            }
            p.extend_from_slice(&message);
            p
        })
}

/// A COM_STMT_PREPARE_OK: small counts mostly, so that definitions follow, and any count.
pub fn prepare_ok_packet() -> impl Strategy<Value = Vec<u8>> {
    let count = prop_oneof![3 => 0u16..4, 1 => any::<u16>()];
    (
        any::<u32>(),
        count.clone(),
        count,
        prop::option::of(any::<u16>()),
    )
        .prop_map(|(id, columns, params, warnings)| {
            let mut p = vec![0x00];
            p.extend_from_slice(&id.to_le_bytes());
            p.extend_from_slice(&columns.to_le_bytes());
            p.extend_from_slice(&params.to_le_bytes());
            p.push(0);
            if let Some(w) = warnings {
                p.extend_from_slice(&w.to_le_bytes());
            }
            p
        })
}

/// One frame of a reply. `Full` is a frame of exactly [`MAX_FRAME`] bytes (so a packet that
/// goes on in the next frame) starting with the given byte; it is built when fed.
#[derive(Debug, Clone)]
pub enum Frame {
    Bytes(Vec<u8>),
    Full(u8),
}

impl Frame {
    pub fn len(&self) -> usize {
        match self {
            Frame::Bytes(b) => b.len(),
            Frame::Full(_) => MAX_FRAME,
        }
    }

    /// The frame's bytes; `big` is a reusable buffer for full frames.
    pub fn bytes<'a>(&'a self, big: &'a mut Vec<u8>) -> &'a [u8] {
        match self {
            Frame::Bytes(b) => b,
            Frame::Full(first) => {
                if big.len() != MAX_FRAME {
                    *big = vec![0; MAX_FRAME];
                }
                big[0] = *first;
                big
            }
        }
    }
}

/// Any packet a server might send in a reply, well-formed or not.
pub fn reply_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => mutated(ok_packet()),
        2 => mutated(eof_packet()),
        1 => mutated(err_packet()),
        2 => mutated(lenenc_value().prop_map(lenenc)),
        2 => mutated(prepare_ok_packet()),
        1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(|name| [&[0xFB][..], &name].concat()),
        3 => prop::collection::vec(lenenc_string(), 0..4).prop_map(|v| v.concat()),
        2 => prop::collection::vec(any::<u8>(), 0..32),
        1 => Just(Vec::new()),
    ]
}

pub fn reply_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        40 => reply_packet().prop_map(Frame::Bytes),
        1 => prop::sample::select(vec![0x00u8, 0x01, 0xFB, 0xFE, 0xFF]).prop_map(Frame::Full),
    ]
}

/// A command as the tracker is started with, with the fields that change what it expects.
pub fn command() -> impl Strategy<Value = Command<'static>> {
    prop_oneof![
        Just(Command::Query(b"SELECT 1")),
        any::<(u32, u8)>().prop_map(|(stmt_id, flags)| Command::StmtExecute { stmt_id, flags }),
        Just(Command::StmtPrepare(b"SELECT ?")),
        any::<(u32, u32)>().prop_map(|(stmt_id, rows)| Command::StmtFetch { stmt_id, rows }),
        Just(Command::FieldList(b"t")),
        Just(Command::Statistics),
        Just(Command::InitDb(b"test")),
        Just(Command::Ping),
        any::<u32>().prop_map(Command::ProcessKill),
        Just(Command::ChangeUser(b"")),
        any::<u32>().prop_map(|stmt_id| Command::StmtReset { stmt_id }),
        any::<u16>().prop_map(Command::SetOption),
        Just(Command::ResetConnection),
        any::<u8>().prop_map(Command::Other),
        Just(Command::Quit),
        any::<u32>().prop_map(|stmt_id| Command::StmtClose { stmt_id }),
        any::<u32>().prop_map(|stmt_id| Command::StmtSendLongData { stmt_id }),
    ]
}

/// A column definition, whose table and name are those the thread-id rewrite looks for
/// half of the time, with any type.
pub fn column_def() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        ("PROCESSLIST", "Id", "ID"),
        ("threads", "PROCESSLIST_ID", "PROCESSLIST_ID"),
        ("", "Id", ""),
        ("", "CONNECTION_ID()", ""),
        ("t", "a", "a"),
    ]);
    let ty = prop_oneof![
        2 => prop::sample::select(vec![3u8, 8, 0xFC, 0xFD, 0xFE, 6, 7, 12]),
        1 => any::<u8>(),
    ];
    (names, ty, any::<u16>(), any::<bool>()).prop_map(|((table, name, org), ty, flags, ext)| {
        let mut p = Vec::new();
        let mut fields = vec!["def", "information_schema", table, table, name, org];
        if ext {
            fields.push("");
        }
        for s in fields {
            put_lenenc_bytes(&mut p, s.as_bytes());
        }
        p.extend_from_slice(&[0x0c, 63, 0, 21, 0, 0, 0, ty]);
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        p
    })
}

/// A row, text or binary: length-encoded values (of any claimed length) and NULLs after a
/// bitmap-sized prefix, or any bytes.
pub fn row() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (
            prop_oneof![
                // A binary row's header and a NULL bitmap without NULLs (for up to six columns).
                Just(vec![0x00, 0x00]),
                prop::collection::vec(any::<u8>(), 0..3),
            ],
            prop::collection::vec(
                prop_oneof![
                    3 => lenenc_string(),
                    1 => lenenc_value().prop_map(lenenc),
                    1 => prop::collection::vec(any::<u8>(), 0..9),
                ],
                0..5
            )
        )
            .prop_map(|(prefix, values)| [prefix, values.concat()].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..32),
    ]
}
