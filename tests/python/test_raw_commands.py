"""Commands PyMySQL does not offer, sent with the raw client: COM_FIELD_LIST, COM_STATISTICS,
COM_SET_OPTION, COM_RESET_CONNECTION, COM_CHANGE_USER, COM_INIT_DB, COM_PING, COM_QUIT,
and CLIENT_DEPRECATE_EOF / session-tracking variants of results."""

import re
import struct
import time

import pytest

import rawmysql as R
from conftest import BACKEND_THREAD_ID, HOST, direct


def login(proxy, user="app", password="app", db="test", caps=R.DEFAULT_CAPS, port=None):
    c = R.RawConn(HOST, port or proxy.rw_port)
    c.login(user, password, db=db, caps=caps)
    return c


def field_list(c, table, wildcard=b""):
    c.command(R.COM_FIELD_LIST, table.encode() + b"\0" + wildcard)
    names = []
    while True:
        p = c.read_packet()
        if p[0] == 0xFF:
            raise R.parse_err(p)
        if p[0] == 0xFE and len(p) < 9:
            return names
        pos = 0
        fields = []
        for _ in range(6):
            n, pos = R.read_lenenc_int(p, pos)
            fields.append(p[pos:pos + n].decode())
            pos += n
        names.append(fields[4])


def test_com_field_list(proxy, table):
    t = table("fl")
    c = login(proxy)
    try:
        c.query(f"CREATE TABLE {t} (id INT, name VARCHAR(10), created DATETIME)")
        assert field_list(c, t) == ["id", "name", "created"]
        assert field_list(c, t, b"na%") == ["name"]
        with pytest.raises(R.ServerError) as e:
            field_list(c, "no_such_fl_table")
        assert e.value.code == 1146
        assert c.scalar("SELECT 'after field list'") == "after field list"
    finally:
        c.close()


def test_com_field_list_deprecate_eof(proxy, table):
    # With CLIENT_DEPRECATE_EOF the field list still ends with an EOF/OK packet (0xFE).
    t = table("fl2")
    c = login(proxy, caps=R.DEFAULT_CAPS | R.CLIENT_DEPRECATE_EOF)
    try:
        c.query(f"CREATE TABLE {t} (a INT, b INT)")
        assert field_list(c, t) == ["a", "b"]
        assert c.scalar("SELECT 2") == "2"
    finally:
        c.close()


def test_com_statistics(proxy):
    c = login(proxy)
    try:
        for _ in range(2):
            c.command(R.COM_STATISTICS)
            p = c.read_packet()
            assert re.match(rb"Uptime: \d+  Threads: \d+  Questions: \d+  Slow queries: \d+  Opens: \d+", p), p
        assert c.scalar("SELECT 'after stats'") == "after stats"
    finally:
        c.close()


def test_com_ping_and_init_db(proxy):
    c = login(proxy, db=None)
    try:
        c.command(R.COM_PING)
        kind, ok = c.read_result()
        assert kind == "ok"
        c.command(R.COM_INIT_DB, b"sbtest")
        assert c.read_result()[0] == "ok"
        assert c.scalar("SELECT DATABASE()") == "sbtest"
        c.command(R.COM_INIT_DB, b"no_such_init_db")
        with pytest.raises(R.ServerError) as e:
            c.read_result()
        assert (e.value.code, e.value.message) == (1049, "Unknown database 'no_such_init_db'")
        assert c.scalar("SELECT DATABASE()") == "sbtest"
    finally:
        c.close()


def test_com_set_option_multi_statements(proxy):
    c = login(proxy)
    try:
        with pytest.raises(R.ServerError) as e:
            c.query("SELECT 1; SELECT 2")
        assert e.value.code == 1064
        c.command(R.COM_SET_OPTION, struct.pack("<H", 0))  # MYSQL_OPTION_MULTI_STATEMENTS_ON
        p = c.read_packet()
        assert p[0] in (0xFE, 0x00), p  # EOF (or OK with DEPRECATE_EOF)
        res = c.query("SELECT 1; SELECT 2")
        assert [r[2] for r in res] == [[("1",)], [("2",)]]
        c.command(R.COM_SET_OPTION, struct.pack("<H", 1))  # OFF
        c.read_packet()
        with pytest.raises(R.ServerError):
            c.query("SELECT 1; SELECT 2")
        assert c.scalar("SELECT 3") == "3"
    finally:
        c.close()


def test_com_reset_connection(proxy):
    c = login(proxy)
    try:
        backend_before = c.scalar(f"SELECT {BACKEND_THREAD_ID}")
        c.query("SET @x = 5")
        c.query("CREATE TEMPORARY TABLE rc_tmp (a INT)")
        c.query("SET SESSION sql_mode = 'ANSI'")
        c.command(R.COM_RESET_CONNECTION)
        kind, ok = c.read_result()
        assert kind == "ok"
        assert c.query("SELECT @x, CURRENT_USER(), DATABASE()")[0][2] == [(None, "app@127.0.0.1", "test")]
        with pytest.raises(R.ServerError) as e:
            c.query("SELECT * FROM rc_tmp")
        assert e.value.code == 1146
        assert c.scalar("SELECT @@sql_mode") != "ANSI"
        # same backend session, reset (not a new connection)
        assert c.scalar(f"SELECT {BACKEND_THREAD_ID}") == backend_before
    finally:
        c.close()


def change_user(c, user, password, db="", salt=None):
    auth = R.native_scramble(password.encode(), salt or c.handshake.salt)
    pl = (user.encode() + b"\0" + bytes([len(auth)]) + auth + db.encode() + b"\0"
          + struct.pack("<H", 45) + b"mysql_native_password\0")
    c.command(R.COM_CHANGE_USER, pl)
    return c.finish_auth(password)


def test_com_change_user(proxy):
    c = login(proxy)
    try:
        c.query("SET @x = 5")
        change_user(c, "limited", "limited", "test")
        assert c.query("SELECT CURRENT_USER(), DATABASE(), @x")[0][2] == [("limited@127.0.0.1", "test", None)]
        # limited cannot see sbtest
        with pytest.raises(R.ServerError) as e:
            c.query("SELECT * FROM sbtest.whatever")
        assert e.value.code == 1142
        change_user(c, "app", "app", "sbtest")
        assert c.query("SELECT CURRENT_USER(), DATABASE()")[0][2] == [("app@127.0.0.1", "sbtest")]
    finally:
        c.close()


def test_com_change_user_wrong_password_keeps_no_privileges(proxy):
    # A failed change-user must never leave the session as the requested user.
    c = login(proxy, user="limited", password="limited")
    try:
        with pytest.raises(R.ServerError) as e:
            change_user(c, "app", "wrong")
        assert (e.value.code, e.value.message) == (1045, "Access denied for user 'app'@'127.0.0.1' (using password: YES)")
        try:
            who = c.scalar("SELECT CURRENT_USER()")
        except (R.Closed, R.ServerError, OSError):
            return  # the session was closed: fine
        assert who == "limited@127.0.0.1", who
    finally:
        c.close()


def test_com_change_user_unknown_db(proxy):
    c = login(proxy)
    try:
        with pytest.raises(R.ServerError) as e:
            change_user(c, "app", "app", "no_such_cu_db")
        assert e.value.code == 1049
    finally:
        c.close()


def test_com_change_user_to_new_user(proxy, make_user):
    name = make_user(password="cu", grants=("SELECT ON test.*",))
    c = login(proxy)
    try:
        deadline = time.monotonic() + 3
        while True:
            try:
                change_user(c, name, "cu", "test")
                break
            except R.ServerError:
                if time.monotonic() > deadline:
                    raise
                c.close()
                time.sleep(0.3)
                c = login(proxy)
        assert c.scalar("SELECT CURRENT_USER()") == f"{name}@127.0.0.1"
    finally:
        c.close()


def test_com_quit(proxy):
    c = login(proxy)
    c.command(R.COM_QUIT)
    assert c.is_closed(5)
    c.close()


def test_deprecate_eof_results(proxy):
    c = login(proxy, caps=R.DEFAULT_CAPS | R.CLIENT_DEPRECATE_EOF | R.CLIENT_MULTI_STATEMENTS)
    try:
        res = c.query("SELECT 1 AS a, 'x' AS b; SELECT seq FROM seq_1_to_3; DO 1")
        assert res[0] == ("rows", ["a", "b"], [("1", "x")], res[0][3])
        assert res[1][2] == [("1",), ("2",), ("3",)]
        assert res[2][0] == "ok"
        assert c.scalar("SELECT NULL") is None
    finally:
        c.close()


def test_session_track_in_ok(proxy):
    # With CLIENT_SESSION_TRACK, the OK after SET/USE carries the tracking info; the client
    # must be able to parse it and carry on.
    c = login(proxy, caps=R.DEFAULT_CAPS | R.CLIENT_SESSION_TRACK | R.CLIENT_DEPRECATE_EOF)
    try:
        c.query("SET SESSION session_track_schema = ON, SESSION session_track_system_variables = 'autocommit,time_zone'")
        c.command(R.COM_QUERY, b"USE sbtest")
        p = c.read_packet()
        assert p[0] == 0x00
        assert b"sbtest" in p  # SESSION_TRACK_SCHEMA
        c.command(R.COM_QUERY, b"SET time_zone = '+01:00'")
        p = c.read_packet()
        assert p[0] == 0x00 and b"time_zone" in p and b"+01:00" in p
        assert c.scalar("SELECT DATABASE()") == "sbtest"
    finally:
        c.close()


def test_connect_without_plugin_auth_capability(proxy):
    # An old client without CLIENT_PLUGIN_AUTH: native scramble, no plugin name.
    caps = R.DEFAULT_CAPS & ~R.CLIENT_PLUGIN_AUTH & ~R.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    c = R.RawConn(HOST, proxy.rw_port)
    try:
        c.login("app", "app", db="test", caps=caps)
        assert c.scalar("SELECT CURRENT_USER()") == "app@127.0.0.1"
    finally:
        c.close()


def _login_unmasked(proxy, caps, filler=b""):
    c = R.RawConn(HOST, proxy.rw_port)
    hs = c.read_handshake()
    pl = struct.pack("<IIB", caps, 1 << 24, 45) + filler.rjust(23, b"\0")[:23]
    pl += b"app\0" + R.lenenc_int(20) + R.native_scramble(b"app", hs.salt) + b"mysql_native_password\0"
    c.write_packet(pl, seq=1)
    c.caps = caps
    c.finish_auth("app")
    return c


def test_client_asking_for_unoffered_compression(proxy):
    # CLIENT_COMPRESS was not offered: a client that sets it anyway must get an uncompressed,
    # working session (or a clean refusal), never a garbled stream.
    c = _login_unmasked(proxy, R.DEFAULT_CAPS | 0x20)
    try:
        assert c.scalar("SELECT 'plain'") == "plain"
    finally:
        c.close()


def test_client_sending_unoffered_mariadb_extended_caps(proxy):
    # MariaDB clients put extended capabilities (progress, bulk, extended metadata, metadata
    # cache) in the last 4 filler bytes when CLIENT_MYSQL is clear; the proxy offered none.
    c = _login_unmasked(proxy, R.DEFAULT_CAPS & ~R.CLIENT_LONG_PASSWORD, filler=struct.pack("<I", 0x1D))
    try:
        res = c.query("SELECT 1 AS a, 'x' AS b")
        assert res[0][1:3] == (["a", "b"], [("1", "x")])
    finally:
        c.close()


def test_kill_after_change_user_reaches_new_backend(proxy):
    # COM_CHANGE_USER opens a fresh backend connection: KILL <proxy id> must follow it.
    import threading
    import pymysql
    a = login(proxy)
    try:
        change_user(a, "app", "app", "test")
        backend = int(a.scalar(f"SELECT {BACKEND_THREAD_ID}"))
        res = {}

        def run():
            try:
                res["r"] = a.query("SELECT SLEEP(20)")
            except Exception as e:  # noqa: BLE001
                res["e"] = e

        th = threading.Thread(target=run, daemon=True)
        th.start()
        deadline = time.monotonic() + 10
        with direct() as d, d.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s AND INFO LIKE 'SELECT SLEEP%%'",
                            (backend,))
                if cur.fetchone()[0]:
                    break
                time.sleep(0.05)
        with proxy.rw() as b, b.cursor() as cur:
            try:
                cur.execute(f"KILL QUERY {a.handshake.connection_id}")
            except pymysql.MySQLError as e:
                res["kill_error"] = e
        th.join(8)
        if th.is_alive():
            with direct() as d, d.cursor() as cur:
                cur.execute(f"KILL {backend}")
            th.join(5)
            pytest.fail(f"KILL QUERY after COM_CHANGE_USER did not reach the new backend thread ({res})")
    finally:
        a.close()
