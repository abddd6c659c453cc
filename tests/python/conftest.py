"""End-to-end tests of Switchyard with real clients against the MariaDB sandbox.

Session fixtures bring the sandbox up (scripts/sandbox.sh up, idempotent), build the proxy if
its binary is missing, start it on free ports with a generated config and stop it at the end.
The proxy must never crash: every test checks that the process is still alive afterwards, and
a failing test shows the proxy log lines written while it ran.

Environment:
  SWITCHYARD_BIN        proxy binary (default: <repo>/target/debug/switchyard)
  SWITCHYARD_SKIP_SANDBOX=1   do not run scripts/sandbox.sh up (it is already running)
"""

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pymysql
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from relay import Relay  # noqa: E402

HOST = "127.0.0.1"
PRIMARY_PORT = 3307
REPLICA_PORTS = (3308, 3309)
BACKEND_PORTS = (PRIMARY_PORT,) + REPLICA_PORTS
SERVER_IDS = {3307: 1, 3308: 2, 3309: 3}
APP_USER, APP_PASSWORD = "app", "app"
LIMITED_USER, LIMITED_PASSWORD = "limited", "limited"


# The sandbox's servers and a monitor of them, for the configs tests write.
SERVERS_YAML = f"""servers:
  - {{ name: db1, address: "{HOST}:{PRIMARY_PORT}", role: primary }}
  - {{ name: db2, address: "{HOST}:{REPLICA_PORTS[0]}", role: replica }}
  - {{ name: db3, address: "{HOST}:{REPLICA_PORTS[1]}", role: replica }}
"""
MONITOR_YAML = """monitors:
  - { name: repl, module: mariadbmon, servers: [db1, db2, db3], user: monitor, password: monitor, options: { interval: 200ms } }
"""


def free_port() -> int:
    """A port nothing holds, below the kernel's ephemeral range (32768 and up): a port the
    kernel hands out as free is also where the tests' outgoing connections take their local
    ports, and one of them can take it before the proxy binds it."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


def port_accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def unique(prefix: str) -> str:
    """A unique, SQL-safe name for tables, users and databases made by one test."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


class Proxy:
    def __init__(self, binary, config_path, log_path, rw_port, ro_port, runq_port, workdir,
                 flaky_port=None, relay=None):
        self.binary = binary
        self.config_path = config_path
        self.log_path = log_path
        self.host = HOST
        self.rw_port = rw_port
        self.ro_port = ro_port
        self.running_port = runq_port
        self.workdir = workdir
        self.flaky_port = flaky_port  # listener whose only server is `relay` (-> the primary)
        self.relay = relay
        self.proc = None

    # --- process -----------------------------------------------------------------------
    def start(self):
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._logf,
            stderr=self._logf,
            cwd=str(REPO),
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"switchyard exited with code {self.proc.returncode} at startup; log:\n{self.log_tail()}"
                )
            if all(port_accepts(p) for p in (self.rw_port, self.ro_port, self.running_port, self.flaky_port)
                   if p):
                return
            time.sleep(0.1)
        raise RuntimeError(f"switchyard did not open its listeners within 30 s; log:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # --- log ---------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, limit: int = 20000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return text

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # --- clients -----------------------------------------------------------------------
    def connect(self, port=None, user=APP_USER, password=APP_PASSWORD, **kw):
        kw.setdefault("connect_timeout", 10)
        kw.setdefault("read_timeout", 60)
        kw.setdefault("write_timeout", 60)
        kw.setdefault("autocommit", True)
        return pymysql.connect(host=HOST, port=port or self.rw_port, user=user, password=password, **kw)

    def rw(self, **kw):
        return self.connect(self.rw_port, **kw)

    def ro(self, **kw):
        return self.connect(self.ro_port, **kw)

    def assert_serving(self):
        """The proxy is alive and a fresh client can log in and run a query."""
        assert self.alive(), f"switchyard died; log tail:\n{self.log_tail()}"
        with self.rw() as c, c.cursor() as cur:
            cur.execute("SELECT 1 + 1, @@server_id")
            assert cur.fetchone() == (2, 1)
        with self.ro() as c, c.cursor() as cur:
            cur.execute("SELECT 2 + 2, @@server_id")
            row = cur.fetchone()
            assert row[0] == 4 and row[1] in (2, 3)
        assert self.alive(), f"switchyard died; log tail:\n{self.log_tail()}"


def admin_health(admin_port):
    """`GET /health` of the admin API on `admin_port`: (HTTP status, JSON body), or
    (None, None) when nothing answers."""
    import json
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://{HOST}:{admin_port}/health", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return None, None


# The backend's own thread id of a connection through the proxy. The proxy rewrites integer
# CONNECTION_ID() results (and PROCESSLIST ids) to its own connection ids, which clients see;
# as a string, the value comes back as the server said it.
BACKEND_THREAD_ID = "CAST(CONNECTION_ID() AS CHAR)"


def backend_thread_id(conn):
    """The backend thread id of `conn`'s current backend, and that server's port."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {BACKEND_THREAD_ID}, @@port")
        thread, port = cur.fetchone()
        return int(thread), port


def direct(port=PRIMARY_PORT, user=APP_USER, password=APP_PASSWORD, **kw):
    """A PyMySQL connection straight to one backend (3307 primary, 3308/3309 replicas)."""
    kw.setdefault("connect_timeout", 10)
    kw.setdefault("read_timeout", 60)
    kw.setdefault("autocommit", True)
    return pymysql.connect(host=HOST, port=port, user=user, password=password, **kw)


def primary_exec(*statements, db=None):
    """Runs statements directly on the primary (for setup and cleanup)."""
    with direct(database=db) as c, c.cursor() as cur:
        for s in statements:
            cur.execute(s)
        return cur.fetchall()


def wait_replicated(timeout=20):
    """Waits until both replicas applied everything the primary has in its binlog."""
    with direct() as c, c.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos")
        pos = cur.fetchone()[0]
    for port in REPLICA_PORTS:
        with direct(port) as c, c.cursor() as cur:
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout))
            assert cur.fetchone()[0] == 0, f"replica {port} did not reach {pos}"


def write_config(path: Path, rw_port, ro_port, running_port, relay_port=None, flaky_port=None):
    flaky_server = flaky_service = flaky_listener = ""
    if relay_port:
        flaky_server = f"""  - {{ name: db4, address: "{HOST}:{relay_port}", role: primary }}   # a relay to db1
"""
        flaky_service = """  - name: flaky
    router: readconnroute
    servers: [db4]
    user: switchyard
    password: switchyard
    options: { router_options: primary }
    connect_timeout: 2s
"""
        flaky_listener = f"""  - {{ name: flaky, service: flaky, address: "{HOST}:{flaky_port}" }}
"""
    path.write_text(
        f"""# generated by tests/python/conftest.py
log: {{ level: "info,switchyard=debug" }}
# Tests log in wrong many times from 127.0.0.1: throttling has tests of its own.
max_auth_errors_until_block: 0
drain_timeout: 5s
{SERVERS_YAML}{flaky_server}services:
  - name: rw
    router: readconnroute
    servers: [db1, db2, db3]
    user: switchyard
    password: switchyard
    options: {{ router_options: primary }}
    users_refresh_interval: 1s
  - name: ro
    router: readconnroute
    servers: [db1, db2, db3]
    user: switchyard
    password: switchyard
    options: {{ router_options: replica }}
  - name: any
    router: readconnroute
    servers: [db1, db2, db3]
    user: switchyard
    password: switchyard
    options: {{ router_options: running }}
{flaky_service}listeners:
  - {{ name: rw, service: rw, address: "{HOST}:{rw_port}" }}
  - {{ name: ro, service: ro, address: "{HOST}:{ro_port}" }}
  - {{ name: any, service: any, address: "{HOST}:{running_port}" }}
{flaky_listener}"""
    )


def proxy_binary() -> Path:
    env = os.environ.get("SWITCHYARD_BIN")
    if env:
        return Path(env)
    return REPO / "target" / "debug" / "switchyard"


@pytest.fixture(scope="session")
def sandbox():
    if os.environ.get("SWITCHYARD_SKIP_SANDBOX") != "1":
        r = subprocess.run(
            ["bash", str(REPO / "scripts" / "sandbox.sh"), "up"],
            cwd=str(REPO), capture_output=True, text=True, timeout=600,
        )
        if r.returncode != 0:
            pytest.exit(f"scripts/sandbox.sh up failed:\n{r.stdout}\n{r.stderr}", returncode=3)
    for port in BACKEND_PORTS:
        with direct(port) as c, c.cursor() as cur:
            cur.execute("SELECT @@server_id")
            assert cur.fetchone()[0] == SERVER_IDS[port]
    return True


@pytest.fixture(scope="session")
def switchyard_bin():
    b = proxy_binary()
    if not b.exists():
        r = subprocess.run(["cargo", "build", "--bin", "switchyard"], cwd=str(REPO),
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0 or not b.exists():
            pytest.exit(f"cargo build --bin switchyard failed:\n{r.stderr[-5000:]}", returncode=3)
    return b


@pytest.fixture(scope="session")
def proxy(sandbox, switchyard_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("switchyard")
    ports = set()
    while len(ports) < 5:
        ports.add(free_port())
    rw, ro, running, relay_port, flaky = sorted(ports)
    relay = Relay(relay_port, (HOST, PRIMARY_PORT))
    relay.start()
    cfg = workdir / "switchyard.yaml"
    write_config(cfg, rw, ro, running, relay_port, flaky)
    p = Proxy(switchyard_bin, cfg, workdir / "switchyard.log", rw, ro, running, workdir, flaky, relay)
    sys.stderr.write(f"\n[switchyard] config {cfg}, log {p.log_path}, rw :{rw} ro :{ro} any :{running} "
                     f"flaky :{flaky} (via relay :{relay_port})\n")
    p.start()
    yield p
    relay.stop()
    alive = p.alive()
    code = p.proc.returncode
    p.stop()
    p._logf.close()
    assert alive, f"switchyard died during the test session (exit code {code}); log tail:\n{p.log_tail()}"


@pytest.fixture(autouse=True)
def _proxy_stays_alive(request, proxy):
    """Every test: the proxy must still be alive after it. Remembers where the log was."""
    request.node._sy_log_offset = proxy.log_size()
    yield
    assert proxy.alive(), f"switchyard died during this test (exit {proxy.proc.poll()}); log tail:\n{proxy.log_tail()}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("call", "teardown"):
        offset = getattr(item, "_sy_log_offset", None)
        p = item.funcargs.get("proxy") if hasattr(item, "funcargs") else None
        if p is not None and offset is not None:
            rep.sections.append(("switchyard log during this test", p.log_since(offset) or "(nothing)"))
        rws = item.funcargs.get("rws_proxy") if hasattr(item, "funcargs") else None
        rws_offset = getattr(item, "_sy_rws_log_offset", None)
        if rws is not None and rws_offset is not None:
            rep.sections.append(("switchyard (readwritesplit) log during this test",
                                 rws.log_since(rws_offset) or "(nothing)"))


@pytest.fixture
def db(proxy):
    """A PyMySQL connection to the rw listener with `test` selected, closed afterwards."""
    c = proxy.rw(database="test")
    yield c
    c.close()


@pytest.fixture
def table(proxy):
    """A unique table name in `test`, dropped (directly on the primary) after the test."""
    names = []

    def make(prefix="t"):
        n = unique(prefix)
        names.append(n)
        return n

    yield make
    for n in names:
        try:
            primary_exec(f"DROP TABLE IF EXISTS test.`{n}`")
        except Exception:
            pass


@pytest.fixture
def make_user(proxy):
    """Creates users directly on the primary (host 127.0.0.1) and drops them afterwards; with
    `primary_only`, unlogged, so that the replicas never see them."""
    users = []

    def make(password="pw", grants=("SELECT ON test.*",), host="127.0.0.1", prefix="u", plugin_sql=None,
             primary_only=False):
        name = unique(prefix)[:30]
        users.append((name, host, primary_only))
        with direct() as c, c.cursor() as cur:
            if primary_only:
                cur.execute("SET SESSION sql_log_bin = 0")
            if plugin_sql:
                cur.execute(f"CREATE USER '{name}'@'{host}' {plugin_sql}")
            else:
                cur.execute(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY {c.escape(password)}")
            for g in grants:
                cur.execute(f"GRANT {g} TO '{name}'@'{host}'")
        return name

    yield make
    with direct() as c, c.cursor() as cur:
        for name, host, primary_only in users:
            try:
                cur.execute(f"SET SESSION sql_log_bin = {0 if primary_only else 1}")
                cur.execute(f"DROP USER IF EXISTS '{name}'@'{host}'")
            except Exception:
                pass
        if any("%" in host for _, host, _ in users):
            # MariaDB keeps admitting any host after a '%' account is dropped (its
            # allow_all_hosts flag) until the grant tables are reloaded: reload them, so that
            # the servers answer 1130 to unknown hosts again.
            cur.execute("FLUSH PRIVILEGES")


# --- readwritesplit ----------------------------------------------------------------------------
# A second proxy process (session scope, started only by tests that ask for `rws_proxy`) whose
# services all use the readwritesplit router with live roles from a mariadbmon monitor (checks
# every 200 ms), one service per option under test, plus the admin API (per-server statement
# counters). Its log is shown for failing tests like the main proxy's.

MONITOR_INTERVAL = 0.2

# service name -> readwritesplit options
RWS_SERVICES = {
    "rws": {},                                               # defaults
    "rws_local": {"causal_reads": "local"},
    "rws_none": {"causal_reads": "none"},
    "rws_fast": {"causal_reads": "fast"},
    "rws_rr": {"replica_selection": "round_robin"},
    "rws_hist": {"max_history": 5},
    "rws_error_on_write": {"primary_failure_mode": "error_on_write"},
    "rws_fail_on_write": {"primary_failure_mode": "fail_on_write"},
    "rws_fail_instantly": {"primary_failure_mode": "fail_instantly"},
    "rws_hints": {},                                         # with the hintfilter
}

# service name -> the filters it lists (defined in RWS_FILTERS_YAML)
RWS_SERVICE_FILTERS = {"rws_hints": ["hints"]}
RWS_FILTERS_YAML = """filters:
  - { name: hints, module: hintfilter }
"""


def write_rws_config(path: Path, ports: dict, admin_port: int):
    services = []
    listeners = []
    for name, options in RWS_SERVICES.items():
        opts = ""
        if options:
            opts = "    options: { " + ", ".join(f"{k}: {v}" for k, v in options.items()) + " }\n"
        services.append(
            f"""  - name: {name}
    router: readwritesplit
    servers: [db1, db2, db3]
    user: switchyard
    password: switchyard
    monitor: repl
    connect_timeout: 2s
{opts}""")
        if name in RWS_SERVICE_FILTERS:
            services.append(f"    filters: [{', '.join(RWS_SERVICE_FILTERS[name])}]\n")
        listeners.append(f'  - {{ name: {name}, service: {name}, address: "{HOST}:{ports[name]}" }}\n')
    path.write_text(
        f"""# generated by tests/python/conftest.py (readwritesplit)
log: {{ level: "info,switchyard=debug" }}
# Tests log in wrong many times from 127.0.0.1: throttling has tests of its own.
max_auth_errors_until_block: 0
drain_timeout: 5s
{SERVERS_YAML}{MONITOR_YAML}{RWS_FILTERS_YAML}services:
{"".join(services)}listeners:
{"".join(listeners)}admin: {{ address: "{HOST}:{admin_port}" }}
"""
    )


class RwsProxy(Proxy):
    """The readwritesplit proxy: `ports[service]` is each service's listener."""

    def __init__(self, binary, config_path, log_path, ports, admin_port, workdir):
        super().__init__(binary, config_path, log_path, next(iter(ports.values())), None, None,
                         workdir)
        self.ports = ports
        self.admin_port = admin_port

    def start(self):
        super().start()
        deadline = time.monotonic() + 30
        while not all(port_accepts(p) for p in list(self.ports.values()) + [self.admin_port]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"switchyard (rws) did not open every listener; log:\n{self.log_tail()}")
            time.sleep(0.1)
        self.wait_healthy(60)

    # --- admin API -----------------------------------------------------------------------
    def admin_get(self, path):
        import json
        import urllib.request
        with urllib.request.urlopen(f"http://{HOST}:{self.admin_port}{path}", timeout=10) as r:
            return json.loads(r.read().decode())

    def servers(self) -> dict:
        return {s["name"]: s for s in self.admin_get("/v1/servers")}

    def statements(self) -> dict:
        """Commands routed to each server since start: {'db1': n, 'db2': n, 'db3': n}."""
        return {name: s["statements"] for name, s in self.servers().items()}

    def roles(self) -> dict:
        return {name: s["role"] for name, s in self.servers().items()}

    def wait_roles(self, pred, timeout=30, what="roles"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.servers()
                if pred(last):
                    return last
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError(f"{what}: not reached within {timeout}s; servers: {last}")

    def wait_healthy(self, timeout=60):
        """The monitor sees db1 primary, db2 and db3 replicas, all reachable, no lag."""
        def ok(s):
            return (s["db1"]["role"] == "primary" and s["db2"]["role"] == "replica"
                    and s["db3"]["role"] == "replica"
                    and all(x["reachable"] for x in s.values())
                    and all(not x["replication_broken"] for x in s.values()))
        return self.wait_roles(ok, timeout, "a healthy cluster (db1 primary, db2/db3 replicas)")

    # --- clients ---------------------------------------------------------------------------
    def service(self, name="rws", **kw):
        """A PyMySQL connection to a readwritesplit service (autocommit on, `test` selected)."""
        kw.setdefault("database", "test")
        return self.connect(self.ports[name], **kw)

    def raw(self, name="rws", user=APP_USER, password=APP_PASSWORD, db="test", **kw):
        """A rawmysql.RawConn logged in to a readwritesplit service."""
        import rawmysql
        c = rawmysql.RawConn(HOST, self.ports[name], timeout=30)
        c.login(user, password, db=db, **kw)
        return c

    def assert_serving(self):
        assert self.alive(), f"switchyard (rws) died; log tail:\n{self.log_tail()}"
        with self.service() as c, c.cursor() as cur:
            cur.execute("SELECT 1 + 1")
            assert cur.fetchone() == (2,)


@pytest.fixture(scope="session")
def rws_proxy(sandbox, switchyard_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("switchyard_rws")
    ports = set()
    while len(ports) < len(RWS_SERVICES) + 1:
        ports.add(free_port())
    ports = sorted(ports)
    admin_port = ports.pop()
    service_ports = dict(zip(RWS_SERVICES, ports))
    cfg = workdir / "switchyard-rws.yaml"
    write_rws_config(cfg, service_ports, admin_port)
    p = RwsProxy(switchyard_bin, cfg, workdir / "switchyard-rws.log", service_ports, admin_port, workdir)
    sys.stderr.write(f"\n[switchyard rws] config {cfg}, log {p.log_path}, admin :{admin_port}, "
                     + ", ".join(f"{k} :{v}" for k, v in service_ports.items()) + "\n")
    p.start()
    yield p
    alive = p.alive()
    code = p.proc.returncode
    p.stop()
    p._logf.close()
    assert alive, f"switchyard (rws) died during the test session (exit code {code}); log tail:\n{p.log_tail()}"


@pytest.fixture(autouse=True)
def _rws_proxy_stays_alive(request):
    """Tests using `rws_proxy`: it must still be alive afterwards; remembers where its log was."""
    if "rws_proxy" not in request.fixturenames:
        yield
        return
    p = request.getfixturevalue("rws_proxy")
    request.node._sy_rws_log_offset = p.log_size()
    yield
    assert p.alive(), f"switchyard (rws) died during this test (exit {p.proc.poll()}); log tail:\n{p.log_tail()}"


def pytest_collection_modifyitems(session, config, items):
    """The readwritesplit failure tests stop and restart sandbox servers (seconds each): they
    run last, so that the other tests never meet a recovering sandbox."""
    last = [i for i in items if i.nodeid.split("::")[0].endswith("test_rws_failures.py")]
    if last:
        items[:] = [i for i in items if i not in last] + last


# --- admin API with basic authentication ---------------------------------------------------------
# A proxy of its own for test_admin_api.py and test_ctl.py (module scope each: they change its
# flags, listeners and config file): readwritesplit `rws` (live roles, a regexfilter), readconnroute
# `direct` to the replicas (live roles), and `fixed`, whose server db4 (the primary's address) no
# monitor checks; the admin API requires ADMIN_USER/ADMIN_PASSWORD.

ADMIN_USER, ADMIN_PASSWORD = "admin", "adm1n-s3cret"
ADMIN_LISTENERS = ("rws", "direct", "fixed")


def admin_config_text(ports: dict, admin_port: int) -> str:
    return f"""# generated by tests/python/conftest.py (admin API)
log: {{ level: "info,switchyard=debug" }}
# Tests log in wrong many times from 127.0.0.1: throttling has tests of its own.
max_auth_errors_until_block: 0
drain_timeout: 2s
{SERVERS_YAML}  - {{ name: db4, address: "{HOST}:{PRIMARY_PORT}", role: primary }}
{MONITOR_YAML}filters:
  - {{ name: patch, module: regexfilter, match: 'sy_admin_old', replace: sy_admin_new }}
services:
  - name: rws
    router: readwritesplit
    servers: [db1, db2, db3]
    user: switchyard
    password: switchyard
    monitor: repl
    filters: [patch]
  - name: direct
    router: readconnroute
    servers: [db1, db2, db3]
    user: switchyard
    password: switchyard
    monitor: repl
    options: {{ router_options: replica }}
  - name: fixed
    router: readconnroute
    servers: [db4]
    user: switchyard
    password: switchyard
    options: {{ router_options: primary }}
listeners:
  - {{ name: rws, service: rws, address: "{HOST}:{ports['rws']}" }}
  - {{ name: direct, service: direct, address: "{HOST}:{ports['direct']}" }}
  - {{ name: fixed, service: fixed, address: "{HOST}:{ports['fixed']}" }}
admin: {{ address: "{HOST}:{admin_port}", user: {ADMIN_USER}, password: "{ADMIN_PASSWORD}" }}
"""


class AdminProxy(Proxy):
    """The admin-API proxy; `api()` speaks to its admin API (with the right credentials unless
    told otherwise) and returns (status, headers, JSON body)."""

    def __init__(self, binary, workdir):
        self.ports = {name: free_port() for name in ADMIN_LISTENERS}
        self.admin_port = free_port()
        config = workdir / "switchyard-admin.yaml"
        self.config_text = admin_config_text(self.ports, self.admin_port)
        config.write_text(self.config_text)
        super().__init__(binary, config, workdir / "switchyard-admin.log", self.ports["rws"],
                         self.ports["direct"], self.ports["fixed"], workdir)

    def api(self, method, path, auth=(ADMIN_USER, ADMIN_PASSWORD)):
        import base64
        import json
        import urllib.error
        import urllib.request
        req = urllib.request.Request(f"http://{HOST}:{self.admin_port}{path}", method=method)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        return status, headers, json.loads(body) if body.strip() else None

    def get(self, path):
        status, _, body = self.api("GET", path)
        assert status == 200, (path, status, body)
        return body

    def wait_until(self, pred, what, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout}s; log tail:\n{self.log_tail()}")
            time.sleep(0.05)

    def start(self):
        super().start()

        def healthy():
            if not port_accepts(self.admin_port):
                return False
            s = {x["name"]: x for x in self.get("/v1/servers")}
            return (s["db1"]["role"] == "primary" and s["db2"]["role"] == "replica"
                    and s["db3"]["role"] == "replica" and all(s[n]["reachable"] for n in ("db1", "db2", "db3")))
        self.wait_until(healthy, "the monitor seeing db1 primary, db2/db3 replicas", 30)

    def restore_config(self):
        self.config_path.write_text(self.config_text)


@pytest.fixture(scope="module")
def admin_proxy(sandbox, switchyard_bin, tmp_path_factory):
    p = AdminProxy(switchyard_bin, tmp_path_factory.mktemp("switchyard_admin"))
    sys.stderr.write(f"\n[switchyard admin] config {p.config_path}, log {p.log_path}, "
                     f"admin :{p.admin_port}, " + ", ".join(f"{k} :{v}" for k, v in p.ports.items()) + "\n")
    p.start()
    yield p
    alive = p.alive()
    p.stop()
    p._logf.close()
    assert alive, f"switchyard (admin) died during the tests; log tail:\n{p.log_tail()}"
