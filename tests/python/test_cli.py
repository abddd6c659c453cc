"""The MariaDB command-line tools through the proxy: mariadb (batch, vertical, errors, status,
LOAD DATA LOCAL INFILE, scripts), mariadb-admin (COM_PING, COM_STATISTICS, processlist),
mariadb-dump + restore, mariadb-import, mariadb-slap."""

import re
import shutil
import subprocess

import pytest

from conftest import HOST, PRIMARY_PORT, direct, primary_exec, unique

pytestmark = pytest.mark.skipif(shutil.which("mariadb") is None, reason="mariadb client not installed")


def cli(proxy, *args, port=None, user="app", password="app", stdin=None, tool="mariadb", timeout=60):
    cmd = [tool, "--no-defaults", f"-h{HOST}", f"-P{port or proxy.rw_port}", "--protocol=TCP",
           f"-u{user}", f"-p{password}", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def test_batch_output(proxy):
    out = ok(cli(proxy, "-N", "-B", "-e", "SELECT 1, 'a\tb', NULL; SELECT @@server_id"))
    assert out == "1\ta\\tb\tNULL\n1\n"


def test_batch_with_headers(proxy):
    out = ok(cli(proxy, "-B", "-e", "SELECT 1 AS one, 'x' AS ex"))
    assert out == "one\tex\n1\tx\n"


def test_table_output(proxy):
    out = ok(cli(proxy, "-t", "-e", "SELECT 42 AS answer"))
    assert out.splitlines() == ["+--------+", "| answer |", "+--------+", "|     42 |", "+--------+"]


def test_vertical_output(proxy):
    out = ok(cli(proxy, "-E", "-e", "SELECT 1 AS a, 'two' AS b"))
    assert "*************************** 1. row ***************************" in out
    assert "a: 1" in out and "b: two" in out


def test_ro_listener_cli(proxy):
    out = ok(cli(proxy, "-N", "-B", "-e", "SELECT @@server_id", port=proxy.ro_port))
    assert out.strip() in ("2", "3")


def test_error_exit_code_and_message(proxy):
    r = cli(proxy, "-e", "SELECT * FROM test.no_such_cli_table")
    assert r.returncode == 1
    assert "ERROR 1146 (42S02) at line 1: Table 'test.no_such_cli_table' doesn't exist" in r.stderr


def test_access_denied_cli(proxy):
    r = cli(proxy, "-e", "SELECT 1", password="wrong")
    assert r.returncode == 1
    assert "ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)" in r.stderr


def test_unknown_database_cli(proxy):
    r = cli(proxy, "-D", "no_such_cli_db", "-e", "SELECT 1")
    assert r.returncode == 1
    assert "ERROR 1049 (42000): Unknown database 'no_such_cli_db'" in r.stderr


def test_status_shows_proxy_connection_id(proxy):
    # \s prints the connection id from the handshake: the proxy's own id, which comes in
    # sequence with the ids PyMySQL sees right before and after.
    with proxy.rw() as before:
        id_before = before.thread_id()
    out = ok(cli(proxy, "-e", "\\s\nSELECT CONNECTION_ID() AS backend_id;"))
    with proxy.rw() as after:
        id_after = after.thread_id()
    m = re.search(r"Connection id:\s+(\d+)", out)
    assert m, out
    cli_id = int(m.group(1))
    assert id_before < cli_id < id_after, (id_before, cli_id, id_after)
    m = re.search(r"backend_id\n(\d+)\n", out)
    assert m, out
    assert int(m.group(1)) == cli_id, "CONNECTION_ID() does not say the id of the handshake"
    assert "Current user:\t\tapp@127.0.0.1" in out
    assert re.search(r"Server version:\s+10\.\d+\.\d+-MariaDB", out), out
    assert "Protocol version:\t10" in out
    # the last line of \s comes from COM_STATISTICS
    assert re.search(r"Threads: \d+\s+Questions: \d+\s+Slow queries: \d+", out), out
    assert "SSL:\t\t\tNot in use" in out


def test_kill_query_with_cli_id(proxy):
    # The id shown by the CLI is the one KILL understands.
    import threading
    import time
    res = {}

    def run():
        res["r"] = cli(proxy, "-e", "\\s\nSELECT SLEEP(30);", timeout=60)

    # learn the id the CLI is going to get: the next proxy id
    with proxy.rw() as probe:
        next_id = probe.thread_id() + 1
    th = threading.Thread(target=run, daemon=True)
    t0 = time.monotonic()
    th.start()
    # wait until the CLI's SLEEP runs on the primary
    deadline = time.monotonic() + 10
    with direct() as d, d.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(30)'")
            if cur.fetchone()[0]:
                break
            time.sleep(0.05)
    with proxy.rw() as killer, killer.cursor() as cur:
        cur.execute(f"KILL QUERY {next_id}")
    th.join(20)
    assert not th.is_alive()
    assert time.monotonic() - t0 < 12
    out = res["r"].stdout
    m = re.search(r"Connection id:\s+(\d+)", out)
    assert m and int(m.group(1)) == next_id, out


def test_use_and_database_switch(proxy):
    out = ok(cli(proxy, "-N", "-B", "-e", "SELECT DATABASE(); USE sbtest; SELECT DATABASE(); use test; SELECT DATABASE();"))
    assert out.split() == ["NULL", "sbtest", "test"]


def test_script_from_stdin(proxy):
    t = unique("cli")
    proc = unique("cliproc")
    script = f"""
USE test;
CREATE TABLE {t} (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(20));
INSERT INTO {t} (v) VALUES ('a'), ('b'), ('c');
DELIMITER //
CREATE PROCEDURE {proc}()
BEGIN
  SELECT COUNT(*) AS n FROM {t};
  SELECT GROUP_CONCAT(v ORDER BY id) AS vs FROM {t};
END//
DELIMITER ;
CALL {proc}();
SELECT LAST_INSERT_ID();
DROP PROCEDURE {proc};
DROP TABLE {t};
"""
    try:
        out = ok(cli(proxy, "-N", "-B", stdin=script))
        assert out.split("\n")[:3] == ["3", "a,b,c", "1"]
    finally:
        primary_exec(f"DROP TABLE IF EXISTS test.{t}", f"DROP PROCEDURE IF EXISTS test.{proc}")


def test_show_warnings_cli(proxy):
    out = ok(cli(proxy, "--show-warnings", "-e", "SELECT CAST('12abc' AS UNSIGNED)"))
    assert "Warning (Code 1292): Truncated incorrect INTEGER value: '12abc'" in out


def test_load_data_local_infile_cli(proxy, table, tmp_path):
    t = table("cliload")
    f = tmp_path / "data.csv"
    f.write_text("".join(f"{i},\"name {i}\",{i % 7}\n" for i in range(1, 5001)))
    primary_exec(f"CREATE TABLE test.{t} (id INT PRIMARY KEY, name VARCHAR(30), k INT)")
    out = ok(cli(proxy, "--local-infile=1", "-D", "test", "-N", "-B", "-e",
                 f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE {t} FIELDS TERMINATED BY ',' "
                 f"OPTIONALLY ENCLOSED BY '\"'; SELECT COUNT(*), SUM(id), SUM(k), MAX(name) FROM {t}"))
    assert out == "5000\t12502500\t14997\tname 999\n"


def test_load_data_local_infile_cli_disabled(proxy, table, tmp_path):
    t = table("clinoload")
    f = tmp_path / "d.csv"
    f.write_text("1\n")
    primary_exec(f"CREATE TABLE test.{t} (id INT)")
    r = cli(proxy, "--local-infile=0", "-D", "test", "-e", f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE {t}")
    assert r.returncode == 1
    assert re.search(r"ERROR (1148|4166)", r.stderr), r.stderr


def test_text_prepared_statements_cli(proxy):
    out = ok(cli(proxy, "-N", "-B", "-e",
                 "PREPARE s FROM 'SELECT ? * 2, UPPER(?)'; SET @a = 21, @b = 'xy'; EXECUTE s USING @a, @b; "
                 "EXECUTE s USING 5, 'q'; DEALLOCATE PREPARE s;"))
    assert out == "42\tXY\n10\tQ\n"


def test_mariadb_admin_ping_and_status(proxy):
    if shutil.which("mariadb-admin") is None:
        pytest.skip("mariadb-admin not installed")
    out = ok(cli(proxy, "ping", tool="mariadb-admin"))
    assert "mysqld is alive" in out
    out = ok(cli(proxy, "status", tool="mariadb-admin"))  # COM_STATISTICS
    assert re.match(r"Uptime: \d+\s+Threads: \d+\s+Questions: \d+\s+Slow queries: \d+\s+Opens: \d+", out), out
    out = ok(cli(proxy, "processlist", tool="mariadb-admin"))
    assert "Id" in out and "Command" in out
    out = ok(cli(proxy, "version", tool="mariadb-admin"))
    assert "Server version" in out


def test_mariadb_admin_kill(proxy):
    if shutil.which("mariadb-admin") is None:
        pytest.skip("mariadb-admin not installed")
    victim = proxy.rw()
    try:
        r = cli(proxy, "kill", str(victim.thread_id()), tool="mariadb-admin")
        assert r.returncode == 0, r.stderr
        import pymysql
        with pytest.raises(pymysql.MySQLError):
            with victim.cursor() as cur:
                cur.execute("SELECT 1")
    finally:
        victim.close()


def test_mariadb_dump_and_restore(proxy, tmp_path):
    if shutil.which("mariadb-dump") is None:
        pytest.skip("mariadb-dump not installed")
    src, dst = unique("dumpsrc"), unique("dumpdst")
    primary_exec(f"CREATE DATABASE {src}", f"CREATE DATABASE {dst}",
                 f"CREATE TABLE {src}.t (id INT PRIMARY KEY, v VARCHAR(50), b BLOB)",
                 f"INSERT INTO {src}.t SELECT seq, CONCAT('row ', seq, ' ✓'), UNHEX(MD5(seq)) FROM {src}.seq_1_to_3000")
    try:
        r = cli(proxy, "--single-transaction", "--routines", "--triggers", "--hex-blob", src, tool="mariadb-dump", timeout=120)
        dump = ok(r)
        assert "CREATE TABLE `t`" in dump and "INSERT INTO `t` VALUES" in dump
        ok(cli(proxy, dst, stdin=dump, timeout=120))
        a = primary_exec(f"CHECKSUM TABLE {src}.t")[0][1]
        b = primary_exec(f"CHECKSUM TABLE {dst}.t")[0][1]
        assert a == b and a is not None
        assert primary_exec(f"SELECT COUNT(*) FROM {dst}.t") == ((3000,),)
    finally:
        primary_exec(f"DROP DATABASE IF EXISTS {src}", f"DROP DATABASE IF EXISTS {dst}")


def test_mariadb_import_local(proxy, tmp_path):
    if shutil.which("mariadb-import") is None:
        pytest.skip("mariadb-import not installed")
    t = unique("imp")
    primary_exec(f"CREATE TABLE test.{t} (id INT PRIMARY KEY, v VARCHAR(20))")
    try:
        f = tmp_path / f"{t}.txt"  # mariadb-import loads a file into the table of its name
        f.write_text("".join(f"{i}\tv{i}\n" for i in range(1000)))
        out = ok(cli(proxy, "--local", "test", str(f), tool="mariadb-import"))
        assert "Records: 1000" in out
        assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((1000,),)
    finally:
        primary_exec(f"DROP TABLE IF EXISTS test.{t}")


def test_mariadb_slap(proxy):
    if shutil.which("mariadb-slap") is None:
        pytest.skip("mariadb-slap not installed")
    schema = unique("slap")
    try:
        r = cli(proxy, "--concurrency=20", "--iterations=2", "--number-of-queries=400",
                "--auto-generate-sql", "--auto-generate-sql-load-type=mixed", f"--create-schema={schema}",
                tool="mariadb-slap", timeout=120)
        out = ok(r)
        assert "Average number of seconds to run all queries" in out
        assert "ERROR" not in r.stderr.upper(), r.stderr
    finally:
        primary_exec(f"DROP DATABASE IF EXISTS {schema}")


def test_extended_type_metadata(proxy, rws_proxy):
    """MariaDB's extended type metadata reaches the client as the server sends it: the CLI's
    --column-type-info shows a JSON column's format, direct and through both routers."""
    sql = "SELECT JSON_OBJECT('a', 1) AS j, CAST('::1' AS INET6) AS ip;\n"
    outputs = {}
    for name, port in (("direct", PRIMARY_PORT), ("readconnroute", proxy.rw_port),
                       ("readwritesplit", rws_proxy.ports["rws"])):
        r = cli(proxy, "-t", "--column-type-info", port=port, stdin=sql)
        outputs[name] = [line for line in ok(r).splitlines() if line.startswith("Type:")]
    assert any("format=json" in line for line in outputs["direct"]), outputs["direct"]
    assert outputs["readconnroute"] == outputs["direct"]
    assert outputs["readwritesplit"] == outputs["direct"]
