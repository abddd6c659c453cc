#!/usr/bin/env bash
# Local sandbox of real MariaDB servers for Switchyard's tests, benchmarks and run command.
#
#   scripts/sandbox.sh up       start (initialise on first use) primary + 2 replicas, wait for sync
#   scripts/sandbox.sh down     stop all three cleanly
#   scripts/sandbox.sh status   port, pid, state, read_only, replication threads, GTID positions
#   scripts/sandbox.sh reset    down + wipe the sandbox directory + up
#
# One instance at a time (for fault tests; NAME is db1, db2 or db3, or 1, 2, 3; several allowed):
#   scripts/sandbox.sh stop NAME    clean shutdown of that instance only; the others keep running
#   scripts/sandbox.sh start NAME   start it again from its datadir (no-op when running); a replica
#                                   gets its replication re-attached/started and, when the primary
#                                   is up, is waited for until caught up; starting the primary
#                                   makes it writable and restarts the running replicas' threads
#   scripts/sandbox.sh kill NAME    SIGKILL its mariadbd (a crash; `start` or `up` recovers it)
# `up` repairs after any of these: it starts whatever is stopped and re-attaches replication.
#
# Topology (all on 127.0.0.1, GTID replication, binlog_format=ROW, gtid_strict_mode=ON):
#   db1  port $SANDBOX_PORT_BASE     (3307)  primary   server_id 1
#   db2  port $SANDBOX_PORT_BASE+1   (3308)  replica   server_id 2  read_only=1
#   db3  port $SANDBOX_PORT_BASE+2   (3309)  replica   server_id 3  read_only=1
#
# Accounts (host '127.0.0.1' only; root only over each instance's unix socket):
#   app/app               ALL PRIVILEGES ON *.* WITH GRANT OPTION, less READ_ONLY ADMIN (so that
#                         read_only=1 protects the replicas from misrouted writes: error 1290)
#   limited/limited       ALL ON `test`.*
#   switchyard/switchyard SELECT ON mysql.*, SHOW DATABASES   (the proxy's service user)
#   monitor/monitor       replication monitoring / failover privileges
#   repl/repl             REPLICATION SLAVE
# Databases: test, sbtest.
#
# Environment: SANDBOX_DIR (default <repo>/.sandbox), SANDBOX_PORT_BASE (default 3307),
#              SANDBOX_START_TIMEOUT (seconds, default 90),
#              SANDBOX_PROFILE: 'fidelity' adds what MariaDB's own test suite expects of a server
#              (tests/fidelity): mysql-test-run's server defaults (latin1, MyISAM, small buffers,
#              secure_file_priv = SANDBOX_DIR, a copy of the test data (std_data) where
#              mysql-test-run puts it, host names resolved so that 127.0.0.1 is
#              'localhost') and root@localhost and root@127.0.0.1 without a password (the
#              latter less READ_ONLY ADMIN; the former is also the sandbox's own admin account
#              over the socket). Run it in a directory and on ports of its own.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SANDBOX_DIR="${SANDBOX_DIR:-$REPO_ROOT/.sandbox}"
MTR_STD_DATA=/usr/share/mysql/mysql-test/std_data
PORT_BASE="${SANDBOX_PORT_BASE:-3307}"
START_TIMEOUT="${SANDBOX_START_TIMEOUT:-90}"
PROFILE="${SANDBOX_PROFILE:-}"
[[ -z "$PROFILE" || "$PROFILE" == fidelity ]] || { echo "[sandbox] ERROR: unknown SANDBOX_PROFILE '$PROFILE' (known: fidelity)" >&2; exit 2; }
HOST=127.0.0.1
INSTANCES=(1 2 3)
MARKER=".switchyard-sandbox"

log() { printf '[sandbox] %s\n' "$*"; }
err() { printf '[sandbox] ERROR: %s\n' "$*" >&2; }
die() { err "$*"; exit 1; }

find_bin() { # first of the given names found in PATH or the sbin dirs
    local n d
    for n in "$@"; do
        if command -v "$n" >/dev/null 2>&1; then command -v "$n"; return 0; fi
        for d in /usr/sbin /usr/local/sbin /sbin; do
            if [[ -x "$d/$n" ]]; then echo "$d/$n"; return 0; fi
        done
    done
    return 1
}

need_bins() {
    MARIADBD="$(find_bin mariadbd mysqld)" ||
        die "mariadbd not found: run scripts/install-deps.sh (Debian package mariadb-server)"
    CLIENT="$(find_bin mariadb mysql)" || die "mariadb client not found: run scripts/install-deps.sh"
    ADMIN="$(find_bin mariadb-admin mysqladmin)" || die "mariadb-admin not found: run scripts/install-deps.sh"
    INSTALL_DB="$(find_bin mariadb-install-db mysql_install_db)" ||
        die "mariadb-install-db not found: run scripts/install-deps.sh"
}

# The OS user that runs the servers is also the socket-authenticated admin account.
OS_USER="$(id -un)"

name_of() { echo "db$1"; }
port_of() { echo $((PORT_BASE + $1 - 1)); }
dir_of() { echo "$SANDBOX_DIR/db$1"; }
cnf_of() { echo "$SANDBOX_DIR/db$1/my.cnf"; }
sock_of() { echo "$SANDBOX_DIR/db$1/mysqld.sock"; }
pidf_of() { echo "$SANDBOX_DIR/db$1/mysqld.pid"; }
errlog_of() { echo "$SANDBOX_DIR/db$1/error.log"; }
is_primary() { [[ "$1" == 1 ]]; }

# Run SQL as the admin (unix socket) on instance $1; extra client args before the SQL.
sql() {
    local i=$1; shift
    local q="${*: -1}"
    local args=("${@:1:$#-1}")
    "$CLIENT" --no-defaults --socket="$(sock_of "$i")" -u"$OS_USER" --connect-timeout=5 \
        -N -B "${args[@]}" -e "$q"
}

# SHOW SLAVE STATUS of instance $1 in vertical form (empty if not a replica / not reachable).
slave_status() {
    "$CLIENT" --no-defaults --socket="$(sock_of "$1")" -u"$OS_USER" --connect-timeout=5 \
        -E -e "SHOW SLAVE STATUS" 2>/dev/null || true
}

# Value of field $1 in vertical client output on stdin.
field() {
    awk -v k="$1" '{ l = $0; sub(/^ +/, "", l) } index(l, k ":") == 1 { v = substr(l, length(k) + 2); sub(/^ /, "", v); print v; exit }'
}

# Field $2 of SHOW SLAVE STATUS on instance $1.
slave_field() { slave_status "$1" | field "$2"; }

# Command line of process $1 with NULs turned into spaces (bash builtins only: no fork).
cmdline_of() {
    local a=()
    mapfile -d '' -t a 2>/dev/null <"/proc/$1/cmdline" || return 0
    echo "${a[*]}"
}

# pid of our mariadbd for instance $1 (the process whose command line names our my.cnf), or "".
pid_of() {
    local i=$1 pid="" cnf p
    cnf="$(cnf_of "$i")"
    if [[ -r "$(pidf_of "$i")" ]]; then
        read -r pid 2>/dev/null <"$(pidf_of "$i")" || true
        if [[ "$pid" =~ ^[0-9]+$ && "$(cmdline_of "$pid")" == *"--defaults-file=$cnf"* ]]; then
            echo "$pid"; return 0
        fi
    fi
    # No (valid) pid file, e.g. while starting: look for the process itself.
    for p in /proc/[0-9]*; do
        if [[ "$(cmdline_of "${p#/proc/}")" == *"--defaults-file=$cnf"* ]]; then
            echo "${p#/proc/}"; return 0
        fi
    done
    echo ""
}

# Process $1 exists and is not a zombie (PID 1 of a container may reap exited servers late).
live() {
    local st=""
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st="${st##*) }"
    [[ -n "$st" && "${st:0:1}" != Z ]]
}

alive() { # instance answers on its socket
    "$ADMIN" --no-defaults --socket="$(sock_of "$1")" -u"$OS_USER" --connect-timeout=2 ping >/dev/null 2>&1
}

port_in_use() { # something accepts TCP connections on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# "pid my.cnf" of a sandbox mariadbd of ANOTHER sandbox directory configured for port $1, if any
# (e.g. a developer's sandbox still running when CI starts one from a fresh clone).
foreign_on_port() {
    local port=$1 p cmd cnf
    for p in /proc/[0-9]*; do
        cmd="$(cmdline_of "${p#/proc/}")"
        [[ "$cmd" == *--defaults-file=*/db[0-9]/my.cnf* ]] || continue
        cnf="${cmd#*--defaults-file=}"
        cnf="${cnf%% *}"
        [[ "$cnf" == "$SANDBOX_DIR"/* ]] && continue
        if grep -qx "port=$port" "$cnf" 2>/dev/null && grep -q '^# generated by scripts/sandbox.sh' "$cnf" 2>/dev/null; then
            echo "${p#/proc/} $cnf"
            return 0
        fi
    done
    return 1
}

# Stop the mariadbd `pid` of another sandbox (its my.cnf given) that holds one of our ports.
stop_foreign() {
    local pid=$1 cnf=$2 sock deadline
    sock="$(sed -n 's/^socket=//p' "$cnf" 2>/dev/null | head -n 1)"
    log "port taken by another sandbox's server (pid $pid, $(dirname "$(dirname "$cnf")")): stopping it"
    if [[ -z "$sock" ]] || ! timeout 60 "$ADMIN" --no-defaults --socket="$sock" -u"$OS_USER" --connect-timeout=3 \
        --shutdown-timeout=30 shutdown >/dev/null 2>&1; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    deadline=$((SECONDS + 30))
    while live "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if live "$pid"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
}

show_log_tail() {
    local f
    f="$(errlog_of "$1")"
    err "---- last lines of $f ----"
    if [[ -f "$f" ]]; then tail -n 25 "$f" >&2; else err "(no error log)"; fi
    if [[ -s "$(dir_of "$1")/stdout.log" ]]; then
        err "---- last lines of $(dir_of "$1")/stdout.log ----"
        tail -n 10 "$(dir_of "$1")/stdout.log" >&2
    fi
    err "----"
}

write_cnf() {
    local i=$1 d port
    d="$(dir_of "$i")"
    port="$(port_of "$i")"
    mkdir -p "$d/tmp"
    {
        echo "# generated by scripts/sandbox.sh on every 'up' -- edit the script, not this file"
        echo "[mysqld]"
        if [[ "$(id -u)" == 0 ]]; then echo "user=root"; fi
        cat <<EOF
port=$port
bind-address=$HOST
socket=$(sock_of "$i")
pid-file=$(pidf_of "$i")
datadir=$d/data
tmpdir=$d/tmp
log-error=$(errlog_of "$i")
server_id=$i
report_host=$HOST
report_port=$port
$([[ "$PROFILE" == fidelity ]] || echo skip-name-resolve)
skip-slave-start
# replication
log_bin=mysql-bin
log_bin_index=mysql-bin.index
relay_log=relay-bin
relay_log_index=relay-bin.index
log_slave_updates=ON
binlog_format=ROW
gtid_domain_id=0
gtid_strict_mode=ON
binlog_expire_logs_seconds=172800
sync_binlog=0
read_only=$(is_primary "$i" && echo 0 || echo 1)
# sizes: three instances on a small machine, 1000+ idle client sessions, >16 MiB packets
max_connections=2000
max_allowed_packet=64M
thread_cache_size=64
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
innodb_log_buffer_size=8M
innodb_flush_log_at_trx_commit=2
innodb_buffer_pool_dump_at_shutdown=OFF
innodb_buffer_pool_load_at_startup=OFF
key_buffer_size=8M
aria_pagecache_buffer_size=16M
performance_schema=OFF
# behave like Debian's packaged server
character_set_server=utf8mb4
collation_server=utf8mb4_general_ci
local_infile=ON
EOF
        if [[ "$PROFILE" == fidelity ]]; then
            local vardir="${SANDBOX_VARDIR:-$d/tmp}"
            mkdir -p "$vardir"
            # The test data where mysql-test-run puts it: tests load "../../std_data/..."
            # (from the datadir) and "$MYSQLTEST_VARDIR/std_data/...". A copy, as
            # mysql-test-run makes one, inside secure_file_priv.
            if [[ -d "$MTR_STD_DATA" && ! -d "$SANDBOX_DIR/std_data" ]]; then
                cp -r "$MTR_STD_DATA" "$SANDBOX_DIR/std_data.new" && mv "$SANDBOX_DIR/std_data.new" "$SANDBOX_DIR/std_data"
            fi
            [[ -e "$vardir/std_data" ]] || ln -s "$SANDBOX_DIR/std_data" "$vardir/std_data"
            # mysql-test-run's defaults (include/default_mysqld.cnf), which the .result files of
            # MariaDB's test suite were recorded with; later lines override the ones above.
            cat <<EOF
character_set_server=latin1
collation_server=latin1_swedish_ci
default_storage_engine=MyISAM
log_bin_trust_function_creators=1
key_buffer_size=1M
sort_buffer_size=256K
max_heap_table_size=1M
use_stat_tables=preferably
histogram_type=json_hb
binlog_direct_non_transactional_updates=1
plugin_maturity=unknown
connect_timeout=60
secure_file_priv=$SANDBOX_DIR
max_allowed_packet=16M
EOF
        fi
    } >"$d/my.cnf.new"
    mv -f "$d/my.cnf.new" "$d/my.cnf"
}

# Create the datadirs: one mariadb-install-db run into a template, copied to each instance.
init_datadirs() {
    local missing=() i tpl
    for i in "${INSTANCES[@]}"; do
        [[ -d "$(dir_of "$i")/data/mysql" ]] || missing+=("$i")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    tpl="$SANDBOX_DIR/.template"
    rm -rf "$tpl"
    mkdir -p "$tpl"
    log "initialising datadirs for: $(for i in "${missing[@]}"; do printf '%s ' "$(name_of "$i")"; done)"
    cat >"$tpl/my.cnf" <<EOF
[mysqld]
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
innodb_log_buffer_size=8M
performance_schema=OFF
skip-name-resolve
character_set_server=utf8mb4
collation_server=utf8mb4_general_ci
EOF
    local user_args=()
    [[ "$(id -u)" == 0 ]] && user_args=(--user=root)
    if ! "$INSTALL_DB" --defaults-file="$tpl/my.cnf" --datadir="$tpl/data" "${user_args[@]}" \
        --auth-root-authentication-method=socket --auth-root-socket-user="$OS_USER" \
        --skip-test-db --skip-name-resolve >"$tpl/install.log" 2>&1; then
        err "mariadb-install-db failed:"
        tail -n 30 "$tpl/install.log" >&2
        exit 1
    fi
    for i in "${missing[@]}"; do
        local d
        d="$(dir_of "$i")"
        mkdir -p "$d"
        rm -rf "$d/data.new" "$d/data"
        cp -a "$tpl/data" "$d/data.new"
        mv "$d/data.new" "$d/data"
        rm -f "$(errlog_of "$i")" "$d/stdout.log"
    done
    rm -rf "$tpl"
}

# Start instance $1 in the background (its own session, no inherited fds); prints the pid.
launch() {
    local i=$1 d
    d="$(dir_of "$i")"
    rm -f "$(sock_of "$i")" "$(sock_of "$i").lock" "$(pidf_of "$i")"
    (
        # Close every inherited descriptor above stderr (e.g. our lock, a CI runner's pipes),
        # so the long-lived server holds nothing of the caller's.
        for fd in "/proc/$BASHPID/fd/"*; do
            fd="${fd##*/}"
            if [[ "$fd" -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec setsid "$MARIADBD" --defaults-file="$(cnf_of "$i")" </dev/null >>"$d/stdout.log" 2>&1
    ) &
    echo $!
}

# Wait until instance $1 (launched as pid $2, may be empty) answers; 1 on failure.
wait_up() {
    local i=$1 pid=$2 deadline
    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if alive "$i"; then return 0; fi
        if [[ -n "$pid" ]] && ! live "$pid"; then
            err "$(name_of "$i") (port $(port_of "$i")) exited during startup"
            show_log_tail "$i"
            return 1
        fi
        sleep 0.1
    done
    err "$(name_of "$i") (port $(port_of "$i")) did not answer within ${START_TIMEOUT}s"
    show_log_tail "$i"
    return 1
}

acquire_lock() {
    mkdir -p "$SANDBOX_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$SANDBOX_DIR/.lock"
        flock -w 300 9 || die "another sandbox.sh is running (lock $SANDBOX_DIR/.lock)"
    fi
}

provision_sql() {
    cat <<'EOF'
CREATE DATABASE IF NOT EXISTS test;
CREATE DATABASE IF NOT EXISTS sbtest;
CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
ALTER USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'app';
ALTER USER 'app'@'127.0.0.1' IDENTIFIED BY 'app';
GRANT ALL PRIVILEGES ON *.* TO 'app'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'limited'@'127.0.0.1' IDENTIFIED BY 'limited';
ALTER USER 'limited'@'127.0.0.1' IDENTIFIED BY 'limited';
GRANT ALL PRIVILEGES ON `test`.* TO 'limited'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'switchyard'@'127.0.0.1' IDENTIFIED BY 'switchyard';
ALTER USER 'switchyard'@'127.0.0.1' IDENTIFIED BY 'switchyard';
GRANT SELECT ON `mysql`.* TO 'switchyard'@'127.0.0.1';
GRANT SHOW DATABASES ON *.* TO 'switchyard'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'monitor'@'127.0.0.1' IDENTIFIED BY 'monitor';
ALTER USER 'monitor'@'127.0.0.1' IDENTIFIED BY 'monitor';
GRANT SELECT ON `mysql`.* TO 'monitor'@'127.0.0.1';
EOF
}

# Global privileges for the monitor; each granted on its own, as older servers lack some.
MONITOR_PRIVS=("REPLICATION CLIENT" "REPLICA MONITOR" "BINLOG MONITOR" "SUPER" "READ_ONLY ADMIN"
    "REPLICATION SLAVE ADMIN" "REPLICATION MASTER ADMIN" "BINLOG ADMIN" "CONNECTION ADMIN"
    "PROCESS" "RELOAD" "SHOW DATABASES" "EVENT" "SET USER")

accounts_ok() {
    local n users="'app','limited','switchyard','monitor','repl'" want=7
    if [[ "$PROFILE" == fidelity ]]; then users+=",'root'"; want=8; fi
    n="$(sql 1 "SELECT (SELECT COUNT(*) FROM mysql.global_priv WHERE Host='$HOST'
            AND User IN ($users))
          + (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('test','sbtest'))" 2>/dev/null)" ||
        return 1
    [[ "$n" == "$want" ]]
}

provision_primary() {
    if accounts_ok; then return 0; fi
    log "creating accounts and databases on the primary (replicated to the replicas)"
    if ! provision_sql | "$CLIENT" --no-defaults --socket="$(sock_of 1)" -u"$OS_USER" -N -B; then
        die "provisioning accounts on the primary failed"
    fi
    local p granted=() missing=()
    for p in "${MONITOR_PRIVS[@]}"; do
        if sql 1 "GRANT $p ON *.* TO 'monitor'@'$HOST'" >/dev/null 2>&1; then
            granted+=("$p")
        else
            missing+=("$p")
        fi
    done
    # ALL PRIVILEGES includes READ_ONLY ADMIN (MariaDB >= 10.11), which lets a session write on a
    # read_only replica: one misrouted write then breaks replication for good (gtid_strict_mode:
    # out-of-order GTID). Without it, such a write fails with error 1290, as a test would want.
    sql 1 "REVOKE READ_ONLY ADMIN ON *.* FROM 'app'@'$HOST'" >/dev/null 2>&1 || true
    if [[ "$PROFILE" == fidelity ]]; then
        sql 1 "CREATE USER IF NOT EXISTS 'root'@'$HOST'; GRANT ALL PRIVILEGES ON *.* TO 'root'@'$HOST' WITH GRANT OPTION;
               REVOKE READ_ONLY ADMIN ON *.* FROM 'root'@'$HOST';
               ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" >/dev/null
    fi
    log "monitor granted: $(IFS=,; echo "${granted[*]}")"
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "monitor: privileges this server does not know: $(IFS=,; echo "${missing[*]}")"
    fi
    accounts_ok || die "accounts/databases missing on the primary after provisioning"
}

# CHANGE MASTER TO the primary with GTID (slave_pos) + START SLAVE on replica $1.
change_master() {
    sql "$1" "CHANGE MASTER TO MASTER_HOST='$HOST', MASTER_PORT=$(port_of 1), MASTER_USER='repl',
              MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
              START SLAVE" >/dev/null
}

# Make replica $1 replicate from the primary with GTID; leaves a healthy replica alone.
attach_replica() {
    local i=$1 mport host port io sqlrun out
    mport="$(port_of 1)"
    sql "$i" "SET GLOBAL read_only=1" >/dev/null
    host="$(slave_field "$i" Master_Host)"
    port="$(slave_field "$i" Master_Port)"
    if [[ "$host" != "$HOST" || "$port" != "$mport" ]]; then
        log "$(name_of "$i"): CHANGE MASTER TO $HOST:$mport (GTID slave_pos) + START SLAVE"
        sql "$i" "STOP SLAVE" >/dev/null 2>&1 || true
        change_master "$i"
        return 0
    fi
    io="$(slave_field "$i" Slave_IO_Running)"
    sqlrun="$(slave_field "$i" Slave_SQL_Running)"
    if [[ "$io" != "Yes" || "$sqlrun" != "Yes" ]]; then
        if ! out="$(sql "$i" "START SLAVE" 2>&1)"; then
            # Typically after a crash (`kill`): the relay log index names a relay log that was
            # never written, error 1201. With GTID the replica's position is kept in
            # mysql.gtid_slave_pos, so its relay logs can be thrown away and fetched again.
            log "$(name_of "$i"): START SLAVE failed (ERROR${out##*ERROR}):" \
                "RESET SLAVE + CHANGE MASTER TO $HOST:$mport (GTID slave_pos $(sql "$i" "SELECT @@gtid_slave_pos" 2>/dev/null)) + START SLAVE"
            sql "$i" "STOP SLAVE" >/dev/null 2>&1 || true
            sql "$i" "RESET SLAVE" >/dev/null 2>&1 || sql "$i" "RESET SLAVE ALL" >/dev/null
            change_master "$i"
        fi
    fi
}

# Wait until replica $1 has applied GTID position $2 (the primary's binlog position) and its
# replication threads run.
wait_caught_up() {
    local i=$1 pos=$2 deadline r sqlerr ioerr io sqlrun
    deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        r="$(sql "$i" "SELECT MASTER_GTID_WAIT('$pos', 0.5)" 2>/dev/null || echo -1)"
        if [[ "$r" == 0 ]]; then
            io="$(slave_field "$i" Slave_IO_Running)"
            sqlrun="$(slave_field "$i" Slave_SQL_Running)"
            if [[ "$sqlrun" == Yes && ("$io" == Yes || "$io" == Connecting) ]]; then return 0; fi
            err "$(name_of "$i") is at $pos but its replication is not running" \
                "(Slave_IO_Running=$io, Slave_SQL_Running=$sqlrun); run: scripts/sandbox.sh reset"
            return 1
        fi
        sqlerr="$(slave_field "$i" Last_SQL_Error)"
        if [[ -n "$sqlerr" && "$(slave_field "$i" Slave_SQL_Running)" != "Yes" ]]; then
            err "$(name_of "$i"): replication SQL thread stopped: $sqlerr"
            err "the sandbox's replication is broken (a test may have written to a replica);" \
                "run: scripts/sandbox.sh reset"
            return 1
        fi
    done
    ioerr="$(slave_field "$i" Last_IO_Error)"
    err "$(name_of "$i") did not reach the primary's GTID position $pos within 60s" \
        "(Slave_IO_Running=$(slave_field "$i" Slave_IO_Running), Gtid_IO_Pos=$(slave_field "$i" Gtid_IO_Pos))"
    [[ -n "$ioerr" ]] && err "$(name_of "$i"): last IO error: $ioerr"
    return 1
}

# Start the given instances that are not running (their config rewritten first) and wait until
# each of them answers; dies when one fails. Running ones are left alone.
start_instances() {
    declare -A launched=()
    local to_start=() i pid foreign failed=0
    for i in "$@"; do
        write_cnf "$i"
        pid="$(pid_of "$i")"
        if [[ -n "$pid" ]]; then
            continue # already running (or starting): checked below
        fi
        if foreign="$(foreign_on_port "$(port_of "$i")")"; then
            # shellcheck disable=SC2086 # "pid cnf"
            stop_foreign $foreign
        fi
        if port_in_use "$(port_of "$i")"; then
            die "port $(port_of "$i") ($(name_of "$i")) is taken by another process; stop it or set SANDBOX_PORT_BASE"
        fi
        to_start+=("$i")
    done
    for i in "${to_start[@]}"; do
        launched[$i]="$(launch "$i")"
    done
    if [[ ${#launched[@]} -gt 0 ]]; then
        log "starting: $(for i in "${!launched[@]}"; do printf '%s(%s) ' "$(name_of "$i")" "$(port_of "$i")"; done)"
    fi
    for i in "$@"; do
        wait_up "$i" "${launched[$i]:-$(pid_of "$i")}" || failed=1
    done
    ((failed == 0)) || die "some instances failed to start (see above)"
}

cmd_up() {
    need_bins
    local t0=$EPOCHREALTIME i pid
    acquire_lock
    SANDBOX_DIR="$(cd "$SANDBOX_DIR" && pwd)"
    [[ -e "$SANDBOX_DIR/$MARKER" ]] || : >"$SANDBOX_DIR/$MARKER"
    local sock_len=${#SANDBOX_DIR}
    ((sock_len < 90)) || die "SANDBOX_DIR path too long for unix sockets: $SANDBOX_DIR"

    init_datadirs
    start_instances "${INSTANCES[@]}"
    local failed=0

    # Primary writable and not itself a replica.
    sql 1 "SET GLOBAL read_only=0" >/dev/null
    if [[ -n "$(slave_field 1 Master_Host)" ]]; then
        err "the primary $(name_of 1) is configured as a replica (left over from a failover test?);" \
            "run: scripts/sandbox.sh reset"
    fi
    provision_primary
    for i in "${INSTANCES[@]}"; do
        is_primary "$i" || attach_replica "$i"
    done
    local pos
    pos="$(sql 1 "SELECT @@gtid_binlog_pos")"
    if [[ -n "$pos" ]]; then
        for i in "${INSTANCES[@]}"; do
            is_primary "$i" || wait_caught_up "$i" "$pos" || failed=1
        done
    fi
    ((failed == 0)) || exit 1
    log "up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s: primary $HOST:$(port_of 1), replicas $HOST:$(port_of 2) $HOST:$(port_of 3)" \
        "(GTID $pos) -- dir $SANDBOX_DIR"
}

stop_instance() { # $1 instance; clean shutdown, kill fallback
    local i=$1 pid deadline
    pid="$(pid_of "$i")"
    [[ -n "$pid" ]] || return 0
    timeout 60 "$ADMIN" --no-defaults --socket="$(sock_of "$i")" -u"$OS_USER" --connect-timeout=3 \
        --shutdown-timeout=30 shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while live "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if live "$pid"; then
        err "$(name_of "$i") (pid $pid) still running after shutdown; sending SIGTERM"
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 15))
        while live "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    fi
    if live "$pid"; then
        err "$(name_of "$i") (pid $pid) ignores SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$(sock_of "$i")" "$(sock_of "$i").lock"
}

cmd_down() {
    need_bins
    [[ -d "$SANDBOX_DIR" ]] || { log "nothing to stop ($SANDBOX_DIR does not exist)"; return 0; }
    acquire_lock
    SANDBOX_DIR="$(cd "$SANDBOX_DIR" && pwd)"
    local i pids=() running=()
    for i in "${INSTANCES[@]}"; do
        if [[ -n "$(pid_of "$i")" ]]; then
            running+=("$(name_of "$i")")
            stop_instance "$i" &
            pids+=($!)
        fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    for i in "${INSTANCES[@]}"; do
        [[ -z "$(pid_of "$i")" ]] || die "$(name_of "$i") is still running"
    done
    if [[ ${#running[@]} -gt 0 ]]; then log "stopped: ${running[*]}"; else log "nothing was running"; fi
}

cmd_status() {
    need_bins
    [[ -d "$SANDBOX_DIR" ]] || { log "no sandbox at $SANDBOX_DIR (run: scripts/sandbox.sh up)"; return 1; }
    SANDBOX_DIR="$(cd "$SANDBOX_DIR" && pwd)"
    local i pid state ro io sq iopos cur lag errs rc=0
    printf '%-4s %-5s %-8s %-8s %-9s %-4s %-4s %-6s %-16s %-16s %s\n' \
        NAME PORT PID STATE READ_ONLY IO SQL LAG GTID_IO_POS GTID_CURRENT_POS LAST_ERROR
    for i in "${INSTANCES[@]}"; do
        pid="$(pid_of "$i")"
        ro=- io=- sq=- iopos=- cur=- lag=- errs=
        if [[ -z "$pid" ]]; then
            state=stopped; pid=-; rc=1
        elif ! alive "$i"; then
            state=starting; rc=1
        else
            state=running
            ro="$(sql "$i" "SELECT IF(@@read_only,'ON','OFF')" 2>/dev/null || echo '?')"
            cur="$(sql "$i" "SELECT @@gtid_current_pos" 2>/dev/null || echo '?')"
            local ss
            ss="$(slave_status "$i")"
            if [[ -n "$ss" ]]; then
                io="$(field Slave_IO_Running <<<"$ss")"
                sq="$(field Slave_SQL_Running <<<"$ss")"
                iopos="$(field Gtid_IO_Pos <<<"$ss")"
                lag="$(field Seconds_Behind_Master <<<"$ss")"
                errs="$(field Last_IO_Error <<<"$ss")$(field Last_SQL_Error <<<"$ss")"
                [[ "$io" == Yes && "$sq" == Yes ]] || rc=1
            elif ! is_primary "$i"; then
                io=No; sq=No; rc=1
            fi
        fi
        printf '%-4s %-5s %-8s %-8s %-9s %-4s %-4s %-6s %-16s %-16s %s\n' "$(name_of "$i")" "$(port_of "$i")" \
            "$pid" "$state" "$ro" "$io" "$sq" "${lag:--}" "${iopos:--}" "${cur:--}" "${errs:-}"
    done
    return $rc
}

cmd_reset() {
    cmd_down
    if [[ -d "$SANDBOX_DIR" ]]; then
        local d
        d="$(cd "$SANDBOX_DIR" && pwd)"
        [[ "$d" != "/" && "$d" != "$HOME" && "$d" != "$REPO_ROOT" ]] || die "refusing to wipe $d"
        if [[ ! -e "$d/$MARKER" ]] && [[ -n "$(find "$d" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]]; then
            die "refusing to wipe $d: it is not a sandbox directory (no $MARKER file)"
        fi
        log "wiping $d"
        find "$d" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
    fi
    cmd_up
}

# Instance numbers of the NAME arguments of stop/start/kill (db2, 2); dies on anything else.
parse_instances() {
    local a n out=()
    [[ $# -gt 0 ]] || die "which instance? e.g. $(basename "$0") $CMD db2"
    for a in "$@"; do
        n="${a#db}"
        if ! [[ "$n" =~ ^[0-9]+$ ]] || ! printf '%s\n' "${INSTANCES[@]}" | grep -qx "$n"; then
            die "unknown instance '$a' (expected one of: $(for i in "${INSTANCES[@]}"; do printf '%s ' "$(name_of "$i")"; done))"
        fi
        out+=("$n")
    done
    echo "${out[*]}"
}

# Common start of stop/start/kill: the sandbox must exist.
single_prologue() {
    need_bins
    [[ -d "$SANDBOX_DIR" && -e "$SANDBOX_DIR/$MARKER" ]] ||
        die "no sandbox at $SANDBOX_DIR (run: scripts/sandbox.sh up)"
    acquire_lock
    SANDBOX_DIR="$(cd "$SANDBOX_DIR" && pwd)"
}

cmd_stop() {
    local ids i
    ids="$(parse_instances "$@")"
    single_prologue
    for i in $ids; do
        if [[ -z "$(pid_of "$i")" ]]; then
            log "$(name_of "$i") is not running"
            continue
        fi
        stop_instance "$i"
        [[ -z "$(pid_of "$i")" ]] || die "$(name_of "$i") is still running"
        log "stopped $(name_of "$i") (port $(port_of "$i"))"
    done
}

cmd_kill() {
    local ids i pid deadline
    ids="$(parse_instances "$@")"
    single_prologue
    for i in $ids; do
        pid="$(pid_of "$i")"
        if [[ -z "$pid" ]]; then
            log "$(name_of "$i") is not running"
            continue
        fi
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while live "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
        live "$pid" && die "$(name_of "$i") (pid $pid) survived SIGKILL"
        log "killed $(name_of "$i") (pid $pid, port $(port_of "$i"))"
    done
}

cmd_start() {
    local ids i pos failed=0 t0=$EPOCHREALTIME
    ids="$(parse_instances "$@")"
    single_prologue
    for i in $ids; do
        [[ -d "$(dir_of "$i")/data/mysql" ]] ||
            die "$(name_of "$i") has no datadir (run: scripts/sandbox.sh up)"
    done
    # shellcheck disable=SC2086 # a list of numbers
    start_instances $ids
    for i in $ids; do
        if is_primary "$i"; then
            sql 1 "SET GLOBAL read_only=0" >/dev/null
            # Replicas that are running reconnect by themselves (MASTER_CONNECT_RETRY=1); make
            # sure their threads are started in case they gave up or were stopped.
            local r
            for r in "${INSTANCES[@]}"; do
                if ! is_primary "$r" && alive "$r"; then attach_replica "$r"; fi
            done
        else
            attach_replica "$i"
        fi
    done
    if alive 1; then
        pos="$(sql 1 "SELECT @@gtid_binlog_pos")"
        if [[ -n "$pos" ]]; then
            for i in $ids; do
                is_primary "$i" || wait_caught_up "$i" "$pos" || failed=1
            done
        fi
    fi
    ((failed == 0)) || exit 1
    log "started $(for i in $ids; do printf '%s(%s) ' "$(name_of "$i")" "$(port_of "$i")"; done)in" \
        "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"
}

usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
reset) cmd_reset ;;
stop | start | kill)
    CMD="$1"
    shift
    "cmd_$CMD" "$@"
    ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
