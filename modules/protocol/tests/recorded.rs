//! The reply tracker against replies recorded from a real server (hand-built replies that
//! once went wrong are unit tests of the tracker, `src/reply/tests.rs`).
//!
//! Recordings come from `tests/fidelity/record.py`, a relay that writes each connection to
//! `conn-<n>.rec`: records of 1 byte direction (`C` client to server, `S` server to client), a
//! 4-byte little-endian length and the bytes, in the order they were relayed. Point
//! `SWITCHYARD_RECORDINGS` at the directory (`*.rec.partial`, truncated recordings, are
//! ignored). For every command of every recording, the server's bytes are fed to a
//! [`ReplyTracker`] in pieces of random sizes, pulled out frame by frame as a streaming reader
//! would, and the tracker must say `Done` exactly where the server's reply ends: the reply to a
//! command is the server bytes recorded after it and before the client's next command that
//! expects a reply.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use switchyard_protocol::caps::*;
use switchyard_protocol::codec::{frame_header, HEADER_LEN, MAX_FRAME};
use switchyard_protocol::handshake::{is_ssl_request, HandshakeResponse, ServerHandshake};
use switchyard_protocol::reply::{Progress, ReplyTracker};
use switchyard_protocol::Command;

/// Seeds each recording is run with.
const SEEDS: [u64; 6] = [1, 2, 3, 0x5EED, 0xDEAD_BEEF, 0x1234_5678_9ABC];

/// MariaDB's extended capabilities (the upper 32 bits of its 64-bit flags), which a MariaDB
/// client and server negotiate when the server does not set `CLIENT_MYSQL` (bit 0). The proxy
/// never offers them, so replies through it never have these formats.
const MARIADB_CLIENT_PROGRESS: u32 = 1;
const MARIADB_CLIENT_CACHE_METADATA: u32 = 1 << 4;

/// xorshift64*: small, seeded, good enough for split points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The size of the next piece the "socket" delivers: often tiny (headers split), sometimes
    /// a few KiB.
    fn piece(&mut self) -> usize {
        let r = self.next();
        let max = match r % 4 {
            0 => 4,
            1 => 64,
            2 => 1024,
            _ => 8192,
        };
        1 + ((r >> 8) % max) as usize
    }
}

/// How following one reply went.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// `Done` exactly at the end.
    Exact,
    /// `Done` at `at`, before the end: the bytes from `at` on are left over.
    Early { at: usize },
    /// All bytes up to the end were fed and the tracker still wants more.
    Hang { frames: usize },
    /// The tracker returned an error at the frame starting at `at`.
    Error { at: usize, error: String },
    /// The tracker asked for a local file: the caller handles it and calls `follow` again.
    LocalInfile { at: usize },
}

/// Feeds `srv[start..end]` to `tracker` in random pieces through a buffer, frame by frame.
/// Returns where it stopped.
fn follow(
    tracker: &mut ReplyTracker,
    srv: &[u8],
    start: usize,
    end: usize,
    rng: &mut Rng,
) -> Outcome {
    let mut buf: Vec<u8> = Vec::new();
    // How far the "socket" has delivered; the buffer holds srv[read - buf.len()..read].
    let mut read = start;
    let mut frames = 0;
    loop {
        // Pull out every whole frame in the buffer.
        while let Some((len, _seq)) = frame_header(&buf) {
            if buf.len() < HEADER_LEN + len {
                break;
            }
            let at = read - buf.len();
            let payload = buf[HEADER_LEN..HEADER_LEN + len].to_vec();
            buf.drain(..HEADER_LEN + len);
            frames += 1;
            let frame_end = at + HEADER_LEN + len;
            match tracker.on_frame(&payload) {
                Err(e) => {
                    return Outcome::Error {
                        at,
                        error: e.to_string(),
                    }
                }
                Ok(Progress::More) => {}
                Ok(Progress::Done) => {
                    return if frame_end == end {
                        Outcome::Exact
                    } else {
                        Outcome::Early { at: frame_end }
                    };
                }
                Ok(Progress::LocalInfile) => return Outcome::LocalInfile { at: frame_end },
            }
        }
        if read >= end {
            return Outcome::Hang { frames };
        }
        let n = rng.piece().min(end - read);
        buf.extend_from_slice(&srv[read..read + n]);
        read += n;
    }
}

/// A packet of the client's stream, continuation frames joined.
struct ClientPacket {
    seq: u8,
    payload: Vec<u8>,
    /// Server bytes recorded before the chunk that completed this packet.
    srv_at: usize,
}

struct Conversation {
    /// Every server byte, in order.
    srv: Vec<u8>,
    client: Vec<ClientPacket>,
}

fn read_records(path: &Path) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data.len() - i < 5 {
            return Err(format!(
                "{}: truncated record header at {i}",
                path.display()
            ));
        }
        let dir = data[i];
        let len = u32::from_le_bytes([data[i + 1], data[i + 2], data[i + 3], data[i + 4]]) as usize;
        i += 5;
        if data.len() - i < len || (dir != b'C' && dir != b'S') {
            return Err(format!("{}: bad record at {}", path.display(), i - 5));
        }
        out.push((dir, data[i..i + len].to_vec()));
        i += len;
    }
    Ok(out)
}

fn conversation(records: &[(u8, Vec<u8>)]) -> Conversation {
    let mut srv = Vec::new();
    let mut cli = Vec::new();
    // For each client chunk: (end offset in the client stream, server bytes before it).
    let mut chunks: Vec<(usize, usize)> = Vec::new();
    for (dir, bytes) in records {
        if *dir == b'S' {
            srv.extend_from_slice(bytes);
        } else {
            cli.extend_from_slice(bytes);
            chunks.push((cli.len(), srv.len()));
        }
    }
    let srv_at = |end: usize| {
        let i = chunks.partition_point(|&(chunk_end, _)| chunk_end < end);
        chunks[i].1
    };
    let mut client = Vec::new();
    let mut off = 0;
    'packets: loop {
        let mut payload = Vec::new();
        let mut seq = None;
        loop {
            let Some((len, s)) = frame_header(&cli[off..]) else {
                break 'packets;
            };
            if cli.len() - off < HEADER_LEN + len {
                break 'packets;
            }
            seq.get_or_insert(s);
            payload.extend_from_slice(&cli[off + HEADER_LEN..off + HEADER_LEN + len]);
            off += HEADER_LEN + len;
            if len < MAX_FRAME {
                break;
            }
        }
        client.push(ClientPacket {
            seq: seq.unwrap_or(0),
            payload,
            srv_at: srv_at(off),
        });
    }
    Conversation { srv, client }
}

/// The negotiated capabilities, the offset where the login ends in the server stream, and the
/// negotiated MariaDB extended capabilities; `Err` with a reason to skip the file.
fn login(conv: &Conversation) -> Result<(u32, usize, u32), String> {
    let srv = &conv.srv;
    let (len, _) = frame_header(srv).ok_or("no server greeting")?;
    let greeting = srv
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or("short greeting")?;
    let hs = ServerHandshake::parse(greeting).map_err(|e| format!("greeting: {e}"))?;
    let response = conv.client.first().ok_or("no handshake response")?;
    if is_ssl_request(&response.payload) {
        return Err("TLS connection".into());
    }
    let hr = HandshakeResponse::parse(&response.payload)
        .map_err(|e| format!("handshake response: {e}"))?;
    let caps = hs.capabilities & hr.capabilities;
    if caps & CLIENT_COMPRESS != 0 {
        return Err("compressed connection".into());
    }
    // MariaDB's extended capabilities: the last 4 of the 10 reserved bytes of the greeting,
    // the last 4 of the 23 reserved bytes of the response.
    let mut ext = 0;
    if hs.capabilities & CLIENT_LONG_PASSWORD == 0 && hr.capabilities & CLIENT_LONG_PASSWORD == 0 {
        let v = greeting[1..].iter().position(|&b| b == 0).unwrap_or(0) + 2;
        let o = v + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 6;
        let word = |b: &[u8], o: usize| {
            b.get(o..o + 4)
                .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        };
        ext = word(greeting, o) & word(&response.payload, 28);
    }
    let mut off = HEADER_LEN + len;
    loop {
        let (len, _) = frame_header(&srv[off..]).ok_or("the login does not end")?;
        let p = srv
            .get(off + HEADER_LEN..off + HEADER_LEN + len)
            .ok_or("the login does not end")?;
        off += HEADER_LEN + len;
        match p.first() {
            Some(0x00) => return Ok((caps, off, ext)),
            Some(0xFF) => return Err("login failed".into()),
            _ => {}
        }
    }
}

fn describe(payload: &[u8], prepared: &BTreeMap<u32, Vec<u8>>) -> String {
    let n = payload.len().min(80);
    let text: String = payload[1.min(n)..n]
        .iter()
        .map(|&b| {
            if (0x20..0x7F).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    match Command::parse(payload) {
        Ok(Command::Query(_)) => format!("COM_QUERY {text:?}"),
        Ok(Command::StmtPrepare(_)) => format!("COM_STMT_PREPARE {text:?}"),
        Ok(c @ (Command::StmtExecute { stmt_id, .. } | Command::StmtFetch { stmt_id, .. })) => {
            let sql = prepared.get(&stmt_id).map_or(String::new(), |p| {
                format!(" (statement {:?})", String::from_utf8_lossy(p))
            });
            format!(
                "{} {:02x?}{sql}",
                c.name(),
                &payload[..payload.len().min(16)]
            )
        }
        Ok(c) => format!("{} {:02x?}", c.name(), &payload[..payload.len().min(16)]),
        Err(_) => format!("unparsable {:02x?}", &payload[..payload.len().min(16)]),
    }
}

fn hex_around(srv: &[u8], at: usize) -> String {
    let from = at.saturating_sub(16);
    let to = (at + 48).min(srv.len());
    let mut s = String::new();
    for (i, b) in srv[from..to].iter().enumerate() {
        if from + i == at {
            s.push('|');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[derive(Default)]
struct Totals {
    files: usize,
    skipped: Vec<String>,
    commands: usize,
    replies: usize,
    replies_all_seeds: usize,
    open_at_end: usize,
    /// (file, command index) -> (message, seeds)
    failures: BTreeMap<(String, usize), (String, Vec<u64>)>,
}

fn check_file(path: &Path, t: &mut Totals) {
    let name = path.display().to_string();
    let records = match read_records(path) {
        Ok(r) => r,
        Err(e) => {
            t.skipped.push(e);
            return;
        }
    };
    let conv = conversation(&records);
    let (caps, login_end, ext) = match login(&conv) {
        Ok(l) => l,
        Err(e) => {
            t.skipped.push(format!("{name}: {e}"));
            return;
        }
    };
    if ext & (MARIADB_CLIENT_CACHE_METADATA | MARIADB_CLIENT_PROGRESS) != 0 {
        // Result metadata may be left out, progress reports look like errors: formats the
        // tracker does not follow because the proxy never negotiates them.
        t.skipped.push(format!(
            "{name}: MariaDB extended capabilities {ext:#x} negotiated (record with \
             record.py --proxy-caps, as the proxy offers clients)"
        ));
        return;
    }
    t.files += 1;
    // Commands: packets with sequence id 0, after the handshake response.
    let commands: Vec<usize> = (1..conv.client.len())
        .filter(|&i| conv.client[i].seq == 0)
        .collect();
    let expects: Vec<bool> = commands
        .iter()
        .map(|&i| {
            Command::parse(&conv.client[i].payload)
                .map(|c| ReplyTracker::new(caps).start(&c))
                .unwrap_or(true)
        })
        .collect();
    t.commands += commands.len();
    for (s, &seed) in SEEDS.iter().enumerate() {
        let mut rng = Rng::new(seed);
        let mut tracker = ReplyTracker::new(caps);
        let mut cursor = login_end;
        // The text of each prepared statement, by the id the server gave it.
        let mut prepared: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let fail = |t: &mut Totals, k: usize, msg: String| {
            let e = t
                .failures
                .entry((name.clone(), k))
                .or_insert_with(|| (msg, Vec::new()));
            e.1.push(seed);
        };
        for (k, &ci) in commands.iter().enumerate() {
            let packet = &conv.client[ci];
            let cmd = match Command::parse(&packet.payload) {
                Ok(c) => c,
                Err(e) => {
                    fail(t, k, format!("command #{k} does not parse: {e}"));
                    continue;
                }
            };
            if !tracker.start(&cmd) {
                continue;
            }
            let next = (k + 1..commands.len()).find(|&j| expects[j]);
            let end = next.map_or(conv.srv.len(), |j| conv.client[commands[j]].srv_at);
            let last = next.is_none();
            let what = describe(&packet.payload, &prepared);
            let start = packet.srv_at;
            if start != cursor {
                fail(
                    t,
                    k,
                    format!(
                        "command #{k} {what}: the server sent bytes {cursor}..{start} outside \
                         any reply (seed {seed})"
                    ),
                );
            }
            if end < start {
                fail(
                    t,
                    k,
                    format!("command #{k} {what}: reply ends before it starts"),
                );
                cursor = start;
                continue;
            }
            cursor = end;
            if s == 0 {
                t.replies += 1;
            }
            t.replies_all_seeds += 1;
            let mut from = start;
            loop {
                match follow(&mut tracker, &conv.srv, from, end, &mut rng) {
                    Outcome::Exact => {
                        if let (Command::StmtPrepare(sql), Some(p)) =
                            (cmd, tracker.summary().prepared)
                        {
                            prepared.insert(p.stmt_id, sql.to_vec());
                        }
                        break;
                    }
                    Outcome::LocalInfile { at } => {
                        // The client's file: its packets up to an empty one, before the next
                        // command.
                        let upto = next.map_or(conv.client.len(), |j| commands[j]);
                        let sent = conv.client[ci + 1..upto]
                            .iter()
                            .any(|p| p.seq != 0 && p.payload.is_empty());
                        if !sent {
                            fail(
                                t,
                                k,
                                format!(
                                    "command #{k} {what}: local infile request at {at} but \
                                     the client sent no empty packet"
                                ),
                            );
                            break;
                        }
                        tracker.local_infile_sent();
                        from = at;
                    }
                    Outcome::Early { at } => {
                        fail(
                            t,
                            k,
                            format!(
                                "command #{k} {what}: Done at server offset {at}, but the \
                                 reply runs {start}..{end} ({} bytes left over; seed {seed}): \
                                 {}",
                                end - at,
                                hex_around(&conv.srv, at)
                            ),
                        );
                        break;
                    }
                    Outcome::Hang { frames } => {
                        if last && end == conv.srv.len() {
                            // The connection ended in the middle of this reply.
                            if s == 0 {
                                t.open_at_end += 1;
                            }
                        } else {
                            fail(
                                t,
                                k,
                                format!(
                                    "command #{k} {what}: still More after the whole reply \
                                     {start}..{end} ({frames} frames; seed {seed}): would hang"
                                ),
                            );
                        }
                        break;
                    }
                    Outcome::Error { at, error } => {
                        fail(
                            t,
                            k,
                            format!(
                                "command #{k} {what}: error {error:?} at the frame at {at} of \
                                 the reply {start}..{end} (seed {seed}): {}",
                                hex_around(&conv.srv, at)
                            ),
                        );
                        break;
                    }
                }
            }
        }
    }
}

fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rec") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn recorded_replies_end_where_the_server_ends_them() {
    let Some(dir) = std::env::var_os("SWITCHYARD_RECORDINGS") else {
        eprintln!("SWITCHYARD_RECORDINGS is not set: no recordings to check");
        return;
    };
    let files = recordings(Path::new(&dir));
    let mut t = Totals::default();
    for f in &files {
        check_file(f, &mut t);
    }
    for s in &t.skipped {
        eprintln!("skipped {s}");
    }
    eprintln!(
        "recordings: {} found, {} checked, {} skipped; {} commands; {} replies checked \
         ({} with {} seeds); {} left open by a connection that ended mid-reply; {} failures",
        files.len(),
        t.files,
        t.skipped.len(),
        t.commands,
        t.replies,
        t.replies_all_seeds,
        SEEDS.len(),
        t.open_at_end,
        t.failures.len()
    );
    for ((file, _), (m, seeds)) in &t.failures {
        eprintln!("FAILED {file}: {m} [seeds {seeds:?}]");
    }
    if !t.failures.is_empty() {
        let mut msg = String::new();
        for ((file, _), (m, seeds)) in t.failures.iter().take(30) {
            let _ = writeln!(msg, "{file}: {m} [seeds {seeds:?}]");
        }
        panic!(
            "{} replies the tracker did not follow:\n{msg}",
            t.failures.len()
        );
    }
}
