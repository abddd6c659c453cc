"""Many clients at once: 200 concurrent sessions (threads) each running a few queries, held
open together, on both listeners; then the proxy still serves normally."""

import threading

import pymysql

from conftest import HOST


def test_200_concurrent_sessions(proxy):
    n = 200
    barrier = threading.Barrier(n, timeout=120)
    errors = []
    results = [None] * n

    def worker(i):
        port = proxy.rw_port if i % 2 == 0 else proxy.ro_port
        try:
            c = pymysql.connect(host=HOST, port=port, user="app", password="app", database="test",
                                connect_timeout=30, read_timeout=60, autocommit=True)
        except Exception as e:  # noqa: BLE001
            errors.append((i, "connect", repr(e)))
            try:
                barrier.abort()
            except Exception:
                pass
            return
        try:
            with c.cursor() as cur:
                cur.execute("SET @me = %s", (i,))
                barrier.wait()  # all 200 sessions are open at the same time here
                for k in range(5):
                    cur.execute("SELECT @me, %s, @@server_id, SUM(seq) FROM seq_1_to_1000", (k,))
                    me, kk, sid, s = cur.fetchone()
                    assert (me, kk, int(s)) == (i, k, 500500), (me, kk, s)
                    assert (sid == 1) if i % 2 == 0 else (sid in (2, 3)), sid
                results[i] = c.thread_id()
        except Exception as e:  # noqa: BLE001
            errors.append((i, "query", repr(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, f"{len(errors)} sessions failed, first: {errors[:5]}"
    ids = [r for r in results if r is not None]
    assert len(ids) == n
    assert len(set(ids)) == n, "proxy connection ids must be unique among live sessions"
    proxy.assert_serving()


def test_connection_churn(proxy):
    # 8 threads each connecting and disconnecting 25 times.
    errors = []

    def worker():
        for _ in range(25):
            try:
                with proxy.rw() as c, c.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchall()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    proxy.assert_serving()
