use bytes::Bytes;
use switchyard_protocol::text_query::ResultSet;

use super::*;

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
