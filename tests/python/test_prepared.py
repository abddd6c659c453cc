"""Prepared statements through the proxy. PyMySQL and the mariadb CLI do not use the binary
protocol, so these are the SQL-level PREPARE / EXECUTE / DEALLOCATE / EXECUTE IMMEDIATE
(COM_QUERY); COM_STMT_* binary coverage is in the Rust mysql_async tests and in sysbench
(--db-ps-mode=auto) in test_sysbench.py. If mysql-connector-python is installed, its
prepared cursor (binary protocol) is exercised too."""

import subprocess
import shutil

import pymysql
import pytest

from conftest import HOST, unique


def cli(proxy, sql, port=None):
    r = subprocess.run(["mariadb", "--no-defaults", f"-h{HOST}", f"-P{port or proxy.rw_port}", "-uapp", "-papp",
                        "-D", "test", "-N", "-B", "-e", sql], capture_output=True, text=True, timeout=60)
    return r


def test_cli_prepare_execute_many(proxy, table):
    if shutil.which("mariadb") is None:
        pytest.skip("mariadb client not installed")
    t = table("ps")
    sql = (
        f"CREATE TABLE {t} (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(20), d DECIMAL(8,2));"
        f"PREPARE ins FROM 'INSERT INTO {t} (v, d) VALUES (?, ?)';"
        "SET @v = 'one', @d = 1.5; EXECUTE ins USING @v, @d;"
        "SET @v = 'two', @d = 2.25; EXECUTE ins USING @v, @d;"
        "EXECUTE ins USING 'three', 3;"
        "SELECT LAST_INSERT_ID();"
        "DEALLOCATE PREPARE ins;"
        f"PREPARE sel FROM 'SELECT id, v, d FROM {t} WHERE id >= ? ORDER BY id';"
        "EXECUTE sel USING 2;"
        "EXECUTE sel USING 3;"
        "DEALLOCATE PREPARE sel;"
    )
    r = cli(proxy, sql)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "3\n2\ttwo\t2.25\n3\tthree\t3.00\n3\tthree\t3.00\n"


def test_cli_prepare_error_passes_through(proxy):
    if shutil.which("mariadb") is None:
        pytest.skip("mariadb client not installed")
    r = cli(proxy, "PREPARE bad FROM 'SELECT * FROM no_such_ps_table'")
    assert r.returncode == 1
    assert "ERROR 1146 (42S02) at line 1: Table 'test.no_such_ps_table' doesn't exist" in r.stderr
    r = cli(proxy, "EXECUTE never_prepared")
    assert r.returncode == 1
    assert "ERROR 1243 (HY000)" in r.stderr and "never_prepared" in r.stderr


def test_prepare_persists_across_statements(db):
    with db.cursor() as cur:
        cur.execute("PREPARE sq FROM 'SELECT ? * ?'")
        for i in range(1, 6):
            cur.execute(f"SET @x = {i}")
            cur.execute("EXECUTE sq USING @x, @x")
            assert cur.fetchone() == (i * i,)
        cur.execute("DEALLOCATE PREPARE sq")


def test_prepared_statement_is_per_session(proxy):
    a, b = proxy.rw(), proxy.rw()
    try:
        with a.cursor() as ca, b.cursor() as cb:
            ca.execute("PREPARE mine FROM 'SELECT 1'")
            with pytest.raises(pymysql.MySQLError) as e:
                cb.execute("EXECUTE mine")
            assert e.value.args[0] == 1243
            ca.execute("EXECUTE mine")
            assert ca.fetchone() == (1,)
    finally:
        a.close()
        b.close()


def test_prepare_from_variable_and_many_rows(db):
    with db.cursor() as cur:
        cur.execute("SET @q = 'SELECT seq, REPEAT(''x'', seq % 50) FROM seq_1_to_5000 WHERE seq > ?'")
        cur.execute("PREPARE big FROM @q")
        cur.execute("EXECUTE big USING 10")
        rows = cur.fetchall()
        assert len(rows) == 4990 and rows[0] == (11, "x" * 11)
        cur.execute("DEALLOCATE PREPARE big")


def test_execute_immediate(db):
    with db.cursor() as cur:
        cur.execute("EXECUTE IMMEDIATE 'SELECT ?, ?' USING 'imm', 7")
        assert cur.fetchone() == ("imm", 7)


def test_prepared_call_with_out_param(db):
    p = unique("psproc")
    with db.cursor() as cur:
        cur.execute(f"CREATE PROCEDURE {p}(IN a INT, OUT b INT) BEGIN SET b = a * 3; SELECT a AS echoed; END")
        try:
            cur.execute(f"PREPARE pc FROM 'CALL {p}(?, ?)'")
            cur.execute("EXECUTE pc USING 14, @out")
            assert cur.fetchall() == ((14,),)
            while cur.nextset():
                pass
            cur.execute("SELECT @out")
            assert cur.fetchone() == (42,)
            cur.execute("DEALLOCATE PREPARE pc")
        finally:
            cur.execute(f"DROP PROCEDURE IF EXISTS {p}")


def test_prepared_statement_in_transaction(proxy, table):
    t = table("pstx")
    with proxy.rw(database="test") as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY)")
        cur.execute(f"PREPARE i FROM 'INSERT INTO {t} VALUES (?)'")
        c.begin()
        for i in range(10):
            cur.execute(f"EXECUTE i USING {i}")
        c.rollback()
        cur.execute(f"SELECT COUNT(*) FROM {t}")
        assert cur.fetchone() == (0,)
        c.begin()
        for i in range(10):
            cur.execute(f"EXECUTE i USING {i}")
        c.commit()
        cur.execute(f"SELECT COUNT(*) FROM {t}")
        assert cur.fetchone() == (10,)


# --- binary protocol with mysql-connector-python (optional) ----------------------------------

def _mysql_connector():
    try:
        import mysql.connector  # noqa: F401
        return mysql.connector
    except ImportError:
        return None


@pytest.mark.skipif(_mysql_connector() is None, reason="mysql-connector-python not installed")
def test_binary_protocol_prepared_cursor(proxy, table):
    mc = _mysql_connector()
    t = table("bin_ps")
    conn = mc.connect(host=HOST, port=proxy.rw_port, user="app", password="app", database="test",
                      use_pure=True, autocommit=True, ssl_disabled=True)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(30), d DOUBLE, b BLOB, dt DATETIME)")
        import datetime
        for i in range(50):
            cur.execute(f"INSERT INTO {t} VALUES (?, ?, ?, ?, ?)",
                        (i, f"v{i}", i / 4, bytes([i]) * i, datetime.datetime(2024, 1, 1, 0, 0, i)))
        cur.execute(f"SELECT id, v, d, b, dt FROM {t} WHERE id >= ? ORDER BY id", (45,))
        rows = cur.fetchall()
        assert [r[0] for r in rows] == [45, 46, 47, 48, 49]
        assert rows[0][1] in ("v45", b"v45") and rows[0][2] == 45 / 4
        assert bytes(rows[0][3]) == bytes([45]) * 45
        assert rows[0][4] == datetime.datetime(2024, 1, 1, 0, 0, 45)
        cur.execute("SELECT ? + 1", (41,))
        assert cur.fetchone()[0] == 42
        cur.close()
    finally:
        conn.close()


@pytest.mark.skipif(_mysql_connector() is None, reason="mysql-connector-python not installed")
def test_binary_protocol_nulls_errors_and_big_params(proxy, table):
    import hashlib
    import os
    mc = _mysql_connector()
    t = table("bin_ps2")
    conn = mc.connect(host=HOST, port=proxy.rw_port, user="app", password="app", database="test",
                      use_pure=True, autocommit=True, ssl_disabled=True)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(30) NULL, b LONGBLOB NULL)")
        cur.execute(f"INSERT INTO {t} VALUES (?, ?, ?)", (1, None, None))
        with pytest.raises(mc.errors.IntegrityError) as e:
            cur.execute(f"INSERT INTO {t} VALUES (?, ?, ?)", (1, "dup", None))
        assert e.value.errno == 1062
        # a 20 MiB parameter: the COM_STMT_EXECUTE packet spans two 16 MiB wire packets
        big = os.urandom(20 << 20)
        cur.execute(f"INSERT INTO {t} VALUES (?, ?, ?)", (2, "big", big))
        cur.execute(f"SELECT id, v, MD5(b), LENGTH(b) FROM {t} ORDER BY id")
        rows = cur.fetchall()
        assert rows[0][0] == 1 and rows[0][1] is None and rows[0][2] is None
        assert rows[1][0] == 2 and rows[1][2] in (hashlib.md5(big).hexdigest(), hashlib.md5(big).hexdigest().encode())
        assert rows[1][3] == 20 << 20
        # the same statement executed many times
        for i in range(100):
            cur.execute("SELECT ? * 2", (i,))
            assert cur.fetchone()[0] == i * 2
        cur.close()
    finally:
        conn.close()
