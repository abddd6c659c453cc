#!/usr/bin/env bash
# End-to-end benchmark: sysbench against the sandbox primary directly, through HAProxy (plain TCP
# relay), through Switchyard's readconnroute (every statement to the primary) and through its
# readwritesplit (reads spread over the replicas, classified and routed per statement), and through
# readconnroute with the `querylog` audit filter publishing every statement to the sandbox's Kafka
# broker (started if needed), and through readwritesplit with that filter (`rws-audit`, the
# deployment the product is for), side by side in one run. The Switchyard targets are services of
# one proxy process; `audit` runs right after `switchyard` and `rws-audit` right after `rwsplit`,
# and AUDIT/OFF lines compare each pair.
#
#   benches/sysbench.sh [--only direct,haproxy,switchyard,audit,rwsplit,rws-audit]
#
# For each workload x ps-mode x thread count, the targets run one after the other (interleaved), so
# they see similar conditions. Printed per run: qps, avg and p95 latency per sysbench transaction
# (ms), qps relative to direct and to HAProxy, the proxy process's CPU time per query (us,
# utime+stime from /proc/PID/stat divided by the queries sysbench reports) and the queries per
# second one proxy core would serve at that cost (QPS/CORE). At the end: a table,
# also written to $BENCH_OUT, and the RSS that $BENCH_IDLE_SESSIONS idle sessions add to the proxies.
#
# Environment (defaults):
#   BENCH_TIME=20                       seconds per run
#   BENCH_THREADS="1 16"
#   BENCH_WORKLOADS="oltp_point_select oltp_read_only"
#   BENCH_PS_MODES="disable auto"       sysbench --db-ps-mode values (auto = prepared statements)
#   BENCH_TABLES=4 BENCH_TABLE_SIZE=10000
#   BENCH_WARMUP=3                      seconds of warm-up per target before the measured runs
#   BENCH_IDLE_SESSIONS=1000            0 skips the idle-session memory measurement
#   BENCH_OUT=target/bench/sysbench-latest.txt
#   HAPROXY_PORT=4106 SWITCHYARD_PORT=4107 RWSPLIT_PORT=4108 AUDIT_PORT=4109 RWS_AUDIT_PORT=4110
#   AUDIT_TOPIC=mysql-audit
#   SWITCHYARD_BIN=target/release/switchyard (built with cargo build --release unless BENCH_NO_BUILD=1)
#   BENCH_PIN=0                         1: each proxy gets CPU $BENCH_PROXY_CPU (default 0) to itself
#                                       (taskset) and the databases, Kafka and sysbench the other
#                                       CPUs, so that QPS/CORE (1e6 / CPU_US/Q: queries per second
#                                       one proxy core would serve) is measured the way "qps on one
#                                       core" is stated; the pinning of the databases and Kafka is
#                                       undone at exit
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_TIME="${BENCH_TIME:-20}"
BENCH_THREADS="${BENCH_THREADS:-1 16}"
BENCH_WORKLOADS="${BENCH_WORKLOADS:-oltp_point_select oltp_read_only}"
BENCH_PS_MODES="${BENCH_PS_MODES:-disable auto}"
BENCH_TABLES="${BENCH_TABLES:-4}"
BENCH_TABLE_SIZE="${BENCH_TABLE_SIZE:-10000}"
BENCH_WARMUP="${BENCH_WARMUP:-3}"
BENCH_IDLE_SESSIONS="${BENCH_IDLE_SESSIONS:-1000}"
BENCH_OUT="${BENCH_OUT:-target/bench/sysbench-latest.txt}"
HOST=127.0.0.1
PRIMARY_PORT="${SANDBOX_PORT_BASE:-3307}"
HAPROXY_PORT="${HAPROXY_PORT:-4106}"
SWITCHYARD_PORT="${SWITCHYARD_PORT:-4107}"
RWSPLIT_PORT="${RWSPLIT_PORT:-4108}"
AUDIT_PORT="${AUDIT_PORT:-4109}"
RWS_AUDIT_PORT="${RWS_AUDIT_PORT:-4110}"
AUDIT_TOPIC="${AUDIT_TOPIC:-mysql-audit}"
SWITCHYARD_BIN="${SWITCHYARD_BIN:-target/release/switchyard}"
BENCH_PIN="${BENCH_PIN:-0}"
BENCH_PROXY_CPU="${BENCH_PROXY_CPU:-0}"
DB_USER=app DB_PASS=app DB_NAME=sbtest

ONLY="direct,haproxy,switchyard,audit,rwsplit,rws-audit"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[bench] %s\n' "$*"; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }

HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
CLK_TCK="$(getconf CLK_TCK)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")"
HAPROXY_PID="" SWITCHYARD_PID=""

# Pinning (BENCH_PIN=1): PIN_PROXY and PIN_OTHER prefix the commands they apply to.
PIN_PROXY=() PIN_OTHER=() ALL_CPUS="0-$(($(nproc) - 1))" OTHER_CPUS=""
if [[ "$BENCH_PIN" == 1 ]]; then
    (($(nproc) >= 2)) || die "BENCH_PIN=1 needs at least 2 CPUs"
    command -v taskset >/dev/null || die "BENCH_PIN=1 needs taskset (util-linux)"
    OTHER_CPUS="$(seq 0 $(($(nproc) - 1)) | grep -vx "$BENCH_PROXY_CPU" | paste -sd,)"
    PIN_PROXY=(taskset -c "$BENCH_PROXY_CPU") PIN_OTHER=(taskset -c "$OTHER_CPUS")
fi
# The sandbox's servers and broker (all of them on this machine: they are the benchmark's).
db_pids() { pgrep -x mariadbd; pgrep -f 'kafka\.Kafka'; }
pin_databases() { # $1 CPU list
    local p
    for p in $(db_pids); do taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || warn "cannot pin pid $p"; done
}

# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
    local p
    if [[ "$BENCH_PIN" == 1 ]]; then pin_databases "$ALL_CPUS"; fi
    for p in "$HAPROXY_PID" "$SWITCHYARD_PID"; do
        if [[ -n "$p" ]]; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    for p in "$HAPROXY_PID" "$SWITCHYARD_PID"; do
        [[ -n "$p" ]] || continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Proxies get as many descriptors as allowed (idle-session test: 2 sockets per session).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_port() { # $1 port, $2 pid, $3 timeout s
    local deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

cpu_ticks() { # utime+stime of process $1, in clock ticks ("" when no such process)
    local stat rest f
    [[ -n "$1" && -r /proc/$1/stat ]] || { echo ""; return 0; }
    read -r stat </proc/"$1"/stat || { echo ""; return 0; }
    rest="${stat##*) }"
    read -ra f <<<"$rest"
    echo $((f[11] + f[12]))
}

mysql_app() { # $1 port, $2 SQL
    mariadb --no-defaults -h"$HOST" -P"$1" -u"$DB_USER" -p"$DB_PASS" -N -B -e "$2"
}

sysbench_common=(--db-driver=mysql --mysql-host="$HOST" --mysql-user="$DB_USER" --mysql-password="$DB_PASS"
    --mysql-db="$DB_NAME" --tables="$BENCH_TABLES" --table-size="$BENCH_TABLE_SIZE")

# --- sandbox and data ------------------------------------------------------------------------
bash scripts/install-deps.sh
bash scripts/sandbox.sh up

have_rows="$(mysql_app "$PRIMARY_PORT" "SELECT COUNT(*) FROM information_schema.TABLES
    WHERE TABLE_SCHEMA='$DB_NAME' AND TABLE_NAME REGEXP '^sbtest[0-9]+\$'" 2>/dev/null || echo 0)"
prepared=0
if [[ "$have_rows" == "$BENCH_TABLES" ]]; then
    n="$(mysql_app "$PRIMARY_PORT" "SELECT COUNT(*) FROM $DB_NAME.sbtest$BENCH_TABLES" 2>/dev/null || echo 0)"
    [[ "$n" == "$BENCH_TABLE_SIZE" ]] && prepared=1
fi
if ((prepared)); then
    log "sbtest data present ($BENCH_TABLES tables x $BENCH_TABLE_SIZE rows)"
else
    log "preparing sbtest data on the primary ($BENCH_TABLES tables x $BENCH_TABLE_SIZE rows)"
    sysbench oltp_read_only "${sysbench_common[@]}" --mysql-port="$PRIMARY_PORT" cleanup >"$WORK/cleanup.log" 2>&1 || true
    sysbench oltp_read_only "${sysbench_common[@]}" --mysql-port="$PRIMARY_PORT" prepare >"$WORK/prepare.log" 2>&1 ||
        { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }
    # Let the replicas apply it now rather than during the measurements.
    bash scripts/sandbox.sh up >/dev/null
fi

# --- targets ---------------------------------------------------------------------------------
TARGETS=()
declare -A PORT PID_OF
if want direct; then TARGETS+=(direct); PORT[direct]=$PRIMARY_PORT; fi

if want haproxy; then
    nofile="$(ulimit -n)"
    [[ "$nofile" == unlimited ]] && nofile=65536
    maxconn=$(((nofile - 100) / 2))
    ((maxconn > 10000)) && maxconn=10000
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $maxconn
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mariadb
    bind $HOST:$HAPROXY_PORT
    server db1 $HOST:$PRIMARY_PORT
EOF
    "${PIN_PROXY[@]}" "$HAPROXY" -db -f "$WORK/haproxy.cfg" </dev/null >"$WORK/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
    if wait_port "$HAPROXY_PORT" "$HAPROXY_PID" 10 && mysql_app "$HAPROXY_PORT" "SELECT 1" >/dev/null 2>&1; then
        TARGETS+=(haproxy); PORT[haproxy]=$HAPROXY_PORT; PID_OF[haproxy]=$HAPROXY_PID
        log "HAProxy $("$HAPROXY" -v | head -1 | awk '{print $3}') on $HOST:$HAPROXY_PORT (pid $HAPROXY_PID)"
    else
        tail -n 20 "$WORK/haproxy.log" >&2 || true
        die "HAProxy did not start"
    fi
fi

if want switchyard || want rwsplit || want audit || want rws-audit; then
    ok=1
    if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
        log "cargo build --release"
        cargo build --release >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; warn "build failed"; ok=0; }
    fi
    if ((ok)) && [[ ! -x "$SWITCHYARD_BIN" ]]; then warn "$SWITCHYARD_BIN does not exist"; ok=0; fi
    if ((ok)); then
        rws_service="" rws_listener="" audit_filter="" audit_service="" audit_listener=""
        if want audit || want rws-audit; then
            bash scripts/kafka.sh up >"$WORK/kafka.log" 2>&1 || { cat "$WORK/kafka.log" >&2; die "the Kafka broker did not start"; }
            audit_filter="filters:
  - { name: audit, module: querylog, brokers: \"$HOST:9092\", topic: $AUDIT_TOPIC }"
        fi
        if want audit; then
            audit_service="  - { name: bench-audit, router: readconnroute, servers: [db1, db2, db3], user: switchyard, password: switchyard, options: { router_options: primary }, filters: [audit] }"
            audit_listener="  - { name: bench-audit, service: bench-audit, address: $HOST:$AUDIT_PORT }"
        fi
        if want rws-audit; then
            audit_service+="
  - { name: bench-rws-audit, router: readwritesplit, servers: [db1, db2, db3], user: switchyard, password: switchyard, filters: [audit] }"
            audit_listener+="
  - { name: bench-rws-audit, service: bench-rws-audit, address: $HOST:$RWS_AUDIT_PORT }"
        fi
        if want rwsplit; then
            rws_service="  - { name: bench-rws, router: readwritesplit, servers: [db1, db2, db3], user: switchyard, password: switchyard }"
            rws_listener="  - { name: bench-rws, service: bench-rws, address: $HOST:$RWSPLIT_PORT }"
        fi
        cat >"$WORK/switchyard.yaml" <<EOF
servers:
  - { name: db1, address: $HOST:$PRIMARY_PORT, role: primary }
  - { name: db2, address: $HOST:$((PRIMARY_PORT + 1)), role: replica }
  - { name: db3, address: $HOST:$((PRIMARY_PORT + 2)), role: replica }
$audit_filter
services:
  - { name: bench, router: readconnroute, servers: [db1, db2, db3], user: switchyard, password: switchyard, options: { router_options: primary } }
$rws_service
$audit_service
listeners:
  - { name: bench, service: bench, address: $HOST:$SWITCHYARD_PORT }
$rws_listener
$audit_listener
EOF
        RUST_LOG="${RUST_LOG:-warn}" "${PIN_PROXY[@]}" "$SWITCHYARD_BIN" -c "$WORK/switchyard.yaml" \
            </dev/null >"$WORK/switchyard.log" 2>&1 &
        SWITCHYARD_PID=$!
        if wait_port "$SWITCHYARD_PORT" "$SWITCHYARD_PID" 15 &&
            mysql_app "$SWITCHYARD_PORT" "SELECT 1" >"$WORK/switchyard-check.log" 2>&1; then
            if want switchyard; then
                TARGETS+=(switchyard); PORT[switchyard]=$SWITCHYARD_PORT; PID_OF[switchyard]=$SWITCHYARD_PID
            fi
            if want audit; then
                TARGETS+=(audit); PORT[audit]=$AUDIT_PORT; PID_OF[audit]=$SWITCHYARD_PID
            fi
            if want rwsplit; then
                TARGETS+=(rwsplit); PORT[rwsplit]=$RWSPLIT_PORT; PID_OF[rwsplit]=$SWITCHYARD_PID
            fi
            if want rws-audit; then
                TARGETS+=(rws-audit); PORT[rws-audit]=$RWS_AUDIT_PORT; PID_OF[rws-audit]=$SWITCHYARD_PID
            fi
            log "Switchyard on $HOST:$SWITCHYARD_PORT (readconnroute) and :$RWSPLIT_PORT (readwritesplit), pid $SWITCHYARD_PID"
        else
            cat "$WORK/switchyard-check.log" >&2 2>/dev/null || true
            tail -n 20 "$WORK/switchyard.log" >&2 || true
            warn "Switchyard did not start or does not answer on $HOST:$SWITCHYARD_PORT"
            ok=0
        fi
    fi
    if ((!ok)); then
        [[ "${BENCH_STRICT:-0}" == 1 ]] && die "switchyard target unavailable (BENCH_STRICT=1)"
        warn "skipping the switchyard target"
        if [[ -n "$SWITCHYARD_PID" ]]; then kill "$SWITCHYARD_PID" 2>/dev/null || true; fi
        SWITCHYARD_PID=""
    fi
fi
[[ ${#TARGETS[@]} -gt 0 ]] || die "no target to benchmark"

# --- runs ------------------------------------------------------------------------------------
if [[ "$BENCH_PIN" == 1 ]]; then
    pin_databases "$OTHER_CPUS"
    log "pinned: proxies on CPU $BENCH_PROXY_CPU; databases, Kafka and sysbench on CPUs $OTHER_CPUS"
fi
if ((BENCH_WARMUP > 0)); then
    log "warm-up: ${BENCH_WARMUP}s oltp_read_only per target"
    for t in "${TARGETS[@]}"; do
        "${PIN_OTHER[@]}" sysbench oltp_read_only "${sysbench_common[@]}" --mysql-port="${PORT[$t]}" \
            --threads=4 --time="$BENCH_WARMUP" run >/dev/null 2>&1 || warn "warm-up against $t failed"
    done
fi

ROWS=() # "workload ps threads target qps avg p95 r_direct r_haproxy cpu_us qps_per_core"
AUDIT_LINES=() # querylog on (audit) vs off (switchyard), same router
FAILED=0
fmt_row() { printf '%-18s %-7s %3s  %-10s %10s %8s %8s %7s %7s %9s %9s\n' "$@"; }
HEADER="$(fmt_row WORKLOAD PS THR TARGET QPS AVG_MS P95_MS /DIRECT /HAPROXY CPU_US/Q QPS/CORE)"
log "runs of ${BENCH_TIME}s; latency is per sysbench transaction; CPU is the proxy process's"
echo "$HEADER"
for wl in $BENCH_WORKLOADS; do
    for ps in $BENCH_PS_MODES; do
        for th in $BENCH_THREADS; do
            declare -A QPS=() CPU=()
            for t in "${TARGETS[@]}"; do
                out="$WORK/run-$wl-$ps-$th-$t.log"
                pid="${PID_OF[$t]:-}"
                c0="$(cpu_ticks "$pid")"
                if ! "${PIN_OTHER[@]}" sysbench "$wl" "${sysbench_common[@]}" --mysql-port="${PORT[$t]}" --threads="$th" \
                    --time="$BENCH_TIME" --db-ps-mode="$ps" --percentile=95 --report-interval=0 \
                    run >"$out" 2>&1; then
                    warn "sysbench $wl ps=$ps threads=$th against $t failed:"
                    tail -n 15 "$out" >&2
                    FAILED=1
                    row="$(fmt_row "$wl" "$ps" "$th" "$t" FAILED - - - - - -)"
                    echo "$row"; ROWS+=("$row")
                    continue
                fi
                c1="$(cpu_ticks "$pid")"
                queries="$(awk '/^ +queries:/ { print $2; exit }' "$out")"
                qps="$(awk '/^ +queries:/ { gsub(/[()]/, "", $3); print $3; exit }' "$out")"
                avg="$(awk '/^ +avg:/ { print $2; exit }' "$out")"
                p95="$(awk '/95th percentile:/ { print $3; exit }' "$out")"
                QPS[$t]="$qps"
                rd="-" rh="-" cpu="-" per_core="-"
                [[ -n "${QPS[direct]:-}" ]] && rd="$(awk -v a="$qps" -v b="${QPS[direct]}" 'BEGIN { printf "%.3f", a / b }')"
                [[ -n "${QPS[haproxy]:-}" ]] && rh="$(awk -v a="$qps" -v b="${QPS[haproxy]}" 'BEGIN { printf "%.3f", a / b }')"
                if [[ -n "$c0" && -n "$c1" && "${queries:-0}" -gt 0 ]]; then
                    cpu="$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v q="$queries" 'BEGIN { printf "%.2f", d / hz * 1e6 / q }')"
                    per_core="$(awk -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", 1e6 / c; else print "-" }')"
                fi
                row="$(fmt_row "$wl" "$ps" "$th" "$t" "$(printf '%.0f' "$qps")" "$avg" "$p95" "$rd" "$rh" "$cpu" "$per_core")"
                echo "$row"; ROWS+=("$row")
                CPU[$t]="$cpu"
                off=""
                [[ "$t" == audit ]] && off=switchyard
                [[ "$t" == rws-audit ]] && off=rwsplit
                if [[ -n "$off" && -n "${QPS[$off]:-}" ]]; then
                    AUDIT_LINES+=("$(printf 'AUDIT/OFF %-18s %-7s %3s %-9s qps %s  cpu/q %s vs %s us' "$wl" "$ps" "$th" "$off" \
                        "$(awk -v a="$qps" -v b="${QPS[$off]}" 'BEGIN { printf "%.3f", a / b }')" "$cpu" "${CPU[$off]:-?}")")
                    echo "${AUDIT_LINES[-1]}"
                fi
            done
            unset QPS CPU
        done
    done
done

# --- idle sessions ---------------------------------------------------------------------------
IDLE_LINES=()
if ((BENCH_IDLE_SESSIONS > 0)); then
    for t in switchyard haproxy; do
        [[ -n "${PID_OF[$t]:-}" ]] || continue
        log "opening $BENCH_IDLE_SESSIONS idle sessions through $t"
        if line="$(python3 benches/idle_sessions.py --host "$HOST" --port "${PORT[$t]}" --user "$DB_USER" \
            --password "$DB_PASS" -n "$BENCH_IDLE_SESSIONS" --pid "${PID_OF[$t]}" --quiet)"; then
            IDLE_LINES+=("$t: $line")
        else
            IDLE_LINES+=("$t: idle-session measurement failed")
            FAILED=1
        fi
    done
fi

# --- summary ---------------------------------------------------------------------------------
mkdir -p "$(dirname "$BENCH_OUT")"
{
    echo "Switchyard end-to-end benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
    echo "MariaDB $(mysql_app "$PRIMARY_PORT" 'SELECT VERSION()'), $(sysbench --version), HAProxy $("$HAPROXY" -v | head -1 | awk '{print $3}')"
    echo "${BENCH_TIME}s per run, $BENCH_TABLES tables x $BENCH_TABLE_SIZE rows; targets: ${TARGETS[*]}"
    echo "latency per sysbench transaction; /DIRECT, /HAPROXY = qps ratios; CPU_US/Q = proxy CPU per query;"
    echo "QPS/CORE = 1e6 / CPU_US/Q, the queries per second one proxy core would serve"
    if [[ "$BENCH_PIN" == 1 ]]; then
        echo "pinned (BENCH_PIN=1): proxies on CPU $BENCH_PROXY_CPU; databases, Kafka and sysbench on CPUs $OTHER_CPUS"
    fi
    echo
    echo "$HEADER"
    printf '%s\n' "${ROWS[@]}"
    if [[ ${#AUDIT_LINES[@]} -gt 0 ]]; then
        echo
        printf '%s\n' "${AUDIT_LINES[@]}"
    fi
    if [[ ${#IDLE_LINES[@]} -gt 0 ]]; then
        echo
        printf '%s\n' "${IDLE_LINES[@]}"
    fi
} >"$BENCH_OUT"
echo
echo "==================== summary (also in $BENCH_OUT) ===================="
cat "$BENCH_OUT"
exit "$FAILED"
