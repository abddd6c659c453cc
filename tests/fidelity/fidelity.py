#!/usr/bin/env python3
"""The fidelity suite: MariaDB's own regression tests, run with mysqltest straight against the
primary and through Switchyard's routers, in text and in prepared-statement protocol.

A test passes when mysqltest's output matches the test's `.result` file. A test that fails
direct is not a proxy test (it is reported, not counted); a test that passes direct and fails
through a router is a defect, unless differences.txt lists it with the reason. Every run has a
timeout: a hang is a failure, never a stuck suite.

Usage (normally through run.sh, which starts the sandbox and the proxy):
  fidelity.py --ports direct=3317,readconnroute=4116,readwritesplit=4117[,recorded=4118] [--all]
              [--modes text,ps] [--only PATTERN] [--list]
"""

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MTR_DIR = Path(os.environ.get("MYSQL_TEST_DIR", "/usr/share/mysql/mysql-test"))
HOST = "127.0.0.1"
# Seconds a replica may take to catch up after a test, while its replication threads run.
REPLICA_WAIT = 240
# Databases a test may not drop or that the reset keeps.
SYSTEM_DBS = {"mysql", "information_schema", "performance_schema", "sys", "mtr"}

# What the scan excludes, and why: a test (or a file it sources) matching any of these cannot run
# against a shared, running server that other targets use too. Matched case-insensitively on
# lines that are not comments.
EXCLUSIONS = [
    ("restarts or shuts down the server",
     r"restart_mysqld|shutdown_server|restart_server|kill_mysqld|wait_until_disconnected|"
     r"\bexpect\b.*\.expect|start_mysqld|kill_and_restart"),
    ("changes global state (SET GLOBAL, server-wide FLUSH/RESET, plugins, global caches)",
     r"\bset\s+(@@)?global\b|@@global\.\w+\s*:?=|\bset\s+persist\b|\binstall\s+(plugin|soname)|"
     r"\buninstall\s+(plugin|soname)|\bflush\s+(status|privileges|hosts|logs|binary|user_resources|"
     r"query\s+cache|global|table_statistics|index_statistics|user_statistics|client_statistics)|"
     r"\breset\s+(master|slave|query\s+cache)|\bpurge\s+(binary|master)\s+logs|\bset\s+@@global|"
     r"\bset\s+default\s+role"),
    ("changes accounts or privileges",
     r"\b(create|drop|rename|alter)\s+(user|role)\b|\bgrant\b|\brevoke\b|\bset\s+password\b|"
     r"\b(insert|update|delete|replace)\s+(into\s+)?mysql\.|\bchange_user\b"),
    ("runs programs or reads the server's own files (exec, perl, the datadir, server logs)",
     r"^\s*--?\s*exec\b|^\s*exec\s|^\s*--perl|^\s*perl\s*;|\$MYSQL_DUMP|\$MYSQL_BINLOG|\$MYSQLADMIN|"
     r"\$MYSQL_SLAP|\$MYSQL_UPGRADE|\$MYSQL_CHECK|\$MYSQL_IMPORT|\$MYSQL_CLIENT_TEST|"
     r"\$MYSQL_MY_PRINT_DEFAULTS|\bsearch_pattern_in_file\b|\$MYSQLD_DATADIR|@@datadir"),
    ("needs a debug build or debug_sync",
     r"have_debug|debug_sync|\bset\s+(session\s+)?debug(_dbug)?\s*=|@@debug_dbug|have_debug_sync"),
    ("sets up replication or reads the binary log",
     r"master-slave|rpl_init|\bchange\s+master\b|\bstart\s+slave\b|show\s+binlog\s+events|"
     r"show\s+master\s+status|show_binlog_events|\bbinlog\s+'|show_binary_logs|have_binlog_format_statement|"
     r"have_binlog_format_mixed|have_log_bin|not_log_bin|\bmysqlbinlog\b"),
    ("depends on server-wide counters or caches another target shares",
     r"\bshow\s+global\s+status\b|information_schema\.global_status|"
     r"\bquery_cache\b|have_query_cache|\bshow\s+engine\b|innodb_metrics|"
     r"information_schema\.(user|client|index|table)_statistics|@@global\.|\bglobal_status\b"),
    ("needs the performance schema or a plugin not in the sandbox",
     r"have_perfschema|performance_schema\.|have_plugin_auth|have_example_plugin|have_udf|"
     r"have_ssl|have_openssl|have_tlsv13|have_archive|have_blackhole|have_federated|have_csv|"
     r"have_sequence|have_s3|have_rocksdb|have_spider|have_mroonga|have_oqgraph|have_connect|have_tokudb"),
    ("needs mysql-test-run's own machinery (ports, sockets, other servers, timezones loaded)",
     r"\$MASTER_MYSOCK|\$SLAVE_MY|\$MYSQLD_SOCKET|\bconnect\s*\([^)]*\bSOCKET\b|have_32bit|"
     r"have_64bit|have_innodb_\d+k|include/have_utf8_locale|"
     r"have_case_insensitive|have_lowercase|have_ucs2|wait_for_mysqld|mysqld_safe|have_partition_?\w*"),
    ("takes longer than a fidelity run can afford",
     r"big_test\.inc|long_test\.inc|have_valgrind"),
    # A row-based replica applies each row of an UPDATE of a table without a key by scanning
    # the table: minutes for these 64K-row tables of every code of a character set.
    ("updates every row of a keyless table of every character code (minutes on a row-based replica)",
     r"update\s+(ignore\s+)?t1\s+set\s+a\s*=\s*unhex\(code\)"),
]
COMPILED = [(why, re.compile(rx, re.IGNORECASE | re.MULTILINE)) for why, rx in EXCLUSIONS]
SOURCE = re.compile(r"^\s*(?:--\s*)?source\s+([^\s;]+)", re.IGNORECASE | re.MULTILINE)
# Sourced files that need not be scanned: they only check what the sandbox has.
UNSCANNED = {"include/not_embedded.inc", "include/have_innodb.inc", "include/default_charset.inc"}

# Exit codes of mysqltest.
MT_SKIP = 62


@dataclass
class Test:
    suite: str  # e.g. "main", "compat/oracle"
    name: str
    ci: bool
    area: str

    @property
    def id(self):
        return f"{self.suite}.{self.name}"

    def dir(self):
        return MTR_DIR / "main" if self.suite == "main" else MTR_DIR / "suite" / self.suite

    def test_file(self):
        d = self.dir()
        return d / "t" / f"{self.name}.test" if (d / "t").is_dir() else d / f"{self.name}.test"

    def result_file(self):
        d = self.dir()
        return d / "r" / f"{self.name}.result" if (d / "r").is_dir() else d / f"{self.name}.result"

    def side_files(self):
        """Files that give the test server options or combinations of its own."""
        t = self.test_file()
        stem = t.with_suffix("")
        return [p for p in (Path(f"{stem}.opt"), Path(f"{stem}-master.opt"), Path(f"{stem}-slave.opt"),
                            Path(f"{stem}.cnf"), Path(f"{stem}.combinations"),
                            Path(f"{stem}-master.sh")) if p.exists()]


class ReplicationBroken(Exception):
    pass


@dataclass
class Outcome:
    status: str  # pass, fail, skip, hang
    seconds: float
    detail: str = ""


def parse_selection(path):
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 2)
        pattern = parts[0]
        tags = parts[1] if len(parts) > 1 and parts[1] == "ci" else ""
        area = (parts[2] if tags else " ".join(parts[1:])) if len(parts) > 1 else ""
        out.append((pattern, tags == "ci", area.strip()))
    return out


def expand(selection):
    tests, unmatched, seen = [], [], set()
    for pattern, ci, area in selection:
        suite, _, name_pat = pattern.rpartition("/")
        probe = Test(suite, "x", ci, area)
        tdir = probe.test_file().parent
        names = sorted(p.stem for p in tdir.glob(f"{name_pat}.test"))
        if not names:
            unmatched.append(pattern)
        for n in names:
            t = Test(suite, n, ci, area)
            if t.id in seen or not t.result_file().exists():
                continue
            seen.add(t.id)
            tests.append(t)
    return tests, unmatched


def sourced_text(path, suite_dir, depth=0, seen=None):
    """The test file's text with the text of every file it sources (recursively)."""
    seen = set() if seen is None else seen
    if path in seen or depth > 8 or not path.exists():
        return ""
    seen.add(path)
    text = path.read_text(errors="replace")
    body = [text]
    for m in SOURCE.finditer(text):
        ref = m.group(1)
        if ref in UNSCANNED or "$" in ref:
            continue
        for base in (MTR_DIR, suite_dir, suite_dir / "t", path.parent):
            cand = base / ref
            if cand.exists():
                body.append(sourced_text(cand, suite_dir, depth + 1, seen))
                break
    return "\n".join(body)


def code_lines(text):
    """Lines that are not mysqltest comments."""
    return "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))


def exclusion(test):
    side = test.side_files()
    if side:
        return "has server options or combinations of its own (" + ", ".join(p.name for p in side) + ")"
    text = code_lines(sourced_text(test.test_file(), test.dir()))
    for why, rx in COMPILED:
        if rx.search(text):
            return why
    return None


def load_differences(path):
    """`suite.name  target  mode  reason`: argued differences, test by test."""
    diffs = {}
    if not path.exists():
        return diffs
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) == 4:
            diffs[(parts[0], parts[1], parts[2])] = parts[3]
    return diffs


# Where a test runs: straight against the primary, through each router, and (with a
# `recorded` port) through record.py's relay, which keeps the server's bytes for the reply
# tracker's property test (modules/protocol/tests/recorded.rs).
TARGETS = ["direct", "readconnroute", "readwritesplit", "recorded"]


class Runner:
    def __init__(self, args):
        self.args = args
        self.ports = dict(kv.split("=") for kv in args.ports.split(","))
        self.work = Path(args.workdir)
        self.vardir = Path(args.vardir)
        self.client = shutil.which("mariadb") or shutil.which("mysql")
        self.mysqltest = shutil.which("mariadb-test") or shutil.which("mysqltest")
        if not self.mysqltest:
            sys.exit("fidelity: mysqltest not found (Debian package mariadb-test; scripts/install-deps.sh installs it)")

    def sql(self, port, query, timeout=30):
        r = subprocess.run([self.client, "--no-defaults", "-h", HOST, "-P", str(port), "-uroot", "-N", "-B",
                            "-e", query], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{query!r} on port {port}: {r.stderr.strip()}")
        return [l.split("\t") for l in r.stdout.splitlines()]

    def env(self, port):
        e = dict(os.environ)
        e.update({
            "MYSQL_TEST_DIR": str(MTR_DIR),
            "MYSQLTEST_VARDIR": str(self.vardir),
            "MYSQL_TMP_DIR": str(self.vardir / "tmp"),
            "MASTER_MYPORT": str(port),
            "MYSQL_CHARSETSDIR": "/usr/share/mysql/charsets",
            "MYSQL_SHAREDIR": "/usr/share/mysql",
            "MYSQL_LIBDIR": "/usr/lib",
            "MTR_FIDELITY": "1",
        })
        return e

    def replicas(self):
        return [int(p) for p in self.args.replica_ports.split(",") if p]

    def prepare(self):
        for d in (self.vardir / "tmp", self.vardir / "log", self.work):
            d.mkdir(parents=True, exist_ok=True)
        direct = self.ports["direct"]
        have_mtr = self.sql(direct, "SELECT COUNT(*) FROM information_schema.ROUTINES "
                                    "WHERE ROUTINE_SCHEMA='mtr' AND ROUTINE_NAME='add_suppression'")
        if have_mtr[0][0] == "0":
            # What tests use of mysql-test-run's helper schema: call mtr.add_suppression(...).
            # (mysql-test-run loads include/mtr_warnings.sql at bootstrap; its warning checks
            # read the server's error log, which this suite does not.)
            self.sql(direct, "CREATE DATABASE IF NOT EXISTS mtr; "
                             "CREATE TABLE IF NOT EXISTS mtr.test_suppressions (pattern VARCHAR(255)) ENGINE=MyISAM; "
                             "CREATE PROCEDURE mtr.add_suppression(pattern VARCHAR(255)) "
                             "INSERT INTO mtr.test_suppressions VALUES (pattern)")

    def reset(self):
        """Between tests: drop what a test left, end its connections, let the replicas catch up."""
        direct = int(self.ports["direct"])
        for port in [direct] + self.replicas():
            try:
                rows = self.sql(port, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER='root' "
                                      "AND ID <> CONNECTION_ID() AND COMMAND <> 'Daemon'")
                for (tid,) in rows:
                    try:
                        self.sql(port, f"KILL {tid}")
                    except RuntimeError:
                        pass
            except RuntimeError:
                pass
        dbs = [r[0] for r in self.sql(direct, "SHOW DATABASES")]
        stmts = [f"DROP DATABASE IF EXISTS `{d}`" for d in dbs if d.lower() not in SYSTEM_DBS]
        stmts.append("CREATE DATABASE IF NOT EXISTS test")
        # Stored programs and objects left in mtr by a test are its own business; suppressions not.
        stmts.append("DELETE FROM mtr.test_suppressions")
        try:
            self.sql(direct, "SET SESSION sql_mode=DEFAULT; " + "; ".join(stmts))
        except RuntimeError as e:
            if "errno: 39" not in str(e):
                raise
            # A file a test wrote into a database directory (SELECT ... INTO OUTFILE 'name')
            # keeps the server from removing it: remove the strays, then drop.
            self.remove_strays(direct, dbs)
            self.sql(direct, "SET SESSION sql_mode=DEFAULT; " + "; ".join(stmts))
        pos = self.sql(direct, "SELECT @@gtid_binlog_pos")[0][0]
        for port in self.replicas():
            # A replica applying row events of a big table without a key (a test's UPDATE of
            # every row) is slow, not broken: wait while its threads run.
            deadline = time.monotonic() + REPLICA_WAIT
            while self.sql(port, f"SELECT MASTER_GTID_WAIT('{pos}', 20)")[0][0] != "0":
                running = self.sql(port, "SHOW GLOBAL STATUS LIKE 'Slave_running'")
                if time.monotonic() > deadline or not running or running[0][1] != "ON":
                    raise ReplicationBroken(f"the replica on port {port} did not reach GTID {pos}"
                                            f"{self.replica_error(port)}")

    def replica_error(self, port):
        """The replica's last replication error, as ': <error>' (or nothing)."""
        r = subprocess.run([self.client, "--no-defaults", "-h", HOST, "-P", str(port), "-uroot", "-E",
                            "-e", "SHOW SLAVE STATUS"], capture_output=True, text=True, timeout=30)
        errors = [l.split(":", 1)[1].strip() for l in r.stdout.splitlines()
                  if l.strip().startswith(("Last_SQL_Error:", "Last_IO_Error:"))]
        errors = [e for e in errors if e]
        return f": {'; '.join(errors)[:300]}" if errors else ""

    def remove_strays(self, port, dbs):
        datadir = Path(self.sql(port, "SELECT @@datadir")[0][0])
        for d in dbs:
            if d.lower() in SYSTEM_DBS:
                continue
            # The failed DROP DATABASE removed the tables: what is left is not the server's.
            for f in (datadir / d).glob("*"):
                if f.is_file():
                    print(f"fidelity: removing {f}, which a test left", flush=True)
                    f.unlink()

    def repair(self, why):
        """Replication broke (a write reached a replica): the sandbox is made anew."""
        print(f"fidelity: {why}; recreating the sandbox (scripts/sandbox.sh reset)", flush=True)
        subprocess.run(["bash", str(HERE.parent.parent / "scripts" / "sandbox.sh"), "reset"], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        self.prepare()
        time.sleep(3)  # the proxy's monitor sees the servers again

    def run_one(self, test, target, mode, timeout):
        port = self.ports[target]
        out_dir = self.work / target / mode
        out_dir.mkdir(parents=True, exist_ok=True)
        # A copy of the .result: mysqltest writes its .reject beside the result file.
        result = out_dir / f"{test.id.replace('/', '-')}.result"
        shutil.copyfile(test.result_file(), result)
        reject = result.with_suffix(".reject")
        reject.unlink(missing_ok=True)
        cmd = [self.mysqltest, "--no-defaults", f"--host={HOST}", f"--port={port}", "--user=root",
               "--database=test", "--protocol=tcp", f"--basedir={MTR_DIR}/", f"--tmpdir={self.vardir / 'tmp'}",
               f"--logdir={self.vardir / 'log'}", f"--character-sets-dir=/usr/share/mysql/charsets",
               f"--test-file={test.test_file()}", f"--result-file={result}", "--silent",
               "--max-connect-retries=2", "--tail-lines=0"]
        if mode == "ps":
            cmd.append("--ps-protocol")
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=self.env(port), cwd=str(test.dir()), start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Outcome("hang", time.monotonic() - started, f"no end within {timeout:.0f} s")
        elapsed = time.monotonic() - started
        if proc.returncode == 0:
            return Outcome("pass", elapsed)
        if proc.returncode == MT_SKIP:
            return Outcome("skip", elapsed, out.strip().splitlines()[-1] if out.strip() else "")
        detail = out.strip()
        if reject.exists():
            diff = subprocess.run(["diff", "-u", str(result), str(reject)], capture_output=True, text=True).stdout
            detail = (detail + "\n" + "\n".join(diff.splitlines()[2:40])).strip()
        return Outcome("fail", elapsed, detail)

    def checked_reset(self, rows, failures):
        """A reset after an execution; replication broken by it fails that execution."""
        try:
            self.reset()
        except ReplicationBroken as e:
            if rows and rows[-1][3] in ("pass", "known"):
                test_id, target, mode, _, secs = rows[-1]
                rows[-1] = (test_id, target, mode, "fail", secs)
                failures.append((test_id, target, mode, Outcome("fail", secs, f"broke replication: {e}")))
            self.repair(str(e))
            self.reset()

    def run(self, tests):
        diffs = load_differences(HERE / "differences.txt")
        modes = self.args.modes.split(",")
        targets = [t for t in TARGETS[1:] if t in self.ports]
        rows = []
        counts = {}
        failures = []
        for i, test in enumerate(tests, 1):
            for mode in modes:
                self.checked_reset(rows, failures)
                d = self.run_one(test, "direct", mode, self.args.timeout)
                rows.append((test.id, "direct", mode, d.status, d.seconds))
                direct_row = len(rows) - 1
                line = f"[{i}/{len(tests)}] {test.id:<38} {mode:<4} direct {d.status} {d.seconds:5.1f}s"
                if d.status != "pass":
                    print(line + ("  " + d.detail.splitlines()[0][:100] if d.detail else ""), flush=True)
                    continue
                # A hang through the proxy is a failure; give it time, but not forever.
                limit = max(30.0, 4 * d.seconds + 10)
                for target in targets:
                    self.checked_reset(rows, failures)
                    if rows[direct_row][3] != "pass":
                        # The direct run broke replication: not a test of the proxy.
                        line += " | broke replication"
                        break
                    o = self.run_one(test, target, mode, limit)
                    known = diffs.get((test.id, target, mode)) or diffs.get((test.id, target, "*"))
                    status = "known" if o.status != "pass" and known else o.status
                    rows.append((test.id, target, mode, status, o.seconds))
                    line += f" | {target} {status} {o.seconds:5.1f}s"
                    if status in ("fail", "hang", "skip"):
                        failures.append((test.id, target, mode, o))
                print(line, flush=True)
        self.checked_reset(rows, failures)
        for _, target, mode, status, _ in rows:
            c = counts.setdefault((target, mode), {})
            c[status] = c.get(status, 0) + 1
        return rows, counts, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ports", default="direct=3317")
    ap.add_argument("--replica-ports", default="3318,3319")
    ap.add_argument("--all", action="store_true", help="the whole selection, not only the CI subset")
    ap.add_argument("--modes", default="text,ps")
    ap.add_argument("--only", help="only tests whose suite.name matches this glob")
    ap.add_argument("--list", action="store_true", help="print the selection and the exclusions, run nothing")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds for a direct run")
    ap.add_argument("--workdir", default=str(HERE.parent.parent / ".sandbox-fidelity" / "work"))
    ap.add_argument("--vardir", default=str(HERE.parent.parent / ".sandbox-fidelity" / "var"))
    ap.add_argument("--summary", help="write the counts and every outcome as JSON here")
    args = ap.parse_args()

    if not MTR_DIR.is_dir():
        sys.exit(f"fidelity: {MTR_DIR} not found (Debian package mariadb-test)")
    tests, unmatched = expand(parse_selection(HERE / "selection.txt"))
    for p in unmatched:
        print(f"fidelity: selection pattern matches no test in the installed package: {p}")
    chosen, excluded = [], []
    for t in tests:
        why = exclusion(t)
        if why:
            excluded.append((t, why))
        elif args.all or t.ci:
            chosen.append(t)
    if args.only:
        chosen = [t for t in chosen if fnmatch.fnmatch(t.id, args.only)]
    reasons = {}
    for t, why in excluded:
        reasons.setdefault(why, []).append(t.id)
    print(f"fidelity: {len(tests)} tests selected, {len(excluded)} excluded by the scan, "
          f"{len(chosen)} to run ({'all' if args.all else 'CI subset'})")
    for why, ids in sorted(reasons.items()):
        print(f"  excluded, {why}: {len(ids)}" + (f" ({', '.join(sorted(ids))})" if args.list else ""))
    if args.list:
        for t in chosen:
            print(f"  run {t.id:<40} {t.area}")
        return 0

    runner = Runner(args)
    runner.prepare()
    t0 = time.monotonic()
    rows, counts, failures = runner.run(chosen)
    print(f"\nfidelity: {len(rows)} executions in {time.monotonic() - t0:.0f} s")
    statuses = ["pass", "fail", "hang", "skip", "known"]
    print(f"  {'target':<15} {'mode':<5} " + " ".join(f"{s:>6}" for s in statuses))
    for (target, mode), c in sorted(counts.items(), key=lambda kv: (TARGETS.index(kv[0][0]), kv[0][1])):
        print(f"  {target:<15} {mode:<5} " + " ".join(f"{c.get(s, 0):>6}" for s in statuses))
    for test_id, target, mode, o in failures:
        print(f"\n---- {test_id} through {target} ({mode}): {o.status} after {o.seconds:.1f} s")
        print("\n".join(o.detail.splitlines()[:40]))
    if args.summary:
        Path(args.summary).write_text(json.dumps({
            "counts": {f"{t}/{m}": c for (t, m), c in counts.items()},
            "runs": [dict(zip(("test", "target", "mode", "status", "seconds"), r)) for r in rows],
        }, indent=1))
    proxied = [r for r in rows if r[1] != "direct"]
    bad = sum(1 for r in proxied if r[3] in ("fail", "hang", "skip"))
    good = sum(1 for r in proxied if r[3] in ("pass", "known"))
    # The closing line CI reads: executions through the routers (and the recording relay) of
    # tests that pass direct.
    print(f"\nfidelity: {good} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
