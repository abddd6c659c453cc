"""The admin HTTP API against the sandbox: every endpoint's shape and values, live sessions,
operator flags, listener stop/start, reload (good and bad configs), bad requests and basic
authentication. The proxy is `admin_proxy` (conftest.py): services rws/direct/fixed, admin API
behind ADMIN_USER/ADMIN_PASSWORD."""

import re
import subprocess

import pymysql
import pytest

from conftest import (ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER, HOST, PRIMARY_PORT,
                      REPLICA_PORTS, free_port, port_accepts)


def by_name(items):
    return {i["name"]: i for i in items}


def server_id(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT @@server_id")
        return cur.fetchone()[0]


# --- shapes and values -------------------------------------------------------------------------

def test_overview(admin_proxy):
    o = admin_proxy.get("/v1")
    assert o["pid"] == admin_proxy.proc.pid
    assert o["config"] == str(admin_proxy.config_path)
    assert o["state"] == "running"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", o["version"]), o
    assert isinstance(o["uptime_seconds"], int) and o["uptime_seconds"] >= 0
    assert isinstance(o["config_age_seconds"], int) and isinstance(o["sessions"], int)
    assert set(o["reloads"]) == {"ok", "failed", "last_errors"}


def test_servers(admin_proxy):
    servers = admin_proxy.get("/v1/servers")
    assert [s["name"] for s in servers] == ["db1", "db2", "db3", "db4"]
    s = by_name(servers)
    expected = {"db1": (PRIMARY_PORT, "primary", 1, False), "db2": (REPLICA_PORTS[0], "replica", 2, True),
                "db3": (REPLICA_PORTS[1], "replica", 3, True)}
    for name, (port, role, sid, read_only) in expected.items():
        v = s[name]
        assert v["address"] == f"{HOST}:{port}"
        assert (v["role"], v["server_id"], v["read_only"]) == (role, sid, read_only), v
        assert v["monitor"] == "repl" and v["reachable"] is True and v["last_error"] is None, v
        assert v["replication_broken"] is False and v["maintenance"] is False and v["drain"] is False
        assert v["services"] == ["rws", "direct"], v
        assert isinstance(v["check_time_us"], int) and re.fullmatch(r"\d+-\d+-\d+.*", v["gtid_current_pos"])
        for counter in ("connections", "total_connections", "statements", "operations", "response_time_us"):
            assert isinstance(v[counter], int) and v[counter] >= 0, (counter, v)
    assert s["db1"]["lag_seconds"] is None and s["db1"]["gtid_behind"] is None
    for name in ("db2", "db3"):
        assert isinstance(s[name]["lag_seconds"], int) and isinstance(s[name]["gtid_behind"], int)
    # db4 has no monitor: the configured role, nothing observed.
    d = s["db4"]
    assert (d["role"], d["monitor"], d["reachable"], d["server_id"]) == ("primary", None, None, None), d
    assert d["services"] == ["fixed"]
    one = admin_proxy.get("/v1/servers/db2")
    stable = ("name", "address", "role", "monitor", "server_id", "read_only", "services", "maintenance")
    assert {k: one[k] for k in stable} == {k: s["db2"][k] for k in stable}
    assert set(one) == set(s["db2"])


def test_server_counters_follow_statements(admin_proxy):
    before = admin_proxy.get("/v1/servers/db1")
    with admin_proxy.connect(admin_proxy.ports["fixed"]) as c:
        assert server_id(c) == 1
        after = admin_proxy.get("/v1/servers/db4")
        assert after["connections"] == 1 and after["statements"] >= 1, after
    assert admin_proxy.get("/v1/servers/db1")["statements"] == before["statements"]
    admin_proxy.wait_until(lambda: admin_proxy.get("/v1/servers/db4")["connections"] == 0,
                           "db4's backend connection closing")


def test_services(admin_proxy):
    services = admin_proxy.get("/v1/services")
    assert [s["name"] for s in services] == ["rws", "direct", "fixed"]
    s = by_name(services)
    assert s["rws"]["router"] == "readwritesplit" and s["rws"]["filters"] == ["patch"]
    assert s["rws"]["servers"] == ["db1", "db2", "db3"] and s["rws"]["monitor"] == "repl"
    assert s["direct"]["router"] == "readconnroute" and s["direct"]["filters"] == []
    assert s["direct"]["options"] == {"router_options": "replica"}
    assert s["fixed"]["monitor"] is None and s["fixed"]["servers"] == ["db4"]
    for name, v in s.items():
        assert v["listeners"] == [name] and isinstance(v["sessions"], int), v
    assert admin_proxy.get("/v1/services/direct") == s["direct"]


def test_listeners(admin_proxy):
    listeners = admin_proxy.get("/v1/listeners")
    assert {l["name"] for l in listeners} == {"rws", "direct", "fixed"}
    for l in listeners:
        assert l["address"] == f"{HOST}:{admin_proxy.ports[l['name']]}"
        assert l["service"] == l["name"] and l["state"] == "running" and isinstance(l["sessions"], int)
    assert admin_proxy.get("/v1/listeners/fixed") == by_name(listeners)["fixed"]


def test_monitors(admin_proxy):
    [m] = admin_proxy.get("/v1/monitors")
    assert (m["name"], m["module"], m["servers"]) == ("repl", "mariadbmon", ["db1", "db2", "db3"])
    assert m["state"]["primary"] == "db1" and m["state"]["problems"] == []
    assert {s["name"]: s["role"] for s in m["state"]["servers"]} == {
        "db1": "primary", "db2": "replica", "db3": "replica"}
    ticks = m["diagnostics"]["ticks"]
    assert ticks > 0 and m["diagnostics"]["config"]["interval_ms"] == 200
    admin_proxy.wait_until(lambda: admin_proxy.get("/v1/monitors")[0]["diagnostics"]["ticks"] > ticks,
                           "the monitor ticking", 5)
    one = admin_proxy.get("/v1/monitors/repl")
    assert one["name"] == "repl" and one["state"]["primary"] == "db1"


def test_filters_count_and_rewrite(admin_proxy):
    [f] = admin_proxy.get("/v1/filters")
    assert (f["name"], f["module"], f["health"]) == ("patch", "regexfilter", "ok")
    assert admin_proxy.get("/v1/filters/patch")["name"] == "patch"
    before = f["diagnostics"]
    assert before["match"] == "sy_admin_old" and before["replace"] == "sy_admin_new"
    with admin_proxy.connect(admin_proxy.ports["rws"]) as c, c.cursor() as cur:
        cur.execute("SELECT 'sy_admin_old'")
        assert cur.fetchone() == ("sy_admin_new",)
    after = admin_proxy.get("/v1/filters")[0]["diagnostics"]
    assert after["rewritten"] == before["rewritten"] + 1, (before, after)
    assert after["seen"] > before["seen"], (before, after)


def test_health_is_public(admin_proxy):
    for auth in (None, ("nobody", "wrong"), (ADMIN_USER, ADMIN_PASSWORD)):
        status, _, body = admin_proxy.api("GET", "/health", auth=auth)
        assert (status, body) == (200, {"status": "ok"}), (auth, status, body)


# --- sessions ----------------------------------------------------------------------------------

def find_session(proxy, port):
    return next((s for s in proxy.get("/v1/sessions") if s["client"] == f"{HOST}:{port}"), None)


def test_a_live_session(admin_proxy):
    c = pymysql.connect(host=HOST, port=admin_proxy.ports["rws"], user=APP_USER, password=APP_PASSWORD,
                        autocommit=True, connect_timeout=10, read_timeout=30)
    try:
        client_port = c._sock.getsockname()[1]
        s = find_session(admin_proxy, client_port)
        assert s is not None, admin_proxy.get("/v1/sessions")
        assert s["id"] == c.thread_id(), s
        assert (s["user"], s["service"], s["listener"], s["db"]) == (APP_USER, "rws", "rws", None), s
        assert s["in_transaction"] is False and s["age_seconds"] >= 0
        assert "db1" in [b["server"] for b in s["backends"]], s
        assert all(isinstance(b["thread_id"], int) for b in s["backends"]), s
        one = admin_proxy.get(f"/v1/sessions/{s['id']}")
        assert {k: v for k, v in one.items() if k != "age_seconds"} == \
            {k: v for k, v in s.items() if k != "age_seconds"}
        assert by_name(admin_proxy.get("/v1/services"))["rws"]["sessions"] >= 1
        assert by_name(admin_proxy.get("/v1/listeners"))["rws"]["sessions"] >= 1

        with c.cursor() as cur:
            cur.execute("USE test")
            cur.execute("SELECT @@server_id")  # a read: on a replica
            assert cur.fetchone()[0] in (2, 3)
        s = admin_proxy.get(f"/v1/sessions/{s['id']}")
        assert s["db"] == "test", s
        assert {"db1"} < {b["server"] for b in s["backends"]}, s

        with c.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1")
        assert admin_proxy.get(f"/v1/sessions/{s['id']}")["in_transaction"] is True
        with c.cursor() as cur:
            cur.execute("COMMIT")
        assert admin_proxy.get(f"/v1/sessions/{s['id']}")["in_transaction"] is False
    finally:
        c.close()
    admin_proxy.wait_until(lambda: find_session(admin_proxy, client_port) is None, "the session leaving the list")
    status, _, body = admin_proxy.api("GET", f"/v1/sessions/{s['id']}")
    assert (status, body) == (404, {"error": f"no session with id {s['id']}"})


# --- operator flags ----------------------------------------------------------------------------

def test_maintenance_and_drain_flags(admin_proxy):
    try:
        status, _, body = admin_proxy.api("PUT", "/v1/servers/db2/maintenance")
        assert (status, body) == (204, None)
        assert admin_proxy.get("/v1/servers/db2")["maintenance"] is True
        assert by_name(admin_proxy.get("/v1/servers"))["db3"]["maintenance"] is False
        # New sessions of the replica service avoid db2.
        for _ in range(4):
            with admin_proxy.connect(admin_proxy.ports["direct"]) as c:
                assert server_id(c) == 3
        status, _, _ = admin_proxy.api("PUT", "/v1/servers/db2/maintenance")
        assert status == 204  # setting it again changes nothing
        assert admin_proxy.api("DELETE", "/v1/servers/db2/maintenance")[0] == 204
        assert admin_proxy.get("/v1/servers/db2")["maintenance"] is False

        assert admin_proxy.api("PUT", "/v1/servers/db3/drain")[0] == 204
        v = admin_proxy.get("/v1/servers/db3")
        assert (v["drain"], v["maintenance"]) == (True, False)
        for _ in range(4):
            with admin_proxy.connect(admin_proxy.ports["direct"]) as c:
                assert server_id(c) == 2
        assert admin_proxy.api("DELETE", "/v1/servers/db3/drain")[0] == 204
        assert admin_proxy.get("/v1/servers/db3")["drain"] is False
    finally:
        admin_proxy.api("DELETE", "/v1/servers/db2/maintenance")
        admin_proxy.api("DELETE", "/v1/servers/db3/drain")
    # Both replicas take sessions again (least connections: two open sessions, one on each).
    with admin_proxy.connect(admin_proxy.ports["direct"]) as a, \
            admin_proxy.connect(admin_proxy.ports["direct"]) as b:
        assert {server_id(a), server_id(b)} == {2, 3}


def test_flag_on_a_server_no_monitor_checks(admin_proxy):
    status, _, body = admin_proxy.api("PUT", "/v1/servers/db4/maintenance")
    assert status == 409 and "not checked by any monitor" in body["error"], body


# --- listeners ---------------------------------------------------------------------------------

def test_stop_and_start_a_listener(admin_proxy):
    port = admin_proxy.ports["direct"]
    try:
        status, _, body = admin_proxy.api("PUT", "/v1/listeners/direct/stop")
        assert (status, body) == (204, None)
        admin_proxy.wait_until(lambda: not port_accepts(port), "the listener refusing connections")
        with pytest.raises(pymysql.err.OperationalError):
            admin_proxy.connect(port, connect_timeout=2)
        assert admin_proxy.get("/v1/listeners/direct")["state"] == "stopped"
        status, _, body = admin_proxy.api("GET", "/health", auth=None)
        assert status == 200 and body["status"] == "degraded", body
        assert any("direct" in p for p in body["problems"]), body
        # The other listeners go on.
        with admin_proxy.connect(admin_proxy.ports["fixed"]) as c:
            assert server_id(c) == 1
    finally:
        status, _, body = admin_proxy.api("PUT", "/v1/listeners/direct/start")
    assert (status, body) == (204, None)
    admin_proxy.wait_until(lambda: port_accepts(port), "the listener accepting again")
    with admin_proxy.connect(port) as c:
        assert server_id(c) in (2, 3)
    assert admin_proxy.get("/v1/listeners/direct")["state"] == "running"
    assert admin_proxy.api("GET", "/health", auth=None)[2] == {"status": "ok"}


# --- bad requests and authentication -------------------------------------------------------------

@pytest.mark.parametrize("method,path,status,message", [
    ("GET", "/v1/servers/db9", 404, "no server named 'db9'"),
    ("PUT", "/v1/servers/db9/maintenance", 404, "no server named 'db9'"),
    ("PUT", "/v1/servers/db2/sleepy", 400, "unknown flag 'sleepy'"),
    ("DELETE", "/v1/servers/db2/sleepy", 400, "unknown flag 'sleepy'"),
    ("GET", "/v1/services/nope", 404, "no service named 'nope'"),
    ("GET", "/v1/listeners/nope", 404, "no listener named 'nope'"),
    ("PUT", "/v1/listeners/nope/stop", 404, "no listener named 'nope'"),
    ("PUT", "/v1/listeners/rws/pause", 400, "unknown listener action 'pause'"),
    ("GET", "/v1/sessions/abc", 400, "'abc' is not a session id"),
    ("GET", "/v1/sessions/-1", 400, "is not a session id"),
    ("GET", "/v1/sessions/4294967295", 404, "no session with id 4294967295"),
    ("GET", "/v1/monitors/nope", 404, "no monitor named 'nope'"),
    ("GET", "/v1/filters/nope", 404, "no filter named 'nope'"),
    ("GET", "/v1/nothing", 404, "no such resource"),
    ("GET", "/v2/servers", 404, "no such resource"),
    ("POST", "/v1/servers", 405, "does not take that method"),
    ("GET", "/v1/reload", 405, "does not take that method"),
    ("GET", "/v1/servers/db2/maintenance", 405, "does not take that method"),
    ("DELETE", "/v1/listeners/rws/stop", 405, "does not take that method"),
    ("POST", "/health", 405, "does not take that method"),
])
def test_bad_requests(admin_proxy, method, path, status, message):
    got, headers, body = admin_proxy.api(method, path)
    assert got == status, (got, body)
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"error"} and message in body["error"], body
    if status == 405:
        assert headers["Allow"], headers


@pytest.mark.parametrize("auth", [None, (ADMIN_USER, "wrong"), ("root", ADMIN_PASSWORD), (ADMIN_USER, "")],
                         ids=["none", "wrong-password", "wrong-user", "empty-password"])
@pytest.mark.parametrize("method,path", [("GET", "/v1"), ("GET", "/v1/servers"), ("GET", "/v1/sessions/1"),
                                         ("PUT", "/v1/servers/db2/maintenance"),
                                         ("PUT", "/v1/listeners/rws/stop"), ("POST", "/v1/reload"),
                                         ("GET", "/metrics"), ("GET", "/v1/nothing"), ("POST", "/v1/servers")])
def test_credentials_are_required(admin_proxy, auth, method, path):
    status, headers, body = admin_proxy.api(method, path, auth=auth)
    assert status == 401, (status, body)
    assert headers["WWW-Authenticate"] == 'Basic realm="switchyard"'
    assert "user and password" in body["error"], body
    # Nothing happened.
    v = admin_proxy.get("/v1/servers/db2")
    assert v["maintenance"] is False
    assert admin_proxy.get("/v1/listeners/rws")["state"] == "running"


def test_malformed_authorization_headers(admin_proxy):
    import urllib.error
    import urllib.request
    for value in ("Basic", "Basic !!!notbase64", "Bearer abc", "basic YWRtaW46YWRtMW4tczNjcmV0"):
        req = urllib.request.Request(f"http://{HOST}:{admin_proxy.admin_port}/v1", headers={"Authorization": value})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401, value


# --- reload ------------------------------------------------------------------------------------

def test_reload_good_and_bad_configs(admin_proxy):
    before = admin_proxy.get("/v1")["reloads"]
    status, _, body = admin_proxy.api("POST", "/v1/reload")
    assert (status, body) == (200, {"status": "reloaded", "warnings": []})
    c = admin_proxy.connect(admin_proxy.ports["rws"], database="test")
    cfg = admin_proxy.config_path
    try:
        text = admin_proxy.config_text
        bad = text.replace("drain_timeout: 2s\n", "drain_timeout: 2s\nthreadz: 2\n").replace(
            "interval: 200ms", "interval: soon")
        cfg.write_text(bad)
        lines = bad.splitlines()
        threadz = next(i for i, l in enumerate(lines, 1) if l.startswith("threadz"))
        interval = next(i for i, l in enumerate(lines, 1) if "interval: soon" in l)
        status, _, body = admin_proxy.api("POST", "/v1/reload")
        assert status == 400, body
        assert "2 problem(s)" in body["error"] and "running config stays" in body["error"], body
        errors = body["errors"]
        assert len(errors) == 2, errors
        assert all(re.match(rf"{re.escape(str(cfg))}:\d+:\d+: ", e) for e in errors), errors
        assert errors[0].startswith(f"{cfg}:{threadz}:1: ") and "threadz" in errors[0], errors
        assert errors[1].startswith(f"{cfg}:{interval}:") and "monitors[0].options.interval" in errors[1], errors
        # The running config stays: old and new sessions work, the monitor goes on.
        with c.cursor() as cur:
            cur.execute("SELECT @@server_id")
            assert cur.fetchone()[0] in (2, 3)
        with admin_proxy.connect(admin_proxy.ports["direct"]) as d:
            assert server_id(d) in (2, 3)
        o = admin_proxy.get("/v1")
        assert o["reloads"]["failed"] == before["failed"] + 1 and o["reloads"]["last_errors"] == errors, o
        assert admin_proxy.get("/v1/monitors")[0]["diagnostics"]["config"]["interval_ms"] == 200
        # A YAML syntax error too.
        cfg.write_text(text + "listeners: [\n  - : :\n")
        status, _, body = admin_proxy.api("POST", "/v1/reload")
        assert status == 400 and re.match(rf"{re.escape(str(cfg))}:\d+:\d+: ", body["errors"][0]), body
    finally:
        admin_proxy.restore_config()
    status, _, body = admin_proxy.api("POST", "/v1/reload")
    assert (status, body) == (200, {"status": "reloaded", "warnings": []})
    with c.cursor() as cur:
        cur.execute("SELECT 1")
    c.close()
    with admin_proxy.connect(admin_proxy.ports["rws"]) as d:
        assert server_id(d) in (2, 3)
    after = admin_proxy.get("/v1")["reloads"]
    assert after["ok"] == before["ok"] + 2 and after["failed"] == before["failed"] + 2, (before, after)


# --- admin.address off loopback ------------------------------------------------------------------

def test_admin_off_loopback_needs_credentials(admin_proxy, tmp_path):
    port = free_port()
    plain = re.sub(r"admin: \{.*\}", f'admin: {{ address: "0.0.0.0:{port}" }}', admin_proxy.config_text)
    cfg = tmp_path / "open-admin.yaml"
    cfg.write_text(plain)
    r = subprocess.run([str(admin_proxy.binary), "-c", str(cfg), "check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    line = next(i for i, l in enumerate(plain.splitlines(), 1) if l.startswith("admin:"))
    assert f"{cfg}:{line}:" in r.stderr and "admin.address" in r.stderr, r.stderr
    assert "admin.user" in r.stderr and "admin.password" in r.stderr, r.stderr
    # Starting with it is refused the same way; nothing listens.
    r = subprocess.run([str(admin_proxy.binary), "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "admin.address" in r.stderr, r.stderr
    assert not port_accepts(port)
    # With credentials it is fine.
    cfg.write_text(plain.replace(f'"0.0.0.0:{port}" }}', f'"0.0.0.0:{port}", user: ops, password: pw }}'))
    r = subprocess.run([str(admin_proxy.binary), "-c", str(cfg), "check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


# --- failing closed ----------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["drop", "password", "user", "address"])
def test_a_reload_that_changes_the_admin_section_is_refused(admin_proxy, change):
    text = admin_proxy.config_text
    line = re.search(r"^admin: \{.*\}$", text, re.M).group(0)
    new = {
        "drop": "",
        "password": line.replace(ADMIN_PASSWORD, "other-password"),
        "user": line.replace(f"user: {ADMIN_USER}", "user: someone"),
        "address": line.replace(f":{admin_proxy.admin_port}", f":{free_port()}"),
    }[change]
    before = admin_proxy.get("/v1")["reloads"]
    admin_proxy.config_path.write_text(text.replace(line, new))
    try:
        status, _, body = admin_proxy.api("POST", "/v1/reload")
        assert status == 400, body
        assert "admin section" in body["error"] + " ".join(body["errors"]), body
        # The API still asks for the credentials it started with, and only those.
        assert admin_proxy.api("GET", "/v1", auth=None)[0] == 401
        assert admin_proxy.api("GET", "/v1", auth=(ADMIN_USER, "other-password"))[0] == 401
        assert admin_proxy.get("/v1")["reloads"]["failed"] == before["failed"] + 1
    finally:
        admin_proxy.restore_config()
    assert admin_proxy.api("POST", "/v1/reload")[0] == 200


def test_requests_from_web_pages_are_refused(admin_proxy):
    import base64
    import urllib.error
    import urllib.request
    token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    for method, path in (("PUT", "/v1/servers/db2/maintenance"), ("POST", "/v1/reload"),
                         ("DELETE", "/v1/blocked-hosts")):
        req = urllib.request.Request(f"http://{HOST}:{admin_proxy.admin_port}{path}", method=method,
                                     headers={"Authorization": f"Basic {token}",
                                              "Origin": "http://evil.example"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 403, (method, path)
    assert admin_proxy.get("/v1/servers/db2")["maintenance"] is False


def test_wrong_credentials_are_delayed_and_counted(admin_proxy):
    import time

    def failures():
        status, _, _ = admin_proxy.api("GET", "/v1")
        assert status == 200
        import urllib.request
        import base64
        token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
        req = urllib.request.Request(f"http://{HOST}:{admin_proxy.admin_port}/metrics",
                                     headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("switchyard_admin_login_failures_total "):
                    return float(line.split()[1])
        return 0.0

    before = failures()
    started = time.monotonic()
    for _ in range(4):
        assert admin_proxy.api("GET", "/v1", auth=(ADMIN_USER, "guess"))[0] == 401
    assert time.monotonic() - started >= 0.9  # 250 ms each, one at a time
    assert failures() == before + 4


def test_a_client_that_never_finishes_its_headers_is_closed(admin_proxy):
    import socket
    import time
    s = socket.create_connection((HOST, admin_proxy.admin_port), timeout=30)
    try:
        s.sendall(b"GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        started = time.monotonic()
        while s.recv(1024):
            pass
        assert time.monotonic() - started < 20
    finally:
        s.close()
    assert admin_proxy.get("/v1")["state"] in ("running",), "the API still answers"


def test_without_credentials_only_loopback_host_names_are_answered(rws_proxy):
    import urllib.error
    import urllib.request
    base = f"http://{HOST}:{rws_proxy.admin_port}/v1"
    for host in ("127.0.0.1", f"127.0.0.1:{rws_proxy.admin_port}", "localhost", "[::1]:1"):
        req = urllib.request.Request(base, headers={"Host": host})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200, host
    for host in ("evil.example", f"evil.example:{rws_proxy.admin_port}", "10.0.0.1"):
        req = urllib.request.Request(base, headers={"Host": host})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 403, host
