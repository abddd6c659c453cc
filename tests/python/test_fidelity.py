"""Byte-level fidelity: the same client (same capabilities) running the same commands gets the
same reply packets through the proxy as straight from the primary. Capability combinations
matter: a client without CLIENT_DEPRECATE_EOF, CLIENT_SESSION_TRACK or CLIENT_MULTI_RESULTS
must get exactly the packet formats it asked for, whatever the proxy negotiated upstream."""

import struct

import pytest

import rawmysql as R
from conftest import HOST, PRIMARY_PORT, primary_exec, unique

BASE = R.DEFAULT_CAPS
CAPS = {
    "minimal41": R.CLIENT_PROTOCOL_41 | R.CLIENT_SECURE_CONNECTION | R.CLIENT_PLUGIN_AUTH | R.CLIENT_LONG_PASSWORD
    | R.CLIENT_TRANSACTIONS,
    "default": BASE,
    "deprecate_eof": BASE | R.CLIENT_DEPRECATE_EOF,
    "session_track": BASE | R.CLIENT_SESSION_TRACK | R.CLIENT_DEPRECATE_EOF,
    "multi": BASE | R.CLIENT_MULTI_STATEMENTS | R.CLIENT_FOUND_ROWS,
}


def read_text_reply(c):
    """Raw packets of one COM_QUERY reply (all result sets)."""
    pkts = []
    deprecate = c.caps & R.CLIENT_DEPRECATE_EOF
    while True:
        p = c.read_packet()
        pkts.append(p)
        if p[0] == 0xFF:
            return pkts
        if p[0] == 0x00:
            if R.parse_ok(p)["status"] & R.SERVER_MORE_RESULTS_EXISTS:
                continue
            return pkts
        if p[0] == 0xFB:
            return pkts
        ncols, _ = R.read_lenenc_int(p, 0)
        for _ in range(ncols):
            pkts.append(c.read_packet())
        if not deprecate:
            pkts.append(c.read_packet())  # EOF
        while True:
            r = c.read_packet()
            pkts.append(r)
            if r[0] == 0xFF:
                return pkts
            if r[0] == 0xFE and len(r) < 0xFFFFFF and (deprecate or len(r) < 9):
                status = R.parse_ok(r)["status"] if deprecate else struct.unpack_from("<H", r, 3)[0]
                break
        if not status & R.SERVER_MORE_RESULTS_EXISTS:
            return pkts


def read_prepare_reply(c):
    p = c.read_packet()
    pkts = [p]
    if p[0] == 0xFF:
        return pkts
    _, ncols, nparams = struct.unpack_from("<IHH", p, 1)
    deprecate = c.caps & R.CLIENT_DEPRECATE_EOF
    for n in (nparams, ncols):
        if n:
            pkts += [c.read_packet() for _ in range(n)]
            if not deprecate:
                pkts.append(c.read_packet())
    return pkts


def read_binary_reply(c):
    """Reply to COM_STMT_EXECUTE / COM_STMT_FETCH (a binary result set, or OK/ERR)."""
    p = c.read_packet()
    pkts = [p]
    if p[0] in (0x00, 0xFF):
        return pkts
    deprecate = c.caps & R.CLIENT_DEPRECATE_EOF
    if p[0] != 0xFE or len(p) >= 9:  # a column count, not the EOF of a fetch
        ncols, _ = R.read_lenenc_int(p, 0)
        pkts += [c.read_packet() for _ in range(ncols)]
        if not deprecate:
            e = c.read_packet()
            pkts.append(e)
            if struct.unpack_from("<H", e, 3)[0] & 0x0040:  # SERVER_STATUS_CURSOR_EXISTS
                return pkts
        else:
            pass
    else:
        return pkts
    while True:
        r = c.read_packet()
        pkts.append(r)
        if r[0] == 0xFF or (r[0] == 0xFE and len(r) < 0xFFFFFF and (deprecate or len(r) < 9)):
            return pkts


def read_fetch_reply(c):
    pkts = []
    deprecate = c.caps & R.CLIENT_DEPRECATE_EOF
    while True:
        r = c.read_packet()
        pkts.append(r)
        if r[0] == 0xFF or (r[0] == 0xFE and len(r) < 0xFFFFFF and (deprecate or len(r) < 9)):
            return pkts


def transcript(port, caps, script, db="test", charset=45):
    c = R.RawConn(HOST, port, timeout=30)
    try:
        c.read_handshake()
        c.handshake_response("app", "app", db=db, caps=caps, charset=charset)
        c.finish_auth("app")
        out = []
        ids = []  # statement ids from the COM_STMT_PREPARE replies, in order
        for kind, arg in script:
            if callable(arg):
                arg = arg(ids)
            if kind == "query":
                c.command(R.COM_QUERY, arg.encode())
                out.append((kind, arg, read_text_reply(c)))
            elif kind == "prepare":
                c.command(R.COM_STMT_PREPARE, arg.encode())
                pkts = read_prepare_reply(c)
                if pkts[0][0] == 0x00:
                    ids.append(struct.unpack_from("<I", pkts[0], 1)[0])
                    # ids are the server's (or the proxy's) own numbering: compare the rest
                    pkts[0] = pkts[0][:1] + b"<id>" + pkts[0][5:]
                else:
                    ids.append(None)
                out.append((kind, arg, pkts))
            elif kind == "execute":
                c.command(R.COM_STMT_EXECUTE, arg)
                out.append((kind, arg, read_binary_reply(c)))
            elif kind == "fetch":
                c.command(R.COM_STMT_FETCH, arg)
                out.append((kind, arg, read_fetch_reply(c)))
            elif kind == "close":
                c.command(R.COM_STMT_CLOSE, arg)
            elif kind == "longdata":  # COM_STMT_SEND_LONG_DATA: no reply
                c.command(R.COM_STMT_SEND_LONG_DATA, arg)
            elif kind == "reset":  # COM_STMT_RESET: OK or ERR
                c.command(R.COM_STMT_RESET, arg)
                out.append((kind, arg, [c.read_packet()]))
            elif kind == "one":  # commands answered by one packet
                cmd, payload = arg
                c.command(cmd, payload)
                out.append((kind, cmd, [c.read_packet()]))
            else:
                raise ValueError(kind)
        return out
    finally:
        c.close()


def compare(proxy, caps, script, port=None):
    via_server = transcript(PRIMARY_PORT, caps, script)
    via_proxy = transcript(port or proxy.rw_port, caps, script)
    for (kind, arg, a), (_, _, b) in zip(via_server, via_proxy):
        assert b == a, f"{kind} {arg!r}: proxy sent\n{b!r}\nserver sent\n{a!r}"
    assert len(via_proxy) == len(via_server)


@pytest.fixture(scope="module")
def fid_table(proxy):
    t = unique("fid")
    primary_exec(f"CREATE TABLE test.{t} (id INT PRIMARY KEY, v VARCHAR(20), d DECIMAL(6,2), ts DATETIME)",
                 f"INSERT INTO test.{t} VALUES (1, 'a', 1.5, '2024-01-01 10:00:00'), (2, NULL, NULL, NULL), "
                 f"(3, 'ccc', -3.25, '1999-12-31 23:59:59')")
    yield t
    primary_exec(f"DROP TABLE IF EXISTS test.{t}")


@pytest.mark.parametrize("caps", list(CAPS), ids=list(CAPS))
def test_text_protocol_identical(proxy, caps, fid_table):
    t = fid_table
    script = [
        ("query", "SELECT 1, 'x', NULL, 2.5"),
        ("query", f"SELECT * FROM {t} ORDER BY id"),
        ("query", f"SELECT * FROM {t} WHERE id > 100"),
        ("query", "DO 1"),
        ("query", "SET @a = 1"),
        ("query", "USE sbtest"),
        ("query", "USE test"),
        ("query", "SET SESSION sql_mode = 'TRADITIONAL'"),
        ("query", "SET autocommit = 0"),
        ("query", "BEGIN"),
        ("query", f"UPDATE {t} SET v = v WHERE id = 1"),
        ("query", "COMMIT"),
        ("query", "SET autocommit = 1"),
        ("query", "SELECT * FROM no_such_fidelity_table"),
        ("query", "SELEC 1"),
        ("query", "SELECT CAST('1x' AS UNSIGNED)"),
        ("query", "SHOW WARNINGS"),
        ("query", f"SHOW COLUMNS FROM {t}"),
        ("query", "SELECT 1; SELECT 2"),  # 1064 without CLIENT_MULTI_STATEMENTS
        ("one", (R.COM_PING, b"")),
        ("one", (R.COM_INIT_DB, b"test")),
    ]
    compare(proxy, CAPS[caps], script)


@pytest.mark.parametrize("caps", ["default", "deprecate_eof"])
def test_call_without_multi_results_capability(proxy, caps):
    # A client without CLIENT_MULTI_RESULTS cannot take a procedure's result sets: the server
    # refuses with 1312. Through the proxy the client must see the same.
    p = unique("fidproc")
    primary_exec(f"CREATE PROCEDURE test.{p}() BEGIN SELECT 1; SELECT 2; END")
    try:
        no_multi = CAPS[caps] & ~R.CLIENT_MULTI_RESULTS & ~R.CLIENT_PS_MULTI_RESULTS
        compare(proxy, no_multi, [("query", f"CALL {p}()"), ("query", "SELECT 'after'")])
        compare(proxy, CAPS[caps], [("query", f"CALL {p}()"), ("query", "SELECT 'after'")])
    finally:
        primary_exec(f"DROP PROCEDURE IF EXISTS test.{p}")


@pytest.mark.parametrize("caps", ["default", "deprecate_eof"])
def test_binary_protocol_identical(proxy, caps, fid_table):
    t = fid_table

    def execute_no_params(ids):
        return struct.pack("<IBI", ids[0], 0, 1)

    def execute_int_param(ids):
        # null bitmap (1 byte), new-params-bound 1, type LONG signed, value 2
        return struct.pack("<IBI", ids[1], 0, 1) + b"\x00\x01" + struct.pack("<BB", 3, 0) + struct.pack("<i", 2)

    script = [
        ("prepare", f"SELECT id, v, d, ts FROM {t} ORDER BY id"),
        ("execute", execute_no_params),
        ("prepare", f"SELECT v FROM {t} WHERE id = ?"),
        ("execute", execute_int_param),
        ("execute", execute_int_param),
        ("prepare", "SELECT seq, REPEAT('r', seq) FROM seq_1_to_10"),
        ("execute", lambda ids: struct.pack("<IBI", ids[2], 1, 1)),  # CURSOR_TYPE_READ_ONLY
        ("fetch", lambda ids: struct.pack("<II", ids[2], 4)),
        ("fetch", lambda ids: struct.pack("<II", ids[2], 4)),
        ("fetch", lambda ids: struct.pack("<II", ids[2], 4)),
        ("close", lambda ids: struct.pack("<I", ids[2])),
        ("prepare", "SELECT * FROM no_such_prep_table"),
        ("prepare", f"UPDATE {t} SET v = v WHERE id = ?"),
        ("close", lambda ids: struct.pack("<I", ids[0])),
        ("prepare", "SELECT LENGTH(?), MD5(?)"),
        ("longdata", lambda ids: struct.pack("<IH", ids[5], 0) + b"a" * 100000),
        ("longdata", lambda ids: struct.pack("<IH", ids[5], 0) + b"b" * 50000),
        ("longdata", lambda ids: struct.pack("<IH", ids[5], 1) + b"hello"),
        # both parameters come from long data: types BLOB, no values in the packet
        ("execute", lambda ids: struct.pack("<IBI", ids[5], 0, 1) + b"\x00\x01" + b"\xfc\x00\xfc\x00"),
        ("reset", lambda ids: struct.pack("<I", ids[5])),
        ("query", "SELECT 'end'"),
    ]
    compare(proxy, CAPS[caps], script)


def test_ro_listener_identical_to_its_replica(proxy, fid_table):
    # The ro listener picks a replica: compare with that replica directly.
    c = R.RawConn(HOST, proxy.ro_port)
    c.login("app", "app", db="test")
    port = int(c.scalar("SELECT @@port"))
    c.close()
    from conftest import wait_replicated
    wait_replicated()
    script = [("query", f"SELECT * FROM {fid_table} ORDER BY id"), ("query", "SELECT @@read_only")]
    a = transcript(port, BASE, script)
    # keep opening sessions until one lands on the same replica
    for _ in range(4):
        b = transcript(proxy.ro_port, BASE, [("query", "SELECT @@port")] + script)
        if b[0][2][-2][1:] == str(port).encode():
            assert [x[2] for x in b[1:]] == [x[2] for x in a]
            return
    pytest.skip("could not land on the same replica")


@pytest.mark.parametrize("charset", [8, 33, 45, 46, 63, 224])
def test_handshake_charset_applies(proxy, charset):
    # The collation id in the client's handshake response sets the session's character set
    # and collation, through the proxy as on the server.
    script = [("query", "SELECT @@character_set_client, @@character_set_connection, @@character_set_results, "
                        "@@collation_connection")]
    a = transcript(PRIMARY_PORT, BASE, script, charset=charset)
    b = transcript(proxy.rw_port, BASE, script, charset=charset)
    assert b[0][2] == a[0][2], (b[0][2][-2], a[0][2][-2])


def test_more_text_edge_cases_identical(proxy):
    many_cols = "SELECT " + ", ".join(f"{i} AS c{i}" for i in range(1000))
    script = [
        ("query", ""),                                   # 1065 Query was empty
        ("query", "SELECT 'nul\x00byte', LENGTH('a\x00b')"),
        ("query", many_cols),
        ("query", "SELECT REPEAT('w', 70000)"),          # a 3-byte lenenc length
        ("query", "SELECT '' , NULL, 0"),
        ("query", "SHOW VARIABLES LIKE 'version_comment'"),
    ]
    compare(proxy, BASE, script)
    compare(proxy, BASE | R.CLIENT_DEPRECATE_EOF, script)


def test_pipelined_commands(proxy):
    # Clients may send several commands before reading the replies (pipelining, as
    # Connector/C and Connector/J do): the replies must come back complete and in order.
    c = R.RawConn(HOST, proxy.rw_port, timeout=30)
    try:
        c.login("app", "app", db="test")
        batch = b""
        for i in range(200):
            q = f"SELECT {i}, REPEAT('p', {i * 10})".encode()
            batch += (len(q) + 1).to_bytes(3, "little") + b"\x00" + b"\x03" + q
        c.send_raw(batch)
        for i in range(200):
            kind, cols, rows, status = c.read_result()
            assert rows == [(str(i), "p" * (i * 10))]
        assert c.scalar("SELECT 'after pipeline'") == "after pipeline"
    finally:
        c.close()


def test_pipelined_prepare_and_execute_last_statement(proxy):
    # MariaDB: statement id 0xFFFFFFFF in COM_STMT_EXECUTE means "the statement just prepared",
    # which lets a client send PREPARE and EXECUTE together (mariadb_stmt_execute_direct).
    for port in (PRIMARY_PORT, proxy.rw_port):
        c = R.RawConn(HOST, port, timeout=30)
        try:
            c.login("app", "app", db="test")
            q = b"\x16SELECT ? + 1, 'direct'"
            ex = b"\x17" + struct.pack("<IBI", 0xFFFFFFFF, 0, 1) + b"\x00\x01" + struct.pack("<BB", 3, 0) + struct.pack("<i", 41)
            c.send_raw(len(q).to_bytes(3, "little") + b"\x00" + q + len(ex).to_bytes(3, "little") + b"\x00" + ex)
            prep = read_prepare_reply(c)
            assert prep[0][0] == 0x00, prep
            res = read_binary_reply(c)
            assert res[0][0] not in (0xFF,), (port, res)
            row = res[-2]
            assert row[0] == 0x00 and b"direct" in row, (port, res)
            assert c.scalar("SELECT 'after'") == "after"
        finally:
            c.close()
