"""sysbench through the default readwritesplit service (`rws`), with prepared statements
(--db-ps-mode=auto, the binary protocol), 8 threads, 20 s per workload:

- oltp_read_write: zero errors and reconnects; every statement runs in a transaction, so all
  of it (every write in particular) is on the primary: the primary's statement counter grows by
  at least the number of writes sysbench reports;
- oltp_read_only --skip_trx=on: zero errors; the reads are spread over both replicas (each gets
  a substantial share), the primary gets next to none.

Counters: the admin API's per-server `statements`, before and after each run. As in
test_sysbench.py, InnoDB deadlocks and lock wait timeouts (1213, 1205) are the workload's own
answers and are retried by sysbench; any other error fails the run."""

import re
import shutil
import subprocess

import pytest

from conftest import HOST, primary_exec, unique, wait_replicated
from rws_util import Counters

pytestmark = pytest.mark.skipif(shutil.which("sysbench") is None, reason="sysbench not installed")

THREADS = 8
SECONDS = 20


def sysbench(rws_proxy, db, workload, *args, timeout=240):
    cmd = ["sysbench", workload, f"--mysql-host={HOST}", f"--mysql-port={rws_proxy.ports['rws']}",
           "--mysql-user=app", "--mysql-password=app", f"--mysql-db={db}", "--db-driver=mysql",
           "--tables=2", "--table-size=5000", "--mysql-ssl=off", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def stat(out, name):
    m = re.search(rf"{name}:\s+(\d+)", out)
    assert m, f"no '{name}' in the sysbench output:\n{out}"
    return int(m.group(1))


@pytest.fixture(scope="module")
def sbdb(rws_proxy):
    db = unique("rws_sb")
    primary_exec(f"CREATE DATABASE {db}")
    try:
        r = sysbench(rws_proxy, db, "oltp_read_write", "--threads=2", "prepare")
        assert r.returncode == 0, f"prepare failed:\n{r.stdout}\n{r.stderr}"
        wait_replicated(60)
        yield db
    finally:
        primary_exec(f"DROP DATABASE IF EXISTS {db}")


def run(rws_proxy, db, workload, *args):
    counters = Counters(rws_proxy)
    r = sysbench(rws_proxy, db, workload, f"--threads={THREADS}", f"--time={SECONDS}", "--db-ps-mode=auto",
                 "--report-interval=0", "--mysql-ignore-errors=1213,1205", *args, "run")
    delta = counters.delta()
    out = r.stdout
    assert r.returncode == 0, f"{workload} failed:\n{out}\n{r.stderr}"
    assert "FATAL" not in out + r.stderr, out + r.stderr
    figures = {k: stat(out, k) for k in ("read", "write", "other", "total", "transactions",
                                         "ignored errors", "reconnects")}
    print(f"\n{workload} {' '.join(args)}: {figures}; statements per server: {delta}")
    assert figures["reconnects"] == 0, out
    assert figures["transactions"] > 0, out
    return figures, delta, out


def test_oltp_read_write(rws_proxy, sbdb):
    f, delta, out = run(rws_proxy, sbdb, "oltp_read_write")
    assert f["ignored errors"] * 20 < f["transactions"], f"too many deadlocks to be the workload's:\n{out}"
    assert f["write"] > 0
    assert delta["db1"] >= f["write"], f"the primary ran fewer statements ({delta}) than the writes ({f})"
    # everything is inside BEGIN ... COMMIT: the whole workload belongs on the primary
    assert delta["db1"] >= f["total"], (delta, f)


def test_oltp_read_only_skip_trx(rws_proxy, sbdb):
    f, delta, out = run(rws_proxy, sbdb, "oltp_read_only", "--skip_trx=on")
    assert f["ignored errors"] == 0, out
    reads = f["read"]
    assert reads > 0 and f["write"] == 0
    assert delta["db2"] + delta["db3"] >= reads, (delta, f)
    for name in ("db2", "db3"):
        assert delta[name] >= reads * 0.25, f"{name} got too small a share of the reads: {delta}, {f}"
    # the primary: only session commands and prepares at thread start
    assert delta["db1"] <= reads * 0.02 + 50 * THREADS, f"reads ran on the primary: {delta}, {f}"
