#!/usr/bin/env bash
# THE run command: start the sandbox (MariaDB primary and replicas, Apache Kafka broker) and run
# Switchyard in front of it on 127.0.0.1:4006.
# Extra arguments are passed to switchyard.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
bash scripts/sandbox.sh up
bash scripts/kafka.sh up
cargo build --release
echo "[run.sh] switchyard on 127.0.0.1:4006 -- connect with: mariadb -h127.0.0.1 -P4006 -uapp -papp"
exec target/release/switchyard -c config/sandbox.yaml "$@"
