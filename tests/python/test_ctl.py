"""`switchyard ctl` against a running proxy (`admin_proxy`, conftest.py): tables, `show`, `--json`,
flags, listeners, reload, health and status, credentials, and an admin API that is not there."""

import json
import os
import re
import subprocess

import pymysql
import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER, HOST, free_port, port_accepts

ENV_VARS = ("SWITCHYARD_ADMIN_USER", "SWITCHYARD_ADMIN_PASSWORD")


def ctl(proxy, *args, config=True, env=None):
    """Runs `switchyard [-c CONFIG] ctl ARGS`; the admin settings come from the config."""
    argv = [str(proxy.binary)] + (["-c", str(proxy.config_path)] if config else []) + ["ctl", *args]
    environ = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    environ.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=environ)


def ok(proxy, *args, **kw):
    r = ctl(proxy, *args, **kw)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert r.stderr == "", r.stderr
    return r.stdout


def failed(proxy, *args, code=1, **kw):
    r = ctl(proxy, *args, **kw)
    assert r.returncode == code, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def table(text):
    """A table as (header, [row dict by header]). Cells are two or more spaces apart."""
    lines = text.rstrip("\n").split("\n")
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(header), (header, line)
        rows.append(dict(zip(header, cells)))
    return header, rows


def rows_by(rows, key="NAME"):
    return {r[key]: r for r in rows}


def key_values(text):
    return dict(re.split(r"\s{2,}", line, maxsplit=1) if "  " in line else (line, "")
                for line in text.rstrip("\n").split("\n"))


# --- lists ---------------------------------------------------------------------------------------

def test_list_servers(admin_proxy):
    header, rows = table(ok(admin_proxy, "list", "servers"))
    assert header == ["NAME", "ADDRESS", "ROLE", "STATE", "LAG", "GTID_BEHIND", "CONNS", "OPS", "STATEMENTS",
                      "RESP_TIME"]
    s = rows_by(rows)
    assert list(s) == ["db1", "db2", "db3", "db4"]
    assert (s["db1"]["ADDRESS"], s["db1"]["ROLE"], s["db1"]["STATE"], s["db1"]["LAG"]) == \
        ("127.0.0.1:3307", "primary", "up", "-")
    for name in ("db2", "db3"):
        assert (s[name]["ROLE"], s[name]["STATE"]) == ("replica", "up")
        assert re.fullmatch(r"\d+s", s[name]["LAG"]) and s[name]["GTID_BEHIND"].isdigit(), s[name]
    assert (s["db4"]["ROLE"], s["db4"]["STATE"]) == ("primary", "-")
    for r in rows:
        assert r["CONNS"].isdigit() and r["OPS"].isdigit() and r["STATEMENTS"].isdigit(), r
        assert re.fullmatch(r"-|\d+us|\d+\.\dms|\d+\.\d\ds", r["RESP_TIME"]), r
    # Aligned: every line of a column starts where its header does (left-aligned columns).
    lines = ok(admin_proxy, "list", "server").splitlines()
    at = lines[0].index("ROLE")
    assert all(line[at - 2:at] == "  " and line[at] != " " for line in lines[1:]), lines


def test_list_services_listeners_monitors_filters(admin_proxy):
    header, rows = table(ok(admin_proxy, "list", "services"))
    assert header == ["NAME", "ROUTER", "MONITOR", "SERVERS", "FILTERS", "LISTENERS", "SESSIONS"]
    s = rows_by(rows)
    assert s["rws"] == {"NAME": "rws", "ROUTER": "readwritesplit", "MONITOR": "repl", "SERVERS": "db1,db2,db3",
                        "FILTERS": "patch", "LISTENERS": "rws", "SESSIONS": s["rws"]["SESSIONS"]}
    assert (s["direct"]["ROUTER"], s["direct"]["FILTERS"]) == ("readconnroute", "-")
    assert (s["fixed"]["MONITOR"], s["fixed"]["SERVERS"]) == ("-", "db4")

    header, rows = table(ok(admin_proxy, "list", "listeners"))
    assert header == ["NAME", "ADDRESS", "SERVICE", "STATE", "SESSIONS"]
    for name, r in rows_by(rows).items():
        assert r == {"NAME": name, "ADDRESS": f"{HOST}:{admin_proxy.ports[name]}", "SERVICE": name,
                     "STATE": "running", "SESSIONS": r["SESSIONS"]}

    header, rows = table(ok(admin_proxy, "list", "monitors"))
    assert header == ["NAME", "MODULE", "SERVERS", "PRIMARY", "TICKS", "LAST_CHECK", "PROBLEMS"]
    [m] = rows
    assert (m["NAME"], m["MODULE"], m["SERVERS"], m["PRIMARY"], m["PROBLEMS"]) == \
        ("repl", "mariadbmon", "db1,db2,db3", "db1", "-")
    assert int(m["TICKS"]) > 0 and re.fullmatch(r"\d+\.\ds ago", m["LAST_CHECK"]), m

    with admin_proxy.connect(admin_proxy.ports["rws"]) as c, c.cursor() as cur:
        cur.execute("SELECT 'sy_admin_old'")
    header, rows = table(ok(admin_proxy, "list", "filters"))
    assert header == ["NAME", "MODULE", "HEALTH", "COUNTERS"]
    [f] = rows
    assert (f["NAME"], f["MODULE"], f["HEALTH"]) == ("patch", "regexfilter", "ok")
    counters = dict(kv.split("=") for kv in f["COUNTERS"].split())
    assert set(counters) == {"rewritten", "seen"} and int(counters["rewritten"]) >= 1, f


def test_list_sessions(admin_proxy):
    c = pymysql.connect(host=HOST, port=admin_proxy.ports["rws"], user=APP_USER, password=APP_PASSWORD,
                        database="test", autocommit=True, connect_timeout=10)
    try:
        with c.cursor() as cur:
            cur.execute("BEGIN")
        client = f"{HOST}:{c._sock.getsockname()[1]}"
        header, rows = table(ok(admin_proxy, "list", "sessions"))
        assert header == ["ID", "USER", "CLIENT", "DB", "SERVICE", "BACKENDS", "IN_TXN", "AGE"]
        mine = rows_by(rows, "CLIENT")[client]
        assert mine["ID"] == str(c.thread_id())
        assert (mine["USER"], mine["DB"], mine["SERVICE"], mine["IN_TXN"]) == (APP_USER, "test", "rws", "yes")
        assert re.fullmatch(r"db1\(\d+\)(,db[23]\(\d+\))?", mine["BACKENDS"]), mine
        assert re.fullmatch(r"\d+\.\ds", mine["AGE"]), mine
        shown = key_values(ok(admin_proxy, "show", "session", mine["ID"]))
        assert (shown["id"], shown["user"], shown["client"], shown["in_transaction"]) == \
            (mine["ID"], APP_USER, client, "yes")
        assert list(shown)[0] == "id"
        with c.cursor() as cur:
            cur.execute("COMMIT")
        assert rows_by(table(ok(admin_proxy, "list", "sessions"))[1], "CLIENT")[client]["IN_TXN"] == "no"
    finally:
        c.close()
    admin_proxy.wait_until(lambda: client not in ok(admin_proxy, "list", "sessions"), "the session leaving")


def test_json_output_is_the_api_json(admin_proxy):
    for what in ("servers", "services", "listeners", "sessions", "monitors", "filters"):
        parsed = json.loads(ok(admin_proxy, "--json", "list", what))
        assert isinstance(parsed, list)
        api = admin_proxy.get(f"/v1/{what}")
        assert [x.get("name", x.get("id")) for x in parsed] == [x.get("name", x.get("id")) for x in api], what
    server = json.loads(ok(admin_proxy, "show", "server", "db2", "--json"))
    assert server["name"] == "db2" and server["role"] == "replica"
    monitor = json.loads(ok(admin_proxy, "show", "monitor", "repl", "--json"))
    assert monitor["state"]["primary"] == "db1"
    status = json.loads(ok(admin_proxy, "status", "--json"))
    assert status["pid"] == admin_proxy.proc.pid
    assert json.loads(ok(admin_proxy, "health", "--json")) == {"status": "ok"}


# --- show, status, health ------------------------------------------------------------------------

def test_show(admin_proxy):
    s = key_values(ok(admin_proxy, "show", "server", "db1"))
    assert list(s)[0] == "name" and s["name"] == "db1"
    assert (s["address"], s["role"], s["reachable"], s["read_only"], s["services"]) == \
        ("127.0.0.1:3307", "primary", "yes", "no", "rws,direct")
    assert (s["maintenance"], s["drain"], s["last_error"]) == ("no", "no", "-")
    svc = key_values(ok(admin_proxy, "show", "service", "rws"))
    assert (svc["router"], svc["servers"], svc["filters"], svc["monitor"]) == \
        ("readwritesplit", "db1,db2,db3", "patch", "repl")
    lst = key_values(ok(admin_proxy, "show", "listeners", "direct"))
    assert (lst["address"], lst["state"]) == (f"{HOST}:{admin_proxy.ports['direct']}", "running")
    mon = key_values(ok(admin_proxy, "show", "monitor", "repl"))
    assert (mon["module"], mon["state.primary"], mon["diagnostics.config.interval_ms"]) == \
        ("mariadbmon", "db1", "200")
    assert mon["state.servers[0]"].startswith("{address: 127.0.0.1:3307,"), mon
    flt = key_values(ok(admin_proxy, "show", "filter", "patch"))
    assert (flt["module"], flt["health"], flt["diagnostics.match"]) == ("regexfilter", "ok", "sy_admin_old")


@pytest.mark.parametrize("args,message", [
    (("show", "server", "db9"), "no server named 'db9' (404 Not Found)"),
    (("show", "service", "nope"), "no service named 'nope' (404 Not Found)"),
    (("show", "listener", "nope"), "no listener named 'nope' (404 Not Found)"),
    (("show", "session", "abc"), "'abc' is not a session id"),
    (("show", "session", "4294967295"), "no session with id 4294967295"),
    (("show", "monitor", "nope"), "no monitor named 'nope'"),
    (("show", "filter", "nope"), "no filter named 'nope'"),
    (("set", "server", "db9", "maintenance"), "no server named 'db9'"),
    (("set", "server", "db4", "drain"), "not checked by any monitor"),
    (("stop", "listener", "nope"), "no listener named 'nope'"),
])
def test_api_errors_exit_1_with_the_reason(admin_proxy, args, message):
    r = failed(admin_proxy, *args)
    assert r.stdout == ""
    assert r.stderr.startswith("switchyard ctl: ") and message in r.stderr, r.stderr


@pytest.mark.parametrize("args", [("list", "tables"), ("set", "server", "db2", "sleepy"),
                                  ("stop", "server", "db2"), ("show", "server"), ("frobnicate",)])
def test_usage_errors_exit_2(admin_proxy, args):
    r = failed(admin_proxy, *args, code=2)
    assert "Usage" in r.stderr or "invalid value" in r.stderr or "unrecognized" in r.stderr, r.stderr


def test_status(admin_proxy):
    s = key_values(ok(admin_proxy, "status"))
    assert s["pid"] == str(admin_proxy.proc.pid) and s["state"] == "running"
    assert s["config"] == str(admin_proxy.config_path)
    assert {"version", "uptime_seconds", "sessions", "reloads.ok", "reloads.failed"} <= set(s), s


# --- flags and listeners -------------------------------------------------------------------------

def test_set_and_clear_server_flags(admin_proxy):
    try:
        assert ok(admin_proxy, "set", "server", "db2", "maintenance") == "server db2: maintenance set\n"
        assert admin_proxy.get("/v1/servers/db2")["maintenance"] is True
        assert ok(admin_proxy, "set", "server", "db3", "drain") == "server db3: drain set\n"
        s = rows_by(table(ok(admin_proxy, "list", "servers"))[1])
        assert (s["db2"]["STATE"], s["db3"]["STATE"], s["db1"]["STATE"]) == ("up,maintenance", "up,drain", "up")
        assert ok(admin_proxy, "clear", "server", "db2", "maintenance") == "server db2: maintenance cleared\n"
        assert ok(admin_proxy, "--json", "clear", "server", "db3", "drain") == ""
    finally:
        admin_proxy.api("DELETE", "/v1/servers/db2/maintenance")
        admin_proxy.api("DELETE", "/v1/servers/db3/drain")
    s = rows_by(table(ok(admin_proxy, "list", "servers"))[1])
    assert s["db2"]["STATE"] == "up" and s["db3"]["STATE"] == "up"


def test_stop_and_start_a_listener(admin_proxy):
    port = admin_proxy.ports["fixed"]
    try:
        assert ok(admin_proxy, "stop", "listener", "fixed") == "listener fixed: stopped\n"
        admin_proxy.wait_until(lambda: not port_accepts(port), "the listener refusing connections")
        assert rows_by(table(ok(admin_proxy, "list", "listeners"))[1])["fixed"]["STATE"] == "stopped"
        # Degraded still counts as healthy: exit 0, with the problem named.
        out = ok(admin_proxy, "health")
        assert out.startswith("degraded\n") and "listener 'fixed' was stopped" in out, out
    finally:
        out = ok(admin_proxy, "start", "listener", "fixed")
    assert out == "listener fixed: started\n"
    admin_proxy.wait_until(lambda: port_accepts(port), "the listener accepting again")
    with admin_proxy.connect(port) as c, c.cursor() as cur:
        cur.execute("SELECT @@server_id")
        assert cur.fetchone() == (1,)
    assert ok(admin_proxy, "health") == "ok\n"


# --- reload --------------------------------------------------------------------------------------

def test_reload_good_and_bad(admin_proxy):
    assert ok(admin_proxy, "reload") == "reloaded\n"
    cfg = admin_proxy.config_path
    try:
        bad = admin_proxy.config_text.replace("interval: 200ms", "interval: soon").replace(
            "drain_timeout: 2s\n", "drain_timeout: 2s\nthreadz: 2\n")
        cfg.write_text(bad)
        r = failed(admin_proxy, "reload")
        assert r.stdout == ""
        lines = r.stderr.rstrip("\n").split("\n")
        assert lines[0] == ("switchyard ctl: the config has 2 problem(s); the running config stays in force"), r.stderr
        assert len(lines) == 3, r.stderr
        for line in lines[1:]:
            assert re.match(rf"  {re.escape(str(cfg))}:\d+:\d+: ", line), line
        assert "threadz" in lines[1] and "monitors[0].options.interval" in lines[2], r.stderr
        # --json: the API's answer on stdout, still exit 1.
        r = failed(admin_proxy, "--json", "reload")
        body = json.loads(r.stdout)
        assert len(body["errors"]) == 2 and "2 problem(s)" in body["error"], body
        # The proxy goes on with the old config.
        with admin_proxy.connect(admin_proxy.ports["rws"]) as c, c.cursor() as cur:
            cur.execute("SELECT 1")
        # A YAML syntax error after the admin section: ctl still finds the API and its credentials.
        cfg.write_text(admin_proxy.config_text + "listeners: [\n  - : :\n")
        r = failed(admin_proxy, "reload")
        assert "YAML syntax error" in r.stderr and f"{cfg}:" in r.stderr, r.stderr
    finally:
        admin_proxy.restore_config()
    assert ok(admin_proxy, "reload") == "reloaded\n"
    assert json.loads(ok(admin_proxy, "reload", "--json")) == {"status": "reloaded", "warnings": []}


# --- credentials and reachability ----------------------------------------------------------------

def test_credentials_from_options_and_environment(admin_proxy):
    address = f"{HOST}:{admin_proxy.admin_port}"
    out = ok(admin_proxy, "--admin", address, "--user", ADMIN_USER, "--password", ADMIN_PASSWORD, "list",
             "listeners", config=False)
    assert "rws" in out
    env = {"SWITCHYARD_ADMIN_USER": ADMIN_USER, "SWITCHYARD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    assert "db1" in ok(admin_proxy, "--admin", address, "list", "servers", config=False, env=env)
    # Options beat the environment, which beats the config.
    bad_env = {"SWITCHYARD_ADMIN_USER": ADMIN_USER, "SWITCHYARD_ADMIN_PASSWORD": "stale"}
    assert failed(admin_proxy, "status", env=bad_env).returncode == 1
    assert "running" in ok(admin_proxy, "status", "--password", ADMIN_PASSWORD, env=bad_env)


def test_wrong_or_missing_credentials(admin_proxy):
    r = failed(admin_proxy, "list", "servers", "--password", "wrong")
    assert r.stdout == ""
    assert f"the admin API refused the credentials of user '{ADMIN_USER}'" in r.stderr, r.stderr
    assert "401" in r.stderr
    reloads = admin_proxy.get("/v1")["reloads"]
    r = failed(admin_proxy, "--admin", f"{HOST}:{admin_proxy.admin_port}", "reload", config=False)
    assert "the admin API refused the credentials (none were given)" in r.stderr, r.stderr
    assert "--user" in r.stderr and "SWITCHYARD_ADMIN_PASSWORD" in r.stderr, r.stderr
    # Refused before anything happened: no reload was tried.
    assert admin_proxy.get("/v1")["reloads"] == reloads
    r = failed(admin_proxy, "--user", "someone", "list", "servers", config=False, code=2)
    assert "no password" in r.stderr, r.stderr
    # /health needs none.
    assert ok(admin_proxy, "--admin", f"{HOST}:{admin_proxy.admin_port}", "health", config=False) == "ok\n"


def test_unreachable_admin_api(admin_proxy, tmp_path):
    port = free_port()
    r = failed(admin_proxy, "--admin", f"{HOST}:{port}", "list", "servers", config=False)
    assert r.stdout == ""
    assert f"cannot reach the admin API at {HOST}:{port}" in r.stderr, r.stderr
    assert "connection refused" in r.stderr and "admin section" in r.stderr, r.stderr
    # The address comes from the config; a wildcard address is reached on loopback.
    cfg = tmp_path / "elsewhere.yaml"
    cfg.write_text(f'admin: {{ address: "0.0.0.0:{port}", user: u, password: p }}\n')
    r = subprocess.run([str(admin_proxy.binary), "-c", str(cfg), "ctl", "health"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and f"at 127.0.0.1:{port} (admin.address of {cfg})" in r.stderr, r.stderr
    r = subprocess.run([str(admin_proxy.binary), "-c", str(tmp_path / "missing.yaml"), "ctl", "health"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot read" in r.stderr, r.stderr
