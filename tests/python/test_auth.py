"""Client authentication through the proxy: accounts come from the backends' mysql.user, the
proxy checks mysql_native_password scrambles itself, errors carry the server's codes and
wording, and new accounts work within seconds (reload on a failed login)."""

import time

import pymysql
import pytest

import rawmysql
from conftest import HOST, direct, unique


def err_of(excinfo):
    return excinfo.value.args[0], excinfo.value.args[1]


def test_login_ok_reports_user(proxy):
    with proxy.rw() as c, c.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), USER() LIKE 'app@127.0.0.1%'")
        assert cur.fetchone() == ("app@127.0.0.1", 1)


def test_wrong_password_1045(proxy):
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(password="wrong")
    assert err_of(e) == (1045, "Access denied for user 'app'@'127.0.0.1' (using password: YES)")


def test_empty_password_1045_using_password_no(proxy):
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(password="")
    assert err_of(e) == (1045, "Access denied for user 'app'@'127.0.0.1' (using password: NO)")


def test_unknown_user_1045(proxy):
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user="nosuchuser_x", password="x")
    assert err_of(e) == (1045, "Access denied for user 'nosuchuser_x'@'127.0.0.1' (using password: YES)")


def test_wrong_password_on_ro_listener_1045(proxy):
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.ro(password="nope")
    assert err_of(e) == (1045, "Access denied for user 'app'@'127.0.0.1' (using password: YES)")


def test_unknown_database_1049(proxy):
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(database="no_such_db_xyz")
    assert err_of(e) == (1049, "Unknown database 'no_such_db_xyz'")


def test_connect_with_db(proxy):
    with proxy.rw(database="sbtest") as c, c.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("sbtest",)


def test_limited_user_db_without_grant_1044(proxy):
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user="limited", password="limited", database="sbtest")
    assert err_of(e) == (1044, "Access denied for user 'limited'@'127.0.0.1' to database 'sbtest'")


def test_limited_user_allowed_db(proxy):
    with proxy.rw(user="limited", password="limited", database="test") as c, c.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), DATABASE()")
        assert cur.fetchone() == ("limited@127.0.0.1", "test")
        # USE of a database without a grant: the server's own 1044
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute("USE sbtest")
        assert err_of(e) == (1044, "Access denied for user 'limited'@'127.0.0.1' to database 'sbtest'")
        with pytest.raises(pymysql.err.OperationalError) as e:
            c.select_db("sbtest")
        assert e.value.args[0] == 1044
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("test",)


def test_limited_user_no_db_then_select_on_other_db_denied(proxy):
    with proxy.rw(user="limited", password="limited") as c, c.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute("SELECT * FROM sbtest.nosuch")
        # 1142 SELECT command denied ... (the server decides, the proxy passes it on)
        assert e.value.args[0] == 1142, e.value.args


def test_host_not_allowed_1130(proxy):
    # 127.0.0.2 is loopback too, but no account has host 127.0.0.2 or '%'.
    with pytest.raises(pymysql.err.OperationalError) as e:
        pymysql.connect(host=HOST, port=proxy.rw_port, user="app", password="app",
                        bind_address="127.0.0.2", connect_timeout=10)
    assert err_of(e) == (1130, "Host '127.0.0.2' is not allowed to connect to this MariaDB server")


def test_host_not_allowed_1130_raw(proxy):
    # The server refuses such a host before its handshake (ERR with sequence id 0); the proxy
    # may do the same or refuse after the handshake response. Either way: 1130, then close.
    c = rawmysql.RawConn(HOST, proxy.rw_port, source_address=("127.0.0.2", 0))
    try:
        with pytest.raises(rawmysql.ServerError) as e:
            c.read_handshake()
            c.handshake_response("app", "app")
            c.finish_auth("app")
        assert e.value.code == 1130, e.value
        assert e.value.message == "Host '127.0.0.2' is not allowed to connect to this MariaDB server"
        assert c.is_closed(5)
    finally:
        c.close()


def test_new_user_can_log_in_within_3s(proxy, make_user):
    # The first attempt fails (unknown to the proxy's cache) and triggers a reload; the user
    # must be able to log in within 3 s of being created on the primary.
    name = make_user(password="s3cret", grants=("SELECT ON test.*",))
    deadline = time.monotonic() + 3.0
    last = None
    while True:
        try:
            with proxy.rw(user=name, password="s3cret", database="test") as c, c.cursor() as cur:
                cur.execute("SELECT CURRENT_USER()")
                assert cur.fetchone() == (f"{name}@127.0.0.1",)
                break
        except pymysql.err.OperationalError as e:
            last = e
            if time.monotonic() > deadline:
                pytest.fail(f"new user could not log in within 3 s: {last}")
            time.sleep(0.2)


def test_new_user_on_ro_listener_within_3s(proxy, make_user):
    name = make_user(password="pw2", grants=("SELECT ON test.*",))
    # Replicas receive the account through replication; the proxy may load accounts from
    # any server. Either way the login must work within a few seconds.
    deadline = time.monotonic() + 5.0
    while True:
        try:
            with proxy.ro(user=name, password="pw2") as c, c.cursor() as cur:
                cur.execute("SELECT CURRENT_USER(), @@server_id")
                u, sid = cur.fetchone()
                assert u == f"{name}@127.0.0.1" and sid in (2, 3)
                break
        except pymysql.err.OperationalError as e:
            if time.monotonic() > deadline:
                pytest.fail(f"new user could not log in through ro within 5 s: {e}")
            time.sleep(0.2)


def login_eventually(proxy, user, password, timeout=3.0, **kw):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proxy.rw(user=user, password=password, **kw)
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_password_change_takes_effect(proxy, make_user):
    name = make_user(password="old", grants=("SELECT ON test.*",))
    login_eventually(proxy, name, "old").close()
    with direct() as c, c.cursor() as cur:
        cur.execute(f"ALTER USER '{name}'@'127.0.0.1' IDENTIFIED BY 'new'")
    login_eventually(proxy, name, "new").close()
    # the old password must not work any more (neither with the proxy nor the backend)
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user=name, password="old")
    assert err_of(e) == (1045, f"Access denied for user '{name}'@'127.0.0.1' (using password: YES)")


def test_dropped_user_cannot_log_in(proxy, make_user):
    name = make_user(password="pw", grants=("SELECT ON test.*",))
    login_eventually(proxy, name, "pw").close()
    with direct() as c, c.cursor() as cur:
        cur.execute(f"DROP USER '{name}'@'127.0.0.1'")
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user=name, password="pw")
    assert e.value.args[0] == 1045, e.value.args


def test_user_with_empty_password(proxy, make_user):
    name = make_user(password="", grants=("SELECT ON test.*",))
    c = login_eventually(proxy, name, "")
    with c, c.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == (f"{name}@127.0.0.1",)
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user=name, password="notempty")
    assert err_of(e) == (1045, f"Access denied for user '{name}'@'127.0.0.1' (using password: YES)")


@pytest.mark.parametrize("host_pattern", ["%", "127.0.0.%", "127.%"])
def test_host_patterns(proxy, make_user, host_pattern):
    name = make_user(password="hp", grants=("SELECT ON test.*",), host=host_pattern)
    c = login_eventually(proxy, name, "hp")
    with c, c.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == (f"{name}@{host_pattern}",)


def test_wildcard_host_user_from_127_0_0_2(proxy, make_user):
    # '%' admits 127.0.0.2 too (where the sandbox's own accounts do not).
    name = make_user(password="wc", grants=("SELECT ON test.*",), host="%")
    deadline = time.monotonic() + 3
    while True:
        try:
            c = pymysql.connect(host=HOST, port=proxy.rw_port, user=name, password="wc",
                                bind_address="127.0.0.2", connect_timeout=10)
            break
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with c, c.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), USER()")
        cu, u = cur.fetchone()
        assert cu == f"{name}@%"
        # the backend sees the proxy's address, but CURRENT_USER is the account matched
        assert u.startswith(f"{name}@")


def test_more_specific_host_wins(proxy, make_user):
    # Same user name with '%' (password a) and '127.0.0.1' (password b): the server sorts
    # by host specificity, so from 127.0.0.1 only password b works.
    name = unique("spec")[:20]
    with direct() as c, c.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'aaa'")
        cur.execute(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY 'bbb'")
    try:
        c = login_eventually(proxy, name, "bbb")
        with c, c.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone() == (f"{name}@127.0.0.1",)
        with pytest.raises(pymysql.err.OperationalError) as e:
            proxy.rw(user=name, password="aaa")
        assert e.value.args[0] == 1045
    finally:
        with direct() as c, c.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")
            cur.execute(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")
            cur.execute("FLUSH PRIVILEGES")  # see make_user in conftest.py


def refused_by_proxy(proxy, offset, code):
    """The proxy's log since `offset` says it refused a login with `code` itself."""
    deadline = time.monotonic() + 5
    while True:
        log = proxy.log_since(offset)
        if any("login refused" in line and f"code={code}" in line for line in log.splitlines()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.mark.parametrize("hash_sql", [
    "IDENTIFIED BY PASSWORD '*THISISNOTAVALIDPASSWORDTHATCANBEUSEDHERE'",
    "IDENTIFIED VIA mysql_native_password USING 'invalid'",
])
def test_a_hash_no_password_matches_admits_nobody(proxy, make_user, hash_sql):
    # The proxy must not read an unreadable hash as "no password" and leave the refusal to
    # the backend.
    name = make_user(plugin_sql=hash_sql)
    time.sleep(1.2)  # past users_refresh_interval, so that the failed login reloads the table
    for password in ("", "invalid", "x"):
        offset = proxy.log_size()
        with pytest.raises(pymysql.err.OperationalError) as e:
            proxy.rw(user=name, password=password)
        assert e.value.args[0] == 1045, e.value.args
        assert refused_by_proxy(proxy, offset, 1045), proxy.log_since(offset)


@pytest.mark.parametrize("plugin,soname", [
    ("unix_socket", None),
    ("pam", "auth_pam"),
    # The pre-4.1 scramble, built into the server: the proxy checks only mysql_native_password.
    ("mysql_old_password", None),
])
def test_accounts_of_plugins_the_proxy_cannot_check_are_refused(proxy, make_user, plugin, soname):
    """Such an account is never admitted: the client gets 1045 at once, whatever password it
    sends, and the proxy's log names the plugin. The plugin and the account are made on the
    primary alone (not binlogged): the replicas need neither, and the proxy reads its accounts
    from the primary."""
    if soname:
        with direct() as c, c.cursor() as cur:
            try:
                cur.execute(f"INSTALL SONAME '{soname}'")
            except pymysql.err.MySQLError as e:
                if e.args[0] != 1968:  # ER_PLUGIN_INSTALLED
                    raise
    name = make_user(plugin_sql=f"IDENTIFIED VIA {plugin}", grants=(), primary_only=True)
    time.sleep(1.2)  # past users_refresh_interval, so that the failed login reloads the table
    for password in ("", "x"):
        offset = proxy.log_size()
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as e:
            proxy.rw(user=name, password=password)
        assert time.monotonic() - started < 5
        used = "YES" if password else "NO"
        assert e.value.args == (
            1045, f"Access denied for user '{name}'@'127.0.0.1' (using password: {used})")
        assert refused_by_proxy(proxy, offset, 1045), proxy.log_since(offset)
        assert f"plugin={plugin}" in proxy.log_since(offset), proxy.log_since(offset)


def test_the_servers_own_accounts_are_refused_by_the_proxy(proxy):
    # mariadb.sys@localhost (no password, locked) and root@localhost ('invalid' or
    # unix_socket): with skip_name_resolve on the backends, a TCP client is never 'localhost'.
    for user in ("mariadb.sys", "root"):
        offset = proxy.log_size()
        with pytest.raises(pymysql.err.OperationalError) as e:
            proxy.rw(user=user, password="")
        assert e.value.args == (1045, f"Access denied for user '{user}'@'127.0.0.1' (using password: NO)")
        assert refused_by_proxy(proxy, offset, 1045), proxy.log_since(offset)


def test_a_locked_account_is_refused_by_the_proxy(proxy, make_user):
    name = make_user(plugin_sql="IDENTIFIED BY 'lk' ACCOUNT LOCK")
    time.sleep(1.2)
    offset = proxy.log_size()
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user=name, password="wrong")
    assert e.value.args[0] == 1045  # the password first, as the server checks it
    offset = proxy.log_size()
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user=name, password="lk")
    assert e.value.args == (4151, "Access denied, this account is locked")
    assert refused_by_proxy(proxy, offset, 4151), proxy.log_since(offset)


def test_account_locked(proxy, make_user):
    name = make_user(password="lk", grants=("SELECT ON test.*",))
    login_eventually(proxy, name, "lk").close()
    with direct() as c, c.cursor() as cur:
        cur.execute(f"ALTER USER '{name}'@'127.0.0.1' ACCOUNT LOCK")
    with pytest.raises(pymysql.err.OperationalError) as e:
        proxy.rw(user=name, password="lk")
    # 4151: Access denied, this account is locked (the server's answer)
    assert e.value.args[0] in (4151, 1045), e.value.args


def test_role_based_db_grant_ok(proxy, make_user):
    # A user with a db-level grant on sbtest only can connect with sbtest.
    name = make_user(password="dbg", grants=("SELECT ON sbtest.*",))
    c = login_eventually(proxy, name, "dbg", database="sbtest")
    with c, c.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("sbtest",)


def test_db_grant_pattern(proxy, make_user):
    # db-level grant with a wildcard: `test\_%` style patterns as stored in mysql.db.
    dbname = unique("sy_pat")
    with direct() as c, c.cursor() as cur:
        cur.execute(f"CREATE DATABASE {dbname}")
    try:
        name = make_user(password="pat", grants=("SELECT ON `sy\\_pat\\_%`.*",))
        c = login_eventually(proxy, name, "pat", database=dbname)
        with c, c.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone() == (dbname,)
        with pytest.raises(pymysql.err.OperationalError) as e:
            proxy.rw(user=name, password="pat", database="test")
        assert e.value.args[0] == 1044
    finally:
        with direct() as c, c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {dbname}")


class Sha2FirstConnection(pymysql.connections.Connection):
    """A PyMySQL connection that answers the handshake with caching_sha2_password, as a
    MySQL 8 client does, whatever the server proposed."""

    def _get_server_information(self):
        super()._get_server_information()
        self._auth_plugin_name = "caching_sha2_password"


def test_caching_sha2_client_is_switched_to_native(proxy):
    c = Sha2FirstConnection(host=HOST, port=proxy.rw_port, user="app", password="app",
                            connect_timeout=10, read_timeout=30)
    with c, c.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == ("app@127.0.0.1",)


def test_caching_sha2_client_wrong_password(proxy):
    with pytest.raises(pymysql.err.OperationalError) as e:
        Sha2FirstConnection(host=HOST, port=proxy.rw_port, user="app", password="bad",
                            connect_timeout=10, read_timeout=30)
    assert err_of(e) == (1045, "Access denied for user 'app'@'127.0.0.1' (using password: YES)")


def test_raw_auth_switch_from_unknown_plugin(proxy):
    # A client proposing some other plugin (here sha256_password, data empty) is switched too.
    c = rawmysql.RawConn(HOST, proxy.rw_port)
    try:
        c.read_handshake()
        assert c.handshake.auth_plugin == "mysql_native_password"
        c.handshake_response("app", "app", plugin="sha256_password", auth=b"\x01")
        ok = c.finish_auth("app")
        assert ok["status"] & 0x0002  # autocommit
        assert c.scalar("SELECT CURRENT_USER()") == "app@127.0.0.1"
    finally:
        c.close()


def test_handshake_advertises_no_tls_and_plugin_auth(proxy):
    c = rawmysql.RawConn(HOST, proxy.rw_port)
    try:
        hs = c.read_handshake()
        assert hs.protocol == 10
        assert not hs.capabilities & rawmysql.CLIENT_SSL
        for cap in (rawmysql.CLIENT_PROTOCOL_41, rawmysql.CLIENT_PLUGIN_AUTH, rawmysql.CLIENT_CONNECT_WITH_DB,
                    rawmysql.CLIENT_SECURE_CONNECTION, rawmysql.CLIENT_MULTI_RESULTS,
                    rawmysql.CLIENT_MULTI_STATEMENTS, rawmysql.CLIENT_PS_MULTI_RESULTS,
                    rawmysql.CLIENT_LOCAL_FILES, rawmysql.CLIENT_DEPRECATE_EOF,
                    rawmysql.CLIENT_CONNECT_ATTRS, rawmysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
                    rawmysql.CLIENT_SESSION_TRACK, rawmysql.CLIENT_TRANSACTIONS):
            assert hs.capabilities & cap, hex(cap)
        assert len(hs.salt) == 20
        assert "MariaDB" in hs.server_version
        assert hs.connection_id > 0
    finally:
        c.close()


def test_connection_ids_are_the_proxys_own(proxy):
    # Sequential connections get increasing proxy ids, and CONNECTION_ID() through the proxy
    # says the same id, not the backend's thread id.
    ids = []
    for _ in range(3):
        with proxy.rw() as c, c.cursor() as cur:
            ids.append(c.thread_id())
            cur.execute("SELECT CONNECTION_ID()")
            assert cur.fetchone()[0] == c.thread_id()
    assert ids == sorted(ids) and len(set(ids)) == 3, ids


def test_raw_connect_attrs_and_db(proxy):
    c = rawmysql.RawConn(HOST, proxy.rw_port)
    try:
        c.login("app", "app", db="test", attrs={"_client_name": "rawtest", "program_name": "pytest-raw"})
        assert c.scalar("SELECT DATABASE()") == "test"
    finally:
        c.close()


def test_require_ssl_user_refused(proxy, make_user):
    # The proxy offers no TLS: an account that REQUIREs SSL must not get in through it.
    name = make_user(password="p", grants=("SELECT ON test.*",))
    with direct() as c, c.cursor() as cur:
        cur.execute(f"ALTER USER '{name}'@'127.0.0.1' REQUIRE SSL")
    time.sleep(1.2)  # past users_refresh_interval
    for _ in range(3):
        with pytest.raises(pymysql.err.OperationalError) as e:
            proxy.rw(user=name, password="p")
        assert e.value.args[0] == 1045, e.value.args
        time.sleep(0.3)


def test_max_user_connections_error_passed_on(proxy, make_user):
    name = make_user(password="p", grants=("SELECT ON test.*",))
    with direct() as c, c.cursor() as cur:
        cur.execute(f"ALTER USER '{name}'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 1")
    first = login_eventually(proxy, name, "p")
    try:
        with pytest.raises(pymysql.err.OperationalError) as e:
            proxy.rw(user=name, password="p")
        assert e.value.args == (1226, f"User '{name}' has exceeded the 'max_user_connections' resource (current value: 1)")
        with first.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        first.close()


def test_expired_password_sandbox_mode(proxy, make_user):
    # The server lets the user in, but every statement fails with 1820 until SET PASSWORD.
    name = make_user(password="old", grants=("SELECT ON test.*",))
    login_eventually(proxy, name, "old").close()
    with direct() as c, c.cursor() as cur:
        cur.execute(f"ALTER USER '{name}'@'127.0.0.1' PASSWORD EXPIRE")
    c = proxy.rw(user=name, password="old")
    try:
        with c.cursor() as cur:
            with pytest.raises(pymysql.MySQLError) as e:
                cur.execute("SELECT 1")
            assert e.value.args[0] == 1820, e.value.args
            cur.execute("SET PASSWORD = PASSWORD('fresh')")
            cur.execute("SELECT 2")
            assert cur.fetchone() == (2,)
    finally:
        c.close()
    login_eventually(proxy, name, "fresh").close()


@pytest.mark.parametrize("prefix", ["sy-dash", "sy_ünï", "sy`tick"])
def test_database_names_needing_quotes(proxy, prefix):
    dbname = f"{prefix}_{unique('d')[-6:]}"
    quoted = "`" + dbname.replace("`", "``") + "`"
    with direct() as c, c.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quoted}")
    try:
        with proxy.rw(database=dbname) as c, c.cursor() as cur:  # connect-with-db
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone() == (dbname,)
        with proxy.rw() as c, c.cursor() as cur:
            c.select_db(dbname)  # COM_INIT_DB
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone() == (dbname,)
    finally:
        with direct() as c, c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quoted}")


def test_failed_logins_reload_accounts_at_most_once_per_interval(proxy):
    # Failed logins make the proxy reload its account table, throttled to once per
    # users_refresh_interval (1s): a burst of 40 bad logins over ~1.5 s must not cause 40
    # reloads (each one is a query on the backend).
    offset = proxy.log_size()
    t0 = time.monotonic()
    for i in range(40):
        with pytest.raises(pymysql.err.OperationalError):
            proxy.rw(user=f"nobody_{i}", password="x")
        time.sleep(0.03)
    elapsed = time.monotonic() - t0
    time.sleep(0.2)
    reloads = proxy.log_since(offset).count("loaded the account table")
    assert reloads <= int(elapsed) + 2, f"{reloads} account reloads for 40 failed logins in {elapsed:.1f}s"
    proxy.assert_serving()


def test_a_service_user_without_global_priv_falls_back_to_mysql_user(sandbox, switchyard_bin,
                                                                     tmp_path, make_user):
    """Servers before 10.4, or a service user granted only mysql.user: the proxy reads the
    mysql.user view, says in its log what it cannot check, and logins still work."""
    from conftest import PRIMARY_PORT, Proxy, SERVERS_YAML, free_port
    svc = make_user(password="svc", grants=("SELECT ON mysql.user",), prefix="svc")
    port = free_port()
    cfg = tmp_path / "fallback.yaml"
    cfg.write_text(f"""max_auth_errors_until_block: 0
{SERVERS_YAML}services:
  - {{ name: rw, router: readconnroute, servers: [db1], user: {svc}, password: svc, options: {{ router_options: primary }} }}
listeners:
  - {{ name: rw, service: rw, address: "{HOST}:{port}" }}
""")
    p = Proxy(switchyard_bin, cfg, tmp_path / "fallback.log", port, None, None, tmp_path)
    p.start()
    try:
        c = login_eventually(p, "app", "app")
        with c, c.cursor() as cur:
            cur.execute("SELECT @@port")
            assert cur.fetchone() == (PRIMARY_PORT,)
        with pytest.raises(pymysql.err.OperationalError) as e:
            p.rw(user="app", password="wrong")
        assert e.value.args[0] == 1045
        assert "could not read mysql.global_priv" in p.log_since(0)
        assert p.alive()
    finally:
        p.stop()
        p._logf.close()


@pytest.mark.parametrize("length", [129, 200, 60000])
def test_a_long_user_name_is_read_as_the_server_reads_it(proxy, length):
    # The server cuts a user name after 128 characters; so does the proxy, in its answer
    # and everywhere after it.
    from conftest import PRIMARY_PORT

    def refusal(port):
        c = rawmysql.RawConn(HOST, port)
        try:
            with pytest.raises(rawmysql.ServerError) as e:
                c.login("u" * length, "x")
            return e.value.code, e.value.message
        finally:
            c.close()

    through, direct_ = refusal(proxy.rw_port), refusal(PRIMARY_PORT)
    assert through == direct_
    assert through[1] == f"Access denied for user '{'u' * 128}'@'127.0.0.1' (using password: YES)"
