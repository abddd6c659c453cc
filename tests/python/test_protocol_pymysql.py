"""The text protocol through the proxy with PyMySQL: results, errors, warnings, multi-
statements, multi-results, session state, transactions, LOAD DATA LOCAL INFILE."""

import datetime
import decimal
import hashlib
import os
import time

import pymysql
import pytest
from pymysql.constants import CLIENT

from conftest import direct, primary_exec, unique


def same_error_as_server(proxy, sql, db="test"):
    """Runs `sql` through the proxy and directly on the primary; returns both errors."""
    errs = []
    for conn in (proxy.rw(database=db), direct(database=db)):
        with conn, conn.cursor() as cur:
            with pytest.raises(pymysql.MySQLError) as e:
                cur.execute(sql)
            errs.append(e.value.args)
    return errs


def test_select_literals_and_types(db):
    with db.cursor() as cur:
        cur.execute(
            "SELECT 1, -2, 3.25, 'héllo ✓ 😀', NULL, CAST('2024-02-29' AS DATE), "
            "CAST('2024-02-29 13:14:15.123456' AS DATETIME(6)), CAST(12345678901234567890 AS DECIMAL(30,0)), "
            "X'00FF10', 1e300, CAST('12:34:56' AS TIME), b'101'"
        )
        row = cur.fetchone()
    assert row == (
        1, -2, decimal.Decimal("3.25"), "héllo ✓ 😀", None, datetime.date(2024, 2, 29),
        datetime.datetime(2024, 2, 29, 13, 14, 15, 123456), decimal.Decimal("12345678901234567890"),
        b"\x00\xff\x10", 1e300, datetime.timedelta(hours=12, minutes=34, seconds=56), b"\x05",
    )
    assert [d[0] for d in cur.description][:3] == ["1", "-2", "3.25"]


def test_column_metadata(db, table):
    t = table("meta")
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT UNSIGNED NOT NULL PRIMARY KEY AUTO_INCREMENT, "
                    f"name VARCHAR(30) CHARACTER SET utf8mb4, price DECIMAL(10,2), data BLOB)")
        cur.execute(f"SELECT id AS ident, name, price, data FROM {t}")
        assert cur.fetchall() == ()
        names = [d[0] for d in cur.description]
        assert names == ["ident", "name", "price", "data"]
        # field types: LONG, VAR_STRING, NEWDECIMAL, BLOB
        assert [d[1] for d in cur.description] == [3, 253, 246, 252]


def test_empty_result_and_many_rows(db):
    with db.cursor() as cur:
        cur.execute("SELECT 1 FROM DUAL WHERE 1 = 0")
        assert cur.fetchall() == ()
        cur.execute("SELECT seq, seq * 2 FROM seq_1_to_50000")
        rows = cur.fetchall()
    assert len(rows) == 50000 and rows[-1] == (50000, 100000)


def test_unbuffered_large_result(proxy):
    with proxy.rw(database="test", cursorclass=pymysql.cursors.SSCursor) as c, c.cursor() as cur:
        cur.execute("SELECT seq, REPEAT('x', 100) FROM seq_1_to_200000")
        n = 0
        for row in cur:
            n += 1
        assert n == 200000
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)


def test_error_1146_table_doesnt_exist(proxy):
    via_proxy, via_server = same_error_as_server(proxy, "SELECT * FROM no_such_table_here")
    assert via_proxy == (1146, "Table 'test.no_such_table_here' doesn't exist")
    assert via_proxy == via_server


def test_error_1064_syntax(proxy):
    via_proxy, via_server = same_error_as_server(proxy, "SELEC 1 FROMM nothing")
    assert via_proxy[0] == 1064
    assert via_proxy == via_server
    assert "near 'SELEC 1 FROMM nothing' at line 1" in via_proxy[1]


@pytest.mark.parametrize("sql", [
    "SELECT no_such_column FROM DUAL",                      # 1054
    "SELECT * FROM information_schema.nope",                # 1109
    "CREATE TABLE test.t_dup_col (a INT, a INT)",           # 1060
    "SELECT 1 UNION SELECT 1, 2",                           # 1222
    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom ✓ error', MYSQL_ERRNO = 1644",
])
def test_errors_pass_through_exactly(proxy, sql):
    via_proxy, via_server = same_error_as_server(proxy, sql)
    assert via_proxy == via_server


def test_error_sqlstate_passes_through(proxy):
    import rawmysql
    c = rawmysql.RawConn("127.0.0.1", proxy.rw_port)
    try:
        c.login("app", "app", db="test")
        with pytest.raises(rawmysql.ServerError) as e:
            c.query("SELECT * FROM no_such_tbl_sqlstate")
        assert (e.value.code, e.value.state) == (1146, "42S02")
        with pytest.raises(rawmysql.ServerError) as e:
            c.query("SIGNAL SQLSTATE 'HY123' SET MESSAGE_TEXT = 'x'")
        assert e.value.state == "HY123"
        assert c.scalar("SELECT 'still fine'") == "still fine"
    finally:
        c.close()


def test_connection_usable_after_errors(db):
    with db.cursor() as cur:
        for _ in range(3):
            with pytest.raises(pymysql.MySQLError):
                cur.execute("SELECT * FROM nope_nope")
            cur.execute("SELECT 7")
            assert cur.fetchone() == (7,)


def test_warnings_after_truncating_insert(db, table):
    t = table("warn")
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (c VARCHAR(3), n TINYINT)")
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(f"INSERT INTO {t} VALUES ('abcdef', 1000)")
        assert cur._result.warning_count == 2
        cur.execute("SHOW WARNINGS")
        w = cur.fetchall()
        assert w == (
            ("Warning", 1265, "Data truncated for column 'c' at row 1"),
            ("Warning", 1264, "Out of range value for column 'n' at row 1"),
        )
        cur.execute("SELECT @@warning_count")
        assert cur.fetchone() == (2,)
        cur.execute(f"SELECT * FROM {t}")
        assert cur.fetchall() == (("abc", 127),)


def test_strict_mode_error_instead_of_warning(db, table):
    t = table("strict")
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (c VARCHAR(3))")
        cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
        with pytest.raises(pymysql.err.DataError) as e:
            cur.execute(f"INSERT INTO {t} VALUES ('abcdef')")
        assert e.value.args == (1406, "Data too long for column 'c' at row 1")


def test_multi_statements_and_nextset(proxy, table):
    t = table("multi")
    with proxy.rw(database="test", client_flag=CLIENT.MULTI_STATEMENTS) as c, c.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {t} (id INT PRIMARY KEY AUTO_INCREMENT, v INT); "
            f"INSERT INTO {t} (v) VALUES (10), (20), (30); "
            f"SELECT v FROM {t} ORDER BY id; "
            f"SELECT 'two', 2; "
            f"UPDATE {t} SET v = v + 1; "
            f"SELECT SUM(v) FROM {t}"
        )
        assert cur.description is None       # CREATE
        assert cur.nextset()
        assert cur.rowcount == 3             # INSERT
        assert cur.nextset()
        assert cur.fetchall() == ((10,), (20,), (30,))
        assert cur.nextset()
        assert cur.fetchall() == (("two", 2),)
        assert cur.nextset()
        assert cur.rowcount == 3             # UPDATE
        assert cur.nextset()
        assert cur.fetchall() == ((decimal.Decimal(63),),)
        assert not cur.nextset()
        cur.execute("SELECT 'after'")
        assert cur.fetchone() == ("after",)


def test_multi_statement_error_in_the_middle(proxy):
    with proxy.rw(database="test", client_flag=CLIENT.MULTI_STATEMENTS) as c, c.cursor() as cur:
        cur.execute("SELECT 1; SELECT * FROM no_such_multi; SELECT 3")
        assert cur.fetchall() == ((1,),)
        with pytest.raises(pymysql.err.ProgrammingError) as e:
            cur.nextset()
        assert e.value.args[0] == 1146
        # the statements after the error are not run; the connection carries on
        cur.execute("SELECT 4")
        assert cur.fetchone() == (4,)


def test_multi_statements_disabled_by_default(proxy):
    # Without CLIENT_MULTI_STATEMENTS the server rejects ';'-joined statements (1064).
    with proxy.rw(database="test") as c, c.cursor() as cur:
        with pytest.raises(pymysql.err.ProgrammingError) as e:
            cur.execute("SELECT 1; SELECT 2")
        assert e.value.args[0] == 1064
        cur.execute("SELECT 5")
        assert cur.fetchone() == (5,)


def test_stored_procedure_multiple_result_sets(db):
    p = unique("proc")
    with db.cursor() as cur:
        cur.execute(f"CREATE PROCEDURE {p}(IN n INT) BEGIN SELECT n; SELECT n * 2, 'x'; SELECT seq FROM seq_1_to_3; END")
        try:
            cur.execute(f"CALL {p}(21)")
            assert cur.fetchall() == ((21,),)
            assert cur.nextset()
            assert cur.fetchall() == ((42, "x"),)
            assert cur.nextset()
            assert cur.fetchall() == ((1,), (2,), (3,))
            assert cur.nextset()   # the CALL's own OK
            assert not cur.nextset()
            cur.execute("SELECT 'ok'")
            assert cur.fetchone() == ("ok",)
        finally:
            cur.execute(f"DROP PROCEDURE IF EXISTS {p}")


def test_use_and_select_db(proxy):
    with proxy.rw() as c, c.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == (None,)
        cur.execute("USE sbtest")
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("sbtest",)
        c.select_db("test")  # COM_INIT_DB
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("test",)
        with pytest.raises(pymysql.err.OperationalError) as e:
            c.select_db("no_such_db_init")
        assert e.value.args == (1049, "Unknown database 'no_such_db_init'")
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("test",)


def test_ping(proxy):
    with proxy.rw() as c:
        for _ in range(5):
            c.ping(reconnect=False)
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)


def test_ping_on_ro(proxy):
    with proxy.ro() as c:
        c.ping(reconnect=False)


def test_transaction_commit_and_rollback(proxy, table):
    t = table("txn")
    with proxy.rw(database="test") as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY) ENGINE=InnoDB")
        c.begin()
        cur.execute(f"INSERT INTO {t} VALUES (1)")
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (1,)
        c.rollback()
        cur.execute(f"SELECT COUNT(*) FROM {t}")
        assert cur.fetchone() == (0,)
        c.begin()
        cur.execute(f"INSERT INTO {t} VALUES (2)")
        # not visible from another connection before commit
        assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((0,),)
        c.commit()
        assert primary_exec(f"SELECT id FROM test.{t}") == ((2,),)


def test_autocommit_off(proxy, table):
    t = table("ac")
    primary_exec(f"CREATE TABLE test.{t} (id INT PRIMARY KEY) ENGINE=InnoDB")
    with proxy.rw(database="test", autocommit=False) as c, c.cursor() as cur:
        cur.execute("SELECT @@autocommit")
        assert cur.fetchone() == (0,)
        cur.execute(f"INSERT INTO {t} VALUES (1)")
        assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((0,),)
        c.commit()
        assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((1,),)
        cur.execute(f"INSERT INTO {t} VALUES (2)")
        c.rollback()
        c.autocommit(True)
        cur.execute("SELECT @@autocommit")
        assert cur.fetchone() == (1,)
    assert primary_exec(f"SELECT id FROM test.{t}") == ((1,),)


def test_uncommitted_transaction_rolled_back_on_disconnect(proxy, table):
    t = table("disc")
    primary_exec(f"CREATE TABLE test.{t} (id INT PRIMARY KEY) ENGINE=InnoDB")
    c = proxy.rw(database="test", autocommit=False)
    with c.cursor() as cur:
        cur.execute(f"INSERT INTO {t} VALUES (1)")
    c.close()
    assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((0,),)


def test_last_insert_id(db, table):
    t = table("lid")
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY AUTO_INCREMENT, v INT) AUTO_INCREMENT=1000")
        cur.execute(f"INSERT INTO {t} (v) VALUES (1)")
        assert cur.lastrowid == 1000
        assert db.insert_id() == 1000
        cur.execute(f"INSERT INTO {t} (v) VALUES (2), (3), (4)")
        assert cur.lastrowid == 1001  # first id of a multi-row insert
        cur.execute("SELECT LAST_INSERT_ID()")
        assert cur.fetchone() == (1001,)
        cur.execute("SELECT LAST_INSERT_ID(777)")
        cur.execute("SELECT LAST_INSERT_ID()")
        assert cur.fetchone() == (777,)


def test_affected_rows(db, table):
    t = table("aff")
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")
        assert cur.execute(f"INSERT INTO {t} VALUES (1, 1), (2, 2), (3, 3)") == 3
        assert cur.execute(f"UPDATE {t} SET v = 1") == 2  # one row already had v = 1
        assert cur.execute(f"DELETE FROM {t} WHERE id > 1") == 2
        assert cur.execute(f"INSERT INTO {t} VALUES (1, 5) ON DUPLICATE KEY UPDATE v = 5") == 2


def test_found_rows_client_flag(proxy, table):
    t = table("frows")
    with proxy.rw(database="test", client_flag=CLIENT.FOUND_ROWS) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")
        cur.execute(f"INSERT INTO {t} VALUES (1, 1), (2, 2)")
        # CLIENT_FOUND_ROWS: matched rows, not changed rows
        assert cur.execute(f"UPDATE {t} SET v = 1") == 2


def test_temporary_tables(db):
    with db.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE tmp_py (id INT, v VARCHAR(10))")
        cur.execute("INSERT INTO tmp_py VALUES (1, 'a'), (2, 'b')")
        cur.execute("SELECT COUNT(*) FROM tmp_py")
        assert cur.fetchone() == (2,)
        cur.execute("SELECT v FROM tmp_py WHERE id = 2")
        assert cur.fetchone() == ("b",)
    # another session does not see it
    with pytest.raises(pymysql.err.ProgrammingError):
        primary_exec("SELECT * FROM test.tmp_py")


def test_session_variables_persist(db):
    with db.cursor() as cur:
        cur.execute("SET @a = 42, @b = 'text'")
        cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES', SESSION time_zone = '+05:30'")
        cur.execute("SET NAMES latin1")
        cur.execute("SET NAMES utf8mb4")
        cur.execute("SET SESSION group_concat_max_len = 12345")
        for _ in range(3):
            cur.execute("SELECT @a, @b, @@sql_mode, @@time_zone, @@group_concat_max_len, @@character_set_client")
            assert cur.fetchone() == (42, "text", "ANSI_QUOTES", "+05:30", 12345, "utf8mb4")
    with db.cursor() as cur:
        # with ANSI_QUOTES in effect, "..." is an identifier: an unknown column
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute('SELECT "nocol"')
        assert e.value.args[0] == 1054


def test_sessions_are_isolated(proxy):
    a, b = proxy.rw(), proxy.rw()
    try:
        with a.cursor() as ca, b.cursor() as cb:
            ca.execute("SET @x = 'A'")
            cb.execute("SET @x = 'B'")
            ca.execute("SELECT @x, CONNECTION_ID()")
            xa, ida = ca.fetchone()
            cb.execute("SELECT @x, CONNECTION_ID()")
            xb, idb = cb.fetchone()
            assert (xa, xb) == ("A", "B") and ida != idb
    finally:
        a.close()
        b.close()


def test_get_lock_held_by_session(proxy):
    name = unique("lock")
    a, b = proxy.rw(), proxy.rw()
    try:
        with a.cursor() as ca, b.cursor() as cb:
            ca.execute("SELECT GET_LOCK(%s, 0)", (name,))
            assert ca.fetchone() == (1,)
            cb.execute("SELECT GET_LOCK(%s, 0)", (name,))
            assert cb.fetchone() == (0,)
            ca.execute("SELECT RELEASE_LOCK(%s)", (name,))
            cb.execute("SELECT GET_LOCK(%s, 0)", (name,))
            assert cb.fetchone() == (1,)
    finally:
        a.close()
        b.close()


def test_load_data_local_infile(proxy, table, tmp_path):
    t = table("ldi")
    f = tmp_path / "rows.csv"
    lines = [f"{i},name_{i},{i * 1.5}" for i in range(1, 20001)]
    f.write_text("\n".join(lines) + "\n")
    with proxy.rw(database="test", local_infile=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(40), x DOUBLE)")
        n = cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {t} FIELDS TERMINATED BY ','", (str(f),))
        assert n == 20000
        cur.execute(f"SELECT COUNT(*), SUM(id), MAX(name) FROM {t}")
        assert cur.fetchone() == (20000, 200010000, "name_9999")
        cur.execute("SELECT 'after infile'")
        assert cur.fetchone() == ("after infile",)


def test_load_data_local_infile_large(proxy, table, tmp_path):
    # ~40 MiB file: the client sends it in many packets; the proxy must relay all of them.
    t = table("ldibig")
    f = tmp_path / "big.tsv"
    payload = "y" * 200
    with open(f, "w") as out:
        for i in range(200000):
            out.write(f"{i}\t{payload}\n")
    with proxy.rw(database="test", local_infile=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(255))")
        n = cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {t}", (str(f),))
        assert n == 200000
        cur.execute(f"SELECT COUNT(*), SUM(LENGTH(v)) FROM {t}")
        assert cur.fetchone() == (200000, 200000 * 200)


def test_load_data_local_infile_missing_file(proxy, table):
    t = table("ldimiss")
    with proxy.rw(database="test", local_infile=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT)")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute(f"LOAD DATA LOCAL INFILE '/nonexistent/file.csv' INTO TABLE {t}")
        # the client sent an empty packet; the server answers with an error or OK; the session
        # must stay in sync either way
        cur.execute("SELECT 'in sync'")
        assert cur.fetchone() == ("in sync",)


def test_load_data_local_infile_refused_without_client_flag(proxy, table, tmp_path):
    t = table("ldino")
    f = tmp_path / "x.csv"
    f.write_text("1\n")
    with proxy.rw(database="test", local_infile=False) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT)")
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {t}", (str(f),))
        # 1148 (MariaDB: "The used command is not allowed with this MariaDB version") or 4166
        assert e.value.args[0] in (1148, 4166), e.value.args
        cur.execute("SELECT 'still ok'")
        assert cur.fetchone() == ("still ok",)


def test_binary_data_roundtrip(db, table):
    t = table("bin")
    data = bytes(range(256)) * 1000 + os.urandom(50000)
    with db.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)")
        cur.execute(f"INSERT INTO {t} VALUES (1, %s)", (data,))
        cur.execute(f"SELECT b, MD5(b) FROM {t} WHERE id = 1")
        b, md5 = cur.fetchone()
    assert b == data
    assert md5 == hashlib.md5(data).hexdigest()


def test_charset_latin1_connection(proxy):
    with proxy.rw(charset="latin1") as c, c.cursor() as cur:
        cur.execute("SELECT @@character_set_client, @@character_set_results, 'café'")
        assert cur.fetchone() == ("latin1", "latin1", "café")


def test_show_statements(db):
    with db.cursor() as cur:
        cur.execute("SHOW DATABASES")
        dbs = {r[0] for r in cur.fetchall()}
        assert {"test", "sbtest", "mysql", "information_schema"} <= dbs
        cur.execute("SHOW VARIABLES LIKE 'max_allowed_packet'")
        assert cur.fetchone() == ("max_allowed_packet", "67108864")
        cur.execute("SHOW PROCESSLIST")
        assert len(cur.fetchall()) >= 1
        cur.execute("SHOW SESSION STATUS LIKE 'Com_select'")
        assert cur.fetchone()[0] == "Com_select"


def test_sql_calc_found_rows(db):
    with db.cursor() as cur:
        cur.execute("SELECT SQL_CALC_FOUND_ROWS seq FROM seq_1_to_100 LIMIT 5")
        assert len(cur.fetchall()) == 5
        cur.execute("SELECT FOUND_ROWS()")
        assert cur.fetchone() == (100,)


def test_text_prepare_execute_via_pymysql(db):
    with db.cursor() as cur:
        cur.execute("PREPARE s1 FROM 'SELECT ? + ?, CONCAT(?, ?)'")
        cur.execute("SET @a = 40, @b = 2, @c = 'ab', @d = 'cd'")
        cur.execute("EXECUTE s1 USING @a, @b, @c, @d")
        assert cur.fetchone() == (42, "abcd")
        cur.execute("DEALLOCATE PREPARE s1")
        with pytest.raises(pymysql.MySQLError) as e:
            cur.execute("EXECUTE s1 USING @a, @b, @c, @d")
        assert e.value.args[0] == 1243


def test_reconnect_after_server_side_close(proxy):
    # wait_timeout: the backend closes the idle session; the client gets an error on the next
    # statement (2013/2006/4031), and PyMySQL's ping(reconnect=True) gets a fresh session.
    c = proxy.rw()
    try:
        with c.cursor() as cur:
            cur.execute("SET SESSION wait_timeout = 1")
        time.sleep(2.5)
        with pytest.raises(pymysql.err.OperationalError) as e:
            with c.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
        assert e.value.args[0] in (2013, 2006, 4031), e.value.args
        c.ping(reconnect=True)
        with c.cursor() as cur:
            cur.execute("SELECT 2")
            assert cur.fetchone() == (2,)
    finally:
        c.close()
