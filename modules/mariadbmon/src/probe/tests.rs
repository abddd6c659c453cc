use bytes::{BufMut, Bytes, BytesMut};
use switchyard_protocol::caps::CLIENT_DEPRECATE_EOF;
use switchyard_protocol::codec;
use switchyard_protocol::conn::PacketIo;
use switchyard_protocol::packets::{write_eof, write_err, write_ok};
use switchyard_protocol::wire::{put_lenenc_bytes, put_lenenc_int};
use tokio::io::AsyncWriteExt;

use super::*;

fn column_def(name: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    for s in ["def", "", "", "", name, name] {
        put_lenenc_bytes(&mut b, s.as_bytes());
    }
    b.put_u8(0x0c);
    b.put_u16_le(33);
    b.put_u32_le(1024);
    b.put_u8(253);
    b.put_u16_le(0);
    b.put_u8(0);
    b.put_u16_le(0);
    b.to_vec()
}

fn row(values: &[Option<&str>]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for v in values {
        match v {
            Some(s) => put_lenenc_bytes(&mut b, s.as_bytes()),
            None => b.put_u8(0xFB),
        }
    }
    b.to_vec()
}

/// A whole text result set as the server frames it, sequence ids from 1.
fn result_set(
    columns: &[&str],
    rows: &[Vec<Option<&str>>],
    deprecate_eof: bool,
    status: u16,
) -> BytesMut {
    let mut buf = BytesMut::new();
    let mut seq = 1u8;
    let mut count = BytesMut::new();
    put_lenenc_int(&mut count, columns.len() as u64);
    seq = codec::encode(&mut buf, seq, &count);
    for c in columns {
        seq = codec::encode(&mut buf, seq, &column_def(c));
    }
    if !deprecate_eof {
        write_eof(&mut buf, seq, 0, 2);
        seq += 1;
    }
    for r in rows {
        seq = codec::encode(&mut buf, seq, &row(r));
    }
    if deprecate_eof {
        let mut ok = BytesMut::new();
        ok.put_u8(0xFE);
        ok.put_u8(0);
        ok.put_u8(0);
        ok.put_u16_le(status);
        ok.put_u16_le(0);
        codec::encode(&mut buf, seq, &ok);
    } else {
        write_eof(&mut buf, seq, 0, status);
    }
    buf
}

async fn run_query(
    server_bytes: &[u8],
    capabilities: u32,
) -> (
    Result<ResultSet, ProtocolError>,
    PacketIo<tokio::io::DuplexStream>,
    tokio::io::DuplexStream,
) {
    let (client, mut server) = tokio::io::duplex(1 << 20);
    server.write_all(server_bytes).await.unwrap();
    let mut io = PacketIo::new(client, 4096);
    let result = query_named(&mut io, capabilities, "SHOW ALL SLAVES STATUS").await;
    (result, io, server)
}

#[tokio::test]
async fn reads_column_names_with_eof() {
    let bytes = result_set(
        &["Connection_name", "Master_Host", "Seconds_Behind_Master"],
        &[vec![Some(""), Some("127.0.0.1"), None]],
        false,
        2,
    );
    let (set, _, _) = run_query(&bytes, 0).await;
    let set = set.unwrap();
    assert_eq!(
        set.columns,
        ["Connection_name", "Master_Host", "Seconds_Behind_Master"]
    );
    assert_eq!(set.rows.len(), 1);
    assert_eq!(set.rows[0][1].as_deref(), Some(&b"127.0.0.1"[..]));
    assert_eq!(set.rows[0][2], None);
    assert_eq!(set.column(&["master_host"]), Some(1));
    assert_eq!(
        set.text(&set.rows[0], &["Nope", "MASTER_HOST"]).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(set.text(&set.rows[0], &["Seconds_Behind_Master"]), None);
}

#[tokio::test]
async fn reads_column_names_with_deprecate_eof() {
    let bytes = result_set(
        &["a", "b"],
        &[vec![Some("1"), Some("2")], vec![None, Some("x")]],
        true,
        2,
    );
    let (set, _, _) = run_query(&bytes, CLIENT_DEPRECATE_EOF).await;
    let set = set.unwrap();
    assert_eq!(set.columns, ["a", "b"]);
    assert_eq!(set.rows.len(), 2);
}

#[tokio::test]
async fn empty_result_set_and_ok() {
    let bytes = result_set(&["Connection_name"], &[], false, 2);
    let (set, _, _) = run_query(&bytes, 0).await;
    assert_eq!(set.unwrap().rows.len(), 0);

    let mut ok = BytesMut::new();
    write_ok(&mut ok, 1, 0, 0, 2, 0);
    let (set, _, _) = run_query(&ok, 0).await;
    assert_eq!(set.unwrap(), ResultSet::default());
}

#[tokio::test]
async fn server_error_is_a_server_error() {
    let mut err = BytesMut::new();
    write_err(
        &mut err,
        1,
        1227,
        "42000",
        "Access denied; you need (at least one of) the SUPER privilege(s)",
    );
    let (result, _, _) = run_query(&err, 0).await;
    match result {
        Err(ProtocolError::Server { code: 1227, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn further_result_sets_are_drained() {
    let mut bytes = result_set(&["a"], &[vec![Some("first")]], false, 2 | 8);
    bytes.extend_from_slice(&result_set(&["b"], &[vec![Some("second")]], false, 2));
    // The answer to a second query on the same connection.
    bytes.extend_from_slice(&result_set(&["c"], &[vec![Some("third")]], false, 2));
    let (set, mut io, _server) = run_query(&bytes, 0).await;
    let set = set.unwrap();
    assert_eq!(set.columns, ["a"]);
    let next = query_named(&mut io, 0, "SELECT 1").await.unwrap();
    assert_eq!(next.columns, ["c"]);
}

#[tokio::test]
async fn truncated_or_odd_replies_are_errors() {
    // A column count then the end of the stream.
    let mut bytes = BytesMut::new();
    codec::encode(&mut bytes, 1, &[2]);
    let (client, mut server) = tokio::io::duplex(1 << 16);
    server.write_all(&bytes).await.unwrap();
    drop(server);
    let mut io = PacketIo::new(client, 4096);
    let result = query_named(&mut io, 0, "SELECT 1").await;
    assert!(result.is_err());

    // A column definition that ends early.
    let mut bytes = BytesMut::new();
    codec::encode(&mut bytes, 1, &[1]);
    codec::encode(&mut bytes, 2, &[3, b'd', b'e']);
    let (result, _, _) = run_query(&bytes, 0).await;
    assert!(
        matches!(result, Err(ProtocolError::Malformed(_))),
        "{result:?}"
    );

    // A row shorter than the column count.
    let bytes = {
        let mut b = result_set(&["a", "b"], &[], false, 2);
        b.truncate(0);
        let mut count = BytesMut::new();
        put_lenenc_int(&mut count, 2);
        let mut seq = codec::encode(&mut b, 1, &count);
        seq = codec::encode(&mut b, seq, &column_def("a"));
        seq = codec::encode(&mut b, seq, &column_def("b"));
        write_eof(&mut b, seq, 0, 2);
        codec::encode(&mut b, seq + 1, &row(&[Some("only one")]));
        b
    };
    let (result, _, _) = run_query(&bytes, 0).await;
    assert!(
        matches!(result, Err(ProtocolError::Malformed(_))),
        "{result:?}"
    );

    // An empty packet where the column count belongs.
    let mut bytes = BytesMut::new();
    codec::encode(&mut bytes, 1, &[]);
    let (result, _, _) = run_query(&bytes, 0).await;
    assert!(result.is_err());
}

#[test]
fn column_names_from_definitions() {
    assert_eq!(
        column_name(&column_def("Master_Host")).unwrap(),
        "Master_Host"
    );
    assert!(column_name(&[3, b'd', b'e', b'f']).is_err());
    assert!(column_name(&[]).is_err());
}

fn set(columns: &[&str], rows: &[Vec<Option<&str>>]) -> ResultSet {
    ResultSet {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.map(|s| Bytes::copy_from_slice(s.as_bytes())))
                    .collect()
            })
            .collect(),
    }
}

const VARS: [&str; 5] = [
    "@@server_id",
    "@@read_only",
    "@@gtid_current_pos",
    "@@gtid_binlog_pos",
    "@@version",
];

#[test]
fn vars_are_read() {
    let s = set(
        &VARS,
        &[vec![
            Some("2"),
            Some("1"),
            Some("0-1-33"),
            Some("0-1-33"),
            Some("10.11.19-MariaDB-log"),
        ]],
    );
    let p = parse_vars(&s, true);
    assert_eq!(p.server_id, Some(2));
    assert_eq!(p.read_only, Some(true));
    assert_eq!(p.gtid_current_pos.as_deref(), Some("0-1-33"));
    assert_eq!(p.gtid_binlog_pos.as_deref(), Some("0-1-33"));
    assert_eq!(p.version.as_deref(), Some("10.11.19-MariaDB-log"));

    let basic = set(
        &["a", "b", "c"],
        &[vec![Some("7"), Some("OFF"), Some("8.0.36")]],
    );
    let p = parse_vars(&basic, false);
    assert_eq!((p.server_id, p.read_only), (Some(7), Some(false)));
    assert_eq!(p.version.as_deref(), Some("8.0.36"));
    assert_eq!(p.gtid_current_pos, None);
}

#[test]
fn odd_vars_are_unknown() {
    // NULLs everywhere.
    let p = parse_vars(&set(&VARS, &[vec![None, None, None, None, None]]), true);
    assert_eq!((p.server_id, p.read_only, p.version), (None, None, None));
    // No row at all, a short row, garbage.
    let p = parse_vars(&set(&VARS, &[]), true);
    assert_eq!(p.server_id, None);
    let p = parse_vars(&set(&VARS, &[vec![Some("1")]]), true);
    assert_eq!((p.server_id, p.read_only), (Some(1), None));
    let p = parse_vars(
        &set(
            &VARS,
            &[vec![
                Some("-4"),
                Some("maybe"),
                Some(""),
                Some("x"),
                Some(""),
            ]],
        ),
        true,
    );
    assert_eq!((p.server_id, p.read_only, p.version), (None, None, None));
    assert_eq!(p.gtid_current_pos.as_deref(), Some(""));
    assert_eq!(parse_bool(" ON "), Some(true));
    assert_eq!(parse_bool("0"), Some(false));
}

const SLAVE_COLUMNS: [&str; 14] = [
    "Connection_name",
    "Slave_SQL_State",
    "Master_Host",
    "Master_Port",
    "Slave_IO_Running",
    "Slave_SQL_Running",
    "Last_IO_Error",
    "Last_SQL_Error",
    "Seconds_Behind_Master",
    "Master_Server_Id",
    "Using_Gtid",
    "Gtid_IO_Pos",
    "Last_Errno",
    "Gtid_Slave_Pos",
];

#[test]
fn sources_are_read() {
    let s = set(
        &SLAVE_COLUMNS,
        &[
            vec![
                Some(""),
                Some("waiting"),
                Some("127.0.0.1"),
                Some("3307"),
                Some("Yes"),
                Some("Yes"),
                Some(""),
                Some(""),
                Some("0"),
                Some("1"),
                Some("Slave_Pos"),
                Some("0-1-33"),
                Some("0"),
                Some("0-1-33"),
            ],
            vec![
                Some("other"),
                Some(""),
                Some("10.0.0.9"),
                Some("3306"),
                Some("Connecting"),
                Some("No"),
                Some("error connecting to master"),
                Some("Duplicate entry '1'"),
                None,
                Some("0"),
                Some("No"),
                Some(""),
                Some("1062"),
                Some(""),
            ],
        ],
    );
    let sources = parse_sources(&s);
    assert_eq!(sources.len(), 2);
    let a = &sources[0];
    assert_eq!(a.source.connection_name, "");
    assert_eq!(
        (a.source.source_host.as_str(), a.source.source_port),
        ("127.0.0.1", 3307)
    );
    assert!(a.source.io_running && a.source.sql_running && a.is_healthy());
    assert_eq!(a.source.seconds_behind, Some(0));
    assert_eq!(a.source.last_error, None);
    assert_eq!(a.master_server_id, Some(1));
    assert_eq!(a.gtid_io_pos.as_deref(), Some("0-1-33"));
    assert_eq!(a.using_gtid.as_deref(), Some("Slave_Pos"));

    let b = &sources[1];
    assert_eq!(b.source.connection_name, "other");
    assert!(!b.source.io_running && !b.source.sql_running && !b.is_healthy());
    assert_eq!(b.io_state, "Connecting");
    assert_eq!(b.master_server_id, None);
    assert_eq!(b.source.seconds_behind, None);
    assert_eq!(
        b.source.last_error.as_deref(),
        Some("error connecting to master; Duplicate entry '1'")
    );
    assert_eq!(
        b.describe_broken(),
        "connection 'other': Slave_IO_Running=Connecting, Slave_SQL_Running=No, error: error connecting to master; Duplicate entry '1'"
    );
}

#[test]
fn odd_sources_are_unknown() {
    // Only two columns, NULLs, garbage numbers: nothing panics, all unknown.
    let s = set(
        &["Master_Host", "Master_Port"],
        &[vec![None, Some("port")], vec![Some("h")]],
    );
    let sources = parse_sources(&s);
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].source.source_host, "");
    assert_eq!(sources[0].source.source_port, 0);
    assert!(!sources[0].is_healthy());
    assert_eq!(
        sources[0].describe_broken(),
        "Slave_IO_Running=unknown, Slave_SQL_Running=unknown"
    );
    assert_eq!(sources[1].source.source_host, "h");

    // MySQL 8 names.
    let s = set(
        &[
            "Channel_Name",
            "Source_Host",
            "Source_Port",
            "Replica_IO_Running",
            "Replica_SQL_Running",
            "Seconds_Behind_Source",
            "Source_Server_Id",
        ],
        &[vec![
            Some("ch"),
            Some("db1"),
            Some("3306"),
            Some("Yes"),
            Some("Yes"),
            Some("4"),
            Some("1"),
        ]],
    );
    let sources = parse_sources(&s);
    assert_eq!(sources[0].source.connection_name, "ch");
    assert!(sources[0].is_healthy());
    assert_eq!(sources[0].source.seconds_behind, Some(4));
    assert_eq!(sources[0].master_server_id, Some(1));
}

#[test]
fn error_kinds_are_bounded() {
    assert_eq!(CheckError::Connect("x".into()).kind(), "connect");
    assert_eq!(CheckError::Timeout("x".into()).to_string(), "timed out: x");
    assert_eq!(
        login_error(
            LoginError::Protocol(ProtocolError::Timeout("connecting")),
            Duration::from_millis(300)
        )
        .to_string(),
        "timed out: no connection and login within 300ms (connect_timeout)"
    );
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        login_error(
            LoginError::Protocol(ProtocolError::Io(refused)),
            Duration::from_secs(1)
        )
        .to_string(),
        "cannot connect: connection refused"
    );
    match classify(ProtocolError::Server {
        code: 1927,
        sqlstate: "70100".into(),
        message: "Connection was killed".into(),
    }) {
        QueryFailure::Fatal(CheckError::Lost(m)) => assert!(m.contains("Connection was killed")),
        _ => panic!("a killed connection is lost"),
    }
    assert!(matches!(
        classify(ProtocolError::Server {
            code: 1064,
            sqlstate: "42000".into(),
            message: "syntax".into()
        }),
        QueryFailure::Server { code: 1064, .. }
    ));
}
