use bytes::{BufMut, BytesMut};
use tokio::io::AsyncWriteExt;

use super::*;
use crate::codec;
use crate::packets::{write_eof, write_err, write_ok};
use crate::wire::{put_lenenc_bytes, put_lenenc_int};

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
    let result = query(&mut io, capabilities, "SHOW ALL SLAVES STATUS").await;
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
    let next = query(&mut io, 0, "SELECT 1").await.unwrap();
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
    let result = query(&mut io, 0, "SELECT 1").await;
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
