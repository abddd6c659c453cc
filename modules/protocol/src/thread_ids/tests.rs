use super::*;

fn def(org_table: &str, name: &str, org_name: &str, ty: u8, flags: u16) -> Vec<u8> {
    let mut p = BytesMut::new();
    for s in [
        "def",
        "information_schema",
        org_table,
        org_table,
        name,
        org_name,
    ] {
        put_lenenc_bytes(&mut p, s.as_bytes());
    }
    p.extend_from_slice(&[0x0c, 63, 0, 21, 0, 0, 0, ty]);
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    p.to_vec()
}

fn text_row(values: &[Option<&str>]) -> Vec<u8> {
    let mut p = BytesMut::new();
    for v in values {
        match v {
            Some(v) => put_lenenc_bytes(&mut p, v.as_bytes()),
            None => p.extend_from_slice(&[0xFB]),
        }
    }
    p.to_vec()
}

/// Backend threads 40 (this session, proxy id 3) and 41 (proxy id 4) on the answering server.
fn rewrite(format: RowFormat, defs: &[Vec<u8>]) -> IdRewrite {
    let sessions = HashMap::from([(40, 3), (41, 4)]);
    let mut r = IdRewrite::new(format, sessions, (40, 3), 0);
    let mut out = BytesMut::new();
    r.on_packet(PacketKind::ColumnCount, &mut [defs.len() as u8], &mut out);
    for d in defs {
        r.on_packet(PacketKind::ColumnDef, &mut d.clone(), &mut out);
    }
    r
}

fn rewritten_text(r: &mut IdRewrite, row: Vec<u8>) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    let mut row = row;
    r.on_packet(PacketKind::Row, &mut row, &mut out)
        .then(|| out.to_vec())
}

#[test]
fn processlist_ids_of_proxied_threads() {
    let mut r = rewrite(
        RowFormat::Text,
        &[
            def("PROCESSLIST", "ID", "ID", TYPE_LONGLONG, 4097),
            def("PROCESSLIST", "INFO", "INFO", 252, 0),
        ],
    );
    assert_eq!(
        rewritten_text(&mut r, text_row(&[Some("41"), Some("select 1")])),
        Some(text_row(&[Some("4"), Some("select 1")]))
    );
    // Threads that are no session's (the monitor's, another client's) keep their id.
    assert_eq!(rewritten_text(&mut r, text_row(&[Some("7"), None])), None);
}

#[test]
fn show_processlist_and_aliases() {
    let mut r = rewrite(
        RowFormat::Text,
        &[
            def("", "Id", "", TYPE_LONGLONG, 129),
            def("PROCESSLIST", "x", "ID", TYPE_LONGLONG, 4097),
        ],
    );
    assert_eq!(
        rewritten_text(&mut r, text_row(&[Some("40"), Some("41")])),
        Some(text_row(&[Some("3"), Some("4")]))
    );
}

#[test]
fn connection_id_is_rewritten_only_for_the_own_thread() {
    let mut r = rewrite(
        RowFormat::Text,
        &[
            def("", "connection_id()", "", TYPE_LONG, 161),
            def("", "n", "", TYPE_LONGLONG, 129),
        ],
    );
    assert_eq!(
        rewritten_text(&mut r, text_row(&[Some("40"), Some("40")])),
        Some(text_row(&[Some("3"), Some("40")]))
    );
    assert_eq!(
        rewritten_text(&mut r, text_row(&[Some("41"), Some("40")])),
        None
    );
}

#[test]
fn binary_rows_in_place() {
    let mut r = rewrite(
        RowFormat::Binary,
        &[
            def("PROCESSLIST", "USER", "USER", 253, 0),
            def("PROCESSLIST", "ID", "ID", TYPE_LONGLONG, 4097),
            def("", "connection_id()", "", TYPE_LONG, 161),
            def("PROCESSLIST", "DB", "DB", 253, 0),
        ],
    );
    // Header, null bitmap (DB is NULL: column 3, bit 5), "app", 41, 40.
    let mut row = vec![0x00, 1 << 5, 3, b'a', b'p', b'p'];
    row.extend_from_slice(&41u64.to_le_bytes());
    row.extend_from_slice(&40u32.to_le_bytes());
    let mut out = BytesMut::new();
    assert!(!r.on_packet(PacketKind::Row, &mut row, &mut out));
    let mut want = vec![0x00, 1 << 5, 3, b'a', b'p', b'p'];
    want.extend_from_slice(&4u64.to_le_bytes());
    want.extend_from_slice(&3u32.to_le_bytes());
    assert_eq!(row, want);
}

#[test]
fn malformed_rows_pass_unchanged() {
    let mut r = rewrite(
        RowFormat::Text,
        &[def("PROCESSLIST", "ID", "ID", TYPE_LONGLONG, 4097)],
    );
    assert_eq!(rewritten_text(&mut r, vec![0x05, b'4']), None);
    assert_eq!(
        rewritten_text(&mut r, text_row(&[Some("40"), Some("1")])),
        None
    );
    let mut r = rewrite(
        RowFormat::Binary,
        &[def("PROCESSLIST", "ID", "ID", TYPE_LONGLONG, 4097)],
    );
    let mut row = vec![0x00, 0, 1, 2];
    let mut out = BytesMut::new();
    assert!(!r.on_packet(PacketKind::Row, &mut row, &mut out));
    assert_eq!(row, vec![0x00, 0, 1, 2]);
}

#[test]
fn column_definitions_with_extended_metadata() {
    // MariaDB's extended metadata field sits between the names and the fixed fields.
    let with_format = |d: Vec<u8>, metadata: &[u8]| {
        let fixed = d.len() - 13;
        let mut p = BytesMut::from(&d[..fixed]);
        put_lenenc_bytes(&mut p, metadata);
        p.extend_from_slice(&d[fixed..]);
        p
    };
    let mut r = IdRewrite::new(
        RowFormat::Text,
        HashMap::from([(41, 4)]),
        (40, 3),
        MARIADB_CLIENT_EXTENDED_METADATA,
    );
    let mut out = BytesMut::new();
    r.on_packet(PacketKind::ColumnCount, &mut [2], &mut out);
    for (d, metadata) in [
        (
            def("PROCESSLIST", "ID", "ID", TYPE_LONGLONG, 4097),
            &b""[..],
        ),
        (def("PROCESSLIST", "INFO", "INFO", 252, 0), b"\x01\x04json"),
    ] {
        r.on_packet(
            PacketKind::ColumnDef,
            &mut with_format(d, metadata),
            &mut out,
        );
    }
    assert_eq!(
        rewritten_text(&mut r, text_row(&[Some("41"), Some("{}")])),
        Some(text_row(&[Some("4"), Some("{}")]))
    );
}

/// Found by `tests/proptest_parsers.rs`: a binary row whose length-encoded value claims
/// 2^64 - 1 bytes made the value's end overflow (a panic in debug builds). The row is
/// malformed and passes unchanged.
#[test]
fn binary_value_of_overflowing_length_is_malformed() {
    let mut r = rewrite(
        RowFormat::Binary,
        &[
            def("PROCESSLIST", "USER", "USER", 253, 0),
            def("PROCESSLIST", "ID", "ID", TYPE_LONGLONG, 4097),
        ],
    );
    // Header, null bitmap (no NULLs), then USER's length: 0xFE and eight 0xFF bytes.
    let original = [
        0x00, 0x00, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let mut row = original.to_vec();
    let mut out = BytesMut::new();
    assert!(!r.on_packet(PacketKind::Row, &mut row, &mut out));
    assert_eq!(row, original);
}
