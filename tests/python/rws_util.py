"""Helpers of the readwritesplit tests (test_rws_*.py): which server ran a statement, told by
`@@server_id` in its result (1 = the primary db1, 2 = db2, 3 = db3) or by the admin API's
per-server statement counters of the readwritesplit proxy (`rws_proxy`)."""

import time

from conftest import primary_exec, unique, wait_replicated

NAMES = {1: "db1", 2: "db2", 3: "db3"}
REPLICA_IDS = {2, 3}
ON_PRIMARY = {"db1": 1, "db2": 0, "db3": 0}


def rows(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def one(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def server_id(conn, sql="SELECT @@server_id"):
    """The server id a read ran on (the last column of its first row)."""
    return one(conn, sql)[-1]


class Counters:
    """Deltas of the per-server statement counters between two points of a test."""

    def __init__(self, rws):
        self.rws = rws
        self.before = rws.statements()

    def delta(self):
        after = self.rws.statements()
        return {k: after[k] - self.before.get(k, 0) for k in after}


def routed(rws, conn, sql, args=None, fetch=True):
    """Runs one statement; returns (per-server counter deltas, its rows)."""
    c = Counters(rws)
    with conn.cursor() as cur:
        cur.execute(sql, args)
        res = cur.fetchall() if fetch else None
        while cur.nextset():
            pass
    return c.delta(), res


def routed_error(rws, conn, sql):
    """Runs a statement that fails; returns (per-server counter deltas, the error code)."""
    import pymysql
    c = Counters(rws)
    code = None
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    except pymysql.MySQLError as e:
        code = e.args[0]
    return c.delta(), code


def assert_on_primary(rws, conn, sql, args=None):
    delta, res = routed(rws, conn, sql, args)
    assert delta == ON_PRIMARY, f"{sql!r} was routed {delta}, not to the primary only"
    return res


class RwsTable:
    """A uniquely named table in `test` (rws_ prefix), dropped afterwards on the primary."""

    def __init__(self, prefix="rws"):
        self.names = []
        self.prefix = prefix

    def __call__(self, ddl_columns, prefix=None, replicate=True):
        name = unique(prefix or self.prefix)
        self.names.append(name)
        primary_exec(f"CREATE TABLE test.`{name}` ({ddl_columns})")
        if replicate:
            wait_replicated()
        return name

    def name(self, prefix=None):
        n = unique(prefix or self.prefix)
        self.names.append(n)
        return n

    def drop(self):
        for n in self.names:
            try:
                primary_exec(f"DROP TABLE IF EXISTS test.`{n}`")
            except Exception:
                pass


def wait_until(pred, timeout=20, step=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout}s")
