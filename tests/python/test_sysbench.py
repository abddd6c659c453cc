"""sysbench oltp_read_write through the rw listener: prepared statements (--db-ps-mode=auto,
the binary protocol), transactions, 4 threads for ~10 s: zero errors, zero reconnects.

InnoDB deadlocks (1213) and lock wait timeouts (1205) are answers of the server to this
workload, direct or proxied; sysbench retries those transactions (its default), and any other
error fails the run."""

import re
import shutil
import subprocess

import pytest

from conftest import HOST, primary_exec, unique

pytestmark = pytest.mark.skipif(shutil.which("sysbench") is None, reason="sysbench not installed")


def sysbench(proxy, db, *args, timeout=180):
    cmd = ["sysbench", "oltp_read_write", f"--mysql-host={HOST}", f"--mysql-port={proxy.rw_port}",
           "--mysql-user=app", "--mysql-password=app", f"--mysql-db={db}", "--db-driver=mysql",
           "--tables=2", "--table-size=5000", "--mysql-ssl=off", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_sysbench_oltp_read_write(proxy):
    db = unique("sb")
    primary_exec(f"CREATE DATABASE {db}")
    try:
        r = sysbench(proxy, db, "--threads=2", "prepare")
        assert r.returncode == 0, f"prepare failed:\n{r.stdout}\n{r.stderr}"
        r = sysbench(proxy, db, "--threads=4", "--time=10", "--db-ps-mode=auto", "--report-interval=0",
                     "--mysql-ignore-errors=1213,1205", "run")
        out = r.stdout
        assert r.returncode == 0, f"run failed:\n{out}\n{r.stderr}"
        m = re.search(r"transactions:\s+(\d+)", out)
        assert m and int(m.group(1)) > 0, out
        transactions = int(m.group(1))
        m = re.search(r"ignored errors:\s+(\d+)", out)
        assert m and int(m.group(1)) * 20 < transactions, f"too many deadlocks to be the workload's:\n{out}"
        m = re.search(r"reconnects:\s+(\d+)", out)
        assert m and int(m.group(1)) == 0, out
        assert "FATAL" not in out + r.stderr, out + r.stderr
        r = sysbench(proxy, db, "cleanup")
        assert r.returncode == 0, f"cleanup failed:\n{r.stdout}\n{r.stderr}"
    finally:
        primary_exec(f"DROP DATABASE IF EXISTS {db}")
