"""Bad input from clients ends that session only: garbage, truncated or out-of-order packets,
port scans, clients vanishing in the middle of a result. After each case a fresh normal
connection must work and the proxy must still be running."""

import random
import re
import socket
import struct
import threading
import time

import pytest

import rawmysql
from conftest import HOST, direct

R = rawmysql


@pytest.fixture(autouse=True)
def _serving_after(proxy):
    yield
    proxy.assert_serving()


def raw(proxy, port=None, timeout=10):
    return R.RawConn(HOST, port or proxy.rw_port, timeout=timeout)


def ends_session(c, timeout=10):
    """The proxy either answers with an ERR packet and closes, or just closes."""
    try:
        closed = c.is_closed(timeout)
    finally:
        c.close()
    assert closed, f"the proxy did not close the session within {timeout} s"


def read_err_or_close(c):
    """Reads one packet: returns the ServerError if it is an ERR packet, None on close."""
    try:
        p = c.read_packet()
    except (R.Closed, socket.timeout, OSError):
        return None
    assert p[:1] == b"\xff", f"expected an ERR packet or a close, got {p[:40]!r}"
    return R.parse_err(p)


# --- before / during the handshake -----------------------------------------------------------

def test_garbage_before_handshake(proxy):
    # An HTTP request where a MySQL client would wait for the greeting. Its first bytes read
    # as a packet header announcing ~5 MB, so (like the server) the proxy may wait for its
    # login timeout before it gives up: allow 15 s.
    c = raw(proxy)
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    ends_session(c, timeout=15)


def test_garbage_before_handshake_then_close(proxy):
    c = raw(proxy)
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    ends_session(c)


def test_small_garbage_packet_before_handshake(proxy):
    # A well-framed but meaningless packet sent before reading the greeting.
    c = raw(proxy)
    c.send_raw(b"\x05\x00\x00\x01hello")
    err = None
    try:
        c.read_handshake()
        err = read_err_or_close(c)
    except R.ServerError as e:
        err = e
    except (R.Closed, OSError):
        pass
    if err is not None:
        assert err.code in (1043, 1045, 1156), err
    ends_session(c)


def test_tls_client_hello_instead_of_response(proxy):
    c = raw(proxy)
    c.read_handshake()
    # a TLS ClientHello record where the handshake response should be, then EOF
    c.send_raw(bytes.fromhex("16030100a5010000a10303") + random.Random(1).randbytes(160))
    c.sock.shutdown(socket.SHUT_WR)
    ends_session(c)


def test_garbage_after_greeting(proxy):
    c = raw(proxy)
    c.read_handshake()
    c.send_raw(random.Random(7).randbytes(300))
    c.sock.shutdown(socket.SHUT_WR)
    ends_session(c)


def test_handshake_response_too_short_gets_error(proxy):
    c = raw(proxy)
    c.read_handshake()
    c.write_packet(b"\x85\xa6\x3f\x20\x00", seq=1)  # 5 bytes: no max packet, charset, user...
    err = read_err_or_close(c)
    if err is not None:
        # the server says 1043 "Bad handshake" (08S01)
        assert err.code in (1043, 1045, 2027), err
    ends_session(c)


def test_truncated_handshake_response_then_close(proxy):
    c = raw(proxy)
    c.read_handshake()
    # header claims 100 bytes, only 20 follow, then the client goes away
    c.send_raw((100).to_bytes(3, "little") + b"\x01" + b"\x00" * 20)
    c.sock.shutdown(socket.SHUT_WR)
    ends_session(c)


def test_handshake_response_with_lying_lengths(proxy):
    c = raw(proxy)
    hs = c.read_handshake()
    caps = R.DEFAULT_CAPS | R.CLIENT_CONNECT_WITH_DB
    # auth data length 250 but only 5 bytes follow; no terminating NULs
    pl = struct.pack("<IIB23s", caps, 1 << 24, 45, b"") + b"app\0" + b"\xfa" + b"\x01\x02\x03\x04\x05"
    c.write_packet(pl, seq=1)
    err = read_err_or_close(c)
    if err is not None:
        assert err.code in (1043, 1045), err
    ends_session(c)


def test_handshake_response_user_not_terminated(proxy):
    c = raw(proxy)
    c.read_handshake()
    pl = struct.pack("<IIB23s", R.DEFAULT_CAPS, 1 << 24, 45, b"") + b"app" * 20
    c.write_packet(pl, seq=1)
    err = read_err_or_close(c)
    if err is not None:
        assert err.code in (1043, 1045), err
    ends_session(c)


def test_handshake_response_wrong_sequence(proxy):
    # The server answers 1156 "Got packets out of order" and closes; the login must not succeed.
    c = raw(proxy)
    hs = c.read_handshake()
    c.seq = 7  # should be 1
    pl = struct.pack("<IIB23s", R.DEFAULT_CAPS, 1 << 24, 45, b"") + b"app\0" + \
        R.lenenc_int(20) + R.native_scramble(b"app", hs.salt) + b"mysql_native_password\0"
    c.write_packet(pl)
    err = read_err_or_close(c)
    if err is not None:
        assert err.code in (1043, 1156, 1045), err
        # not logged in: the connection must not be usable
    ends_session(c)


def test_ssl_request_without_tls_offered(proxy):
    # CLIENT_SSL in a short SSL request although the proxy did not offer TLS.
    c = raw(proxy)
    c.read_handshake()
    c.write_packet(struct.pack("<IIB23s", R.DEFAULT_CAPS | R.CLIENT_SSL, 1 << 24, 45, b""), seq=1)
    c.send_raw(bytes.fromhex("160301"))
    ends_session(c)


def test_handshake_fuzz(proxy):
    # 100 handshake responses of random bytes (well framed): each must be answered (an ERR
    # packet, an auth switch request...) or closed promptly, not left waiting.
    rnd = random.Random(12345)
    hung = []
    for i in range(100):
        c = raw(proxy, timeout=5)
        try:
            c.read_handshake()
            n = rnd.choice([0, 1, 4, 31, 32, 33, 40, 64, 200, 1000])
            body = bytearray(rnd.randbytes(n))
            if n >= 32 and rnd.random() < 0.7:
                caps = (R.DEFAULT_CAPS | rnd.getrandbits(32)) & ~R.CLIENT_SSL
                body[0:4] = struct.pack("<I", caps)
            elif n >= 4:
                body[1] &= ~(R.CLIENT_SSL >> 8) & 0xFF
            c.write_packet(bytes(body), seq=1)
            # any answer (ERR, an auth switch request...) or a close is fine; silence is not
            c.sock.settimeout(3)
            try:
                c.sock.recv(65536)
            except socket.timeout:
                hung.append((n, bytes(body[:40]).hex()))
            except OSError:
                pass
        finally:
            c.close()
    assert proxy.alive()
    assert not hung, f"{len(hung)} malformed handshake responses left the session open: {hung[:5]}"


def test_idle_client_without_handshake_response_does_not_block_others(proxy):
    # Slow clients that never answer the greeting must not hold up other logins.
    idle = [raw(proxy) for _ in range(20)]
    try:
        for c in idle:
            c.read_handshake()
        proxy.assert_serving()
    finally:
        for c in idle:
            c.close()


# --- after login ------------------------------------------------------------------------------

def logged_in(proxy, **kw):
    c = raw(proxy, **kw)
    c.login("app", "app", db="test")
    return c


def test_command_packet_claims_more_than_sent_then_close(proxy):
    c = logged_in(proxy)
    c.send_raw((1000).to_bytes(3, "little") + b"\x00" + b"\x03SELECT 1")  # 10 of 1000 bytes
    time.sleep(0.2)
    c.close()


def test_command_packet_claims_more_than_sent_half_close(proxy):
    c = logged_in(proxy)
    c.send_raw((1000).to_bytes(3, "little") + b"\x00" + b"\x03SELECT 1")
    c.sock.shutdown(socket.SHUT_WR)
    ends_session(c)


def test_truncated_header_then_close(proxy):
    c = logged_in(proxy)
    c.send_raw(b"\x05\x00")  # 2 of 4 header bytes
    c.sock.shutdown(socket.SHUT_WR)
    ends_session(c)


def test_command_with_wrong_sequence_id(proxy):
    c = logged_in(proxy)
    c.write_packet(b"\x03SELECT 1", seq=5)  # a new command must start at 0
    # the server answers 1156 "Got packets out of order" and closes
    err = read_err_or_close(c)
    if err is not None:
        assert err.code == 1156, err
    ends_session(c)


def test_empty_command_packet(proxy):
    c = logged_in(proxy)
    c.write_packet(b"", seq=0)
    # the server answers 1047 "Unknown command" (and keeps the session)
    err = read_err_or_close(c)
    if err is not None:
        assert err.code == 1047, err
        assert c.scalar("SELECT 'after empty'") == "after empty"
    c.close()


def test_unknown_command_byte(proxy):
    c = logged_in(proxy)
    c.command(0xEE)
    with pytest.raises(R.ServerError) as e:
        c.read_result()
    assert (e.value.code, e.value.state, e.value.message) == (1047, "08S01", "Unknown command")
    assert c.scalar("SELECT 'after unknown'") == "after unknown"
    c.close()


def test_unknown_statement_ids(proxy):
    # COM_STMT_* with an id nobody prepared: the server's 1243 for those that answer;
    # COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA have no reply; the session stays in sync.
    c = logged_in(proxy)
    try:
        c.command(R.COM_STMT_EXECUTE, struct.pack("<IBI", 0x99, 0, 1))
        with pytest.raises(R.ServerError) as e:
            c.read_result()
        assert e.value.code == 1243 and "mysqld_stmt_execute" in e.value.message, e.value
        c.command(R.COM_STMT_FETCH, struct.pack("<II", 0x99, 1))
        with pytest.raises(R.ServerError) as e:
            c.read_result()
        assert e.value.code == 1243, e.value
        c.command(R.COM_STMT_CLOSE, struct.pack("<I", 0x99))
        c.command(R.COM_STMT_SEND_LONG_DATA, struct.pack("<IH", 0x99, 0) + b"abc")
        c.command(R.COM_STMT_RESET, struct.pack("<I", 0x99))
        with pytest.raises(R.ServerError) as e:
            c.read_result()
        assert e.value.code == 1243, e.value
        assert c.scalar("SELECT 'in sync'") == "in sync"
    finally:
        c.close()


def test_truncated_stmt_execute(proxy):
    # A real statement, then COM_STMT_EXECUTE cut short (no flags/iteration count/params).
    c = logged_in(proxy)
    try:
        c.command(R.COM_STMT_PREPARE, b"SELECT ? + 1")
        p = c.read_packet()
        assert p[0] == 0x00, p
        stmt_id, ncols, nparams = struct.unpack_from("<IHH", p, 1)
        # drain the parameter and column definitions (+ EOFs without DEPRECATE_EOF)
        for _ in range(nparams + 1 + ncols + 1):
            c.read_packet()
        c.command(R.COM_STMT_EXECUTE, struct.pack("<I", stmt_id))
        err = read_err_or_close(c)
        if err is not None:
            assert err.code in (1047, 1210, 1835, 2027), err
            assert c.scalar("SELECT 'still'") == "still"
    finally:
        c.close()


def test_garbage_command_stream(proxy):
    # Packets with command bytes no server knows, then a header promising 16 MiB that never
    # comes, then the client goes away. (No random bytes: a random command byte could be
    # COM_SHUTDOWN, which the app user may run.)
    c = logged_in(proxy)
    c.send_raw(b"\x03\x00\x00\x00\xf0\xf1\xf2" + b"\x01\x00\x00\x00\xf3" + b"\xff\xff\xff\x00" + b"\xf5" * 64)
    try:
        c.sock.settimeout(3)
        while c.sock.recv(65536):
            pass
    except OSError:
        pass
    c.close()


def test_port_scan_connect_close(proxy):
    for _ in range(100):
        s = socket.create_connection((HOST, proxy.rw_port), timeout=5)
        s.close()


def test_port_scan_connect_reset(proxy):
    # connect and reset (SO_LINGER 0 -> RST), on both listeners
    for port in (proxy.rw_port, proxy.ro_port):
        for _ in range(50):
            s = socket.create_connection((HOST, port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()


def test_port_scan_read_greeting_then_close(proxy):
    for _ in range(50):
        c = raw(proxy)
        c.read_handshake()
        c.close()


def test_quit_mid_login(proxy):
    # COM_QUIT-like close right after a successful auth switch request
    c = raw(proxy)
    c.read_handshake()
    c.handshake_response("app", "app", plugin="caching_sha2_password")
    c.close()


def _backend_threads_running(marker, port=3307):
    with direct(port) as d, d.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                    (f"%{marker}%",))
        return cur.fetchone()[0]


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_vanishes_mid_result(proxy, how):
    marker = f"vanish_{how}_{random.randrange(1 << 30)}"
    c = logged_in(proxy)
    c.command(R.COM_QUERY, f"SELECT seq, REPEAT('v', 200), '{marker}' FROM seq_1_to_2000000".encode())
    got = 0
    while got < 200_000:
        got += len(c.sock.recv(65536))
    if how == "reset":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    # The proxy must notice and release the backend: the query does not keep running there.
    deadline = time.monotonic() + 15
    while _backend_threads_running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _backend_threads_running(marker) == 0, "the backend query kept running after the client left"


def test_client_stops_reading_mid_result_others_unaffected(proxy):
    # A client that stops reading a big result (its socket buffers fill) must not stall
    # other sessions.
    c = logged_in(proxy)
    c.command(R.COM_QUERY, b"SELECT seq, REPEAT('s', 500) FROM seq_1_to_2000000")
    c.sock.recv(1000)
    try:
        t0 = time.monotonic()
        for _ in range(5):
            proxy.assert_serving()
        assert time.monotonic() - t0 < 10
    finally:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()


def test_pymysql_client_vanishes_mid_unbuffered_result(proxy):
    import pymysql
    conn = proxy.rw(database="test", cursorclass=pymysql.cursors.SSCursor)
    cur = conn.cursor()
    cur.execute("SELECT seq, REPEAT('p', 100) FROM seq_1_to_1000000")
    for _ in range(1000):
        cur.fetchone()
    conn._sock.close()  # vanish without COM_QUIT


def test_many_sessions_killed_mid_result_in_parallel(proxy):
    def one(i):
        try:
            c = logged_in(proxy)
            c.command(R.COM_QUERY, b"SELECT seq, REPEAT('k', 300) FROM seq_1_to_500000")
            c.sock.recv(20000)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        except Exception:
            pass

    ths = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)


def test_local_infile_data_truncated_then_close(proxy):
    # The server asks for a local file (0xFB); the client sends one good packet, then a
    # truncated one, then goes away.
    c = raw(proxy)
    c.login("app", "app", db="test", caps=R.DEFAULT_CAPS | R.CLIENT_LOCAL_FILES)
    c.query("CREATE TEMPORARY TABLE ldi_raw (a INT)")
    c.command(R.COM_QUERY, b"LOAD DATA LOCAL INFILE '/tmp/whatever.csv' INTO TABLE ldi_raw")
    r = c.read_result()
    assert r == ("infile", "/tmp/whatever.csv"), r
    c.write_packet(b"1\n2\n3\n")
    c.send_raw((50).to_bytes(3, "little") + bytes([c.seq]) + b"4\n5")
    c.sock.shutdown(socket.SHUT_WR)
    ends_session(c)


def test_local_infile_roundtrip_raw(proxy):
    # The same exchange done properly: data packets, an empty packet, then the server's OK.
    c = raw(proxy)
    try:
        c.login("app", "app", db="test", caps=R.DEFAULT_CAPS | R.CLIENT_LOCAL_FILES)
        c.query("CREATE TEMPORARY TABLE ldi_ok (a INT)")
        c.command(R.COM_QUERY, b"LOAD DATA LOCAL INFILE 'anything' INTO TABLE ldi_ok")
        assert c.read_result() == ("infile", "anything")
        c.write_packet(b"".join(b"%d\n" % i for i in range(1000)))
        c.write_packet(b"".join(b"%d\n" % i for i in range(1000, 1500)))
        c.write_packet(b"")
        kind, ok = c.read_result()
        assert kind == "ok" and ok["affected"] == 1500, ok
        assert c.scalar("SELECT SUM(a) FROM ldi_ok") == str(sum(range(1500)))
    finally:
        c.close()


def failed_login_log(proxy, user):
    """What the proxy logs for a failed login (1045) as `user`."""
    offset = proxy.log_size()
    c = raw(proxy)
    try:
        c.read_handshake()
        c.handshake_response(user, "nope")
        with pytest.raises(R.ServerError) as e:
            c.finish_auth("nope")
        assert e.value.code == 1045
    finally:
        c.close()
    time.sleep(0.3)
    return proxy.log_since(offset)


def test_user_name_cannot_forge_log_lines(proxy):
    # A user name with a newline and a fake log record: every line the proxy writes must still
    # be one of its own records (starting with a timestamp), control characters escaped.
    forged = "x\n2030-01-01T00:00:00.000000Z  INFO FORGED: client logged in user=root\r\x1b[2J"
    text = failed_login_log(proxy, forged)
    bad = [l for l in text.splitlines()
           if l and (not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", l) or l.startswith("2030-01-01"))]
    assert not bad, "log lines not written by the proxy's logger (log injection):\n" + "\n".join(bad[:5])
    assert "\x1b" not in text, "raw escape sequence from a client written to the log"


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_oversized_login_packet_is_refused_from_its_header(proxy):
    """Before login only a login's size is read: a 48 MiB handshake response is refused as the
    server refuses one over max_allowed_packet, from its first frame header, not buffered."""
    before = _rss_kib(proxy.proc.pid)
    for _ in range(3):
        c = raw(proxy)
        c.read_handshake()
        # The first of three 16 MiB frames: its header and a little of its body.
        c.send_raw(b"\xff\xff\xff\x01" + struct.pack("<IIB23s", R.DEFAULT_CAPS, 1 << 24, 45, b"")
                   + b"u" * (64 << 10))
        err = read_err_or_close(c)
        assert err is not None and (err.code, err.state) == (1153, "08S01"), err
        assert "max_allowed_packet" in err.message
        ends_session(c)

    # The whole packet, sent as fast as the proxy takes it: the proxy closes early.
    def flood():
        c = raw(proxy)
        try:
            c.read_handshake()
            c.write_packet(b"\0" * (48 << 20), seq=1)
        except OSError:
            pass
        finally:
            c.close()
    t = threading.Thread(target=flood)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the proxy kept reading a 48 MiB login packet"
    grown = _rss_kib(proxy.proc.pid) - before
    assert grown < 8 << 10, f"the proxy grew by {grown} KiB reading oversized login packets"


def test_login_with_large_connect_attributes_still_works(proxy):
    """What MariaDB accepts (connect attributes up to 64 KiB) still logs in."""
    c = raw(proxy)
    try:
        c.login("app", "app", attrs={"_client_name": "raw", "padding": "x" * (60 << 10)})
        assert c.scalar("SELECT 1") in (1, "1", b"1")
    finally:
        c.close()


def test_long_user_name_keeps_the_log_small(proxy):
    """A failed login with a 64 KiB user name writes a few lines of log, not megabytes: the
    name is read as the server reads it (128 characters), and log lines cut client-chosen
    text after 256 bytes with a visible marker."""
    text = failed_login_log(proxy, "u" * (64 << 10))
    assert "u" * 128 in text and "u" * 129 not in text, text[:2000]
    assert len(text) < 16 << 10, f"{len(text)} bytes of log for one failed login"
    text = failed_login_log(proxy, "\u00e9" * 300)  # 128 characters are 256 bytes of UTF-8
    assert "é" * 128 in text and "é" * 129 not in text, text[:2000]
