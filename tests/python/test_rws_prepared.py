"""readwritesplit and prepared statements: the binary protocol (COM_STMT_PREPARE / EXECUTE /
SEND_LONG_DATA / FETCH / RESET / CLOSE, driven by rawmysql.py since PyMySQL has none) and the
text protocol (PREPARE / EXECUTE).

A statement is prepared on every backend that may run it; the client sees one statement id,
which the proxy maps to each backend's own. Executions are routed by what the statement is: a
prepared SELECT runs on the replicas, a prepared INSERT on the primary. Most tests use the
`rws_rr` service (round_robin), so that consecutive reads alternate between the replicas and
a statement is certainly executed on a backend other than the one it was first run on."""

import hashlib
import os

import pymysql
import pytest

import rawmysql as R
from conftest import primary_exec
from rws_util import ON_PRIMARY, REPLICA_IDS, Counters, RwsTable, server_id


@pytest.fixture
def tables():
    t = RwsTable("rws_ps")
    yield t
    t.drop()


@pytest.fixture
def raw(rws_proxy):
    conns = []

    def make(service="rws_rr"):
        c = rws_proxy.raw(service)
        conns.append(c)
        return c

    yield make
    for c in conns:
        c.close()


def execute_rows(c, stmt, params=(), **kw):
    res = c.stmt_execute(stmt, params, **kw)
    assert res[0][0] == "rows", res
    return res[0][2]


def test_prepared_select_runs_on_replicas(rws_proxy, raw):
    c = raw("rws_rr")
    s = c.stmt_prepare("SELECT @@server_id, ? + 1")
    assert s.params == 1
    counters = Counters(rws_proxy)
    ids = []
    for i in range(20):
        (sid, v), = execute_rows(c, s, [i])
        assert v == i + 1
        ids.append(sid)
    assert set(ids) == REPLICA_IDS, ids
    delta = counters.delta()
    assert delta["db1"] == 0 and delta["db2"] + delta["db3"] == 20, delta


def test_prepared_select_through_default_service(rws_proxy, raw):
    c = raw("rws")
    s = c.stmt_prepare("SELECT @@server_id")
    ids = {execute_rows(c, s)[0][0] for _ in range(10)}
    assert ids <= REPLICA_IDS, ids


def test_prepared_insert_runs_on_primary(rws_proxy, raw, tables):
    t = tables("id INT PRIMARY KEY, sid INT, v VARCHAR(20)")
    c = raw("rws_rr")
    s = c.stmt_prepare(f"INSERT INTO {t} (id, sid, v) SELECT ?, @@server_id, ?")
    assert s.params == 2
    for i in range(10):
        counters = Counters(rws_proxy)
        res = c.stmt_execute(s, [i, f"v{i}"])
        assert res[0][0] == "ok" and res[0][1]["affected"] == 1, res
        assert counters.delta() == ON_PRIMARY, counters.delta()
    assert primary_exec(f"SELECT COUNT(*), MIN(sid), MAX(sid) FROM test.{t}") == ((10, 1, 1),)
    # a prepared UPDATE and DELETE as well
    u = c.stmt_prepare(f"UPDATE {t} SET v = ? WHERE id = ?")
    d = c.stmt_prepare(f"DELETE FROM {t} WHERE id = ?")
    counters = Counters(rws_proxy)
    assert c.stmt_execute(u, ["changed", 3])[0][1]["affected"] == 1
    assert c.stmt_execute(d, [4])[0][1]["affected"] == 1
    assert counters.delta() == {"db1": 2, "db2": 0, "db3": 0}, counters.delta()
    assert primary_exec(f"SELECT COUNT(*), SUM(v = 'changed') FROM test.{t}") == ((9, 1),)


def test_client_sees_one_statement_id(rws_proxy, raw):
    c = raw("rws_rr")
    # prepared while only the primary is open: the replicas get them when first executed there
    a = c.stmt_prepare("SELECT 'A', @@server_id")
    b = c.stmt_prepare("SELECT 'B', @@server_id")
    # prepared after the replicas were opened: on every backend at once (ids differ per backend)
    execute_rows(c, a)
    execute_rows(c, a)
    w = c.stmt_prepare("SELECT 'W', @@server_id FOR UPDATE")
    x = c.stmt_prepare("SELECT 'X', ?, @@server_id")
    assert len({a.id, b.id, w.id, x.id}) == 4, (a.id, b.id, w.id, x.id)
    seen = {}
    for i in range(8):
        for tag, stmt, params in (("A", a, ()), ("B", b, ()), ("W", w, ()), ("X", x, (i,))):
            row, = execute_rows(c, stmt, params)
            assert row[0] == tag, f"statement id {stmt.id} ran another statement: {row}"
            if tag == "X":
                assert row[1] == i
            seen.setdefault(tag, set()).add(row[-1])
    assert seen["W"] == {1}, seen
    for tag in ("A", "B", "X"):
        assert seen[tag] == REPLICA_IDS, seen


def test_execute_without_types_on_another_backend(rws_proxy, raw):
    # The client sends the parameter types only with the first execute (new-params-bound flag
    # 1, then 0): a backend that did not see that execute must still get the types.
    c = raw("rws_rr")
    s = c.stmt_prepare("SELECT ? + 0, CONCAT(?, ''), @@server_id")
    (v, t, sid0), = execute_rows(c, s, [41, "first"])
    assert (v, t) == (41, "first")
    ids = {sid0}
    for i in range(6):
        (v, t, sid), = execute_rows(c, s, [100 + i, f"s{i}"], send_types=False)
        assert (v, t) == (100 + i, f"s{i}"), (v, t, sid)
        ids.add(sid)
    assert ids == REPLICA_IDS, ids


def test_long_data_insert(rws_proxy, raw, tables):
    t = tables("id INT PRIMARY KEY, b LONGBLOB, sid INT")
    c = raw("rws_rr")
    server_id_of = c.stmt_prepare("SELECT @@server_id")
    execute_rows(c, server_id_of)  # a replica is open too
    s = c.stmt_prepare(f"INSERT INTO {t} (id, b, sid) SELECT ?, ?, @@server_id")
    for n in (1, 2):
        chunks = [os.urandom(100_000) for _ in range(3)]
        for ch in chunks:
            c.stmt_send_long_data(s, 1, ch)
        counters = Counters(rws_proxy)
        res = c.stmt_execute(s, [n, R.LONG_DATA])
        assert res[0][0] == "ok" and res[0][1]["affected"] == 1, res
        assert counters.delta() == ON_PRIMARY, counters.delta()
        data = b"".join(chunks)
        got = primary_exec(f"SELECT LENGTH(b), MD5(b), sid FROM test.{t} WHERE id = {n}")
        assert got == ((len(data), hashlib.md5(data).hexdigest(), 1),)


def _long_data_selects(c, s, n=4):
    ids = []
    for i in range(n):
        data = os.urandom(50_000 + i)
        c.stmt_send_long_data(s, 0, data[:20_000])
        c.stmt_send_long_data(s, 0, data[20_000:])
        (md5, ln, sid), = execute_rows(c, s, [R.LONG_DATA, "abc"])
        assert md5 == hashlib.md5(data).hexdigest() and ln == 3, (md5, ln, sid)
        ids.append(sid)
    return ids


def test_long_data_select(rws_proxy, raw):
    # Prepared while only the primary is open: the long data can only be where the statement
    # is, so it runs there (or wherever the proxy brought both); the answer must be right.
    c = raw("rws_rr")
    s = c.stmt_prepare("SELECT MD5(?), LENGTH(?), @@server_id")
    _long_data_selects(c, s)
    # Prepared once every backend is open: on the replicas.
    c2 = raw("rws_rr")
    sid_of = c2.stmt_prepare("SELECT @@server_id")
    assert {execute_rows(c2, sid_of)[0][0] for _ in range(2)} == REPLICA_IDS
    s2 = c2.stmt_prepare("SELECT MD5(?), LENGTH(?), @@server_id")
    ids = _long_data_selects(c2, s2)
    assert set(ids) <= REPLICA_IDS, ids


def test_cursor_fetch_returns_all_rows(rws_proxy, raw):
    c = raw("rws_rr")
    s = c.stmt_prepare("SELECT seq, @@server_id FROM seq_1_to_1000")
    other = c.stmt_prepare("SELECT @@server_id")
    cursor_servers = set()
    for _ in range(2):
        res = c.stmt_execute(s, cursor=R.CURSOR_TYPE_READ_ONLY)
        assert res[0][0] == "cursor", res
        cols = res[0][1]
        got = []
        while True:
            rows, status = c.stmt_fetch(s, 97, columns=cols)
            got += rows
            # between two fetches, another statement runs (round robin: elsewhere)
            execute_rows(c, other)
            if status & R.SERVER_STATUS_LAST_ROW_SENT:
                break
            assert rows, "a fetch returned no rows before the last row was sent"
        assert [r[0] for r in got] == list(range(1, 1001)), f"{len(got)} rows"
        sids = {r[1] for r in got}
        assert len(sids) == 1, sids
        cursor_servers |= sids
    assert cursor_servers <= REPLICA_IDS, cursor_servers
    # the statement is still usable without a cursor
    assert len(execute_rows(c, s)) == 1000


def test_reset_close_then_execute_gives_1243(rws_proxy, raw):
    c = raw("rws_rr")
    s = c.stmt_prepare("SELECT ?, @@server_id")
    for i in range(3):
        assert execute_rows(c, s, [i])[0][0] == i
    c.stmt_send_long_data(s, 0, b"discarded")
    assert c.stmt_reset(s)["affected"] == 0
    assert execute_rows(c, s, ["after reset"])[0][0] in ("after reset", b"after reset")
    c.stmt_close(s)
    for _ in range(3):  # whichever backend the execute would go to
        with pytest.raises(R.ServerError) as e:
            c.stmt_execute(s, ["x"])
        assert e.value.code == 1243, e.value
    with pytest.raises(R.ServerError) as e:
        c.stmt_reset(s)
    assert e.value.code == 1243
    # the session goes on
    assert c.scalar("SELECT 'alive'") == "alive"
    s2 = c.stmt_prepare("SELECT 2")
    assert execute_rows(c, s2) == [(2,)]


def test_text_prepare_execute_routes_by_statement(rws_proxy, tables):
    t = tables("id INT AUTO_INCREMENT PRIMARY KEY, sid INT")
    with rws_proxy.service("rws_rr") as c, c.cursor() as cur:
        cur.execute("PREPARE rws_sel FROM 'SELECT @@server_id'")
        ids = [server_id(c, "EXECUTE rws_sel") for _ in range(6)]
        assert set(ids) == REPLICA_IDS, ids
        cur.execute(f"PREPARE rws_ins FROM 'INSERT INTO {t} (sid) SELECT @@server_id'")
        for _ in range(3):
            counters = Counters(rws_proxy)
            cur.execute("EXECUTE rws_ins")
            assert counters.delta() == ON_PRIMARY, counters.delta()
        cur.execute("SET @q = 'SELECT @@server_id, 1'")
        cur.execute("PREPARE rws_dyn FROM @q")  # a source the proxy cannot see: a write
        counters = Counters(rws_proxy)
        cur.execute("EXECUTE rws_dyn")
        assert cur.fetchone() == (1, 1) and counters.delta() == ON_PRIMARY, counters.delta()
        cur.execute("PREPARE rws_par FROM 'SELECT ? * 2, @@server_id'")
        for i in range(4):
            cur.execute(f"EXECUTE rws_par USING {i}")
            v, sid = cur.fetchone()
            assert v == 2 * i and sid in REPLICA_IDS
        for name in ("rws_sel", "rws_ins", "rws_dyn", "rws_par"):
            cur.execute(f"DEALLOCATE PREPARE {name}")
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute("EXECUTE rws_sel")
        assert e.value.args[0] == 1243
    assert primary_exec(f"SELECT COUNT(*), MIN(sid), MAX(sid) FROM test.{t}") == ((3, 1, 1),)
