"""readwritesplit: session state across the backends of one client session.

- the session-command history is bounded (`rws_hist`: max_history 5): past the limit the
  session goes on, on the backends it already has, with the right answers; it is bounded in
  bytes too (max_history_bytes, 1 MiB by default), so large `SET`s are not kept for the
  session's life;
- identical commands are de-duplicated in the history, so repeating one does not exhaust it
  (proved by a replica still being opened, and brought to the session's state, afterwards);
- a replica opened lazily, after the session changed its state, gets the history replayed;
- COM_RESET_CONNECTION and COM_CHANGE_USER leave no user variable behind on any backend.

Which backend answered is told by `@@server_id` (1 = primary); routing hints
(`/* switchyard: route=server:db2 */`) reach a given server."""

import struct

import pytest

import rawmysql as R
from rws_util import REPLICA_IDS, one, server_id


def hint(sid):
    return "primary" if sid == 1 else f"server:db{sid}"


def test_history_over_limit_session_still_works(rws_proxy):
    # PyMySQL itself sends SET NAMES at login: with 8 more distinct session commands the
    # history (limit 5) overflows before the session's first read.
    with rws_proxy.service("rws_hist") as c, c.cursor() as cur:
        for i in range(1, 9):
            cur.execute(f"SET @h{i} = {i}")
        cur.execute("SET SESSION wait_timeout = 1001")
        cur.execute("SET SESSION sql_mode = 'TRADITIONAL'")
        expected = tuple(range(1, 9)) + (1001,)
        seen = set()
        for _ in range(20):
            cur.execute("SELECT @h1, @h2, @h3, @h4, @h5, @h6, @h7, @h8, @@wait_timeout, @@server_id")
            row = cur.fetchone()
            assert row[:-1] == expected, f"a read after the history overflowed saw {row}"
            seen.add(row[-1])
            cur.execute("SELECT @@sql_mode")
            assert "STRICT_TRANS_TABLES" in cur.fetchone()[0]
        # writes and later session commands work too
        cur.execute("SET @h9 = 9")
        cur.execute("SELECT @h9, @h1")
        assert cur.fetchone() == (9, 1)
        cur.execute("CREATE TEMPORARY TABLE rws_hist_tmp (a INT)")
        cur.execute("INSERT INTO rws_hist_tmp VALUES (5)")
        cur.execute("SELECT a FROM rws_hist_tmp")
        assert cur.fetchone() == (5,)
        print(f"reads after the overflow ran on server ids {sorted(seen)}")
    # a new session of the same service is not affected
    with rws_proxy.service("rws_hist") as c:
        assert server_id(c) in REPLICA_IDS


def test_history_over_limit_with_replicas_already_open(rws_proxy):
    with rws_proxy.service("rws_hist") as c, c.cursor() as cur:
        # open all three backends first: they all get every later session command
        for sid in (2, 3, 1):
            cur.execute(f"SELECT @@server_id /* switchyard: route={hint(sid)} */")
            assert cur.fetchone() == (sid,)
        for i in range(1, 11):
            cur.execute(f"SET @k{i} = {i * 10}")
        for sid in (1, 2, 3):
            cur.execute(f"SELECT @k1, @k10, @@server_id /* switchyard: route={hint(sid)} */")
            assert cur.fetchone() == (10, 100, sid)
        ids = set()
        for _ in range(10):
            cur.execute("SELECT @k5, @@server_id")
            v, sid = cur.fetchone()
            assert v == 50
            ids.add(sid)
        assert ids <= REPLICA_IDS, ids


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_history_is_bounded_in_bytes(rws_proxy):
    """Sixteen 4 MiB `SET @v = '...'` (64 MiB of commands) are not kept for the session's life:
    past max_history_bytes the history is given up, the session goes on on its primary, and the
    proxy does not grow by what the client sent."""
    before = _rss_kib(rws_proxy.proc.pid)
    with rws_proxy.service(max_allowed_packet=16 << 20) as c, c.cursor() as cur:
        for i in range(16):
            cur.execute(f"SET @big{i} = '{chr(97 + i) * (4 << 20)}'")
        grown = _rss_kib(rws_proxy.proc.pid) - before
        # Past the limit no replica can be brought to the session's state: reads stay on the
        # backend that has it, and see the variables.
        for _ in range(5):
            cur.execute("SELECT LENGTH(@big0), LEFT(@big15, 1), @@server_id")
            assert cur.fetchone() == (4 << 20, "p", 1)
    assert grown < 32 << 10, f"the proxy grew by {grown} KiB keeping a session's large SETs"
    # A new session is not affected.
    with rws_proxy.service() as c:
        assert server_id(c) in REPLICA_IDS


def test_history_deduplicates_identical_commands(rws_proxy):
    # 3 x 20 identical, constant session commands (+ PyMySQL's SET NAMES) fit in a history of 5
    # only if identical ones replace each other. Proof: a replica can still be opened
    # afterwards, and it is in the session's state.
    with rws_proxy.service("rws_hist") as c, c.cursor() as cur:
        for _ in range(20):
            cur.execute("SET SESSION wait_timeout = 1234")
            cur.execute("SET NAMES utf8mb4")
            cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
        cur.execute("SELECT @@wait_timeout, @@sql_mode, @@server_id")
        wt, mode, sid = cur.fetchone()
        assert (wt, mode) == (1234, "ANSI_QUOTES")
        assert sid in REPLICA_IDS, (
            "the first read did not open a replica: the history (max_history 5) was exhausted by "
            "repeated identical SETs")
        other = 5 - sid
        cur.execute(f"SELECT @@wait_timeout, @@sql_mode, @@server_id /* switchyard: route=server:db{other} */")
        assert cur.fetchone() == (1234, "ANSI_QUOTES", other)


def test_lazily_opened_replica_gets_the_history(rws_proxy):
    with rws_proxy.service("rws") as c, c.cursor() as cur:
        cur.execute("SET @lazy = 42")
        cur.execute("SET SESSION wait_timeout = 777")
        cur.execute("SET @@session.sql_mode = 'ANSI'")
        cur.execute("USE sbtest")
        cur.execute("PREPARE rws_lazy FROM 'SELECT @lazy + 1, @@server_id'")
        # the session's first read opens a replica
        cur.execute("SELECT @lazy, @@wait_timeout, DATABASE(), @@server_id")
        lazy, wt, db, sid = cur.fetchone()
        assert sid in REPLICA_IDS
        assert (lazy, wt, db) == (42, 777, "sbtest"), (lazy, wt, db, sid)
        cur.execute("SELECT @@sql_mode")
        assert "ANSI" in cur.fetchone()[0]
        # and the other replica, opened later still
        other = 5 - sid
        cur.execute(f"SELECT @lazy, @@wait_timeout, DATABASE(), @@server_id /* switchyard: route=server:db{other} */")
        assert cur.fetchone() == (42, 777, "sbtest", other)
        cur.execute("EXECUTE rws_lazy")
        v, sid2 = cur.fetchone()
        assert v == 43 and sid2 in REPLICA_IDS


def _user_vars_everywhere(c, var="@x"):
    """The value of a user variable on each server, through hints: {server_id: value}."""
    out = {}
    for sid in (1, 2, 3):
        res = c.query(f"SELECT {var}, @@server_id /* switchyard: route={hint(sid)} */")
        (value, got_sid), = res[0][2]
        assert int(got_sid) == sid
        out[sid] = value
    return out


def test_reset_connection_leaves_no_user_variables(rws_proxy):
    c = rws_proxy.raw("rws")
    try:
        c.query("SET @x = 5")
        c.query("SELECT @y := 6")
        assert _user_vars_everywhere(c, "@x") == {1: "5", 2: "5", 3: "5"}
        assert _user_vars_everywhere(c, "@y") == {1: "6", 2: "6", 3: "6"}
        c.command(R.COM_RESET_CONNECTION)
        kind, _ = c.read_result()
        assert kind == "ok"
        assert _user_vars_everywhere(c, "@x") == {1: None, 2: None, 3: None}
        assert _user_vars_everywhere(c, "@y") == {1: None, 2: None, 3: None}
        for _ in range(4):
            (x, sid), = c.query("SELECT @x, @@server_id")[0][2]
            assert x is None and int(sid) in REPLICA_IDS
        # the session goes on, and its later state reaches every backend again
        c.query("SET @x = 7")
        assert _user_vars_everywhere(c, "@x") == {1: "7", 2: "7", 3: "7"}
    finally:
        c.close()


def test_reset_connection_then_lazily_opened_replica(rws_proxy):
    # state set before the reset must not be replayed on a replica opened after it
    c = rws_proxy.raw("rws")
    try:
        c.query("SET @x = 5")
        c.query("SET SESSION wait_timeout = 555")
        c.command(R.COM_RESET_CONNECTION)
        assert c.read_result()[0] == "ok"
        (x, wt, sid), = c.query("SELECT @x, @@wait_timeout, @@server_id")[0][2]
        assert int(sid) in REPLICA_IDS
        assert x is None and wt != "555", (x, wt, sid)
    finally:
        c.close()


def change_user(c, user, password, db=""):
    auth = R.native_scramble(password.encode(), c.handshake.salt)
    pl = (user.encode() + b"\0" + bytes([len(auth)]) + auth + db.encode() + b"\0"
          + struct.pack("<H", 45) + b"mysql_native_password\0")
    c.command(R.COM_CHANGE_USER, pl)
    return c.finish_auth(password)


def test_change_user_leaves_no_user_variables(rws_proxy):
    c = rws_proxy.raw("rws")
    try:
        c.query("SET @x = 5")
        assert _user_vars_everywhere(c, "@x") == {1: "5", 2: "5", 3: "5"}
        change_user(c, "limited", "limited", "test")
        for sid in (1, 2, 3):
            res = c.query(f"SELECT @x, CURRENT_USER(), @@server_id /* switchyard: route={hint(sid)} */")
            assert res[0][2] == [(None, "limited@127.0.0.1", str(sid))], res
        c.query("SET @x = 8")
        assert _user_vars_everywhere(c, "@x") == {1: "8", 2: "8", 3: "8"}
        change_user(c, "app", "app", "test")
        assert _user_vars_everywhere(c, "@x") == {1: None, 2: None, 3: None}
        (user, sid), = c.query("SELECT CURRENT_USER(), @@server_id")[0][2]
        assert user == "app@127.0.0.1" and int(sid) in REPLICA_IDS
    finally:
        c.close()


def test_change_user_then_lazily_opened_replica(rws_proxy):
    c = rws_proxy.raw("rws")
    try:
        c.query("SET @x = 5")
        change_user(c, "app", "app", "test")
        (x, sid), = c.query("SELECT @x, @@server_id")[0][2]
        assert x is None and int(sid) in REPLICA_IDS, (x, sid)
    finally:
        c.close()
