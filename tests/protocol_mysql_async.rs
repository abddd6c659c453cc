//! The binary protocol and the commands of a real client library (`mysql_async`) through
//! Switchyard (readconnroute), compared where possible with a direct connection to the primary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use common::{Proxy, APP, LIMITED};
use mysql_async::consts::StatusFlags;
use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Column, Conn, Error, Opts, Row, ServerError, TxOpts, Value};
use sha1::{Digest, Sha1};

type Res<T> = Result<T, Error>;

async fn connect(opts: Opts) -> Conn {
    let what = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connecting to {what}: {e}"))
}

async fn direct() -> Conn {
    connect(common::primary_opts()).await
}

/// Fails the test when `fut` does not finish within `secs`.
async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs}s"))
}

/// The server error of a failed call.
fn server_error<T: std::fmt::Debug>(r: Res<T>) -> ServerError {
    match r {
        Err(Error::Server(e)) => e,
        other => panic!("expected a server error, got {other:?}"),
    }
}

fn values(rows: Vec<Row>) -> Vec<Vec<Value>> {
    rows.into_iter().map(Row::unwrap).collect()
}

/// A fresh database, created directly on the primary.
async fn create_db(prefix: &str) -> String {
    let db = common::unique(prefix);
    direct()
        .await
        .query_drop(format!("CREATE DATABASE {db}"))
        .await
        .expect("create database");
    db
}

async fn drop_db(db: &str) {
    if let Ok(mut c) = Conn::new(common::primary_opts()).await {
        let _ = c.query_drop(format!("DROP DATABASE IF EXISTS {db}")).await;
    }
}

/// Every result set of a multi-result reply: column names, rows, affected rows.
type Sets = Vec<(Vec<String>, Vec<Vec<Value>>, u64)>;

async fn text_sets(conn: &mut Conn, sql: &str) -> Res<Sets> {
    let mut r = conn.query_iter(sql).await?;
    let mut sets = Vec::new();
    while !r.is_empty() {
        let names = r
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let rows: Vec<Row> = r.collect().await?;
        sets.push((names, values(rows), r.affected_rows()));
    }
    Ok(sets)
}

async fn binary_sets(conn: &mut Conn, sql: &str, params: Vec<Value>) -> Res<Sets> {
    let mut r = conn.exec_iter(sql, params).await?;
    let mut sets = Vec::new();
    while !r.is_empty() {
        let names = r
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let rows: Vec<Row> = r.collect().await?;
        sets.push((names, values(rows), r.affected_rows()));
    }
    Ok(sets)
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Prepared statements
// ---------------------------------------------------------------------------------------------

const TYPES_TABLE: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    ti TINYINT, usi SMALLINT UNSIGNED, mi MEDIUMINT, bi BIGINT, ubi BIGINT UNSIGNED,
    f FLOAT, d DOUBLE, de DECIMAL(30,10),
    s VARCHAR(200) CHARACTER SET utf8mb4, txt TEXT CHARACTER SET utf8mb4, b BLOB,
    dt DATE, dtm DATETIME(6), tm TIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, y YEAR,
    bt BIT(12), e ENUM('a','b','c'), st SET('x','y','z'), n INT NULL
) ENGINE=InnoDB";

fn type_rows() -> Vec<Vec<Value>> {
    use Value::*;
    let blob: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    vec![
        vec![
            Int(1),
            Int(-7),
            UInt(65535),
            Int(-8_388_608),
            Int(i64::MIN),
            UInt(u64::MAX),
            Float(1.5),
            Double(-2.25e300),
            Bytes(b"12345678901234567890.0123456789".to_vec()),
            Bytes("héllo wörld ☃ 🚀".as_bytes().to_vec()),
            Bytes("a'b\"c\\d\0e\nf".as_bytes().to_vec()),
            Bytes(blob),
            Date(2024, 2, 29, 0, 0, 0, 0),
            Date(1999, 12, 31, 23, 59, 58, 123_456),
            Time(true, 1, 2, 3, 4, 5),
            Date(2024, 1, 2, 3, 4, 5, 678_000),
            Int(2024),
            Int(0x0ABC),
            Bytes(b"b".to_vec()),
            Bytes(b"x,z".to_vec()),
            NULL,
        ],
        vec![
            Int(2),
            Int(127),
            Int(0),
            Int(8_388_607),
            Int(i64::MAX),
            UInt(0),
            Float(-3.0e-10),
            Double(f64::MIN_POSITIVE),
            Bytes(b"-0.0000000001".to_vec()),
            Bytes(Vec::new()),
            Bytes(Vec::new()),
            Bytes(Vec::new()),
            Date(1000, 1, 1, 0, 0, 0, 0),
            Date(9999, 12, 31, 23, 59, 59, 999_999),
            Time(false, 34, 22, 59, 59, 999_999),
            Date(1970, 1, 2, 0, 0, 0, 0),
            Int(1901),
            Int(0),
            Bytes(b"c".to_vec()),
            Bytes(Vec::new()),
            Int(42),
        ],
        // Every column but the key NULL.
        std::iter::once(Int(3))
            .chain(std::iter::repeat_n(NULL, 20))
            .collect(),
        // Strings where numbers are expected and numbers where strings are: the server
        // converts, identically with or without the proxy.
        vec![
            Int(4),
            Bytes(b"12".to_vec()),
            Bytes(b"13".to_vec()),
            Double(14.0),
            Bytes(b"-15".to_vec()),
            Bytes(b"16".to_vec()),
            Bytes(b"17.5".to_vec()),
            Int(18),
            Double(19.125),
            Int(20),
            Double(21.5),
            UInt(22),
            Bytes(b"2020-05-06".to_vec()),
            Bytes(b"2020-05-06 07:08:09.5".to_vec()),
            Bytes(b"-838:59:59".to_vec()),
            Bytes(b"2038-01-19 03:14:07.999".to_vec()),
            Bytes(b"2155".to_vec()),
            Bytes(vec![0x0F, 0xFF]),
            Int(1),
            Int(7),
            Bytes(b"0".to_vec()),
        ],
    ]
}

/// Inserts the rows of [`type_rows`] with one prepared statement, executed once per row.
async fn insert_type_rows(conn: &mut Conn) -> Res<()> {
    let stmt = conn
        .prep(format!(
            "INSERT INTO t VALUES ({})",
            vec!["?"; 21].join(", ")
        ))
        .await?;
    assert_eq!(stmt.num_params(), 21);
    assert_eq!(stmt.num_columns(), 0);
    for row in type_rows() {
        conn.exec_drop(&stmt, row).await?;
        assert_eq!(conn.affected_rows(), 1);
    }
    conn.close(stmt).await
}

/// What a client sees when it reads the table back: prepared and text protocol, with metadata.
async fn read_type_rows(conn: &mut Conn) -> Res<(Vec<Column>, Vec<Vec<Value>>, Vec<Vec<Value>>)> {
    let stmt = conn
        .prep("SELECT * FROM t WHERE id >= ? ORDER BY id")
        .await?;
    let binary: Vec<Row> = conn.exec(&stmt, (0,)).await?;
    let text: Vec<Row> = conn.query("SELECT * FROM t ORDER BY id").await?;
    Ok((stmt.columns().to_vec(), values(binary), values(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_many_types_match_a_direct_connection() {
    let mut proxy = Proxy::start();
    let db1 = create_db("sy_ps_proxy").await;
    let db2 = create_db("sy_ps_direct").await;

    let mut via = connect(proxy.app_opts_db(&db1)).await;
    let mut dir = connect(common::primary_opts_db(&db2)).await;
    via.query_drop(TYPES_TABLE).await.unwrap();
    dir.query_drop(TYPES_TABLE).await.unwrap();
    insert_type_rows(&mut via).await.unwrap();
    insert_type_rows(&mut dir).await.unwrap();

    // Compare the rows read from each database through each path: everything but the schema
    // name in the metadata must be the same.
    let (cols_via, bin_via, text_via) = read_type_rows(&mut via).await.unwrap();
    let (cols_dir, bin_dir, text_dir) = read_type_rows(&mut dir).await.unwrap();
    assert_eq!(bin_via.len(), 4);
    assert_eq!(bin_via, bin_dir, "binary protocol rows differ");
    assert_eq!(text_via, text_dir, "text protocol rows differ");
    let strip = |c: &[Column]| -> Vec<(String, String, u32, u16, u8, String)> {
        c.iter()
            .map(|c| {
                (
                    c.name_str().into_owned(),
                    format!("{:?}", c.column_type()),
                    c.column_length(),
                    c.character_set(),
                    c.decimals(),
                    format!("{:?}", c.flags()),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&cols_via),
        strip(&cols_dir),
        "column metadata differs"
    );

    // The values that went in come back out (spot checks on the binary protocol).
    let r1 = &bin_via[0];
    assert_eq!(r1[4], Value::Int(i64::MIN));
    assert_eq!(r1[5], Value::UInt(u64::MAX));
    assert_eq!(r1[6], Value::Float(1.5));
    assert_eq!(
        r1[8],
        Value::Bytes(b"12345678901234567890.0123456789".to_vec())
    );
    assert_eq!(r1[9], Value::Bytes("héllo wörld ☃ 🚀".as_bytes().to_vec()));
    assert_eq!(r1[13], Value::Date(1999, 12, 31, 23, 59, 58, 123_456));
    assert_eq!(r1[14], Value::Time(true, 1, 2, 3, 4, 5));
    assert_eq!(r1[20], Value::NULL);
    assert!(bin_via[2][1..].iter().all(|v| *v == Value::NULL));

    // Parameters echoed back: the types the client sent, as the server sees them.
    let echo = format!("SELECT {}", vec!["?"; 21].join(", "));
    for row in type_rows() {
        let a: Vec<Row> = via.exec(&echo, row.clone()).await.unwrap();
        let b: Vec<Row> = dir.exec(&echo, row).await.unwrap();
        assert_eq!(values(a), values(b));
    }

    drop(via);
    drop(dir);
    drop_db(&db1).await;
    drop_db(&db2).await;
    proxy.assert_alive();
}

/// Prepares, executes many times, closes, and lets a tiny statement cache evict: returns what
/// the client saw and the server's own statement counters for the session.
async fn statement_workload(conn: &mut Conn) -> Res<(Vec<String>, BTreeMap<String, String>)> {
    let mut seen = Vec::new();
    let stmt = conn.prep("SELECT ? * 2, CONCAT('n', ?)").await?;
    assert_eq!(stmt.num_params(), 2);
    assert_eq!(stmt.num_columns(), 2);
    for i in 0..200i64 {
        let r: Option<(i64, String)> = conn.exec_first(&stmt, (i, i)).await?;
        assert_eq!(r, Some((i * 2, format!("n{i}"))));
    }
    let reused = stmt.clone();
    conn.close(stmt).await?;
    // The statement is gone on the server: using it again is the server's error 1243.
    let e = server_error(conn.exec_drop(&reused, (1, 2)).await);
    assert_eq!((e.code, e.state.as_str()), (1243, "HY000"), "{e}");
    seen.push(format!("{} {}", e.code, e.state));

    // Six distinct statements through a cache of two: each round evicts (COM_STMT_CLOSE) and
    // prepares again.
    for round in 0..3i64 {
        for k in 0..6i64 {
            let r: Option<i64> = conn
                .exec_first(format!("SELECT ? + {k}"), (round * 100,))
                .await?;
            assert_eq!(r, Some(round * 100 + k));
            seen.push(format!("{round}/{k}={r:?}"));
        }
    }
    // The same text again and again is one cached statement.
    for i in 0..20i64 {
        let r: Option<i64> = conn.exec_first("SELECT ? + 0", (i,)).await?;
        assert_eq!(r, Some(i));
    }
    let status: Vec<(String, String)> = conn.query("SHOW SESSION STATUS LIKE 'Com_stmt_%'").await?;
    Ok((seen, status.into_iter().collect()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statement_reuse_close_and_cache_eviction() {
    let mut proxy = Proxy::start();
    let small_cache = |o: Opts| -> Opts {
        mysql_async::OptsBuilder::from_opts(o)
            .stmt_cache_size(Some(2))
            .into()
    };
    let mut via = connect(small_cache(proxy.app_opts())).await;
    let mut dir = connect(small_cache(common::primary_opts())).await;
    let (seen_via, status_via) = statement_workload(&mut via).await.unwrap();
    let (seen_dir, status_dir) = statement_workload(&mut dir).await.unwrap();
    assert_eq!(seen_via, seen_dir);
    // The proxy passed every prepare, execute and close through, one for one.
    assert_eq!(status_via, status_dir, "session statement counters differ");
    let prepares: u64 = status_via["Com_stmt_prepare"].parse().unwrap();
    let closes: u64 = status_via["Com_stmt_close"].parse().unwrap();
    assert!(prepares >= 19, "{status_via:?}");
    assert!(closes >= 17, "{status_via:?}");
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_without_params_or_columns_and_with_many_columns() {
    let mut proxy = Proxy::start();
    let mut via = connect(proxy.app_opts()).await;
    let mut dir = direct().await;

    // No parameters, no columns.
    let stmt = via.prep("DO 1").await.unwrap();
    assert_eq!((stmt.num_params(), stmt.num_columns()), (0, 0));
    for _ in 0..3 {
        via.exec_drop(&stmt, ()).await.unwrap();
        assert_eq!(via.affected_rows(), 0);
    }
    via.close(stmt).await.unwrap();

    // Parameters, no columns; then no parameters, one column.
    let set = via.prep("SET @sy_x = ?").await.unwrap();
    assert_eq!((set.num_params(), set.num_columns()), (1, 0));
    via.exec_drop(&set, ("value",)).await.unwrap();
    let x: Option<String> = via.exec_first("SELECT @sy_x", ()).await.unwrap();
    assert_eq!(x.as_deref(), Some("value"));

    // 300 columns of mixed types, 20 rows, with parameters.
    let cols: Vec<String> = (0..300)
        .map(|i| match i % 6 {
            0 => format!("seq * {i} AS c{i}"),
            1 => format!("CONCAT('v', seq, '_{i}') AS c{i}"),
            2 => format!("IF(seq % 3 = 0, NULL, seq / 7) AS c{i}"),
            3 => format!("DATE_ADD('2020-01-01 00:00:00', INTERVAL seq * {i} SECOND) AS c{i}"),
            4 => format!("? + seq AS c{i}"),
            _ => format!("CAST(seq * 1.5 AS DECIMAL(10,2)) AS c{i}"),
        })
        .collect();
    let sql = format!("SELECT {} FROM test.seq_1_to_20", cols.join(", "));
    let params: Vec<Value> = (0..50).map(|i| Value::Int(i * 1000)).collect();
    let stmt_via = via.prep(&sql).await.unwrap();
    let stmt_dir = dir.prep(&sql).await.unwrap();
    assert_eq!(stmt_via.num_columns(), 300);
    assert_eq!(stmt_via.num_params(), 50);
    assert_eq!(&*stmt_via.columns(), &*stmt_dir.columns());
    let a: Vec<Row> = via.exec(&stmt_via, params.clone()).await.unwrap();
    let b: Vec<Row> = dir.exec(&stmt_dir, params).await.unwrap();
    assert_eq!(a.len(), 20);
    assert_eq!(values(a), values(b));
    proxy.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Large values: long data, packets over 16 MiB
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_round_trip_through_long_data_and_big_packets() {
    let mut proxy = Proxy::start();
    let db = create_db("sy_long").await;
    let mut via = connect(proxy.app_opts_db(&db)).await;
    via.query_drop("CREATE TABLE t (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .unwrap();

    // 5 MiB goes inline in COM_STMT_EXECUTE; 20 MiB (over 16 MiB in all) makes mysql_async
    // send it with COM_STMT_SEND_LONG_DATA, in packets that are themselves over 16 MiB.
    let cases = [
        (1, noise(5 << 20, 1)),
        (2, noise(20 << 20, 2)),
        (3, noise((16 << 20) - 1, 3)),
    ];
    let insert = via.prep("INSERT INTO t VALUES (?, ?)").await.unwrap();
    for (id, data) in &cases {
        within(
            60,
            "insert of a large blob",
            via.exec_drop(&insert, (*id, data.as_slice())),
        )
        .await
        .unwrap_or_else(|e| panic!("inserting {} bytes: {e}", data.len()));
    }
    for (id, data) in &cases {
        let (len, sum): (u64, String) = via
            .exec_first("SELECT LENGTH(b), SHA1(b) FROM t WHERE id = ?", (*id,))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(len as usize, data.len());
        assert_eq!(sum, sha1_hex(data), "checksum of blob {id}");
        // Back through the binary protocol (a row over 16 MiB for the 20 MiB blob) ...
        let back: Vec<u8> = within(
            60,
            "binary read of a large blob",
            via.exec_first("SELECT b FROM t WHERE id = ?", (*id,)),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(
            back == *data,
            "blob {id} differs after the binary round trip"
        );
        // ... and the text protocol.
        let back: Vec<u8> = within(
            60,
            "text read of a large blob",
            via.query_first(format!("SELECT b FROM t WHERE id = {id}")),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(back == *data, "blob {id} differs after the text round trip");
    }

    // A text query over 16 MiB: the client splits COM_QUERY into several packets.
    let big = "x".repeat(17 << 20);
    let n: Option<u64> = within(
        60,
        "a 17 MiB query",
        via.query_first(format!("SELECT LENGTH('{big}')")),
    )
    .await
    .unwrap();
    assert_eq!(n, Some(17 << 20));
    // The session is still in step.
    let one: Option<i64> = via.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));

    drop(via);
    drop_db(&db).await;
    proxy.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Multiple result sets
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statements_and_stored_procedures_return_every_result_set() {
    let mut proxy = Proxy::start();
    let db = create_db("sy_multi").await;
    let mut setup = connect(common::primary_opts_db(&db)).await;
    setup
        .query_drop(
            "CREATE TABLE t (id INT PRIMARY KEY);
             CREATE PROCEDURE p(IN n INT)
             BEGIN
               SELECT n AS a;
               SELECT n + 1 AS b, 'x' AS c UNION ALL SELECT n + 2, 'y';
             END",
        )
        .await
        .unwrap();
    let mut via = connect(proxy.app_opts_db(&db)).await;
    let mut dir = connect(common::primary_opts_db(&db)).await;

    // Text multi-statement: two result sets, an OK, and a result set again.
    let sql = "SELECT 1; SELECT 2, 'three'; INSERT INTO t VALUES (1), (2); SELECT COUNT(*) FROM t";
    let sets = text_sets(&mut via, sql).await.unwrap();
    assert_eq!(sets.len(), 4, "{sets:?}");
    assert_eq!(sets[0].1, vec![vec![Value::Bytes(b"1".to_vec())]]);
    assert_eq!(
        sets[1].1,
        vec![vec![
            Value::Bytes(b"2".to_vec()),
            Value::Bytes(b"three".to_vec())
        ]]
    );
    assert!(sets[2].0.is_empty() && sets[2].1.is_empty());
    assert_eq!(sets[2].2, 2, "affected rows of the INSERT");
    assert_eq!(sets[3].1, vec![vec![Value::Bytes(b"2".to_vec())]]);
    via.query_drop("DELETE FROM t").await.unwrap();
    assert_eq!(sets, text_sets(&mut dir, sql).await.unwrap());

    // A failing statement in the middle ends the reply with its error; the session goes on.
    let mut r = via
        .query_iter("SELECT 1; SELECT * FROM no_such_table; SELECT 3")
        .await
        .unwrap();
    let first: Vec<i64> = r.collect().await.unwrap();
    assert_eq!(first, vec![1]);
    let e = server_error(r.collect::<Row>().await);
    assert_eq!(e.code, 1146);
    drop(r);
    let four: Option<i64> = via.query_first("SELECT 4").await.unwrap();
    assert_eq!(four, Some(4));

    // CALL: two result sets and the procedure's final OK, by text and by prepared statement.
    let call = text_sets(&mut via, "CALL p(5)").await.unwrap();
    let rows: Vec<_> = call.iter().filter(|s| !s.0.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{call:?}");
    assert_eq!(rows[0].0, vec!["a"]);
    assert_eq!(rows[0].1, vec![vec![Value::Bytes(b"5".to_vec())]]);
    assert_eq!(rows[1].0, vec!["b", "c"]);
    assert_eq!(rows[1].1.len(), 2);
    assert_eq!(call, text_sets(&mut dir, "CALL p(5)").await.unwrap());

    let call = binary_sets(&mut via, "CALL p(?)", vec![Value::Int(7)])
        .await
        .unwrap();
    let rows: Vec<_> = call.iter().filter(|s| !s.0.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{call:?}");
    assert_eq!(rows[0].1, vec![vec![Value::Int(7)]]);
    assert_eq!(
        rows[1].1,
        vec![
            vec![Value::Int(8), Value::Bytes(b"x".to_vec())],
            vec![Value::Int(9), Value::Bytes(b"y".to_vec())]
        ]
    );
    assert_eq!(
        call,
        binary_sets(&mut dir, "CALL p(?)", vec![Value::Int(7)])
            .await
            .unwrap()
    );
    let after: Option<i64> = via.query_first("SELECT 5").await.unwrap();
    assert_eq!(after, Some(5));

    drop((via, dir, setup));
    drop_db(&db).await;
    proxy.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Session commands: ping, reset, change user
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reset_connection_and_change_user() {
    let mut proxy = Proxy::start();
    let mut via = connect(proxy.app_opts()).await;
    let id = via.id();
    via.ping().await.unwrap();
    via.ping().await.unwrap();

    // COM_RESET_CONNECTION: user variables, session variables and temporary tables are gone.
    via.query_drop(
        "SET @sy_v = 42, SESSION sql_mode = 'ANSI';
         CREATE TEMPORARY TABLE test.sy_tmp (a INT)",
    )
    .await
    .unwrap();
    let v: Option<i64> = via.query_first("SELECT @sy_v").await.unwrap();
    assert_eq!(v, Some(42));
    assert!(via.reset().await.unwrap(), "COM_RESET_CONNECTION not used");
    let v: Option<Option<i64>> = via.query_first("SELECT @sy_v").await.unwrap();
    assert_eq!(
        v,
        Some(None),
        "a user variable survived COM_RESET_CONNECTION"
    );
    let mode: Option<String> = via.query_first("SELECT @@SESSION.sql_mode").await.unwrap();
    let global: Option<String> = via.query_first("SELECT @@GLOBAL.sql_mode").await.unwrap();
    assert_eq!(mode, global);
    let e = server_error(via.query_drop("SELECT * FROM test.sy_tmp").await);
    assert_eq!(e.code, 1146);
    assert_eq!(via.id(), id);

    // COM_CHANGE_USER to `limited` and back.
    via.query_drop("SET @sy_v = 1; CREATE TEMPORARY TABLE test.sy_tmp (a INT)")
        .await
        .unwrap();
    via.change_user(
        ChangeUserOpts::new()
            .with_user(Some(LIMITED.0.into()))
            .with_pass(Some(LIMITED.1.into())),
    )
    .await
    .unwrap();
    let who: Option<String> = via.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("limited@127.0.0.1"));
    let v: Option<Option<i64>> = via.query_first("SELECT @sy_v").await.unwrap();
    assert_eq!(v, Some(None), "a user variable survived COM_CHANGE_USER");
    let e = server_error(via.query_drop("SELECT * FROM test.sy_tmp").await);
    assert_eq!(e.code, 1146, "a temporary table survived COM_CHANGE_USER");
    // limited has no rights outside `test`.
    let e = server_error(via.query_drop("SELECT COUNT(*) FROM mysql.user").await);
    assert_eq!(e.code, 1142, "{e}");
    assert_eq!(via.id(), id, "the connection id changed with the user");

    via.change_user(
        ChangeUserOpts::new()
            .with_user(Some(APP.0.into()))
            .with_pass(Some(APP.1.into())),
    )
    .await
    .unwrap();
    let who: Option<String> = via.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("app@127.0.0.1"));
    let n: Option<i64> = via
        .query_first("SELECT COUNT(*) > 0 FROM mysql.user")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    via.ping().await.unwrap();

    // With a default database.
    via.change_user(
        ChangeUserOpts::new()
            .with_user(Some(LIMITED.0.into()))
            .with_pass(Some(LIMITED.1.into()))
            .with_db_name(Some("test".into())),
    )
    .await
    .unwrap();
    let (user, db): (String, Option<String>) = via
        .query_first("SELECT CURRENT_USER(), DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (user.as_str(), db.as_deref()),
        ("limited@127.0.0.1", Some("test"))
    );
    assert_eq!(via.id(), id);
    proxy.assert_alive();
}

fn change_to(user: (&str, &str), db: Option<&str>) -> ChangeUserOpts {
    ChangeUserOpts::new()
        .with_user(Some(user.0.into()))
        .with_pass(Some(user.1.into()))
        .with_db_name(db.map(Into::into))
}

/// The refusals of COM_CHANGE_USER: wrong password, unknown database, database not granted.
fn refused_changes() -> Vec<(ChangeUserOpts, u16)> {
    vec![
        (change_to((LIMITED.0, "wrong"), None), 1045),
        (change_to(APP, Some("no_such_db_sy")), 1049),
        (change_to(LIMITED, Some("sbtest")), 1044),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_refusals_carry_the_servers_errors() {
    let mut proxy = Proxy::start();
    for (opts, code) in refused_changes() {
        let mut via = connect(proxy.app_opts()).await;
        let mut dir = direct().await;
        let e_via = server_error(via.change_user(opts.clone()).await);
        let e_dir = server_error(dir.change_user(opts).await);
        assert_eq!(e_via.code, code, "{e_via}");
        assert_eq!(e_via, e_dir);
    }
    assert_eq!(refused_changes()[0].1, 1045);
    // Other sessions are not affected.
    let mut other = connect(proxy.app_opts()).await;
    other.ping().await.unwrap();
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refusals_carry_the_servers_errors() {
    let mut proxy = Proxy::start();
    let cases = [
        (common::builder(0, APP.0, "wrong"), 1045),
        (common::builder(0, "no_such_user_sy", "x"), 1045),
        (
            common::builder(0, APP.0, APP.1).db_name(Some("no_such_db_sy")),
            1049,
        ),
        (
            common::builder(0, LIMITED.0, LIMITED.1).db_name(Some("sbtest")),
            1044,
        ),
    ];
    for (b, code) in cases {
        let via = Conn::new(b.clone().tcp_port(proxy.rw_port)).await;
        let dir = Conn::new(b.tcp_port(common::PRIMARY_PORT)).await;
        let e_via = server_error(via);
        let e_dir = server_error(dir);
        assert_eq!(e_via.code, code, "{e_via}");
        assert_eq!(e_via, e_dir);
    }
    proxy.assert_alive();
}

/// MariaDB keeps a session whose COM_CHANGE_USER was refused: it goes on as the previous user,
/// with its session state reset (user variables and temporary tables are gone).
async fn after_refused_change_user(
    conn: &mut Conn,
    opts: ChangeUserOpts,
) -> Res<(String, Option<i64>, u16)> {
    conn.query_drop("SET @sy_v = 5; CREATE TEMPORARY TABLE test.sy_cu (a INT)")
        .await?;
    server_error(conn.change_user(opts).await);
    let (user, v): (String, Option<i64>) = conn
        .query_first("SELECT CURRENT_USER(), @sy_v")
        .await?
        .unwrap();
    let tmp = match conn.query_drop("SELECT * FROM test.sy_cu").await {
        Ok(()) => 0,
        Err(e) => server_error::<()>(Err(e)).code,
    };
    Ok((user, v, tmp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn refused_change_user_keeps_the_session_as_the_previous_user() {
    let mut proxy = Proxy::start();
    let mut failures = Vec::new();
    for (opts, code) in refused_changes() {
        let mut dir = direct().await;
        let expected = after_refused_change_user(&mut dir, opts.clone())
            .await
            .unwrap();
        assert_eq!(expected, ("app@127.0.0.1".to_string(), None, 1146));
        let mut via = connect(proxy.app_opts()).await;
        let got = after_refused_change_user(&mut via, opts).await;
        if !matches!(&got, Ok(g) if *g == expected) {
            failures.push(format!(
                "refusal {code}: through the proxy {got:?}; on the server {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    proxy.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_pass_through_exactly() {
    let mut proxy = Proxy::start();
    let db = create_db("sy_err").await;
    let mut via = connect(proxy.app_opts_db(&db)).await;
    let mut dir = connect(common::primary_opts_db(&db)).await;
    dir.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10) UNIQUE); INSERT INTO t VALUES (1, 'one')")
        .await
        .unwrap();

    let cases = [
        ("SELECT * FROM no_such_table", 1146, "42S02"),
        ("SELEC 1", 1064, "42000"),
        ("SELECT * FROM t WHERE", 1064, "42000"),
        ("INSERT INTO t VALUES (1, 'uno')", 1062, "23000"),
        ("INSERT INTO t VALUES (2, 'one')", 1062, "23000"),
        ("SELECT no_such_column FROM t", 1054, "42S22"),
        ("USE no_such_database_sy", 1049, "42000"),
        ("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom ünïcode message', MYSQL_ERRNO = 1644", 1644, "45000"),
    ];
    for (sql, code, state) in cases {
        let e_via = server_error(via.query_drop(sql).await);
        let e_dir = server_error(dir.query_drop(sql).await);
        assert_eq!(
            (e_via.code, e_via.state.as_str()),
            (code, state),
            "{sql}: {e_via}"
        );
        assert_eq!(e_via, e_dir, "{sql}");
    }
    assert!(
        server_error(via.query_drop("SELECT * FROM no_such_table").await)
            .message
            .contains(&format!("'{db}.no_such_table'"))
    );

    // The same errors at COM_STMT_PREPARE and at COM_STMT_EXECUTE.
    for sql in ["SELECT * FROM no_such_table WHERE id = ?", "SELEC ?"] {
        let e_via = server_error(via.prep(sql).await);
        let e_dir = server_error(dir.prep(sql).await);
        assert_eq!(e_via, e_dir, "{sql}");
    }
    let e_via = server_error(via.exec_drop("INSERT INTO t VALUES (?, ?)", (1, "x")).await);
    let e_dir = server_error(dir.exec_drop("INSERT INTO t VALUES (?, ?)", (1, "x")).await);
    assert_eq!(e_via.code, 1062);
    assert_eq!(e_via, e_dir);

    // The session carries on after each error.
    let n: Option<i64> = via.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(1));
    drop((via, dir));
    drop_db(&db).await;
    proxy.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Transactions, insert ids, affected rows, warnings
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_roll_back() {
    let mut proxy = Proxy::start();
    let db = create_db("sy_txn").await;
    let mut via = connect(proxy.app_opts_db(&db)).await;
    let mut dir = connect(common::primary_opts_db(&db)).await;
    via.query_drop("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await
        .unwrap();
    let count = |c: &'static str| format!("SELECT COUNT(*) FROM t WHERE id IN ({c})");
    let in_txn = "SELECT @@in_transaction";

    via.query_drop("BEGIN").await.unwrap();
    let flags = via.last_ok_packet().unwrap().status_flags();
    assert!(
        flags.contains(StatusFlags::SERVER_STATUS_IN_TRANS),
        "{flags:?}"
    );
    via.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    assert_eq!(via.query_first::<i64, _>(in_txn).await.unwrap(), Some(1));
    assert_eq!(
        via.query_first::<i64, _>(count("1")).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        dir.query_first::<i64, _>(count("1")).await.unwrap(),
        Some(0)
    );
    via.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(via.query_first::<i64, _>(in_txn).await.unwrap(), Some(0));
    assert_eq!(
        via.query_first::<i64, _>(count("1")).await.unwrap(),
        Some(0)
    );

    via.query_drop("START TRANSACTION").await.unwrap();
    via.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    assert_eq!(
        dir.query_first::<i64, _>(count("2")).await.unwrap(),
        Some(0)
    );
    via.query_drop("COMMIT").await.unwrap();
    let flags = via.last_ok_packet().unwrap().status_flags();
    assert!(
        !flags.contains(StatusFlags::SERVER_STATUS_IN_TRANS),
        "{flags:?}"
    );
    assert_eq!(
        dir.query_first::<i64, _>(count("2")).await.unwrap(),
        Some(1)
    );

    // mysql_async's own transaction API, with prepared statements inside.
    let mut tx = via.start_transaction(TxOpts::default()).await.unwrap();
    tx.exec_drop("INSERT INTO t VALUES (?)", (3,))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = via.start_transaction(TxOpts::default()).await.unwrap();
    tx.exec_drop("INSERT INTO t VALUES (?)", (4,))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        dir.query_first::<i64, _>(count("3")).await.unwrap(),
        Some(0)
    );
    assert_eq!(
        dir.query_first::<i64, _>(count("4")).await.unwrap(),
        Some(1)
    );

    // autocommit=0 opens a transaction implicitly.
    via.query_drop("SET autocommit = 0").await.unwrap();
    via.query_drop("INSERT INTO t VALUES (5)").await.unwrap();
    assert_eq!(via.query_first::<i64, _>(in_txn).await.unwrap(), Some(1));
    via.query_drop("ROLLBACK").await.unwrap();
    via.query_drop("SET autocommit = 1").await.unwrap();
    assert_eq!(
        dir.query_first::<i64, _>(count("5")).await.unwrap(),
        Some(0)
    );

    // A session that ends inside a transaction loses its uncommitted work.
    via.query_drop("BEGIN; INSERT INTO t VALUES (6)")
        .await
        .unwrap();
    via.disconnect().await.unwrap();
    // Its row lock is released too: inserting the same key directly does not wait.
    dir.query_drop("SET SESSION innodb_lock_wait_timeout = 10")
        .await
        .unwrap();
    let started = Instant::now();
    dir.query_drop("INSERT INTO t VALUES (6)")
        .await
        .expect("the proxy's backend still holds the abandoned transaction's lock");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    drop(dir);
    drop_db(&db).await;
    proxy.assert_alive();
}

/// What a client learns from OK packets during a small workload.
async fn ok_packet_workload(conn: &mut Conn) -> Res<Vec<String>> {
    let mut seen = Vec::new();
    conn.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(3))")
        .await?;
    let mut note = |what: &str, c: &Conn| {
        seen.push(format!(
            "{what}: id={:?} affected={} warnings={} info={:?}",
            c.last_insert_id(),
            c.affected_rows(),
            c.get_warnings(),
            c.info()
        ))
    };
    conn.exec_drop("INSERT INTO t (v) VALUES (?)", ("a",))
        .await?;
    assert_eq!(conn.last_insert_id(), Some(1));
    assert_eq!(conn.affected_rows(), 1);
    note("prepared insert", conn);
    conn.query_drop("INSERT INTO t (v) VALUES ('b'), ('c'), ('d')")
        .await?;
    assert_eq!(conn.last_insert_id(), Some(2));
    assert_eq!(conn.affected_rows(), 3);
    assert_eq!(conn.info(), "Records: 3  Duplicates: 0  Warnings: 0");
    note("multi-row insert", conn);
    let lid: Option<u64> = conn.query_first("SELECT LAST_INSERT_ID()").await?;
    assert_eq!(lid, Some(2));
    conn.query_drop("UPDATE t SET v = 'z' WHERE id > 1").await?;
    assert_eq!(conn.affected_rows(), 3);
    note("update", conn);
    conn.query_drop("UPDATE t SET v = 'z' WHERE id > 1").await?;
    assert_eq!(conn.affected_rows(), 0, "unchanged rows are not affected");
    note("update unchanged", conn);
    conn.query_drop("INSERT INTO t VALUES (100, 'e')").await?;
    assert_eq!(conn.last_insert_id(), Some(100));
    note("explicit id", conn);
    conn.query_drop("DELETE FROM t WHERE id >= 3").await?;
    assert_eq!(conn.affected_rows(), 3);
    note("delete", conn);

    // Non-strict mode: the too long value is cut with a warning.
    conn.query_drop("SET SESSION sql_mode = ''").await?;
    conn.query_drop("INSERT INTO t (v) VALUES ('toolong')")
        .await?;
    assert_eq!(conn.get_warnings(), 1);
    note("truncating insert", conn);
    let w: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await?;
    assert_eq!(
        w,
        vec![(
            "Warning".to_string(),
            1265,
            "Data truncated for column 'v' at row 1".to_string()
        )]
    );
    conn.exec_drop("INSERT INTO t (v) VALUES (?), (?)", ("waytoolong", "ok"))
        .await?;
    assert_eq!(conn.get_warnings(), 1);
    note("prepared truncating insert", conn);
    let n: Option<i64> = conn.query_first("SELECT @@warning_count").await?;
    seen.push(format!("warning_count={n:?}"));
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_ids_affected_rows_and_warnings_from_ok_packets() {
    let mut proxy = Proxy::start();
    let db1 = create_db("sy_ok_proxy").await;
    let db2 = create_db("sy_ok_direct").await;
    let mut via = connect(proxy.app_opts_db(&db1)).await;
    let mut dir = connect(common::primary_opts_db(&db2)).await;
    let a = ok_packet_workload(&mut via).await.unwrap();
    let b = ok_packet_workload(&mut dir).await.unwrap();
    assert_eq!(a, b);
    drop((via, dir));
    drop_db(&db1).await;
    drop_db(&db2).await;
    proxy.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Connection ids and KILL
// ---------------------------------------------------------------------------------------------

/// The thread id of `conn`'s backend connection: as a string, since the proxy rewrites
/// integer `CONNECTION_ID()` results to its own connection ids.
async fn backend_id(conn: &mut Conn) -> u64 {
    let id: String = conn
        .query_first("SELECT CAST(CONNECTION_ID() AS CHAR)")
        .await
        .unwrap()
        .unwrap();
    id.parse().unwrap()
}

/// Waits until the primary's processlist shows thread `id` running a statement like `pattern`.
async fn wait_for_statement(id: u64, pattern: &str) {
    let mut dir = direct().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: Option<i64> = dir
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE ?",
                (id, pattern),
            )
            .await
            .unwrap();
        if n == Some(1) {
            return;
        }
        assert!(Instant::now() < deadline, "thread {id} never ran {pattern}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ids_are_the_proxys_own() {
    let mut proxy = Proxy::start();
    let mut a = connect(proxy.app_opts()).await;
    let mut b = connect(proxy.app_opts()).await;
    let mut c = connect(proxy.ro_opts()).await;
    let ids: BTreeSet<u32> = [a.id(), b.id(), c.id()].into();
    assert_eq!(ids.len(), 3, "connection ids are not unique: {ids:?}");
    let thread_a = backend_id(&mut a).await;
    let thread_b = backend_id(&mut b).await;
    assert_ne!(
        u64::from(a.id()),
        thread_a,
        "the client sees the backend's id"
    );
    assert_ne!(
        u64::from(b.id()),
        thread_b,
        "the client sees the backend's id"
    );
    assert_ne!(thread_a, thread_b);
    // CONNECTION_ID() says the client's id, in text and binary protocol.
    let text: Option<u64> = a.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let binary: Option<u64> = a.exec_first("SELECT CONNECTION_ID()", ()).await.unwrap();
    assert_eq!((text, binary), (Some(a.id().into()), Some(a.id().into())));
    // The backend thread really belongs to this client's account on the primary.
    let mut dir = direct().await;
    let user: Option<String> = dir
        .exec_first(
            "SELECT USER FROM information_schema.PROCESSLIST WHERE ID = ?",
            (thread_a,),
        )
        .await
        .unwrap();
    assert_eq!(user.as_deref(), Some("app"));
    // The id is stable for the session's life.
    a.ping().await.unwrap();
    assert_eq!(backend_id(&mut a).await, thread_a);
    let _ = backend_id(&mut c).await;
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_by_proxy_id_interrupts_a_running_statement() {
    let mut proxy = Proxy::start();
    let mut a = connect(proxy.app_opts()).await;
    let mut b = connect(proxy.app_opts()).await;
    let id = a.id();
    let thread = backend_id(&mut a).await;

    let started = Instant::now();
    let sleeper = tokio::spawn(async move {
        let r = a.query_first::<i64, _>("SELECT SLEEP(30)").await;
        (r, started.elapsed(), a)
    });
    wait_for_statement(thread, "SELECT SLEEP(30)%").await;
    b.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (r, took, mut a) = within(15, "the killed SLEEP(30)", sleeper).await.unwrap();
    assert!(took < Duration::from_secs(10), "KILL QUERY took {took:?}");
    let e = server_error(r);
    assert_eq!((e.code, e.state.as_str()), (1317, "70100"), "{e}");
    // The session survives a KILL QUERY.
    let one: Option<i64> = a.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    assert_eq!(backend_id(&mut a).await, thread);

    // From a session of the other service, on another server (a replica).
    let mut r = connect(proxy.ro_opts()).await;
    let sleeper = tokio::spawn(async move {
        let r = a.query_first::<i64, _>("SELECT SLEEP(30)").await;
        (r, a)
    });
    wait_for_statement(thread, "SELECT SLEEP(30)%").await;
    r.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (res, mut a) = within(15, "the killed SLEEP(30)", sleeper).await.unwrap();
    assert_eq!(server_error(res).code, 1317);
    a.ping().await.unwrap();

    // KILL QUERY of an id that is no session of this proxy: the server's answer.
    let e = server_error(b.query_drop("KILL QUERY 4000000000").await);
    assert_eq!(e.code, 1094, "{e}");
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_connection_by_proxy_id_ends_the_other_session() {
    let mut proxy = Proxy::start();
    let mut a = connect(proxy.app_opts()).await;
    let mut b = connect(proxy.app_opts()).await;
    let thread = backend_id(&mut a).await;
    b.query_drop(format!("KILL {}", a.id())).await.unwrap();
    let r = within(10, "a query on a killed session", a.query_drop("SELECT 1")).await;
    assert!(r.is_err(), "the killed session still answers");
    // Its backend thread is gone from the primary.
    let mut dir = direct().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: Option<i64> = dir
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                (thread,),
            )
            .await
            .unwrap();
        if n == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backend thread {thread} is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The killer carries on.
    b.ping().await.unwrap();
    let one: Option<i64> = b.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn kill_of_another_users_session_is_refused_in_the_clients_terms() {
    let mut proxy = Proxy::start();
    let mut a = connect(proxy.app_opts()).await;
    let mut l = connect(proxy.opts(LIMITED.0, LIMITED.1)).await;
    let id = a.id();
    let thread = backend_id(&mut a).await;
    let e = server_error(l.query_drop(format!("KILL QUERY {id}")).await);
    assert_eq!((e.code, e.state.as_str()), (1095, "HY000"), "{e}");
    // A server names the thread the client asked about; the backend's id means nothing to
    // the client (and tells it something about the backend).
    assert_eq!(
        e.message,
        format!("You are not owner of thread {id}"),
        "the backend thread is {thread}"
    );
    a.ping().await.unwrap();
    proxy.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Large results, concurrency, the read-only listener
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_stream_through() {
    let mut proxy = Proxy::start();
    let mut via = connect(proxy.app_opts()).await;

    // 1000 rows of 1 KiB, text and binary.
    let sql = "SELECT seq, REPEAT(CHAR(65 + seq % 26), 1024) FROM test.seq_1_to_1000";
    let mut r = via.query_iter(sql).await.unwrap();
    let (rows, bytes) = r
        .reduce((0u64, 0usize), |(n, b), (seq, s): (u64, String)| {
            assert_eq!(s.len(), 1024);
            assert_eq!(s.as_bytes()[0], 65 + (seq % 26) as u8);
            (n + 1, b + s.len())
        })
        .await
        .unwrap();
    drop(r);
    assert_eq!((rows, bytes), (1000, 1000 * 1024));
    let rows: Vec<(u64, Vec<u8>)> = via.exec(sql, ()).await.unwrap();
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|(_, s)| s.len() == 1024));

    // 200,000 rows counted as they arrive, never collected.
    let started = Instant::now();
    let mut r = via
        .query_iter("SELECT seq, seq * 2 FROM test.seq_1_to_200000")
        .await
        .unwrap();
    let (n, sum) = r
        .reduce((0u64, 0u64), |(n, s), (a, b): (u64, u64)| {
            assert_eq!(b, a * 2);
            (n + 1, s + a)
        })
        .await
        .unwrap();
    drop(r);
    assert_eq!(n, 200_000);
    assert_eq!(sum, 200_000 * 200_001 / 2);
    eprintln!("200k rows in {:?}", started.elapsed());

    // The same through the binary protocol.
    let mut r = via
        .exec_iter("SELECT seq FROM test.seq_1_to_200000 WHERE seq > ?", (0,))
        .await
        .unwrap();
    let n = r.reduce(0u64, |n, _: u64| n + 1).await.unwrap();
    drop(r);
    assert_eq!(n, 200_000);
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sessions_get_their_own_answers() {
    let mut proxy = Proxy::start();
    let opts = proxy.app_opts();
    let mut tasks = Vec::new();
    for t in 0..50u64 {
        let opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(opts).await?;
            let thread: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await?;
            for i in 0..50u64 {
                let want = t * 1000 + i;
                if i % 2 == 0 {
                    let r: Option<(u64, String, Option<u64>)> = conn
                        .query_first(format!("SELECT {want}, CONCAT('t', {t}), CONNECTION_ID()"))
                        .await?;
                    assert_eq!(r, Some((want, format!("t{t}"), thread)));
                } else {
                    let r: Option<(u64, String)> = conn
                        .exec_first("SELECT ? + 0, CONCAT('t', ?)", (want, t))
                        .await?;
                    assert_eq!(r, Some((want, format!("t{t}"))));
                }
            }
            conn.disconnect().await?;
            Ok::<_, Error>(())
        }));
    }
    within(60, "50 sessions x 50 queries", async {
        for (t, task) in tasks.into_iter().enumerate() {
            task.await
                .unwrap_or_else(|e| panic!("task {t} panicked: {e}"))
                .unwrap_or_else(|e| panic!("task {t}: {e}"));
        }
    })
    .await;
    proxy.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ro_listener_uses_both_replicas() {
    let mut proxy = Proxy::start();
    let mut conns = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let mut c = connect(proxy.ro_opts()).await;
        let id: Option<u32> = c.query_first("SELECT @@server_id").await.unwrap();
        let id = id.unwrap();
        assert!(id == 2 || id == 3, "the ro listener reached server_id {id}");
        ids.push(id);
        conns.push(c);
    }
    let used: BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(
        used,
        BTreeSet::from([2, 3]),
        "4 sessions were not balanced over both replicas: {ids:?}"
    );
    // The rw listener reaches the primary.
    let mut rw = connect(proxy.app_opts()).await;
    let id: Option<u32> = rw.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(id, Some(1));
    proxy.assert_alive();
}
