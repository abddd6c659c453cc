//! Commands that client libraries rarely send, spoken by hand over a socket after a real
//! `mysql_native_password` login (the protocol crate's client side): COM_STATISTICS,
//! COM_FIELD_LIST, COM_SET_OPTION, COM_PROCESS_KILL, COM_PING, COM_INIT_DB, COM_QUIT and a
//! server-side cursor with COM_STMT_FETCH. Replies through the proxy are compared byte for
//! byte with the primary's own where they are deterministic.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Proxy, APP, HOST, PRIMARY_PORT};
use switchyard_protocol::caps::*;
use switchyard_protocol::codec::Packet;
use switchyard_protocol::conn::{connect_admin, BackendInfo, PacketIo};
use switchyard_protocol::packets::{parse_eof, ErrPacket, OkPacket};
use switchyard_protocol::text_query::query;
use switchyard_protocol::wire::Reader;
use tokio::net::TcpStream;

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_FIELD_LIST: u8 = 0x04;
const COM_STATISTICS: u8 = 0x09;
const COM_PROCESS_KILL: u8 = 0x0C;
const COM_PING: u8 = 0x0E;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_STMT_RESET: u8 = 0x1A;
const COM_SET_OPTION: u8 = 0x1B;
const COM_STMT_FETCH: u8 = 0x1C;
const CURSOR_TYPE_READ_ONLY: u8 = 0x01;

/// A hand-driven client connection.
struct Raw {
    io: PacketIo<TcpStream>,
    info: BackendInfo,
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

fn is_err(p: &[u8]) -> bool {
    p.first() == Some(&0xFF)
}

fn is_ok(p: &[u8]) -> bool {
    p.first() == Some(&0x00)
}

fn err_of(p: &[u8]) -> (u16, String, String) {
    let e = ErrPacket::parse(p).expect("an ERR packet");
    (
        e.code,
        String::from_utf8_lossy(e.sqlstate).into_owned(),
        String::from_utf8_lossy(e.message).into_owned(),
    )
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        let (io, info) = connect_admin(addr, APP.0, APP.1, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("login at {addr}: {e}"));
        Raw { io, info }
    }

    async fn direct() -> Raw {
        Raw::connect(&format!("{HOST}:{PRIMARY_PORT}")).await
    }

    /// The connection id of the handshake.
    fn id(&self) -> u32 {
        self.info.connection_id
    }

    /// Sends a command (sequence id 0).
    async fn send(&mut self, payload: &[u8]) {
        self.io.queue(0, payload);
        self.io.flush().await.expect("send a command");
    }

    async fn command(&mut self, cmd: u8, body: &[u8]) {
        let mut p = Vec::with_capacity(body.len() + 1);
        p.push(cmd);
        p.extend_from_slice(body);
        self.send(&p).await;
    }

    /// The next packet, or `None` when the peer closed the connection.
    async fn try_packet(&mut self) -> Option<Packet> {
        tokio::time::timeout(Duration::from_secs(15), self.io.read_packet())
            .await
            .expect("no reply within 15s")
            .ok()
            .flatten()
    }

    async fn packet(&mut self) -> Bytes {
        self.try_packet()
            .await
            .expect("the connection closed instead of replying")
            .payload
    }

    /// Packets up to and including an EOF or ERR packet.
    async fn until_eof(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        loop {
            let p = self.packet().await;
            let end = is_eof(&p) || is_err(&p);
            out.push(p);
            if end {
                return out;
            }
        }
    }

    /// A whole reply to a text query: every result set, up to the last OK, EOF or ERR.
    async fn text_reply(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        loop {
            let first = self.packet().await;
            let status = if is_err(&first) {
                out.push(first);
                return out;
            } else if is_ok(&first) {
                let status = OkPacket::parse(&first, self.info.capabilities)
                    .unwrap()
                    .status;
                out.push(first);
                status
            } else {
                let columns = Reader::new(&first).lenenc_int().unwrap() as usize;
                out.push(first);
                for _ in 0..columns {
                    out.push(self.packet().await);
                }
                let eof = self.packet().await;
                assert!(is_eof(&eof), "no EOF after the column definitions");
                out.push(eof);
                let rows = self.until_eof().await;
                let last = rows.last().unwrap().clone();
                out.extend(rows);
                if is_err(&last) {
                    return out;
                }
                parse_eof(&last).unwrap().1
            };
            if status & SERVER_MORE_RESULTS_EXISTS == 0 {
                return out;
            }
        }
    }

    async fn query(&mut self, sql: &str) -> Vec<Bytes> {
        self.command(COM_QUERY, sql.as_bytes()).await;
        self.text_reply().await
    }

    /// The single-column text rows of a reply.
    fn rows(reply: &[Bytes]) -> Vec<String> {
        let columns = Reader::new(&reply[0]).lenenc_int().unwrap() as usize;
        reply[columns + 2..]
            .iter()
            .take_while(|p| !is_eof(p) && !is_err(p))
            .map(|p| {
                let mut r = Reader::new(p);
                String::from_utf8_lossy(r.lenenc_bytes().unwrap()).into_owned()
            })
            .collect()
    }

    /// Runs `sql` and returns the first column of its first row.
    async fn value(&mut self, sql: &str) -> String {
        let caps = self.info.capabilities;
        let rows = query(&mut self.io, caps, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        String::from_utf8_lossy(rows.rows[0][0].as_deref().unwrap_or(b"NULL")).into_owned()
    }

    async fn exec(&mut self, sql: &str) {
        let caps = self.info.capabilities;
        query(&mut self.io, caps, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// The `name` of a column definition packet.
fn column_name(def: &[u8]) -> String {
    let mut r = Reader::new(def);
    for _ in 0..4 {
        r.lenenc_bytes().unwrap(); // catalog, schema, table, org_table
    }
    String::from_utf8_lossy(r.lenenc_bytes().unwrap()).into_owned()
}

async fn setup_db(prefix: &str, sql: &[&str]) -> String {
    let db = common::unique(prefix);
    let mut d = Raw::direct().await;
    d.exec(&format!("CREATE DATABASE {db}")).await;
    for s in sql {
        d.exec(&format!("USE {db}")).await;
        d.exec(s).await;
    }
    db
}

async fn drop_db(db: &str) {
    let mut d = Raw::direct().await;
    d.exec(&format!("DROP DATABASE IF EXISTS {db}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_statistics_answers_with_the_servers_status_line() {
    let mut proxy = Proxy::start();
    let mut c = Raw::connect(&proxy.rw_addr()).await;
    c.command(COM_STATISTICS, &[]).await;
    let reply = c.try_packet().await.expect("a reply");
    assert_eq!(reply.seq, 1);
    let text = String::from_utf8_lossy(&reply.payload).into_owned();
    assert!(text.starts_with("Uptime: "), "{text:?}");
    for word in ["Threads: ", "Questions: ", "Open tables: "] {
        assert!(text.contains(word), "{text:?}");
    }
    // The session is still in step.
    assert_eq!(c.value("SELECT 1 + 1").await, "2");
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_field_list_sends_column_definitions_then_eof() {
    let mut proxy = Proxy::start();
    let db = setup_db(
        "sy_fl",
        &["CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20) DEFAULT 'x', created DATETIME)"],
    )
    .await;
    let mut via = Raw::connect(&proxy.rw_addr()).await;
    let mut dir = Raw::direct().await;

    for c in [&mut via, &mut dir] {
        c.command(COM_INIT_DB, db.as_bytes()).await;
        let ok = c.packet().await;
        assert!(is_ok(&ok), "COM_INIT_DB: {ok:?}");
    }
    let mut replies = Vec::new();
    for c in [&mut via, &mut dir] {
        c.command(COM_FIELD_LIST, b"t\0").await;
        let all = c.until_eof().await;
        c.command(COM_FIELD_LIST, b"t\0na%").await;
        let some = c.until_eof().await;
        c.command(COM_FIELD_LIST, b"no_such_table\0").await;
        let missing = c.until_eof().await;
        replies.push((all, some, missing));
    }
    let (all, some, missing) = &replies[0];
    let names: Vec<String> = all[..all.len() - 1]
        .iter()
        .map(|d| column_name(d))
        .collect();
    assert_eq!(names, ["id", "name", "created"]);
    assert!(is_eof(all.last().unwrap()));
    assert_eq!(some.len(), 2);
    assert_eq!(column_name(&some[0]), "name");
    assert_eq!(missing.len(), 1);
    assert_eq!(err_of(&missing[0]).0, 1146);
    assert_eq!(
        replies[0], replies[1],
        "the replies differ from the server's"
    );

    assert_eq!(via.value("SELECT COUNT(*) FROM t").await, "0");
    drop_db(&db).await;
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_set_option_switches_multi_statements() {
    let mut proxy = Proxy::start();
    let mut via = Raw::connect(&proxy.rw_addr()).await;
    let mut dir = Raw::direct().await;
    let multi = "SELECT 1; SELECT 2";
    let mut seen = Vec::new();
    for c in [&mut via, &mut dir] {
        // Without CLIENT_MULTI_STATEMENTS the server refuses two statements in one query.
        let off = c.query(multi).await;
        assert_eq!(off.len(), 1);
        assert_eq!(err_of(&off[0]).0, 1064);

        c.command(COM_SET_OPTION, &0u16.to_le_bytes()).await; // MULTI_STATEMENTS_ON
        let on_reply = c.packet().await;
        assert!(is_eof(&on_reply) || is_ok(&on_reply), "{on_reply:?}");
        let on = c.query(multi).await;
        assert_eq!(Raw::rows(&on), ["1"]);
        // count, definition, EOF, one row, EOF: then the second result set.
        let second = &on[5..];
        assert_eq!(Raw::rows(second), ["2"]);

        c.command(COM_SET_OPTION, &1u16.to_le_bytes()).await; // MULTI_STATEMENTS_OFF
        let off_reply = c.packet().await;
        assert!(is_eof(&off_reply) || is_ok(&off_reply), "{off_reply:?}");
        let off_again = c.query(multi).await;
        assert_eq!(err_of(&off_again[0]).0, 1064);

        // A bad option is the server's error.
        c.command(COM_SET_OPTION, &7u16.to_le_bytes()).await;
        let bad = c.packet().await;

        assert_eq!(c.value("SELECT 'still here'").await, "still here");
        seen.push((off, on_reply, on, off_reply, off_again, bad));
    }
    let (a, b) = (&seen[0], &seen[1]);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1, "COM_SET_OPTION ON reply");
    assert_eq!(a.2, b.2);
    assert_eq!(a.3, b.3, "COM_SET_OPTION OFF reply");
    assert_eq!(a.4, b.4);
    assert_eq!(a.5, b.5, "COM_SET_OPTION with a bad option");
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_ping_init_db_and_quit() {
    let mut proxy = Proxy::start();
    let mut via = Raw::connect(&proxy.rw_addr()).await;
    let mut dir = Raw::direct().await;
    for c in [&mut via, &mut dir] {
        c.command(COM_PING, &[]).await;
        let p = c.try_packet().await.unwrap();
        assert!(is_ok(&p.payload), "{p:?}");
        assert_eq!(p.seq, 1);
    }
    let mut errs = Vec::new();
    for c in [&mut via, &mut dir] {
        c.command(COM_INIT_DB, b"no_such_db_sy").await;
        errs.push(err_of(&c.packet().await));
        c.command(COM_INIT_DB, b"test").await;
        assert!(is_ok(&c.packet().await));
        assert_eq!(c.value("SELECT DATABASE()").await, "test");
    }
    assert_eq!(errs[0].0, 1049);
    assert_eq!(errs[0], errs[1]);

    // COM_QUIT: no reply, the connection is closed.
    via.command(COM_QUIT, &[]).await;
    assert!(via.try_packet().await.is_none(), "a reply to COM_QUIT");
    let mut again = Raw::connect(&proxy.rw_addr()).await;
    assert_eq!(again.value("SELECT 3").await, "3");
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn com_process_kill_uses_the_proxys_connection_ids() {
    let mut proxy = Proxy::start();
    let mut a = Raw::connect(&proxy.rw_addr()).await;
    let mut b = Raw::connect(&proxy.rw_addr()).await;
    // CONNECTION_ID() says the handshake's id; the backend's thread id is another.
    let seen: u32 = a.value("SELECT CONNECTION_ID()").await.parse().unwrap();
    assert_eq!(seen, a.id());
    let thread_a: u32 = a
        .value("SELECT CAST(CONNECTION_ID() AS CHAR)")
        .await
        .parse()
        .unwrap();
    assert_ne!(a.id(), thread_a, "the handshake carries the backend's id");
    assert_ne!(a.id(), b.id());

    b.command(COM_PROCESS_KILL, &a.id().to_le_bytes()).await;
    let reply = b.packet().await;
    assert!(is_ok(&reply), "COM_PROCESS_KILL: {reply:?}");
    // The killed session ends: an error (1927 Connection was killed) or a closed socket.
    a.command(COM_QUERY, b"SELECT 1").await;
    match a.try_packet().await {
        None => {}
        Some(p) => assert!(is_err(&p.payload), "the killed session answered {p:?}"),
    }
    assert_eq!(b.value("SELECT 5").await, "5");

    // An id that no session of the proxy has: the server's error, as the server words it.
    let unknown = 4_000_000_000u32;
    b.command(COM_PROCESS_KILL, &unknown.to_le_bytes()).await;
    let via = err_of(&b.packet().await);
    let mut d = Raw::direct().await;
    d.command(COM_PROCESS_KILL, &unknown.to_le_bytes()).await;
    let dir = err_of(&d.packet().await);
    assert_eq!(via.0, 1094);
    assert_eq!(via, dir);
    proxy.assert_alive();
}

/// Prepares `sql`, runs it with a read-only cursor and fetches `per_fetch` rows at a time.
/// Returns every payload of the exchange and the values of the first column (BIGINT).
async fn cursor_exchange(c: &mut Raw, sql: &str, per_fetch: u32) -> (Vec<Bytes>, Vec<u64>) {
    let mut log = Vec::new();
    c.command(COM_STMT_PREPARE, sql.as_bytes()).await;
    let ok = c.packet().await;
    assert!(is_ok(&ok), "prepare: {:?}", err_of(&ok));
    let mut r = Reader::new(&ok[1..]);
    let stmt = r.u32().unwrap();
    let columns = r.u16().unwrap();
    let params = r.u16().unwrap();
    assert_eq!(params, 0);
    log.push(Bytes::copy_from_slice(&ok[5..])); // the statement id may differ
    for _ in 0..columns {
        log.push(c.packet().await);
    }
    if columns > 0 {
        let eof = c.packet().await;
        assert!(is_eof(&eof));
        log.push(eof);
    }

    let mut exec = BytesMut::new();
    exec.put_u8(COM_STMT_EXECUTE);
    exec.put_u32_le(stmt);
    exec.put_u8(CURSOR_TYPE_READ_ONLY);
    exec.put_u32_le(1);
    c.send(&exec).await;
    let head = c.packet().await;
    assert!(!is_err(&head), "execute: {:?}", err_of(&head));
    log.push(head);
    for _ in 0..columns {
        log.push(c.packet().await);
    }
    let eof = c.packet().await;
    let (_, status) = parse_eof(&eof).unwrap();
    assert!(
        status & SERVER_STATUS_CURSOR_EXISTS != 0,
        "no cursor opened"
    );
    log.push(eof);

    let mut values = Vec::new();
    for round in 0.. {
        assert!(round < 1000, "the cursor never ended");
        let mut fetch = BytesMut::new();
        fetch.put_u8(COM_STMT_FETCH);
        fetch.put_u32_le(stmt);
        fetch.put_u32_le(per_fetch);
        c.send(&fetch).await;
        let batch = c.until_eof().await;
        let end = batch.last().unwrap().clone();
        assert!(!is_err(&end), "fetch: {:?}", err_of(&end));
        assert!(batch.len() as u32 <= per_fetch + 1);
        for row in &batch[..batch.len() - 1] {
            // Binary row: 0x00, NULL bitmap ((columns + 7 + 2) / 8 bytes), values.
            let bitmap = (usize::from(columns) + 9) / 8;
            let mut r = Reader::new(&row[1 + bitmap..]);
            values.push(r.u64().unwrap());
        }
        log.extend(batch);
        let (_, status) = parse_eof(&end).unwrap();
        if status & SERVER_STATUS_LAST_ROW_SENT != 0 {
            break;
        }
    }

    let mut reset = BytesMut::new();
    reset.put_u8(COM_STMT_RESET);
    reset.put_u32_le(stmt);
    c.send(&reset).await;
    let ok = c.packet().await;
    assert!(is_ok(&ok), "reset: {ok:?}");
    log.push(ok);

    // COM_STMT_CLOSE has no reply; the next command's reply must be its own.
    let mut close = BytesMut::new();
    close.put_u8(COM_STMT_CLOSE);
    close.put_u32_le(stmt);
    c.send(&close).await;
    c.command(COM_PING, &[]).await;
    let ok = c.packet().await;
    assert!(is_ok(&ok), "ping after close: {ok:?}");

    // Executing the closed statement is the server's error.
    c.send(&exec).await;
    let e = c.packet().await;
    assert_eq!(err_of(&e).0, 1243);
    (log, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_cursor_with_com_stmt_fetch() {
    let mut proxy = Proxy::start();
    let mut via = Raw::connect(&proxy.rw_addr()).await;
    let mut dir = Raw::direct().await;
    let sql = "SELECT seq, CONCAT('row ', seq) FROM test.seq_1_to_10";
    let (log_via, values) = cursor_exchange(&mut via, sql, 4).await;
    let (log_dir, _) = cursor_exchange(&mut dir, sql, 4).await;
    assert_eq!(values, (1..=10).collect::<Vec<u64>>());
    assert_eq!(log_via, log_dir, "the exchange differs from the server's");
    // A bigger one, fetched in larger batches.
    let (_, values) = cursor_exchange(
        &mut via,
        "SELECT seq, REPEAT('y', 100) FROM test.seq_1_to_5000",
        1000,
    )
    .await;
    assert_eq!(values.len(), 5000);
    assert_eq!(via.value("SELECT 'done'").await, "done");
    proxy.assert_alive();
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_not_buffered_and_a_vanished_one_frees_its_backend() {
    let mut proxy = Proxy::start();
    let mut a = Raw::connect(&proxy.rw_addr()).await;
    let thread = a.value("SELECT CAST(CONNECTION_ID() AS CHAR)").await;
    let before = rss_kib(proxy.pid());

    // About 1 GB of result, of which the client reads a few packets and then nothing.
    a.command(
        COM_QUERY,
        b"SELECT seq, REPEAT('z', 200) FROM test.seq_1_to_5000000",
    )
    .await;
    for _ in 0..100 {
        a.packet().await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled = rss_kib(proxy.pid());
    assert!(
        stalled.saturating_sub(before) < 64 * 1024,
        "the proxy's memory grew from {before} KiB to {stalled} KiB while the client read nothing"
    );

    // The client vanishes mid-result: its backend thread must go away too.
    drop(a);
    let mut d = Raw::direct().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let n = d
            .value(&format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {thread}"
            ))
            .await;
        if n == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backend thread {thread} still runs 15s after its client vanished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut b = Raw::connect(&proxy.rw_addr()).await;
    assert_eq!(b.value("SELECT 'next'").await, "next");
    proxy.assert_alive();
}
