"""The classes of defects that MariaDB's own test suite found through the proxy (issue 12;
the suite itself is tests/fidelity), each end to end with real clients, through readconnroute
(`proxy.rw()`, every statement on the primary) and readwritesplit (`rws_proxy`):

- replies the tracker once lost its place in (a text result set carrying
  SERVER_STATUS_CURSOR_EXISTS from a cursor a stored program opened; a procedure returning
  result sets between handled errors and a SIGNAL) end where the server's reply ends;
- session commands sent as COM_STMT_PREPARE + COM_STMT_EXECUTE reach every backend;
- user variables assigned where the proxy cannot see it (a procedure's OUT parameter or body,
  a stored function, a trigger) are read where they were assigned;
- a server that ends the connection (COMMIT RELEASE, wait_timeout) ends the client's, with no
  error of the proxy's own making;
- reads between LOCK TABLES and UNLOCK TABLES run on the primary, where the locks are;
- statements are read in the session's dialect (`SET sql_mode=ORACLE` and its `name := expr`,
  NO_BACKSLASH_ESCAPES, ANSI_QUOTES);
- the connection ids a client sees (handshake, CONNECTION_ID(), PROCESSLIST) are the proxy's,
  which KILL takes, in text and binary protocol."""

import subprocess
import time

import pymysql
import pytest

from conftest import BACKEND_THREAD_ID, direct, primary_exec, unique, wait_replicated
from rws_util import one


def connections(proxy, rws_proxy):
    """A PyMySQL connection through each router, with a read timeout: a hang fails the test."""
    return {
        "readconnroute": proxy.rw(database="test", read_timeout=15),
        "readwritesplit": rws_proxy.service("rws_local", read_timeout=15),
    }


@pytest.fixture
def both(proxy, rws_proxy):
    conns = connections(proxy, rws_proxy)
    yield conns
    for c in conns.values():
        try:
            c.close()
        except Exception:
            pass


def all_results(cur):
    """Every result set of the statement just run (rows of each, None for an OK)."""
    out = []
    while True:
        out.append(cur.fetchall() if cur.description else None)
        if not cur.nextset():
            return out


ORACLE_CURSOR_BLOCK = """DECLARE
  v INT;
  CURSOR cur IS VALUES(7);
BEGIN
  OPEN cur;
  FETCH cur INTO v;
  SELECT v;
END"""


@pytest.mark.parametrize("router", ["readconnroute", "readwritesplit"])
def test_result_set_under_an_open_cursor_does_not_hang(both, router):
    c = both[router]
    with c.cursor() as cur:
        cur.execute("SET sql_mode=ORACLE")
        cur.execute(ORACLE_CURSOR_BLOCK)
        assert all_results(cur) == [((7,),), None]
        cur.execute("SET sql_mode=DEFAULT")
        # the session is still in step with its backend
        assert one(c, "SELECT 1 + 1") == (2,)


def test_procedure_results_between_handlers_and_signal(both):
    name = unique("p_sig")
    primary_exec(
        f"""CREATE PROCEDURE test.{name}()
        BEGIN
          DECLARE CONTINUE HANDLER FOR SQLSTATE '42S02' SELECT 'handled' AS h;
          FOR i IN 1..4 DO
            EXECUTE IMMEDIATE CONCAT('SELECT ', i, ' AS n');
            SELECT * FROM no_such_table_anywhere;
          END FOR;
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'done with it';
        END""")
    wait_replicated()
    try:
        for router, c in both.items():
            with c.cursor() as cur:
                with pytest.raises(pymysql.err.OperationalError) as e:
                    cur.execute(f"CALL {name}()")
                    all_results(cur)
                assert e.value.args[0] == 1644, (router, e.value.args)
            assert one(c, "SELECT 'in step'") == ("in step",), router
    finally:
        primary_exec(f"DROP PROCEDURE IF EXISTS test.{name}")


def session_state(raw, server):
    hint = "primary" if server == 1 else f"server:db{server}"
    res = raw.query(f"SELECT @@time_zone, @ps_v, @@sql_mode, @@innodb_strict_mode, @@server_id "
                    f"/* switchyard: route={hint} */")
    assert res[0][0] == "rows", res
    row = res[0][2][0]
    return tuple(v.decode() if isinstance(v, bytes) else v for v in row)


def test_binary_protocol_session_commands_reach_every_backend(rws_proxy):
    raw = rws_proxy.raw("rws")
    try:
        # open every backend first, then change the session by the binary protocol
        for sid in (2, 3, 1):
            session_state(raw, sid)
        for sql in ("SET time_zone = '+03:00'", "SET @ps_v = 'x'", "SET sql_mode = 'ANSI_QUOTES'",
                    "SET innodb_strict_mode = OFF"):
            stmt = raw.stmt_prepare(sql)
            result = raw.stmt_execute(stmt)
            assert result[0][0] == "ok", (sql, result)
            raw.stmt_close(stmt)
        for sid in (1, 2, 3):
            assert session_state(raw, sid) == ("+03:00", "x", "ANSI_QUOTES", "0", str(sid)), sid
    finally:
        raw.close()


def test_binary_session_command_replayed_on_a_backend_opened_later(rws_proxy):
    raw = rws_proxy.raw("rws")
    try:
        stmt = raw.stmt_prepare("SET time_zone = '-02:00'")
        assert raw.stmt_execute(stmt)[0][0] == "ok"
        raw.stmt_close(stmt)
        # with parameters, whose values only the execute carries; the second execute sends
        # no types, the replay must have them
        stmt = raw.stmt_prepare("SET @ps_v = ?")
        assert raw.stmt_execute(stmt, ["first"])[0][0] == "ok"
        assert raw.stmt_execute(stmt, ["p"], send_types=False)[0][0] == "ok"
        raw.stmt_close(stmt)
        # replicas opened only now get both from the session history
        for sid in (2, 3):
            assert session_state(raw, sid)[:2] == ("-02:00", "p")
    finally:
        raw.close()


def test_user_variables_assigned_out_of_sight(rws_proxy):
    p_out, p_body, f_set, t = unique("p_out"), unique("p_body"), unique("f_set"), unique("t_trg")
    primary_exec(
        f"CREATE PROCEDURE test.{p_out}(OUT x INT) SET x = 42",
        f"CREATE PROCEDURE test.{p_body}() SET @from_body = 'body'",
        f"CREATE FUNCTION test.{f_set}() RETURNS INT NO SQL BEGIN SET @from_function = 9; RETURN 1; END",
        f"CREATE TABLE test.{t} (a INT)",
        f"CREATE TRIGGER test.{t}_ai AFTER INSERT ON test.{t} FOR EACH ROW SET @from_trigger = NEW.a",
    )
    wait_replicated()
    try:
        with rws_proxy.service("rws") as c:
            with c.cursor() as cur:
                cur.execute(f"CALL {p_out}(@out)")
            assert one(c, "SELECT @out") == (42,)
            with c.cursor() as cur:
                cur.execute(f"CALL {p_body}()")
            assert one(c, "SELECT @from_body") == ("body",)
            assert one(c, f"SELECT {f_set}()") == (1,)
            assert one(c, "SELECT @from_function") == (9,)
            with c.cursor() as cur:
                cur.execute(f"INSERT INTO {t} VALUES (5)")
            assert one(c, "SELECT @from_trigger") == (5,)
            assert one(c, f"SELECT a INTO @into FROM {t} LIMIT 1") is None
            assert one(c, "SELECT @into") == (5,)
            # a statement whose text is a user variable's value
            with c.cursor() as cur:
                cur.execute("SET @stmt = 'SELECT @from_body'")
                cur.execute("PREPARE s FROM @stmt")
                cur.execute("EXECUTE s")
                assert cur.fetchall() == (("body",),)
    finally:
        primary_exec(f"DROP PROCEDURE IF EXISTS test.{p_out}", f"DROP PROCEDURE IF EXISTS test.{p_body}",
                     f"DROP FUNCTION IF EXISTS test.{f_set}", f"DROP TABLE IF EXISTS test.{t}")


def test_stored_function_that_writes_runs_on_the_primary(rws_proxy):
    f, t = unique("f_next"), unique("t_seq")
    primary_exec(
        f"CREATE TABLE test.{t} (val INT)",
        f"INSERT INTO test.{t} VALUES (0)",
        f"""CREATE FUNCTION test.{f}() RETURNS INT DETERMINISTIC MODIFIES SQL DATA
        BEGIN DECLARE v INT; SELECT val INTO v FROM test.{t}; UPDATE test.{t} SET val = val + 1; RETURN v; END""",
    )
    wait_replicated()
    try:
        with rws_proxy.service("rws") as c:
            for expected in range(3):
                assert one(c, f"SELECT {f}()") == (expected,)
        # the replicas applied what the primary wrote, and nothing of their own
        wait_replicated()
        assert primary_exec(f"SELECT val FROM test.{t}") == ((3,),)
    finally:
        primary_exec(f"DROP FUNCTION IF EXISTS test.{f}", f"DROP TABLE IF EXISTS test.{t}")


def test_reads_under_lock_tables_run_where_the_locks_are(rws_proxy):
    t, u = unique("t_locked"), unique("t_other")
    primary_exec(f"CREATE TABLE test.{t} (a INT)", f"CREATE TABLE test.{u} (a INT)")
    wait_replicated()
    try:
        with rws_proxy.service("rws") as c, c.cursor() as cur:
            cur.execute(f"LOCK TABLES {t} READ")
            assert one(c, f"SELECT COUNT(*), @@server_id FROM {t}") == (0, 1)
            with pytest.raises(pymysql.err.MySQLError) as e:
                cur.execute(f"SELECT * FROM {u}")
            assert e.value.args[0] == 1100, e.value.args  # ER_TABLE_NOT_LOCKED, as on the server
            cur.execute("UNLOCK TABLES")
            assert one(c, f"SELECT COUNT(*), @@server_id FROM {u}")[1] in (2, 3)
    finally:
        primary_exec(f"DROP TABLE IF EXISTS test.{t}, test.{u}")


def assert_gone(c, router):
    with pytest.raises(pymysql.err.OperationalError) as e:
        with c.cursor() as cur:
            cur.execute("SELECT 1")
    code = e.value.args[0]
    assert code in (2006, 2013), f"{router}: expected the connection to be gone, got {e.value.args}"


# What ends the connection on the server's side, and how long until it has.
SERVER_CLOSES = {
    "commit_release": (["BEGIN", "SELECT 1", "COMMIT RELEASE"], 0.3),
    "completion_type_release": (["SET completion_type = 2", "BEGIN", "COMMIT"], 0.3),
    "wait_timeout": (["SET SESSION wait_timeout = 1"], 2.5),
}


@pytest.mark.parametrize("closer", SERVER_CLOSES)
@pytest.mark.parametrize("router", ["readconnroute", "readwritesplit"])
def test_server_closing_the_connection_closes_the_clients(both, router, closer):
    statements, settle = SERVER_CLOSES[closer]
    c = both[router]
    with c.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
    time.sleep(settle)
    assert_gone(c, router)


@pytest.mark.parametrize("router", ["readconnroute", "readwritesplit"])
def test_processlist_shows_the_ids_clients_know(proxy, rws_proxy, router):
    # PyMySQL's own test suite (test_issues.py, test_issue_36), as it is written there.
    killer, conn = (connections(proxy, rws_proxy)[router] for _ in range(2))
    try:
        c = conn.cursor()
        c.execute("show processlist")
        kill_id = None
        for row in c.fetchall():
            if row[7] == "show processlist":
                kill_id = row[0]
                break
        assert kill_id == conn.thread_id()
        killer.kill(kill_id)
        with pytest.raises(Exception):
            c.execute("show tables")
        conn.close()
        # The proxy needs a moment longer than a server to forget a killed session (it closes
        # the session's backends first), and a processlist through it also lists, unchanged,
        # threads that are not its sessions' (replication, monitors, other proxies), whose
        # server ids may equal a proxy session id: only the killed session's user counts.
        user = conn.user.decode() if isinstance(conn.user, bytes) else conn.user
        deadline = time.monotonic() + 5
        while True:
            with killer.cursor() as k:
                k.execute("show processlist")
                left = [row for row in k.fetchall() if row[0] == kill_id and row[1] == user]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not left, left
    finally:
        killer.close()


@pytest.mark.parametrize("router", ["readconnroute", "readwritesplit"])
def test_connection_id_and_information_schema_agree_with_the_handshake(proxy, rws_proxy, router):
    a, b = (connections(proxy, rws_proxy)[router] for _ in range(2))
    try:
        with a.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID(), CONNECTION_ID() AS cid")
            assert cur.fetchone() == (a.thread_id(), a.thread_id())
            cur.execute("SELECT ID, CONNECTION_ID() FROM information_schema.PROCESSLIST "
                        "WHERE ID = CONNECTION_ID()")
            assert cur.fetchall() == ((a.thread_id(), a.thread_id()),)
        # the id a client reads for another session (both have a thread on the primary) is
        # the one KILL takes
        with a.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app' "
                        "/* switchyard: route=primary */")
            ids = [r[0] for r in cur.fetchall()]
            assert a.thread_id() in ids and b.thread_id() in ids, (ids, a.thread_id(), b.thread_id())
            cur.execute(f"KILL {b.thread_id()}")
        assert_gone(b, router)
    finally:
        a.close()
        b.close()


def test_binary_protocol_connection_id_and_prepared_kill(rws_proxy):
    raw, victim = rws_proxy.raw("rws"), rws_proxy.raw("rws")
    try:
        stmt = raw.stmt_prepare("SELECT CONNECTION_ID()")
        result = raw.stmt_execute(stmt)
        assert result[0][0] == "rows", result
        assert result[0][2] == [(raw.handshake.connection_id,)], result
        # KILL as a prepared statement (mysqltest --ps-protocol, server-side prepare in drivers)
        kill = raw.stmt_prepare(f"KILL {victim.handshake.connection_id}")
        assert raw.stmt_execute(kill)[0][0] == "ok"
        with pytest.raises(Exception):
            victim.query("SELECT 1")
    finally:
        raw.close()
        victim.close()


@pytest.mark.parametrize("router", ["readconnroute", "readwritesplit"])
def test_kill_of_the_backend_thread_closes_the_clients(both, router):
    # Someone on the server kills the thread the session's primary connection runs on.
    c = both[router]
    with c.cursor() as cur:
        cur.execute(f"SELECT {BACKEND_THREAD_ID}, @@port /* switchyard: route=primary */")
        thread, port = cur.fetchone()
    with direct(port) as d, d.cursor() as cur:
        cur.execute(f"KILL {int(thread)}")
    time.sleep(0.3)
    assert_gone(c, router)


@pytest.mark.parametrize("router", ["readconnroute", "readwritesplit"])
def test_backend_killed_mid_statement_is_a_lost_connection_to_the_mariadb_client(proxy, rws_proxy, router):
    # MariaDB Connector/C reads an ERR packet with a client-side code (2000-2999) as "2027
    # Received malformed packet" (MariaDB's main.lock_kill): the proxy must close the client's
    # connection as the server closed its own, so that the client reports 2013 itself.
    port = proxy.rw_port if router == "readconnroute" else rws_proxy.ports["rws_local"]
    marker = unique("killed")
    sql = f"SELECT SLEEP(20), '{marker}' /* switchyard: route=primary */"
    cli = subprocess.Popen(["mariadb", "--no-defaults", "--comments", "-h127.0.0.1", f"-P{port}", "-uapp", "-papp",
                            "test", "-e", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        with direct() as d, d.cursor() as cur:
            while True:
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
                            (f"SELECT SLEEP(20), '{marker}'%",))
                row = cur.fetchone()
                if row:
                    cur.execute(f"KILL {row[0]}")
                    break
                assert time.monotonic() < deadline, "the statement never reached the primary"
                time.sleep(0.05)
        _, err = cli.communicate(timeout=15)
    finally:
        cli.kill()
    assert "ERROR 2013" in err and "2027" not in err, err


def on_each_server(c, expr):
    """`expr` read on the primary and on each replica, by routing hints."""
    out = []
    for hint in ("primary", "server:db2", "server:db3"):
        with c.cursor() as cur:
            cur.execute(f"SELECT {expr} /* switchyard: route={hint} */")
            out.append(cur.fetchone()[0])
    return out


def test_dialects_follow_the_sessions_sql_mode(rws_proxy):
    c = rws_proxy.service("rws_local", read_timeout=15)
    try:
        with c.cursor() as cur:
            on_each_server(c, "1")  # every backend open
            # Oracle mode: an assignment without SET is a session command, on every backend.
            cur.execute("SET sql_mode=ORACLE")
            cur.execute("max_sort_length:=1030")
            assert on_each_server(c, "@@max_sort_length") == [1030] * 3
            cur.execute("SET sql_mode=DEFAULT")
            # NO_BACKSLASH_ESCAPES: 'a\\' is a whole string, and what follows it assigns @v.
            cur.execute("SET sql_mode='NO_BACKSLASH_ESCAPES'")
            cur.execute("SELECT 'a\\', @v := 5")
            assert cur.fetchone() == ("a\\", 5)
            assert on_each_server(c, "@v") == [5] * 3
            # ANSI_QUOTES: "@w" is an identifier, not a string: the assignment is seen.
            cur.execute("SET sql_mode='ANSI_QUOTES'")
            cur.execute('SELECT @w := 7 AS "@w"')
            assert on_each_server(c, "@w") == [7] * 3
    finally:
        c.close()
