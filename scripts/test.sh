#!/usr/bin/env bash
# THE test command: lint, build, start the sandbox (MariaDB primary and replicas, and the Apache
# Kafka broker), run the Rust and Python tests, then the fidelity suite's CI subset (its own
# sandbox). Exits non-zero when any step fails. Leaves the sandboxes running
# (scripts/sandbox.sh down, scripts/kafka.sh down and FIDELITY_DOWN=1 tests/fidelity/run.sh
# stop them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==== [test.sh] %s ====\n' "$*"; }
T0=$SECONDS

step "install dependencies"
bash scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "sandbox up (MariaDB primary :3307, replicas :3308 :3309)"
if ! bash scripts/sandbox.sh up; then
    echo "[test.sh] sandbox up failed; recreating it from scratch (scripts/sandbox.sh reset)" >&2
    bash scripts/sandbox.sh reset
fi

step "Kafka broker up (127.0.0.1:9092)"
bash scripts/kafka.sh up

step "cargo build --workspace --bins"
cargo build --workspace --bins

# The Rust and the Python suites both run even when the first fails, so that one CI run shows
# every failure; the script fails at the end if either did.
FAILED=()

step "cargo test --workspace"
cargo test --workspace --no-fail-fast || FAILED+=("cargo test")

if [[ -n "$(find tests/python \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit 2>/dev/null)" ]]; then
    step "pytest tests/python"
    rc=0
    python3 -m pytest -q tests/python || rc=$?
    if ((rc == 5)); then
        echo "[test.sh] pytest collected no tests"
    elif ((rc != 0)); then
        FAILED+=("pytest")
    fi
else
    step "pytest tests/python: no Python tests yet, skipped"
fi

# MariaDB's own regression tests, straight and through both routers (tests/fidelity; its own
# sandbox on ports 3317-3319 with mysql-test-run's server defaults). The CI subset; --all is
# the whole selection. With --record, each test also runs through a recording relay, and the
# reply tracker is checked against every reply the server sent (the tracker's property test).
step "fidelity suite (tests/fidelity/run.sh --record target/fidelity-recordings)"
timeout 900 bash tests/fidelity/run.sh --record "$PWD/target/fidelity-recordings" || FAILED+=("fidelity")

if [[ ${#FAILED[@]} -gt 0 ]]; then
    step "FAILED: ${FAILED[*]} ($((SECONDS - T0))s; sandbox left running)"
    exit 1
fi
step "all steps passed in $((SECONDS - T0))s (sandbox left running; scripts/sandbox.sh down stops it)"
