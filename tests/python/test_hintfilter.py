"""`hintfilter`: MaxScale's routing-hint comments (`-- maxscale route to master`, named hints,
the hint stack, `route to last`, hints of binary prepared statements) on the `rws_hints`
readwritesplit service of the `rws_proxy`, which lists a `hintfilter`.

Which server ran a read is told by `@@server_id` (1 = the primary db1, 2 = db2, 3 = db3)."""

import shutil
import subprocess

import pytest

from conftest import APP_PASSWORD, APP_USER, HOST
from rws_util import REPLICA_IDS, one, server_id


@pytest.fixture
def hints(rws_proxy):
    c = rws_proxy.service("rws_hints")
    yield c
    c.close()


def hint_counters(rws_proxy):
    f = next(f for f in rws_proxy.admin_get("/v1/filters") if f["name"] == "hints")
    assert f["module"] == "hintfilter"
    return f["diagnostics"]


def test_route_to_master_slave_and_server(rws_proxy, hints):
    before = hint_counters(rws_proxy)
    for _ in range(3):
        assert server_id(hints, "SELECT @@server_id -- maxscale route to master") == 1
        assert server_id(hints, "SELECT @@server_id /* maxscale route to server db2 */") == 2
        assert server_id(hints, "SELECT /* MaxScale Route To Server db3 */ @@server_id") == 3
        assert server_id(hints, "SELECT @@server_id # maxscale route to slave") in REPLICA_IDS
        # An application's own comment first does not hide the hint.
        assert server_id(hints, "/* app: orders */ SELECT @@server_id -- maxscale route to primary") == 1
        assert server_id(hints, "SELECT @@server_id") in REPLICA_IDS
    after = hint_counters(rws_proxy)
    assert after["hinted"] - before["hinted"] == 15, (before, after)


def test_text_that_is_not_a_comment_or_not_a_hint(rws_proxy, hints):
    before = hint_counters(rws_proxy)
    for _ in range(3):
        assert one(hints, "SELECT '-- maxscale route to master', @@server_id")[1] in REPLICA_IDS
        assert server_id(hints, "SELECT @@server_id -- maxscale route to nowhere") in REPLICA_IDS
    after = hint_counters(rws_proxy)
    assert after["hinted"] == before["hinted"], (before, after)
    assert after["ignored"] - before["ignored"] == 3, (before, after)


def test_named_hints_and_the_stack(rws_proxy, hints):
    assert server_id(hints, "SELECT @@server_id -- maxscale reports prepare route to server db3") in REPLICA_IDS
    # Pushed: this statement and the following ones, until `end`.
    assert server_id(hints, "SELECT @@server_id -- maxscale reports begin") == 3
    for _ in range(3):
        assert server_id(hints) == 3
    assert server_id(hints, "SELECT @@server_id -- maxscale begin route to master") == 1
    assert server_id(hints) == 1
    # A statement's own hint wins over the stack.
    assert server_id(hints, "SELECT @@server_id -- maxscale route to server db2") == 2
    assert server_id(hints, "SELECT @@server_id -- maxscale end") == 3
    assert server_id(hints, "SELECT @@server_id -- maxscale end") in REPLICA_IDS
    # Writes go to the primary whatever the stack says.
    assert server_id(hints, "SELECT @@server_id -- maxscale reports begin") == 3
    with hints.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE hint_tmp (a INT)")
        cur.execute("DROP TEMPORARY TABLE hint_tmp")
    assert server_id(hints, "SELECT @@server_id -- maxscale end") in REPLICA_IDS
    # Named hints and the stack belong to one session.
    with rws_proxy.service("rws_hints") as other:
        assert server_id(other, "SELECT @@server_id -- maxscale reports begin") in REPLICA_IDS


def test_route_to_last(rws_proxy, hints):
    for target in (2, 3, 2):
        assert server_id(hints, f"SELECT @@server_id -- maxscale route to server db{target}") == target
        for _ in range(3):
            assert server_id(hints, "SELECT @@server_id -- maxscale route to last") == target


def test_hints_do_not_move_a_transaction(rws_proxy, hints):
    with hints.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT @@server_id -- maxscale route to slave")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT @@server_id /* maxscale route to server db3 */")
        assert cur.fetchone() == (1,)
        cur.execute("COMMIT")


def test_replication_lag_hint_is_accepted(rws_proxy, hints):
    before = hint_counters(rws_proxy)
    # The sandbox's replicas do not lag: a generous limit leaves reads on them.
    for _ in range(3):
        got = server_id(hints, "SELECT @@server_id -- maxscale max_slave_replication_lag=30")
        assert got in REPLICA_IDS
    after = hint_counters(rws_proxy)
    assert after["hinted"] - before["hinted"] == 3, (before, after)


def test_binary_prepared_statements_keep_their_hint(rws_proxy):
    c = rws_proxy.raw("rws_hints")
    try:
        on_primary = c.stmt_prepare("SELECT @@server_id, ? -- maxscale route to master")
        on_db3 = c.stmt_prepare("SELECT @@server_id, ? /* maxscale route to server db3 */")
        plain = c.stmt_prepare("SELECT @@server_id, ?")
        for i in range(5):
            for stmt, expect in ((on_primary, {1}), (on_db3, {3}), (plain, REPLICA_IDS)):
                res = c.stmt_execute(stmt, [i])
                assert res[0][0] == "rows", res
                (sid, v), = res[0][2]
                assert sid in expect and v == i, (stmt, res)
    finally:
        c.close()


@pytest.mark.skipif(shutil.which("mariadb") is None, reason="mariadb client not installed")
def test_mariadb_cli_with_comments(rws_proxy):
    """As MaxScale's documentation shows it: the CLI strips comments unless `--comments`."""
    def cli(*args):
        r = subprocess.run(["mariadb", "-h", HOST, "-P", str(rws_proxy.ports["rws_hints"]),
                            f"-u{APP_USER}", f"-p{APP_PASSWORD}", "-N", "-B", *args],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()
    assert cli("--comments", "-e", "SELECT @@server_id -- maxscale route to server db3") == ["3"]
    assert cli("--comments", "-e", "SELECT @@server_id /* maxscale route to master */") == ["1"]


def test_check_rejects_options(rws_proxy, tmp_path):
    text = rws_proxy.config_path.read_text().replace(
        "  - { name: hints, module: hintfilter }",
        "  - { name: hints, module: hintfilter, route: master }")
    cfg = tmp_path / "bad-hints.yaml"
    cfg.write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "route: master" in l)
    r = subprocess.run([str(rws_proxy.binary), "check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"{cfg}:{line}:" in out and "unknown field `route`" in out, out
