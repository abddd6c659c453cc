"""readwritesplit causal reads (read-your-writes): a session INSERTs a row, then at once reads
it back, 1,000 times.

- `causal_reads: local` (service `rws_local`): a replica read waits for the session's last
  write (MASTER_GTID_WAIT): zero stale reads, and the reads still run mostly on the replicas;
- `causal_reads: fast` (`rws_fast`): reads go where the monitor saw the write, else to the
  primary: zero stale reads;
- `causal_reads: none` (`rws_none`): reads go to the replicas as they are; the stale reads are
  only counted and printed (replication in the sandbox may well be fast enough for none)."""

import collections
import time

import pytest

from conftest import primary_exec
from rws_util import REPLICA_IDS, Counters, RwsTable

N = 1000


@pytest.fixture
def tables():
    t = RwsTable("rws_causal")
    yield t
    t.drop()


def insert_then_read(rws_proxy, service, table, n=N):
    """Returns (stale reads, Counter of the server ids that answered the reads, seconds)."""
    stale = 0
    ids = collections.Counter()
    t0 = time.monotonic()
    with rws_proxy.service(service) as c, c.cursor() as cur:
        for i in range(n):
            cur.execute(f"INSERT INTO {table} (id, v) VALUES (%s, %s)", (i, i * 7))
            cur.execute(f"SELECT v, @@server_id FROM {table} WHERE id = %s", (i,))
            row = cur.fetchone()
            if row is None:
                stale += 1
                cur.execute("SELECT @@server_id")
                ids[("stale", cur.fetchone()[0])] += 1
            else:
                assert row[0] == i * 7
                ids[row[1]] += 1
    return stale, ids, time.monotonic() - t0


def update_then_read(rws_proxy, service, table, n):
    stale = 0
    ids = collections.Counter()
    with rws_proxy.service(service) as c, c.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (id, v) VALUES (0, 0)")
        for i in range(1, n + 1):
            cur.execute(f"UPDATE {table} SET v = %s WHERE id = 0", (i,))
            cur.execute(f"SELECT v, @@server_id FROM {table} WHERE id = 0")
            v, sid = cur.fetchone()
            ids[sid] += 1
            if v != i:
                stale += 1
    return stale, ids


def test_causal_reads_local_no_stale_reads(rws_proxy, tables):
    t = tables("id INT PRIMARY KEY, v INT")
    counters = Counters(rws_proxy)
    stale, ids, took = insert_then_read(rws_proxy, "rws_local", t)
    delta = counters.delta()
    print(f"\ncausal_reads=local: {stale} stale reads of {N}; reads answered by {dict(ids)}; "
          f"counters {delta}; {took:.1f}s")
    assert stale == 0, f"causal_reads=local gave {stale} stale reads of {N} ({dict(ids)})"
    on_replicas = sum(v for k, v in ids.items() if k in REPLICA_IDS)
    assert on_replicas > N // 2, f"causal reads ran mostly on the primary: {dict(ids)}"
    # the counters agree: the primary ran the N inserts (and the reads that fell back to it)
    assert delta["db1"] >= N and delta["db2"] + delta["db3"] >= on_replicas, delta
    assert primary_exec(f"SELECT COUNT(*) FROM test.{t}") == ((N,),)


def test_causal_reads_local_after_update(rws_proxy, tables):
    t = tables("id INT PRIMARY KEY, v INT")
    stale, ids = update_then_read(rws_proxy, "rws_local", t, 300)
    print(f"\ncausal_reads=local (UPDATE): {stale} stale of 300; reads answered by {dict(ids)}")
    assert stale == 0, f"{stale} stale reads ({dict(ids)})"
    assert sum(v for k, v in ids.items() if k in REPLICA_IDS) > 150, dict(ids)


def test_causal_reads_fast_no_stale_reads(rws_proxy, tables):
    t = tables("id INT PRIMARY KEY, v INT")
    stale, ids, took = insert_then_read(rws_proxy, "rws_fast", t)
    print(f"\ncausal_reads=fast: {stale} stale reads of {N}; reads answered by {dict(ids)}; {took:.1f}s")
    assert stale == 0, f"causal_reads=fast gave {stale} stale reads of {N} ({dict(ids)})"


def test_causal_reads_none_counts_stale_reads(rws_proxy, tables):
    t = tables("id INT PRIMARY KEY, v INT")
    stale, ids, took = insert_then_read(rws_proxy, "rws_none", t)
    print(f"\ncausal_reads=none: {stale} stale reads of {N}; reads answered by {dict(ids)}; {took:.1f}s")
    # without causal reads every autocommit read goes to a replica, stale or not
    assert all((k in REPLICA_IDS) or (isinstance(k, tuple) and k[1] in REPLICA_IDS) for k in ids), dict(ids)


def test_a_read_the_replicas_cannot_catch_up_with_runs_on_the_primary(rws_proxy, tables):
    """Replicas that do not reach the session's last write within causal_reads_timeout: the
    read runs where the router's plan says (the primary) and sees the write. A read lock on
    the table holds each replica's SQL thread back while both replication threads keep
    running, so the monitor goes on seeing healthy replicas and the router picks one."""
    from conftest import REPLICA_PORTS, direct, wait_replicated
    t = tables("id INT PRIMARY KEY, v INT")
    wait_replicated()
    locks = [direct(port, database="test") for port in REPLICA_PORTS]
    try:
        for c in locks:
            c.cursor().execute(f"LOCK TABLES {t} READ")
        with rws_proxy.service("rws_local") as c, c.cursor() as cur:
            cur.execute(f"INSERT INTO {t} (id, v) VALUES (1, 7)")
            offset = rws_proxy.log_size()
            cur.execute(f"SELECT v, @@server_id FROM {t} WHERE id = 1")
            assert cur.fetchone() == (7, 1)
        assert "causal read: the replica is behind" in rws_proxy.log_since(offset)
    finally:
        for c in locks:
            c.close()
        wait_replicated()
        rws_proxy.wait_healthy(30)
