"""readconnroute: each client connection goes to one backend, chosen by role at connect time,
least connections first."""

import collections
import time

import pymysql
import pytest

from conftest import BACKEND_THREAD_ID, unique, wait_replicated


def server_id(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT @@server_id, @@port, @@read_only")
        return cur.fetchone()


def test_rw_listener_reaches_primary(proxy):
    for _ in range(5):
        with proxy.rw() as c:
            assert server_id(c) == (1, 3307, 0)


def test_ro_listener_reaches_only_replicas(proxy):
    seen = set()
    for _ in range(6):
        with proxy.ro() as c:
            sid, port, ro = server_id(c)
            assert sid in (2, 3) and ro == 1, (sid, port, ro)
            seen.add(sid)
    assert seen, seen


def test_ro_listener_balances_by_connection_count(proxy):
    # Hold 6 sessions open at once: least-connections puts 3 on each replica (allowing one of
    # slack for a session of an earlier test the proxy may not have released yet).
    conns = [proxy.ro() for _ in range(6)]
    try:
        counts = collections.Counter(server_id(c)[0] for c in conns)
    finally:
        for c in conns:
            c.close()
    assert set(counts) == {2, 3}, counts
    assert abs(counts[2] - counts[3]) <= 1, counts


def test_ro_balance_follows_closed_sessions(proxy):
    # Open 2 (one per replica), close the one on db2: the next two sessions should both go
    # where there are fewer, i.e. the first of them to db2.
    a, b = proxy.ro(), proxy.ro()
    try:
        ids = {server_id(a)[0]: a, server_id(b)[0]: b}
        assert set(ids) == {2, 3}, ids
        ids[2].close()
        time.sleep(0.5)
        c = proxy.ro()
        try:
            assert server_id(c)[0] == 2
        finally:
            c.close()
    finally:
        for x in (a, b):
            try:
                x.close()
            except Exception:
                pass


def test_session_stays_on_one_backend(proxy):
    with proxy.ro() as c:
        first = server_id(c)
        for _ in range(20):
            assert server_id(c) == first
        with c.cursor() as cur:
            cur.execute(f"SELECT {BACKEND_THREAD_ID}")
            cid = cur.fetchone()[0]
            for _ in range(5):
                cur.execute(f"SELECT {BACKEND_THREAD_ID}")
                assert cur.fetchone()[0] == cid


def test_write_through_ro_listener_fails_with_read_only_error(proxy):
    t = unique("ro")
    with proxy.ro(database="test") as c, c.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute(f"CREATE TABLE {t} (id INT)")
        # 1290: The MariaDB server is running with the --read-only option ...
        assert e.value.args[0] == 1290, e.value.args
        assert "read-only" in e.value.args[1]


def test_replica_sees_write_made_through_rw(proxy, table):
    t = table("repl")
    with proxy.rw(database="test") as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(20))")
        cur.execute(f"INSERT INTO {t} VALUES (1, 'hello')")
    wait_replicated()
    with proxy.ro(database="test") as c, c.cursor() as cur:
        cur.execute(f"SELECT v FROM {t} WHERE id = 1")
        assert cur.fetchone() == ("hello",)


def test_running_listener_reaches_every_server(proxy):
    # router_options: running takes all three servers, balanced by connection count.
    conns = [proxy.connect(proxy.running_port) for _ in range(6)]
    try:
        counts = collections.Counter(server_id(c)[0] for c in conns)
    finally:
        for c in conns:
            c.close()
    assert set(counts) == {1, 2, 3}, counts
