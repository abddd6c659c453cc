"""KILL [QUERY|CONNECTION] <id> and COM_PROCESS_KILL with the proxy's own connection ids
(the ids clients see in the handshake), translated by the proxy to the backend's thread."""

import threading
import time
from contextlib import contextmanager

import pymysql
import pytest

from conftest import backend_thread_id, direct


class Sleeper(threading.Thread):
    """Runs `SELECT SLEEP(n)` on `conn` in a thread and records the outcome and its time."""

    def __init__(self, conn, seconds=30):
        super().__init__(daemon=True)
        self.conn = conn
        self.seconds = seconds
        self.result = None
        self.error = None
        self.elapsed = None
        self.started = threading.Event()

    def run(self):
        t0 = time.monotonic()
        try:
            with self.conn.cursor() as cur:
                self.started.set()
                cur.execute(f"SELECT SLEEP({self.seconds})")
                self.result = cur.fetchall()
        except Exception as e:  # noqa: BLE001
            self.error = e
        finally:
            self.elapsed = time.monotonic() - t0


def abort(sleeper, backend_id, port):
    """Failure path: stop a still-running SLEEP directly on its backend (no 30 s wait)."""
    if sleeper is not None and sleeper.is_alive():
        try:
            with direct(port) as c, c.cursor() as cur:
                cur.execute(f"KILL {int(backend_id)}")
        except pymysql.MySQLError:
            pass
        sleeper.join(5)


def wait_until_sleeping(backend_id, port=3307, timeout=10):
    """Waits until the backend thread runs its SLEEP (so that the KILL hits the query)."""
    deadline = time.monotonic() + timeout
    with direct(port) as c, c.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s AND INFO LIKE 'SELECT SLEEP%%'",
                        (backend_id,))
            if cur.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend thread {backend_id} on :{port} never started its SLEEP")


@contextmanager
def sleeping(a, b, seconds=30):
    """Runs `SELECT SLEEP(seconds)` on `a` and waits until its backend thread runs it; yields
    the sleeper, that thread's id and its server's port. On the way out, a SLEEP still running
    is stopped on its backend, and `a` and `b` are closed."""
    s = a_backend = port = None
    try:
        a_backend, port = backend_thread_id(a)
        s = Sleeper(a, seconds)
        s.start()
        wait_until_sleeping(a_backend, port)
        yield s, a_backend, port
    finally:
        abort(s, a_backend, port)
        a.close()
        b.close()


def test_kill_query_from_second_connection(proxy):
    a, b = proxy.rw(read_timeout=40), proxy.rw()
    with sleeping(a, b) as (s, a_backend, port):
        with b.cursor() as cur:
            cur.execute(f"KILL QUERY {a.thread_id()}")
        s.join(15)
        assert not s.is_alive(), "SLEEP(30) was not interrupted within 15 s"
        assert s.elapsed < 10, s.elapsed
        # MariaDB: SLEEP() interrupted by KILL QUERY returns 1 (or error 1317)
        if s.error is not None:
            assert s.error.args[0] == 1317, s.error
        else:
            assert s.result == ((1,),), s.result
        # A's session survives a KILL QUERY
        with a.cursor() as cur:
            cur.execute("SELECT 'alive'")
            assert cur.fetchone() == ("alive",)


def test_kill_query_interrupts_long_query_with_1317(proxy):
    # A query that is not SLEEP() gets error 1317 when killed.
    a, b = proxy.rw(read_timeout=60, database="test"), proxy.rw()
    s = a_backend = port = None
    try:
        a_backend, port = backend_thread_id(a)
        result = {}

        def run():
            t0 = time.monotonic()
            try:
                with a.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM seq_1_to_1000000 x, seq_1_to_1000000 y WHERE SLEEP(0) = 0 /* longq */")
                    result["rows"] = cur.fetchall()
            except Exception as e:  # noqa: BLE001
                result["error"] = e
            result["elapsed"] = time.monotonic() - t0

        th = s = threading.Thread(target=run, daemon=True)
        th.start()
        deadline = time.monotonic() + 10
        with direct(port) as d, d.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s AND INFO LIKE '%%longq%%'",
                            (a_backend,))
                if cur.fetchone()[0]:
                    break
                time.sleep(0.05)
        with b.cursor() as cur:
            cur.execute(f"KILL QUERY {a.thread_id()}")
        th.join(15)
        assert not th.is_alive()
        assert "error" in result, result
        assert result["error"].args == (1317, "Query execution was interrupted"), result["error"]
        assert result["elapsed"] < 10
        with a.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        abort(s, a_backend, port)
        a.close()
        b.close()


def test_kill_connection_from_second_connection(proxy):
    a, b = proxy.rw(read_timeout=40), proxy.rw()
    with sleeping(a, b) as (s, a_backend, port):
        with b.cursor() as cur:
            cur.execute(f"KILL CONNECTION {a.thread_id()}")
        s.join(15)
        assert not s.is_alive(), "SLEEP(30) was not interrupted within 15 s"
        assert s.elapsed < 10
        assert s.error is not None and s.error.args[0] in (1927, 2013), (s.error, s.result)
        with pytest.raises(pymysql.MySQLError):
            with a.cursor() as cur:
                cur.execute("SELECT 1")
    # the backend thread is gone too
    time.sleep(0.5)
    with direct(port) as d, d.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (a_backend,))
        assert cur.fetchone() == (0,)


def test_com_process_kill(proxy):
    # PyMySQL's Connection.kill() sends COM_PROCESS_KILL with the id.
    a, b = proxy.rw(read_timeout=40), proxy.rw()
    with sleeping(a, b) as (s, a_backend, port):
        b.kill(a.thread_id())
        s.join(15)
        assert not s.is_alive()
        assert s.elapsed < 10
        assert s.error is not None and s.error.args[0] in (1927, 2013), (s.error, s.result)
        with b.cursor() as cur:
            cur.execute("SELECT 'b fine'")
            assert cur.fetchone() == ("b fine",)


def test_kill_query_own_connection(proxy):
    # As on the server: the KILL QUERY statement interrupts itself (1317), the session lives.
    with proxy.rw() as c, c.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute(f"KILL QUERY {c.thread_id()}")
        assert e.value.args == (1317, "Query execution was interrupted")
        cur.execute("SELECT 'still here'")
        assert cur.fetchone() == ("still here",)


def test_kill_own_connection(proxy):
    c = proxy.rw()
    try:
        with c.cursor() as cur:
            with pytest.raises(pymysql.err.OperationalError) as e:
                cur.execute(f"KILL {c.thread_id()}")
            assert e.value.args[0] in (1927, 2013), e.value.args
        with pytest.raises(pymysql.err.OperationalError) as e:
            with c.cursor() as cur:
                cur.execute("SELECT 1")
        assert e.value.args[0] in (2006, 2013), e.value.args
    finally:
        c.close()


def test_com_process_kill_own_connection(proxy):
    c = proxy.rw()
    try:
        with pytest.raises(pymysql.err.OperationalError) as e:
            c.kill(c.thread_id())
        assert e.value.args[0] in (1927, 2013), e.value.args
    finally:
        c.close()


def test_kill_unknown_id_1094(proxy):
    with proxy.rw() as c, c.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute("KILL 999999")
        assert e.value.args == (1094, "Unknown thread id: 999999")
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute("KILL QUERY 999998")
        assert e.value.args == (1094, "Unknown thread id: 999998")
        with pytest.raises(pymysql.MySQLError) as e:
            c.kill(999997)
        assert e.value.args == (1094, "Unknown thread id: 999997")
        cur.execute("SELECT 'ok'")
        assert cur.fetchone() == ("ok",)


@pytest.mark.parametrize("how", ["KILL QUERY", "KILL", "COM_PROCESS_KILL"])
def test_kill_does_not_hit_unrelated_backend_thread(proxy, how):
    # A backend thread id that is not the proxy id of a live session must not be killed
    # through the proxy: clients speak in proxy ids, so the answer is 1094 Unknown thread id,
    # and the unrelated connection (here a direct one to the primary) runs on undisturbed.
    d = direct(read_timeout=40)
    s = victim_id = None
    try:
        victim_id, _ = backend_thread_id(d)
        with proxy.rw() as probe:
            if probe.thread_id() >= victim_id:
                pytest.skip("proxy ids reached the backend's thread ids; cannot tell them apart")
        s = Sleeper(d, 3)
        s.start()
        wait_until_sleeping(victim_id, 3307)
        with proxy.rw() as c:
            with pytest.raises(pymysql.MySQLError) as e:
                if how == "COM_PROCESS_KILL":
                    c.kill(victim_id)
                else:
                    with c.cursor() as cur:
                        cur.execute(f"{how} {victim_id}")
            assert e.value.args == (1094, f"Unknown thread id: {victim_id}"), e.value.args
        s.join(10)
        assert s.error is None and s.result == ((0,),), f"unrelated backend thread was interrupted: {s.error} {s.result}"
    finally:
        abort(s, victim_id, 3307)
        d.close()


def test_kill_with_an_expression_is_refused_not_passed_on(proxy):
    # The proxy does not evaluate expressions; it must refuse rather than send the proxy id on
    # to the server, which would read it as one of its own thread ids.
    a, b = proxy.rw(), proxy.rw()
    try:
        with b.cursor() as cur:
            with pytest.raises(pymysql.MySQLError) as e:
                cur.execute(f"KILL QUERY {a.thread_id()} + 0")
        assert e.value.args[0] == 1235
        with a.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("form", ["KILL QUERY '{id}'", "KILL QUERY ({id})"])
def test_kill_id_literal_forms(proxy, form):
    # MariaDB's KILL takes an expression; whatever its form, the id the client gives is a proxy
    # id and must not reach the backend untranslated.
    a, b = proxy.rw(read_timeout=40), proxy.rw()
    with sleeping(a, b) as (s, a_backend, port):
        err = None
        try:
            with b.cursor() as cur:
                cur.execute(form.format(id=a.thread_id()))
        except pymysql.MySQLError as e:
            err = e
        s.join(10 if err is None else 2)  # a KILL that failed interrupts nothing: don't wait
        assert not s.is_alive(), f"{form!r} did not interrupt the session (KILL answered {err})"


def test_kill_inside_multi_statement_is_refused(proxy):
    """A KILL after the first statement of a multi-statement query cannot be translated without
    splitting the query; sent on as it is, its id would name some other backend thread. It is
    refused with a clear error, nothing runs, and no other session is touched."""
    from pymysql.constants import CLIENT
    a, b = proxy.rw(read_timeout=40), proxy.rw(client_flag=CLIENT.MULTI_STATEMENTS)
    with sleeping(a, b, 3) as (s, a_backend, port):
        for sql in (f"SELECT 1; KILL QUERY {a.thread_id()}", f"DO 1;kill {a.thread_id()};"):
            with pytest.raises(pymysql.MySQLError) as e:
                with b.cursor() as cur:
                    cur.execute(sql)
            assert e.value.args[0] == 1235, e.value.args
            assert "statement of its own" in e.value.args[1]
        s.join(10)
        assert not s.is_alive()
        assert s.error is None and s.result == ((0,),), f"the sleep was interrupted: {s.error} {s.result}"
        with b.cursor() as cur:  # the session goes on
            cur.execute("SELECT 1; SELECT 'kill'")
            assert cur.fetchall() == ((1,),)
            assert cur.nextset() and cur.fetchall() == (("kill",),)


def test_kill_session_on_other_backend(proxy):
    # A is on a replica (ro listener), B on the primary (rw listener): `KILL QUERY <A>` from B
    # must reach A's backend, not run on B's.
    a, b = proxy.ro(read_timeout=40), proxy.rw()
    with sleeping(a, b) as (s, a_backend, port):
        assert port in (3308, 3309)
        with b.cursor() as cur:
            cur.execute(f"KILL QUERY {a.thread_id()}")
        s.join(15)
        assert not s.is_alive(), "the KILL QUERY did not reach the replica session within 15 s"
        assert s.elapsed < 10


def test_kill_other_users_session_denied(proxy):
    a = proxy.rw()
    lim = proxy.rw(user="limited", password="limited", database="test")
    try:
        with lim.cursor() as cur:
            with pytest.raises(pymysql.MySQLError) as e:
                cur.execute(f"KILL QUERY {a.thread_id()}")
            # 1095: You are not owner of thread N
            assert e.value.args[0] == 1095, e.value.args
            # (the N in the message is worth a look: the client's id, not the backend's)
        with pytest.raises(pymysql.MySQLError) as e:
            lim.kill(a.thread_id())
        assert e.value.args[0] == 1095, e.value.args
        with a.cursor() as cur:
            cur.execute("SELECT 'a unharmed'")
            assert cur.fetchone() == ("a unharmed",)
    finally:
        a.close()
        lim.close()


def test_kill_query_id_syntax_variants(proxy):
    # KILL HARD QUERY / KILL SOFT CONNECTION are MariaDB syntax too.
    a, b = proxy.rw(read_timeout=40), proxy.rw()
    with sleeping(a, b) as (s, a_backend, port):
        with b.cursor() as cur:
            cur.execute(f"kill   hard   query   {a.thread_id()}")
        s.join(15)
        assert not s.is_alive() and s.elapsed < 10


def test_kill_not_owner_message_names_the_clients_id(proxy):
    # The server's 1095 names the thread id it was given; through the proxy the client gave its
    # proxy id, and the message should say that one (not leak the backend's thread id).
    a = proxy.rw()
    lim = proxy.rw(user="limited", password="limited", database="test")
    try:
        with lim.cursor() as cur:
            with pytest.raises(pymysql.MySQLError) as e:
                cur.execute(f"KILL QUERY {a.thread_id()}")
        assert e.value.args == (1095, f"You are not owner of thread {a.thread_id()}"), e.value.args
    finally:
        a.close()
        lim.close()
