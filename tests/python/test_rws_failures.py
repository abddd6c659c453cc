"""readwritesplit when sandbox servers fail for real (scripts/sandbox.sh stop / kill / start,
as tests/monitor_faults.rs does). Each test restores the sandbox in a `finally` (start the
server, wait for replication to catch up and for the monitor to see a healthy cluster again).
conftest.py runs this file after every other test file.

- a replica stopped (clean shutdown) or killed (SIGKILL) mid-session: the session's next reads
  succeed without the client seeing an error, on the other replica or the primary;
- the primary stopped (once, for all three `primary_failure_mode`s):
  `error_on_write`: reads go on, a write gets error 1290, the session survives;
  `fail_on_write`: reads go on, a write closes the connection;
  `fail_instantly`: the session is closed;
  and once the primary is back, new sessions write fine;
- a planned switchover (db2 becomes primary and back): a session outside a transaction
  follows it with its state intact;
- a read whose replica connection dies before the client got anything runs again elsewhere."""

import subprocess
import time
from pathlib import Path

import pymysql
import pytest

import rawmysql as R
from conftest import REPO, primary_exec, unique, wait_replicated
from rws_util import REPLICA_IDS, RwsTable, server_id


def sandbox(cmd, name, timeout=180):
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(REPO / "scripts" / "sandbox.sh"), cmd, name], cwd=str(REPO),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"scripts/sandbox.sh {cmd} {name} failed:\n{r.stdout}\n{r.stderr}"
    return time.monotonic() - t0


def restore(rws_proxy, name):
    took = sandbox("start", name)
    wait_replicated(60)
    rws_proxy.wait_healthy(60)
    return took


@pytest.fixture
def tables():
    t = RwsTable("rws_fail")
    yield t
    t.drop()


def _replica_lost_mid_session(rws_proxy, how, victim):
    victim_id = int(victim[-1])
    survivor_ids = {1, 2, 3} - {victim_id}
    rr = rws_proxy.service("rws_rr")
    dflt = rws_proxy.service("rws")
    ps = rws_proxy.raw("rws_rr")  # a prepared statement, prepared on both replicas
    try:
        for c in (rr, dflt):
            with c.cursor() as cur:
                cur.execute("SET @state = 'kept'")
        # rr: both replicas open; dflt: make sure it reads on the victim
        assert {server_id(rr) for _ in range(4)} == REPLICA_IDS
        assert server_id(dflt, f"SELECT @@server_id /* switchyard: route=server:{victim} */") == victim_id
        stmt = ps.stmt_prepare("SELECT ? * 3, @@server_id")
        assert {ps.stmt_execute(stmt, [i])[0][2][0][1] for i in range(2)} == REPLICA_IDS
        try:
            took = sandbox(how, victim)
            print(f"\nsandbox.sh {how} {victim}: {took:.1f}s")
            got = []
            for c in (rr, dflt):
                for _ in range(15):
                    with c.cursor() as cur:
                        cur.execute("SELECT @state, @@server_id")  # no error may reach the client
                        state, sid = cur.fetchone()
                    assert state == "kept", (state, sid)
                    got.append(sid)
            assert set(got) <= survivor_ids, f"reads ran on the lost replica? {got}"
            for i in range(6):
                (v, sid), = ps.stmt_execute(stmt, [i])[0][2]
                assert v == 3 * i and sid in survivor_ids, (v, sid)
            print(f"reads after {how} {victim} ran on server ids {sorted(set(got))}")
            # new sessions are not troubled either
            with rws_proxy.service("rws_rr") as n:
                ids = {server_id(n) for _ in range(6)}
                assert ids <= survivor_ids, ids
            rws_proxy.wait_roles(lambda s: s[victim]["role"] == "down", 30, f"{victim} seen down")
            for c in (rr, dflt):
                assert server_id(c) in survivor_ids
        finally:
            took = restore(rws_proxy, victim)
            print(f"restored {victim} in {took:.1f}s")
        # the server is back: a new session uses it again
        with rws_proxy.service("rws_rr") as n:
            assert {server_id(n) for _ in range(6)} == REPLICA_IDS
        rws_proxy.assert_serving()
    finally:
        rr.close()
        dflt.close()
        ps.close()


def test_replica_stopped_mid_session(rws_proxy):
    _replica_lost_mid_session(rws_proxy, "stop", "db2")


def test_replica_killed_mid_session(rws_proxy):
    _replica_lost_mid_session(rws_proxy, "kill", "db3")


def _closed(conn) -> bool:
    """True if a PyMySQL connection no longer works (the proxy closed it)."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
        return False
    except (pymysql.MySQLError, OSError):
        return True


def test_primary_stopped_failure_modes(rws_proxy, tables):
    t = tables("id INT PRIMARY KEY, sid INT, who VARCHAR(40)")
    eow = rws_proxy.service("rws_error_on_write")
    fow = rws_proxy.service("rws_fail_on_write")
    fi = rws_proxy.raw("rws_fail_instantly")
    problems = []
    notes = []
    next_id = iter(range(1, 10_000))

    def write(c, who):
        with c.cursor() as cur:
            cur.execute(f"INSERT INTO {t} (id, sid, who) SELECT %s, @@server_id, %s", (next(next_id), who))

    def check(name, fn):
        try:
            r = fn()
            notes.append(f"{name}: ok{'' if r is None else f' ({r})'}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{name}: {type(e).__name__}: {e}")

    try:
        for c, who in ((eow, "eow"), (fow, "fow")):
            write(c, who)
            with c.cursor() as cur:
                cur.execute("SET @mine = 'before'")
            assert server_id(c) in REPLICA_IDS
        assert fi.scalar("SELECT @@server_id") in ("2", "3")
        wait_replicated()

        try:
            took = sandbox("stop", "db1")
            states = rws_proxy.wait_roles(lambda s: s["db1"]["role"] == "down", 30, "db1 seen down")
            notes.append(f"sandbox.sh stop db1: {took:.1f}s; roles then: "
                         + ", ".join(f"{n}={s['role']}" for n, s in states.items()))

            # --- error_on_write: reads go on, writes get 1290, the session survives ----------
            check("error_on_write: reads with the primary down", lambda: replica_reads(eow))

            def eow_write():
                with pytest.raises(pymysql.MySQLError) as e:
                    write(eow, "eow-down")
                assert e.value.args[0] == 1290, e.value.args
                return e.value.args
            check("error_on_write: a write gets 1290", eow_write)

            def eow_survives():
                with eow.cursor() as cur:
                    cur.execute("SELECT 'still here', @mine")
                    assert cur.fetchone() == ("still here", "before")
            check("error_on_write: the session survives the refused write", eow_survives)

            def eow_new_session():
                with rws_proxy.service("rws_error_on_write") as n:
                    ids = {server_id(n) for _ in range(3)}
                    assert ids <= REPLICA_IDS, ids
                    with pytest.raises(pymysql.MySQLError) as e:
                        write(n, "eow-new")
                    assert e.value.args[0] == 1290, e.value.args
            check("error_on_write: a new session while the primary is down reads, gets 1290 on write",
                  eow_new_session)

            # --- fail_on_write: reads go on, a write closes the connection -------------------
            check("fail_on_write: reads with the primary down", lambda: replica_reads(fow))

            def fow_write():
                with pytest.raises(pymysql.MySQLError) as e:
                    write(fow, "fow-down")
                assert _closed(fow), "the connection is still usable after the failed write"
                return e.value.args
            check("fail_on_write: a write closes the connection", fow_write)

            # --- fail_instantly: the session is closed ---------------------------------------
            def fi_closed():
                try:
                    fi.query("SELECT @@server_id")
                    answered = "answered"
                except R.ServerError as e:
                    answered = f"error {e.code}: {e.message}"
                except (R.Closed, OSError) as e:
                    answered = f"closed: {e}"
                assert fi.is_closed(5), f"the session is still open ({answered})"
                return answered
            check("fail_instantly: the session is closed", fi_closed)

            def fi_new_session():
                try:
                    c = rws_proxy.service("rws_fail_instantly")
                except pymysql.MySQLError as e:
                    return f"refused: {e.args}"
                try:
                    assert _closed(c), "a fail_instantly session works without a primary"
                finally:
                    c.close()
                return "closed at its first command"
            check("fail_instantly: no new session while the primary is down", fi_new_session)
        finally:
            took = restore(rws_proxy, "db1")
            notes.append(f"restored db1 in {took:.1f}s")

        # --- the primary is back: new sessions write fine ------------------------------------
        for service in ("rws", "rws_error_on_write", "rws_fail_on_write", "rws_fail_instantly"):
            def new_write(service=service):
                with rws_proxy.service(service) as n:
                    write(n, f"{service}-after")
                    assert server_id(n, "SELECT @@server_id") in REPLICA_IDS | {1}
            check(f"{service}: a new session writes after the primary is back", new_write)

        def eow_old_session_after():
            write(eow, "eow-after")
            with eow.cursor() as cur:
                cur.execute("SELECT @mine")
                assert cur.fetchone() == ("before",)
        check("error_on_write: the surviving session writes once the primary is back",
              eow_old_session_after)

        got = primary_exec(f"SELECT who, sid FROM test.{t} ORDER BY id")
        notes.append(f"rows on the primary: {got}")
        assert all(sid == 1 for _, sid in got), got
        assert not any(who.endswith("-down") or who == "eow-new" for who, _ in got), got
    finally:
        for c in (eow, fow):
            try:
                c.close()
            except Exception:
                pass
        fi.close()
        print("\n" + "\n".join(notes))
    assert not problems, "\n".join(problems) + "\n--- notes:\n" + "\n".join(notes)


def replica_reads(c):
    """Five reads on `c`, each on a replica and seeing the session's `@mine`."""
    ids = []
    for _ in range(5):
        with c.cursor() as cur:
            cur.execute("SELECT @mine, @@server_id")
            mine, sid = cur.fetchone()
        assert mine == "before" and sid in REPLICA_IDS, (mine, sid)
        ids.append(sid)
    return f"server ids {ids}"


def root_sql(i, sql):
    """Runs `sql` as the sandbox's root account (over the socket) on db`i`."""
    import getpass
    import os
    sandbox_dir = Path(os.environ.get("SANDBOX_DIR", REPO / ".sandbox"))
    r = subprocess.run(["mariadb", "--no-defaults", f"--socket={sandbox_dir / f'db{i}' / 'mysqld.sock'}",
                        f"-u{getpass.getuser()}", "-N", "-B", "-e", sql],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"db{i}: {sql}: {r.stderr}"
    return r.stdout.strip()


def switch_primary(old, new, third):
    """A planned switchover: `old` read-only, the others caught up, `new` writable, `old` and
    `third` replicate from `new` (GTID)."""
    root_sql(old, "SET GLOBAL read_only = 1")
    pos = root_sql(old, "SELECT @@gtid_binlog_pos")
    for i in (new, third):
        assert root_sql(i, f"SELECT MASTER_GTID_WAIT('{pos}', 30)") == "0"
    root_sql(new, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
    port = 3306 + new
    for i in (old, third):
        root_sql(i, f"STOP SLAVE; SET GLOBAL gtid_slave_pos = @@gtid_current_pos; "
                    f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, "
                    f"MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; "
                    f"START SLAVE")


def test_session_follows_a_primary_switchover(rws_proxy, tables):
    """A session outside a transaction, with session state, carries on against the new primary:
    its writes land there and its history (variables, sql_mode) is intact."""
    t = tables("id INT PRIMARY KEY AUTO_INCREMENT, sid INT")
    c = rws_proxy.service("rws")
    try:
        with c.cursor() as cur:
            cur.execute("SET @state = 'kept', SESSION sql_mode = 'ANSI_QUOTES'")
            cur.execute(f"INSERT INTO {t} (sid) SELECT @@server_id")
            cur.execute("SELECT @state, @@server_id")
            assert cur.fetchone()[0] == "kept"
        try:
            switch_primary(1, 2, 3)
            rws_proxy.wait_roles(lambda s: s["db2"]["role"] == "primary"
                                 and s["db1"]["role"] == "replica"
                                 and s["db3"]["role"] == "replica", 30, "db2 primary")
            with c.cursor() as cur:
                cur.execute(f"INSERT INTO {t} (sid) SELECT @@server_id")
                cur.execute(f"SELECT @state, @@sql_mode, @@server_id /* switchyard: route=primary */")
                state, mode, sid = cur.fetchone()
                assert (state, mode, sid) == ("kept", "ANSI_QUOTES", 2), (state, mode, sid)
                cur.execute(f"SELECT sid FROM {t} ORDER BY id /* switchyard: route=primary */")
                assert [r[0] for r in cur.fetchall()] == [1, 2]
        finally:
            switch_primary(2, 1, 3)
            rws_proxy.wait_healthy(60)
        with c.cursor() as cur:
            cur.execute(f"INSERT INTO {t} (sid) SELECT @@server_id")
            cur.execute(f"SELECT MAX(sid) FROM {t} WHERE id = LAST_INSERT_ID()")
            assert cur.fetchone()[0] == 1
    finally:
        c.close()


def test_read_in_flight_is_retried_elsewhere(sandbox, switchyard_bin, tmp_path):
    """A replica whose connection dies while it runs a read, before the client got anything: the
    read runs again on another server and the client sees only the answer."""
    import threading
    from conftest import HOST, PRIMARY_PORT, REPLICA_PORTS, Proxy, free_port
    from relay import Relay
    relay_port, port = free_port(), free_port()
    relay = Relay(relay_port, (HOST, REPLICA_PORTS[0]))
    relay.start()
    cfg = tmp_path / "switchyard.yaml"
    cfg.write_text(f"""servers:
  - {{ name: db1, address: "{HOST}:{PRIMARY_PORT}", role: primary }}
  - {{ name: dbr, address: "{HOST}:{relay_port}", role: replica }}
services:
  - {{ name: rws, router: readwritesplit, servers: [db1, dbr], user: switchyard, password: switchyard }}
listeners:
  - {{ name: rws, service: rws, address: "{HOST}:{port}" }}
""")
    p = Proxy(switchyard_bin, cfg, tmp_path / "switchyard.log", port, None, None, tmp_path)
    p.start()
    try:
        c = p.connect(port, database="test")
        assert server_id(c) == 2
        res = {}

        def run():
            try:
                with c.cursor() as cur:
                    cur.execute("SELECT SLEEP(1.5), @@server_id")
                    res["row"] = cur.fetchone()
            except Exception as e:  # noqa: BLE001
                res["error"] = e

        th = threading.Thread(target=run, daemon=True)
        th.start()
        time.sleep(0.5)
        relay.cut_all()
        th.join(20)
        assert not th.is_alive()
        assert res.get("row") == (0, 1), f"{res}; log:\n{p.log_tail()}"
        assert server_id(c) == 1  # the failed replica is left alone for a while
        c.close()
    finally:
        p.stop()
        p._logf.close()
        relay.stop()
