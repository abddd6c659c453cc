#!/usr/bin/env bash
# Soak: sysbench oltp_read_write through readwritesplit with the querylog audit feed on, and
# beside it a hostile client that, in a loop, logs in with a wrong password, logs in right,
# changes user with a wrong password, changes user right, runs a statement and disconnects.
# Samples the proxy's RSS every SOAK_SAMPLE seconds (the curve is printed and written as CSV),
# and at the end checks: zero sysbench errors, zero unexpected answers to the hostile client,
# and exact feed counts (nothing failed or dropped, nothing left queued, and the topic holds
# exactly the records the feed says it delivered). Not part of CI: it runs for SOAK_TIME.
#
#   benches/soak.sh
#
# sysbench keeps its default --mysql-ignore-errors (1213, 1020, 1205): oltp_read_write's
# transactions deadlock on the server itself now and then, and sysbench retries them; the
# count is shown as "ignored errors". Any other error stops sysbench and fails the soak.
#
# Environment (defaults):
#   SOAK_TIME=1800 SOAK_THREADS=8 SOAK_SAMPLE=30
#   SOAK_PORT=4110 SOAK_ADMIN_PORT=4111
#   SOAK_OUT=target/bench/soak-latest.csv
#   SWITCHYARD_BIN=target/release/switchyard (built with cargo build --release unless BENCH_NO_BUILD=1)
# Needs the sandbox (scripts/sandbox.sh up); starts the Kafka broker if it is not running.
# Login throttling is off in the soak's config: the hostile loop fails a login every cycle from
# the address sysbench uses, and the point is to run every login path at full rate.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SOAK_TIME="${SOAK_TIME:-1800}"
SOAK_THREADS="${SOAK_THREADS:-8}"
SOAK_SAMPLE="${SOAK_SAMPLE:-30}"
SOAK_PORT="${SOAK_PORT:-4110}"
SOAK_ADMIN_PORT="${SOAK_ADMIN_PORT:-4111}"
SOAK_OUT="${SOAK_OUT:-target/bench/soak-latest.csv}"
SWITCHYARD_BIN="${SWITCHYARD_BIN:-target/release/switchyard}"
HOST=127.0.0.1
PRIMARY_PORT="${SANDBOX_PORT_BASE:-3307}"
TOPIC="sy-soak-$(date +%s)"

log() { printf '[soak] %s\n' "$*"; }
die() { printf '[soak] ERROR: %s\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/switchyard-soak.XXXXXX")"
PROXY_PID="" HOSTILE_PID=""
# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
    for p in "$HOSTILE_PID" "$PROXY_PID"; do
        if [[ -n "$p" ]]; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

command -v sysbench >/dev/null || die "sysbench is not installed (scripts/install-deps.sh)"
mysql_app() { mariadb --no-defaults -h "$HOST" -P "$1" -uapp -papp -N -e "$2"; }
mysql_app "$PRIMARY_PORT" "SELECT 1" >/dev/null 2>&1 || die "no sandbox primary on $HOST:$PRIMARY_PORT (scripts/sandbox.sh up)"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "building the release binary"
    cargo build --release --quiet --bin switchyard
fi
bash scripts/kafka.sh up >"$WORK/kafka.log" 2>&1 || { cat "$WORK/kafka.log" >&2; die "the Kafka broker did not start"; }
python3 - "$TOPIC" <<'EOF' || die "cannot create the topic $TOPIC"
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
for f in admin.create_topics([NewTopic(sys.argv[1], num_partitions=1, replication_factor=1)]).values():
    f.result(timeout=30)
EOF

sysbench_common=(--db-driver=mysql --mysql-host="$HOST" --mysql-user=app --mysql-password=app
    --mysql-db=sbtest --tables=4 --table-size=10000)
mysql_app "$PRIMARY_PORT" "CREATE DATABASE IF NOT EXISTS sbtest"
sysbench oltp_read_write "${sysbench_common[@]}" --mysql-port="$PRIMARY_PORT" cleanup >"$WORK/cleanup.log" 2>&1 || true
sysbench oltp_read_write "${sysbench_common[@]}" --mysql-port="$PRIMARY_PORT" prepare >"$WORK/prepare.log" 2>&1 ||
    { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }

cat >"$WORK/soak.yaml" <<EOF
max_auth_errors_until_block: 0
servers:
  - { name: db1, address: "$HOST:$PRIMARY_PORT" }
  - { name: db2, address: "$HOST:$((PRIMARY_PORT + 1))" }
  - { name: db3, address: "$HOST:$((PRIMARY_PORT + 2))" }
monitors:
  - { name: repl, module: mariadbmon, servers: [db1, db2, db3], user: monitor, password: monitor, options: { interval: 1s } }
filters:
  - { name: audit, module: querylog, brokers: "$HOST:9092", topic: $TOPIC, instance: soak }
services:
  - { name: app, router: readwritesplit, servers: [db1, db2, db3], user: switchyard, password: switchyard, monitor: repl, filters: [audit] }
listeners:
  - { name: app, service: app, address: "$HOST:$SOAK_PORT" }
admin: { address: "$HOST:$SOAK_ADMIN_PORT" }
EOF
RUST_LOG="${RUST_LOG:-warn}" "$SWITCHYARD_BIN" -c "$WORK/soak.yaml" </dev/null >"$WORK/switchyard.log" 2>&1 &
PROXY_PID=$!
for _ in $(seq 100); do mysql_app "$SOAK_PORT" "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
mysql_app "$SOAK_PORT" "SELECT 1" >/dev/null || { tail -20 "$WORK/switchyard.log" >&2; die "the proxy does not answer"; }
log "proxy pid $PROXY_PID on $HOST:$SOAK_PORT, audit topic $TOPIC, $SOAK_TIME s, work dir $WORK"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
mkdir -p "$(dirname "$SOAK_OUT")"
echo "seconds,rss_kib" >"$SOAK_OUT"

python3 - "$HOST" "$SOAK_PORT" "$SOAK_TIME" >"$WORK/hostile.log" 2>&1 <<'EOF' &
import struct, sys, time
sys.path.insert(0, "tests/python")
import rawmysql as R
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def change_user(c, user, password):
    auth = R.native_scramble(password.encode(), c.handshake.salt)
    c.command(R.COM_CHANGE_USER, user.encode() + b"\0" + bytes([len(auth)]) + auth + b"test\0"
              + struct.pack("<H", 45) + b"mysql_native_password\0")
    return c.finish_auth(password)

def expect_refused(f, code):
    try:
        f()
    except R.ServerError as e:
        return e.code == code
    return False

cycles = unexpected = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    ok = True
    c = R.RawConn(host, port)
    ok &= expect_refused(lambda: c.login("app", "wrong", db="test"), 1045)
    c.close()
    c = R.RawConn(host, port)
    try:
        c.login("app", "app", db="test")
        ok &= expect_refused(lambda: change_user(c, "limited", "wrong"), 1045)
        change_user(c, "limited", "limited")
        ok &= c.query("SELECT CURRENT_USER()")[0][2] == [("limited@127.0.0.1",)]
    except Exception as e:  # noqa: BLE001 - counted, and the soak goes on
        print("unexpected:", e, flush=True)
        ok = False
    finally:
        c.close()
    cycles += 1
    unexpected += not ok
print(f"cycles={cycles} unexpected={unexpected}", flush=True)
EOF
HOSTILE_PID=$!

sysbench oltp_read_write "${sysbench_common[@]}" --mysql-port="$SOAK_PORT" --threads="$SOAK_THREADS" \
    --time="$SOAK_TIME" --report-interval="$SOAK_SAMPLE" run >"$WORK/sysbench.log" 2>&1 &
SYSBENCH_PID=$!
started=$SECONDS
while kill -0 "$SYSBENCH_PID" 2>/dev/null; do
    echo "$((SECONDS - started)),$(rss_kib "$PROXY_PID")" >>"$SOAK_OUT"
    sleep "$SOAK_SAMPLE"
done
sysbench_rc=0
wait "$SYSBENCH_PID" || sysbench_rc=$?
if ((sysbench_rc != 0)); then kill -TERM "$HOSTILE_PID" 2>/dev/null || true; fi
wait "$HOSTILE_PID" || true
HOSTILE_PID=""
echo "$((SECONDS - started)),$(rss_kib "$PROXY_PID")" >>"$SOAK_OUT"

# The feed settles: everything handed over is delivered, failed or dropped.
diag() { curl -fsS "http://$HOST:$SOAK_ADMIN_PORT/v1/filters/audit" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["diagnostics"]))'; }
for _ in $(seq 120); do
    [[ "$(diag | python3 -c 'import json,sys; print(json.load(sys.stdin)["queued"])')" == 0 ]] && break
    sleep 1
done
feed="$(diag)"
in_topic="$(python3 - "$TOPIC" <<'EOF'
import sys, uuid
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": f"soak-{uuid.uuid4().hex}"})
total = 0
for p in c.list_topics(sys.argv[1], timeout=30).topics[sys.argv[1]].partitions:
    low, high = c.get_watermark_offsets(TopicPartition(sys.argv[1], p), timeout=30)
    total += high - low
print(total)
c.close()
EOF
)"

echo
log "RSS of the proxy (KiB) every ${SOAK_SAMPLE}s ($SOAK_OUT):"
column -s, -t "$SOAK_OUT" | sed 's/^/    /'
first="$(sed -n 2p "$SOAK_OUT" | cut -d, -f2)"
last="$(tail -1 "$SOAK_OUT" | cut -d, -f2)"
peak="$(tail -n +2 "$SOAK_OUT" | cut -d, -f2 | sort -n | tail -1)"
log "RSS first ${first} KiB, last ${last} KiB, peak ${peak} KiB"
grep -E "queries:|transactions:|ignored errors:|reconnects:|95th percentile:" "$WORK/sysbench.log" | sed 's/^ */    /'
log "hostile client: $(tail -1 "$WORK/hostile.log")"
log "feed: $feed"
log "records in the topic: $in_topic"

failed=0
((sysbench_rc == 0)) || { log "FAIL: sysbench exited with $sysbench_rc (see $WORK/sysbench.log)"; failed=1; }
grep -q " unexpected=0$" "$WORK/hostile.log" || { log "FAIL: the hostile client got unexpected answers"; failed=1; }
python3 - "$feed" "$in_topic" <<'EOF' || failed=1
import json, sys
f, topic = json.loads(sys.argv[1]), int(sys.argv[2])
problems = [k for k in ("failed", "dropped", "queued") if f[k]]
if f["delivered"] != topic:
    problems.append(f"delivered {f['delivered']} != {topic} in the topic")
if problems:
    print("[soak] FAIL: feed counts:", ", ".join(problems))
    sys.exit(1)
EOF
kill -0 "$PROXY_PID" 2>/dev/null || { log "FAIL: the proxy died"; failed=1; }
((failed == 0)) && log "PASS" || exit 1
