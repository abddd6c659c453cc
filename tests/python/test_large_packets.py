"""Packets of 16 MiB and more (split into 0xFFFFFF-byte wire packets) in both directions,
around the exact boundaries. The sandbox sets max_allowed_packet=64M."""

import hashlib
import os

import pymysql
import pytest

import rawmysql

MAX = 0xFFFFFF  # 16 MiB - 1: the largest payload of one wire packet
MIB = 1 << 20


def big_conn(proxy, **kw):
    return proxy.rw(database="test", max_allowed_packet=64 * MIB, read_timeout=120, write_timeout=120, **kw)


@pytest.mark.parametrize("length", [MAX - 5, MAX - 4, MAX - 3, MAX + 1, 20 * MIB])
def test_large_result_row(proxy, length):
    # A row packet holding one string of `length` bytes has payload length + 4 (0xfd + 3-byte
    # length) below 2^24: MAX-4 gives a payload of exactly 0xFFFFFF (then an empty packet),
    # MAX-3 one byte more.
    with big_conn(proxy) as c, c.cursor() as cur:
        cur.execute(f"SELECT REPEAT('a', {length}), 'tail'")
        v, tail = cur.fetchone()
        assert len(v) == length and tail == "tail"
        assert v.count("a") == length
        cur.execute("SELECT 'next'")
        assert cur.fetchone() == ("next",)


@pytest.mark.parametrize("payload_len", [MAX - 1, MAX, MAX + 1, 2 * MAX, 2 * MAX + 1])
def test_large_query_packet(proxy, payload_len):
    # A COM_QUERY whose payload (command byte + SQL) is exactly payload_len bytes.
    head, tail = "SELECT LENGTH('", "'), MD5('x')"
    n = payload_len - 1 - len(head) - len(tail)
    sql = head + "b" * n + tail
    assert 1 + len(sql) == payload_len
    with big_conn(proxy) as c, c.cursor() as cur:
        cur.execute(sql)
        assert cur.fetchone() == (n, hashlib.md5(b"x").hexdigest())
        cur.execute("SELECT 'next'")
        assert cur.fetchone() == ("next",)


@pytest.mark.parametrize("size", [MAX - 1, MAX, MAX + 1, 20 * MIB])
def test_insert_and_select_large_blob(proxy, table, size):
    t = table("big")
    data = os.urandom(size)
    digest = hashlib.md5(data).hexdigest()
    with big_conn(proxy) as c, c.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO {t} VALUES (1, %s)", (data,))
        cur.execute(f"SELECT LENGTH(b), MD5(b) FROM {t} WHERE id = 1")
        assert cur.fetchone() == (size, digest)
        cur.execute(f"SELECT b FROM {t} WHERE id = 1")
        back = cur.fetchone()[0]
        assert len(back) == size and hashlib.md5(back).hexdigest() == digest
        del back


def test_large_rows_multi_result(proxy):
    # Several big rows, then a second result set (multi-statement), then a normal query.
    from pymysql.constants import CLIENT
    with big_conn(proxy, client_flag=CLIENT.MULTI_STATEMENTS) as c, c.cursor() as cur:
        cur.execute(f"SELECT REPEAT(ELT(seq + 1, 'A', 'B', 'C'), {MAX - 4}) FROM seq_0_to_2; SELECT 'second'")
        rows = cur.fetchall()
        assert [len(r[0]) for r in rows] == [MAX - 4] * 3
        assert [r[0][0] for r in rows] == ["A", "B", "C"]
        assert cur.nextset()
        assert cur.fetchall() == (("second",),)
        del rows


def test_large_packet_raw_continuation(proxy):
    # Raw framing: one COM_QUERY of exactly 0xFFFFFF payload bytes is sent as a full packet
    # plus an empty one; the reply comes back intact.
    c = rawmysql.RawConn("127.0.0.1", proxy.rw_port, timeout=60)
    try:
        c.login("app", "app", db="test")
        head, tail = "SELECT LENGTH('", "')"
        n = MAX - 1 - len(head) - len(tail)
        c.command(rawmysql.COM_QUERY, (head + "z" * n + tail).encode())
        kind, cols, rows, status = c.read_result()
        assert rows == [(str(n),)]
        assert c.scalar("SELECT 'after'") == "after"
    finally:
        c.close()


def test_packet_above_max_allowed_packet(proxy):
    # A 65 MiB query exceeds the server's max_allowed_packet (64M): the server answers 1153
    # and closes; through the proxy the client gets an error and the proxy carries on.
    sql = "SELECT LENGTH('" + "q" * (65 * MIB) + "')"
    c = proxy.rw(max_allowed_packet=128 * MIB, read_timeout=60, write_timeout=60)
    try:
        with pytest.raises(pymysql.MySQLError) as e:
            with c.cursor() as cur:
                cur.execute(sql)
                cur.fetchall()
        assert e.value.args[0] in (1153, 2013, 2006), e.value.args
    finally:
        try:
            c.close()
        except Exception:
            pass
    del sql
    proxy.assert_serving()


def test_proxy_answer_to_a_multi_frame_command_has_the_next_sequence_id(proxy):
    # A command the proxy answers itself (an untranslatable KILL) of 2 wire packets: the answer
    # carries sequence id 2, as a server's would, or the client drops the connection.
    c = rawmysql.RawConn("127.0.0.1", proxy.rw_port, timeout=60)
    try:
        c.login("app", "app")
        sql = b"KILL (SELECT 1) /*" + b"k" * MAX + b"*/"
        c.command(rawmysql.COM_QUERY, sql)
        payload = c.read_packet()
        assert payload[0] == 0xFF and c.seq == 3, (payload[:60], c.seq)
        assert c.scalar("SELECT 'after'") == "after"
    finally:
        c.close()
