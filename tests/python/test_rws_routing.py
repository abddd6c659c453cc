"""readwritesplit: every row of the routing table (DESIGN.md, "Routing rules (readwritesplit)"),
checked against the real sandbox by WHICH server ran each statement: `@@server_id` in the
statement's own result (1 = the primary db1, 2/3 = the replicas), the rows a write left behind
(`INSERT ... SELECT @@server_id`), and the admin API's per-server statement counters.

Services (conftest.py `rws_proxy`): `rws` (defaults: least_current_operations) and `rws_rr`
(round_robin, so that consecutive reads of one session alternate between the replicas and a
statement that must follow the previous one is told apart from an ordinary read)."""

import collections
import threading

import pymysql
import pytest

from conftest import BACKEND_THREAD_ID, direct, primary_exec, unique, wait_replicated
from rws_util import (ON_PRIMARY, REPLICA_IDS, Counters, RwsTable, assert_on_primary, one, routed,
                      routed_error, rows, server_id)


@pytest.fixture
def tables():
    t = RwsTable("rws_rt")
    yield t
    t.drop()


@pytest.fixture
def conn(rws_proxy):
    c = rws_proxy.service("rws")
    yield c
    c.close()


@pytest.fixture
def rr(rws_proxy):
    c = rws_proxy.service("rws_rr")
    yield c
    c.close()


def open_everywhere(conn):
    """Makes the session open a connection to each server (so that 'every backend' is all three)."""
    assert server_id(conn, "SELECT @@server_id /* switchyard: route=server:db2 */") == 2
    assert server_id(conn, "SELECT @@server_id /* switchyard: route=server:db3 */") == 3
    assert server_id(conn, "SELECT @@server_id /* switchyard: route=primary */") == 1


# --- writes and other primary-only statements -------------------------------------------------

def test_dml_runs_on_primary(rws_proxy, conn, tables):
    t = tables("id INT PRIMARY KEY, sid INT, v INT")
    for sql in (f"INSERT INTO {t} (id, sid, v) SELECT 1, @@server_id, 1",
                f"INSERT INTO {t} (id, sid, v) VALUES (2, @@server_id, 1)",
                f"UPDATE {t} SET v = 2 WHERE id = 1",
                f"REPLACE INTO {t} (id, sid, v) SELECT 3, @@server_id, 3",
                f"INSERT INTO {t} (id, sid, v) VALUES (4, 0, 4)",
                f"DELETE FROM {t} WHERE id = 4",
                f"UPDATE {t} SET sid = @@server_id WHERE id = 2"):
        assert_on_primary(rws_proxy, conn, sql)
    assert primary_exec(f"SELECT id, sid, v FROM test.{t} ORDER BY id") == ((1, 1, 2), (2, 1, 1), (3, 1, 3))


def test_ddl_runs_on_primary(rws_proxy, conn, tables):
    t = tables.name("rws_ddl")
    for sql in (f"CREATE TABLE {t} (id INT PRIMARY KEY)",
                f"ALTER TABLE {t} ADD COLUMN v INT",
                f"CREATE INDEX iv ON {t} (v)",
                f"TRUNCATE TABLE {t}",
                f"DROP TABLE {t}"):
        assert_on_primary(rws_proxy, conn, sql)


def test_multi_statement_runs_on_primary(rws_proxy, tables):
    t = tables("id INT PRIMARY KEY, sid INT")
    with rws_proxy.service("rws", client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS) as c:
        delta, res = routed(rws_proxy, c, f"SELECT @@server_id; INSERT INTO {t} SELECT 1, @@server_id")
        assert res == ((1,),) and delta == ON_PRIMARY, (res, delta)
        delta, res = routed(rws_proxy, c, "SELECT @@server_id; SELECT @@server_id")
        assert res == ((1,),) and delta == ON_PRIMARY, (res, delta)
    assert primary_exec(f"SELECT id, sid FROM test.{t}") == ((1, 1),)


def test_load_data_local_runs_on_primary(rws_proxy, tables, tmp_path):
    t = tables("id INT PRIMARY KEY, v VARCHAR(10)")
    f = tmp_path / "rws.csv"
    f.write_text("".join(f"{i},v{i}\n" for i in range(1, 101)))
    with rws_proxy.service("rws", local_infile=True) as c:
        assert_on_primary(rws_proxy, c, f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE {t} "
                                        "FIELDS TERMINATED BY ',' (id, v)")
    assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((100,),)


def test_lock_tables_runs_on_primary(rws_proxy, conn, tables):
    t = tables("id INT PRIMARY KEY")
    assert_on_primary(rws_proxy, conn, f"LOCK TABLES {t} WRITE")
    assert_on_primary(rws_proxy, conn, f"INSERT INTO {t} VALUES (1)")
    assert_on_primary(rws_proxy, conn, "UNLOCK TABLES")
    assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((1,),)


def test_grant_runs_on_primary(rws_proxy, conn, tables):
    t = tables("id INT PRIMARY KEY")
    user = unique("rws_g")[:30]
    primary_exec(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'")
    try:
        assert_on_primary(rws_proxy, conn, f"GRANT SELECT ON test.{t} TO '{user}'@'127.0.0.1'")
        grants = primary_exec(f"SHOW GRANTS FOR '{user}'@'127.0.0.1'")
        assert any(t in g[0] for g in grants), grants
        assert_on_primary(rws_proxy, conn, f"REVOKE SELECT ON test.{t} FROM '{user}'@'127.0.0.1'")
    finally:
        primary_exec(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def test_unknown_statement_runs_on_primary(rws_proxy, conn, tables):
    t = tables("id INT PRIMARY KEY")
    # CHECKSUM TABLE is not in the classifier's vocabulary: an unknown statement, so the primary
    # (every server could answer it: only the counters tell where it ran).
    res = assert_on_primary(rws_proxy, conn, f"CHECKSUM TABLE {t}")
    assert len(res) == 1 and res[0][0] == f"test.{t}", res


def test_locking_reads_run_on_primary(rws_proxy, conn, tables):
    t = tables("id INT PRIMARY KEY")
    primary_exec(f"INSERT INTO test.{t} VALUES (1)")
    wait_replicated()
    assert assert_on_primary(rws_proxy, conn, f"SELECT id, @@server_id FROM {t} WHERE id = 1 FOR UPDATE") == ((1, 1),)
    assert assert_on_primary(rws_proxy, conn,
                             f"SELECT id, @@server_id FROM {t} WHERE id = 1 LOCK IN SHARE MODE") == ((1, 1),)
    # MariaDB 10.11 rejects FOR SHARE (1064), but the statement must still go to the primary.
    delta, code = routed_error(rws_proxy, conn, f"SELECT id FROM {t} WHERE id = 1 FOR SHARE")
    with direct(database="test") as d:
        try:
            rows(d, f"SELECT id FROM {t} WHERE id = 1 FOR SHARE")
            expected = None
        except pymysql.MySQLError as e:
            expected = e.args[0]
    assert code == expected, (code, expected)
    assert delta == ON_PRIMARY, f"SELECT ... FOR SHARE was routed {delta}"


def test_last_insert_id_and_identity_run_on_primary(rws_proxy, conn, tables):
    t = tables("id INT AUTO_INCREMENT PRIMARY KEY, v INT")
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {t} (v) VALUES (1), (2)")
        cur.execute(f"INSERT INTO {t} (v) VALUES (3)")
        last = cur.lastrowid
    assert last == 3
    assert assert_on_primary(rws_proxy, conn, "SELECT LAST_INSERT_ID(), @@server_id") == ((3, 1),)
    assert assert_on_primary(rws_proxy, conn, "SELECT @@identity, @@server_id") == ((3, 1),)
    assert assert_on_primary(rws_proxy, conn, "SELECT @@last_insert_id, @@server_id") == ((3, 1),)


def test_lock_functions_run_on_primary(rws_proxy, conn):
    name = unique("rws_lock")
    assert assert_on_primary(rws_proxy, conn, f"SELECT GET_LOCK('{name}', 0), @@server_id") == ((1, 1),)
    assert assert_on_primary(rws_proxy, conn, f"SELECT IS_USED_LOCK('{name}') = CONNECTION_ID(), @@server_id") \
        == ((1, 1),)
    assert assert_on_primary(rws_proxy, conn, f"SELECT RELEASE_LOCK('{name}'), @@server_id") == ((1, 1),)


def test_call_runs_on_primary(rws_proxy, conn):
    p = unique("rws_proc")
    primary_exec(f"CREATE PROCEDURE test.{p}() SELECT @@server_id")
    try:
        wait_replicated()
        for _ in range(3):
            assert assert_on_primary(rws_proxy, conn, f"CALL {p}()") == ((1,),)
    finally:
        primary_exec(f"DROP PROCEDURE IF EXISTS test.{p}")


def test_sequences_run_on_primary(rws_proxy, conn):
    s = unique("rws_seq")
    primary_exec(f"CREATE SEQUENCE test.{s}")
    try:
        wait_replicated()
        assert assert_on_primary(rws_proxy, conn, f"SELECT NEXTVAL({s}), @@server_id") == ((1, 1),)
        assert assert_on_primary(rws_proxy, conn, f"SELECT NEXT VALUE FOR {s}, @@server_id") == ((2, 1),)
        assert assert_on_primary(rws_proxy, conn, f"SELECT LASTVAL({s}), @@server_id") == ((2, 1),)
    finally:
        primary_exec(f"DROP SEQUENCE IF EXISTS test.{s}")


def test_xa_runs_on_primary(rws_proxy, conn, tables):
    t = tables("id INT PRIMARY KEY, sid INT")
    xid = unique("rws_xa")
    for sql in (f"XA START '{xid}'",
                f"INSERT INTO {t} (id, sid) SELECT 1, @@server_id",
                "SELECT @@server_id",
                f"XA END '{xid}'",
                f"XA PREPARE '{xid}'",
                f"XA COMMIT '{xid}'"):
        res = assert_on_primary(rws_proxy, conn, sql)
        if sql.startswith("SELECT"):
            assert res == ((1,),)
    assert primary_exec(f"SELECT id, sid FROM test.{t}") == ((1, 1),)
    # one phase
    xid2 = unique("rws_xa")
    for sql in (f"XA START '{xid2}'", f"INSERT INTO {t} VALUES (2, @@server_id)", f"XA END '{xid2}'",
                f"XA COMMIT '{xid2}' ONE PHASE"):
        assert_on_primary(rws_proxy, conn, sql)
    assert primary_exec(f"SELECT id, sid FROM test.{t} ORDER BY id") == ((1, 1), (2, 1))
    # and afterwards, reads are back on the replicas
    assert server_id(conn) in REPLICA_IDS


# --- transactions ------------------------------------------------------------------------------

def test_reads_in_read_write_transaction_run_on_primary(rws_proxy, conn, tables):
    t = tables("id INT PRIMARY KEY")
    assert server_id(conn) in REPLICA_IDS
    for begin in ("BEGIN", "START TRANSACTION", "START TRANSACTION READ WRITE"):
        assert_on_primary(rws_proxy, conn, begin)
        for _ in range(5):
            assert assert_on_primary(rws_proxy, conn, "SELECT @@server_id") == ((1,),)
            assert assert_on_primary(rws_proxy, conn, f"SELECT COUNT(*), @@server_id FROM {t}") == ((0, 1),)
        assert_on_primary(rws_proxy, conn, "COMMIT")
        assert server_id(conn) in REPLICA_IDS


def test_reads_with_autocommit_off_run_on_primary(rws_proxy):
    c = rws_proxy.service("rws", autocommit=False)
    try:
        for _ in range(5):
            assert assert_on_primary(rws_proxy, c, "SELECT @@server_id") == ((1,),)
        c.commit()
        # still autocommit=0: the next statement opens a new transaction, on the primary
        for _ in range(3):
            assert assert_on_primary(rws_proxy, c, "SELECT @@server_id") == ((1,),)
        c.rollback()
        with c.cursor() as cur:
            cur.execute("SET autocommit = 1")
        ids = {server_id(c) for _ in range(5)}
        assert ids <= REPLICA_IDS, ids
        with c.cursor() as cur:
            cur.execute("SET autocommit = 0")
        assert assert_on_primary(rws_proxy, c, "SELECT @@server_id") == ((1,),)
        c.rollback()
    finally:
        c.close()


def test_read_only_transaction_stays_on_one_replica(rws_proxy, tables):
    t = tables("id INT PRIMARY KEY")
    primary_exec(f"INSERT INTO test.{t} VALUES (1), (2), (3)")
    wait_replicated()
    seen = []
    for service in ("rws", "rws_rr", "rws_rr"):
        with rws_proxy.service(service) as c:
            counters = Counters(rws_proxy)
            with c.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
                results = []
                for _ in range(8):
                    cur.execute(f"SELECT @@server_id, {BACKEND_THREAD_ID}")
                    results.append(cur.fetchone())
                    cur.execute(f"SELECT COUNT(*), @@server_id FROM {t}")
                    cnt, sid = cur.fetchone()
                    assert cnt == 3
                    results.append((sid, results[-1][1]))
                cur.execute("COMMIT")
            assert len(set(results)) == 1, f"the read-only transaction moved: {results}"
            sid = results[0][0]
            assert sid in REPLICA_IDS, results
            seen.append(sid)
            delta = counters.delta()
            name = f"db{sid}"
            # START TRANSACTION READ ONLY, 16 reads, COMMIT: all on that replica
            assert delta[name] == 18 and sum(delta.values()) == 18, delta
    # round robin: the two transactions in a row on the rr service used both replicas
    assert set(seen[1:]) == REPLICA_IDS, seen


# --- reads that follow the session's state -----------------------------------------------------

def test_temporary_table_reads_run_on_primary(rws_proxy, conn):
    tmp = unique("rws_tmp")
    assert_on_primary(rws_proxy, conn, f"CREATE TEMPORARY TABLE {tmp} (a INT)")
    assert_on_primary(rws_proxy, conn, f"INSERT INTO {tmp} VALUES (7)")
    for _ in range(5):
        assert assert_on_primary(rws_proxy, conn, f"SELECT a, @@server_id FROM {tmp}") == ((7, 1),)
        assert assert_on_primary(rws_proxy, conn, f"SELECT a, @@server_id FROM test.{tmp}") == ((7, 1),)
        assert assert_on_primary(rws_proxy, conn,
                                 f"SELECT COUNT(*), @@server_id FROM seq_1_to_3 JOIN {tmp}") == ((3, 1),)
    # other reads still go to the replicas
    assert server_id(conn) in REPLICA_IDS
    assert_on_primary(rws_proxy, conn, f"DROP TEMPORARY TABLE {tmp}")
    assert server_id(conn) in REPLICA_IDS


def test_select_assigning_user_variable_runs_on_every_backend(rws_proxy, conn):
    open_everywhere(conn)
    delta, res = routed(rws_proxy, conn, "SELECT @a := @@server_id")
    assert res == ((1,),), "the client must get the primary's reply"
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, f"SELECT @a := ... was routed {delta}"
    # each backend assigned its own @@server_id to @a
    for sid in (1, 2, 3):
        hint = "primary" if sid == 1 else f"server:db{sid}"
        assert one(conn, f"SELECT @a, @@server_id /* switchyard: route={hint} */") == (sid, sid)
    for _ in range(6):
        a, sid = one(conn, "SELECT @a, @@server_id")
        assert a is not None and a == sid and sid in REPLICA_IDS, (a, sid)


def test_select_into_user_variable_runs_on_every_backend(rws_proxy, conn):
    open_everywhere(conn)
    delta, _ = routed(rws_proxy, conn, "SELECT @@server_id INTO @sid")
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, f"SELECT ... INTO @sid was routed {delta}"
    for _ in range(4):
        v, sid = one(conn, "SELECT @sid, @@server_id")
        assert v == sid and sid in REPLICA_IDS, (v, sid)


def test_user_variable_assigned_before_first_read_reaches_replica(rws_proxy):
    with rws_proxy.service("rws") as c:
        assert one(c, "SELECT @b := 'bee'") == ("bee",)
        b, sid = one(c, "SELECT @b, @@server_id")
        assert sid in REPLICA_IDS and b == "bee", (b, sid)


def _check_every_server(conn, sql, expected):
    for sid in (1, 2, 3):
        hint = "primary" if sid == 1 else f"server:db{sid}"
        got = one(conn, f"{sql} /* switchyard: route={hint} */")
        assert got == (expected, sid), f"on db{sid}: {sql} gave {got}, not {expected!r}"


def test_set_session_variable_reaches_every_backend(rws_proxy, rr):
    open_everywhere(rr)
    delta, _ = routed(rws_proxy, rr, "SET @@session.sql_mode = 'ANSI'", fetch=False)
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, delta
    with direct() as d, d.cursor() as cur:
        cur.execute("SET @@session.sql_mode = 'ANSI'")
        cur.execute("SELECT @@sql_mode")
        ansi = cur.fetchone()[0]
    _check_every_server(rr, "SELECT @@sql_mode, @@server_id", ansi)
    # plain reads (round robin: both replicas) see it too
    got = {one(rr, "SELECT @@sql_mode, @@server_id") for _ in range(4)}
    assert got == {(ansi, 2), (ansi, 3)}, got


def test_set_user_variable_reaches_every_backend(rws_proxy, rr):
    open_everywhere(rr)
    delta, _ = routed(rws_proxy, rr, "SET @u = 'you'", fetch=False)
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, delta
    _check_every_server(rr, "SELECT @u, @@server_id", "you")
    got = {one(rr, "SELECT @u, @@server_id") for _ in range(4)}
    assert got == {("you", 2), ("you", 3)}, got


def test_use_db_reaches_every_backend(rws_proxy, rr):
    open_everywhere(rr)
    delta, _ = routed(rws_proxy, rr, "USE sbtest", fetch=False)
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, delta
    _check_every_server(rr, "SELECT DATABASE(), @@server_id", "sbtest")
    # COM_INIT_DB too
    c = Counters(rws_proxy)
    rr.select_db("test")
    assert c.delta() == {"db1": 1, "db2": 1, "db3": 1}, c.delta()
    _check_every_server(rr, "SELECT DATABASE(), @@server_id", "test")


def test_set_names_reaches_every_backend(rws_proxy, rr):
    open_everywhere(rr)
    delta, _ = routed(rws_proxy, rr, "SET NAMES latin1", fetch=False)
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, delta
    _check_every_server(rr, "SELECT @@character_set_client, @@server_id", "latin1")
    _check_every_server(rr, "SELECT @@character_set_results, @@server_id", "latin1")


def test_text_prepare_reaches_every_backend(rws_proxy, rr):
    open_everywhere(rr)
    delta, _ = routed(rws_proxy, rr, "PREPARE rws_p FROM 'SELECT @@server_id'", fetch=False)
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, delta
    got = [server_id(rr, "EXECUTE rws_p") for _ in range(6)]
    assert set(got) == REPLICA_IDS, got
    delta, _ = routed(rws_proxy, rr, "DEALLOCATE PREPARE rws_p", fetch=False)
    assert delta == {"db1": 1, "db2": 1, "db3": 1}, delta
    with pytest.raises(pymysql.MySQLError) as e:
        rows(rr, "EXECUTE rws_p")
    assert e.value.args[0] == 1243


def test_found_rows_follows_previous_statement(rws_proxy, rr, tables):
    # round robin: an ordinary read would go to the other replica than the previous one
    for _ in range(4):
        res = rows(rr, "SELECT SQL_CALC_FOUND_ROWS seq, @@server_id FROM seq_1_to_100 LIMIT 3")
        sid = res[0][1]
        assert sid in REPLICA_IDS and len(res) == 3
        assert one(rr, "SELECT FOUND_ROWS(), @@server_id") == (100, sid)
    # after a statement on the primary: on the primary
    t = tables("id INT PRIMARY KEY")
    with rr.cursor() as cur:
        cur.execute(f"INSERT INTO {t} VALUES (1), (2)")
    delta, res = routed(rws_proxy, rr, "SELECT FOUND_ROWS(), @@server_id")
    assert res[0][1] == 1 and delta == ON_PRIMARY, (res, delta)


def test_show_warnings_follows_previous_statement(rws_proxy, rr, tables):
    for _ in range(4):
        with rr.cursor() as cur:
            cur.execute("SELECT CAST('12abc' AS SIGNED), @@server_id")
            v, sid = cur.fetchone()
        assert v == 12 and sid in REPLICA_IDS
        delta, warnings = routed(rws_proxy, rr, "SHOW WARNINGS")
        assert delta[f"db{sid}"] == 1 and sum(delta.values()) == 1, (sid, delta)
        assert len(warnings) == 1 and warnings[0][1] == 1292, warnings
    # a warning left by a write on the primary
    t = tables("id INT PRIMARY KEY")
    with rr.cursor() as cur:
        cur.execute(f"INSERT IGNORE INTO {t} VALUES (1), (1)")
    delta, warnings = routed(rws_proxy, rr, "SHOW WARNINGS")
    assert delta == ON_PRIMARY, delta
    assert [w[1] for w in warnings] == [1062], warnings


# --- ordinary reads and hints ------------------------------------------------------------------

def test_autocommit_reads_spread_over_replicas(rws_proxy):
    conns = [rws_proxy.service("rws") for _ in range(4)]
    ids = collections.Counter()
    lock = threading.Lock()
    errors = []
    counters = Counters(rws_proxy)

    def work(c):
        try:
            mine = collections.Counter()
            with c.cursor() as cur:
                for _ in range(50):
                    cur.execute("SELECT @@server_id")
                    mine[cur.fetchone()[0]] += 1
            with lock:
                ids.update(mine)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    try:
        threads = [threading.Thread(target=work, args=(c,)) for c in conns]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    finally:
        for c in conns:
            c.close()
    assert not errors, errors
    assert sum(ids.values()) == 200
    assert 1 not in ids, f"autocommit reads ran on the primary: {ids}"
    assert set(ids) == REPLICA_IDS, f"reads did not use both replicas: {ids}"
    delta = counters.delta()
    assert delta["db2"] + delta["db3"] >= 200, delta


def test_round_robin_alternates_replicas(rws_proxy, rr):
    got = [server_id(rr) for _ in range(10)]
    assert set(got) == REPLICA_IDS, got
    assert all(a != b for a, b in zip(got, got[1:])), f"round_robin did not alternate: {got}"


def test_show_runs_on_replica(rws_proxy, conn):
    for _ in range(3):
        res = rows(conn, "SHOW VARIABLES LIKE 'server_id'")
        assert res[0][1] in ("2", "3"), res


def test_routing_hints(rws_proxy, conn):
    for _ in range(3):
        assert assert_on_primary(rws_proxy, conn, "SELECT @@server_id /* switchyard: route=primary */") == ((1,),)
        assert server_id(conn, "SELECT /* switchyard: route=server:db2 */ @@server_id") == 2
        assert server_id(conn, "SELECT @@server_id -- switchyard: route=server:db3\n") == 3
        assert server_id(conn, "SELECT @@server_id # switchyard: route=server:db2\n") == 2
        assert server_id(conn, "/* Switchyard:  ROUTE=replica */ SELECT @@server_id") in REPLICA_IDS
    # a hint-like text inside a string is not a hint
    for _ in range(3):
        res = one(conn, "SELECT '/* switchyard: route=primary */', @@server_id")
        assert res[1] in REPLICA_IDS, res
    # the hint sends a read of the primary's own state to the primary
    assert one(conn, "SELECT @@read_only, @@server_id /* switchyard: route=primary */") == (0, 1)
