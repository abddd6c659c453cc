"""A backend that dies, refuses or hangs. The `flaky` listener's only server is a TCP relay to
the primary that the tests control (tests/python/relay.py), so the shared sandbox servers are
never stopped. The client must get an error (2013 or the server's own) and its connection must
close; the proxy and other sessions carry on; new sessions work once the backend is back."""

import threading
import time

import pymysql
import pytest

from conftest import HOST


@pytest.fixture
def relay(proxy):
    r = proxy.relay
    r.normal()
    if r.lsock is None:
        r.start()
    yield r
    r.normal()
    if r.lsock is None:
        r.start()
    r.cut_all()


def flaky(proxy, **kw):
    kw.setdefault("connect_timeout", 15)
    kw.setdefault("read_timeout", 20)
    kw.setdefault("autocommit", True)
    return pymysql.connect(host=HOST, port=proxy.flaky_port, user="app", password="app", database="test", **kw)


def assert_closed(conn):
    with pytest.raises(pymysql.MySQLError):
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()


def test_flaky_listener_works(proxy, relay):
    with flaky(proxy) as c, c.cursor() as cur:
        cur.execute("SELECT @@server_id, @@port")
        assert cur.fetchone() == (1, 3307)


def test_backend_dies_while_idle(proxy, relay):
    c = flaky(proxy)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT 1")
        relay.cut_all()
        time.sleep(0.3)
        t0 = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as e:
            with c.cursor() as cur:
                cur.execute("SELECT 2")
                cur.fetchall()
        assert time.monotonic() - t0 < 10
        assert e.value.args[0] in (2013, 2006, 1927, 1053, 2026), e.value.args
        assert_closed(c)
    finally:
        c.close()
    proxy.assert_serving()
    with flaky(proxy) as c2, c2.cursor() as cur:
        cur.execute("SELECT 'back'")
        assert cur.fetchone() == ("back",)


def test_backend_dies_mid_result(proxy, relay):
    relay.cut_after = 2_000_000  # the backend "dies" after sending ~2 MB of the reply
    c = flaky(proxy, cursorclass=pymysql.cursors.SSCursor)
    relay.cut_after = None
    try:
        t0 = time.monotonic()
        # Not `with c.cursor()`: PyMySQL's SSCursor cannot close after its connection broke
        # mid-result (AttributeError), which a server dying mid-result causes as well.
        cur = c.cursor()
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute("SELECT seq, REPEAT('d', 200) FROM seq_1_to_1000000")
            for _ in cur:
                pass
        assert time.monotonic() - t0 < 15
        assert e.value.args[0] in (2013, 2006, 2027), e.value.args
        assert_closed(c)
    finally:
        c.close()
    proxy.assert_serving()
    with flaky(proxy) as c2, c2.cursor() as cur:
        cur.execute("SELECT 'back'")
        assert cur.fetchone() == ("back",)


def test_backend_dies_mid_large_packet(proxy, relay):
    # Cut inside one 20 MiB row (in the middle of a 16 MiB wire packet).
    relay.cut_after = 10_000_000
    c = flaky(proxy, max_allowed_packet=64 << 20)
    relay.cut_after = None
    try:
        with pytest.raises(pymysql.err.OperationalError) as e:
            with c.cursor() as cur:
                cur.execute(f"SELECT REPEAT('L', {20 << 20})")
                cur.fetchall()
        assert e.value.args[0] in (2013, 2006, 2027), e.value.args
    finally:
        c.close()
    proxy.assert_serving()


def test_backend_dies_during_a_query(proxy, relay):
    c = flaky(proxy)
    res = {}

    def run():
        try:
            with c.cursor() as cur:
                cur.execute("SELECT SLEEP(20)")
                res["rows"] = cur.fetchall()
        except Exception as e:  # noqa: BLE001
            res["error"] = e

    th = threading.Thread(target=run, daemon=True)
    try:
        th.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        relay.cut_all()
        th.join(15)
        assert not th.is_alive(), "the client was left waiting after its backend died"
        assert time.monotonic() - t0 < 10
        assert "error" in res and res["error"].args[0] in (2013, 2006), res
    finally:
        c.close()
    proxy.assert_serving()


def test_backend_refuses_new_connections(proxy, relay):
    relay.stop()  # nothing listens on the backend's address any more
    t0 = time.monotonic()
    with pytest.raises(pymysql.err.OperationalError) as e:
        flaky(proxy)
    assert time.monotonic() - t0 < 10
    # no qualifying server: an error the client can show (MaxScale-like wording is fine)
    assert e.value.args[0] not in (0,), e.value.args
    proxy.assert_serving()
    relay.start()
    with flaky(proxy) as c, c.cursor() as cur:
        cur.execute("SELECT 'again'")
        assert cur.fetchone() == ("again",)


def test_backend_hangs_on_connect(proxy, relay):
    # The backend accepts TCP but never sends its handshake: the proxy's connect_timeout (2s
    # for this service) must end the login with an error, not leave the client hanging.
    relay.mode = "blackhole"
    t0 = time.monotonic()
    try:
        with pytest.raises(pymysql.err.OperationalError):
            flaky(proxy, connect_timeout=30, read_timeout=30)
        assert time.monotonic() - t0 < 15, "login hung although the service's connect_timeout is 2s"
    finally:
        relay.normal()
        relay.cut_all()
    proxy.assert_serving()


def test_backend_dies_in_transaction(proxy, relay):
    c = flaky(proxy, autocommit=False)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            relay.cut_all()
            time.sleep(0.3)
            with pytest.raises(pymysql.err.OperationalError):
                cur.execute("SELECT 2")
    finally:
        c.close()


def test_many_sessions_lose_backend_at_once(proxy, relay):
    conns = [flaky(proxy) for _ in range(20)]
    try:
        relay.cut_all()
        time.sleep(0.3)
        errors = 0
        for c in conns:
            try:
                with c.cursor() as cur:
                    cur.execute("SELECT 1")
            except pymysql.MySQLError:
                errors += 1
        assert errors == 20
    finally:
        for c in conns:
            try:
                c.close()
            except Exception:
                pass
    proxy.assert_serving()
    with flaky(proxy) as c, c.cursor() as cur:
        cur.execute("SELECT 1")
