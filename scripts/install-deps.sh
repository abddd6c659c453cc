#!/usr/bin/env bash
# Install what Switchyard's sandbox, tests and benchmarks need, only if it is missing.
# Idempotent and quiet: when everything is present it runs no package manager at all.
#
#   Debian: mariadb-server mariadb-client mariadb-test sysbench haproxy, a JDK (17+) with Maven for the
#           sandbox's Apache Kafka broker (scripts/kafka.sh), and cmake with libcurl's headers
#           to build the bundled librdkafka (the rdkafka crate's cmake-build); for the
#           Pacemaker resource agent's tests resource-agents (ocf-tester, ocf-shellfuncs),
#           pacemaker-cli-utils with pacemaker-remote (crm_resource; pacemaker-remote satisfies
#           its dependency without corosync), libxml2-utils (xmllint, ocf-tester's meta-data
#           check) and curl (the agent's /health probe)
#   Python: PyMySQL pytest confluent-kafka (for python3 on PATH), and where python3 has pip,
#           mysql-connector-python (a MySQL 8 driver for binary-protocol tests; Debian does not
#           package it, so without pip those tests skip)
# Rust/cargo (with rustfmt and clippy) is expected to be installed already.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*"; }
die() { printf '[install-deps] ERROR: %s\n' "$*" >&2; exit 1; }

have() { # command in PATH or in an sbin dir (not on a non-root PATH)
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" || -x "/usr/local/sbin/$1" ]]
}

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

apt_install() { # $@ Debian packages
    command -v apt-get >/dev/null 2>&1 || die "need Debian packages ($*) but apt-get is not available"
    [[ "$(id -u)" == 0 || ${#SUDO[@]} -gt 0 ]] || die "need root (or sudo) to install: $*"
    log "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the Debian mariadb-server package from starting its system service (port 3306):
    # the sandbox runs its own servers and must not depend on it. Only when no policy exists.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    {
        "${SUDO[@]}" apt-get update -qq &&
            "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
    } >/tmp/switchyard-install-deps.apt.log 2>&1 || rc=$?
    if ((added_policy)); then "${SUDO[@]}" rm -f "$policy"; fi
    if ((rc != 0)); then
        tail -n 30 /tmp/switchyard-install-deps.apt.log >&2
        die "apt-get failed (full log: /tmp/switchyard-install-deps.apt.log)"
    fi
}

# --- Debian packages -------------------------------------------------------------------------
pkgs=()
{ have mariadbd && have mariadb-install-db; } || pkgs+=(mariadb-server)
{ have mariadb && have mariadb-admin; } || pkgs+=(mariadb-client)
have sysbench || pkgs+=(sysbench)
# mysqltest and MariaDB's own regression tests, for the fidelity suite (tests/fidelity).
{ have mariadb-test && [[ -d /usr/share/mysql/mysql-test/main ]]; } || pkgs+=(mariadb-test)
have haproxy || pkgs+=(haproxy)
have python3 || pkgs+=(python3)
java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || pkgs+=(openjdk-17-jre-headless)
have mvn || pkgs+=(maven)
have cmake || pkgs+=(cmake)
have c++ || pkgs+=(g++)
# librdkafka's cmake build turns on OIDC (which needs curl) whenever it finds OpenSSL.
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || pkgs+=(libcurl4-openssl-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || pkgs+=(libssl-dev)
# The OCF resource agent (deploy/pacemaker/switchyard) and its tests (tests/python/test_ocf.py).
have curl || pkgs+=(curl)
have xmllint || pkgs+=(libxml2-utils)
{ have ocf-tester && [[ -r /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs ]]; } || pkgs+=(resource-agents)
have crm_resource || pkgs+=(pacemaker-cli-utils pacemaker-remote)
if [[ ${#pkgs[@]} -gt 0 ]]; then
    apt_install "${pkgs[@]}"
    # (No system mariadbd is started by the install, see apt_install; one that runs anyway is
    # Debian's on port 3306 and irrelevant: scripts/sandbox.sh uses its own ports, sockets and
    # datadirs, and says so clearly if one of its ports is taken.)
fi

# --- Python packages -------------------------------------------------------------------------
pip_install() {
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
    if ! python3 -m pip install -q "$@" 2>/tmp/switchyard-install-deps.pip.log; then
        # PEP 668 (Debian's "externally managed" system python): retry past the marker.
        if grep -q externally-managed /tmp/switchyard-install-deps.pip.log; then
            python3 -m pip install -q --break-system-packages "$@" || die "pip install $* failed"
        else
            cat /tmp/switchyard-install-deps.pip.log >&2
            die "pip install $* failed"
        fi
    fi
}
pymods=()
if ! python3 -c 'import pymysql, pytest, confluent_kafka' >/dev/null 2>&1; then
    python3 -c 'import pymysql' >/dev/null 2>&1 || pymods+=(PyMySQL)
    python3 -c 'import pytest' >/dev/null 2>&1 || pymods+=(pytest)
    python3 -c 'import confluent_kafka' >/dev/null 2>&1 || pymods+=(confluent-kafka)
fi
if [[ ${#pymods[@]} -gt 0 ]]; then
    log "installing Python packages for $(command -v python3): ${pymods[*]}"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        # Debian's own python3 ships without pip.
        if [[ "$(command -v python3)" == /usr/bin/python3 ]]; then
            deb=()
            for m in "${pymods[@]}"; do
                case "$m" in
                    PyMySQL) deb+=(python3-pymysql) ;;
                    pytest) deb+=(python3-pytest) ;;
                    confluent-kafka) deb+=(python3-confluent-kafka) ;;
                esac
            done
            apt_install "${deb[@]}"
            pymods=()
        else
            python3 -m ensurepip -q >/dev/null 2>&1 || die "python3 has no pip and ensurepip failed"
        fi
    fi
    if [[ ${#pymods[@]} -gt 0 ]]; then
        pip_install "${pymods[@]}"
    fi
    python3 -c 'import pymysql, pytest, confluent_kafka' ||
        die "PyMySQL/pytest/confluent-kafka still not importable by python3"
fi
if ! python3 -c 'import mysql.connector' >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    log "installing mysql-connector-python for $(command -v python3)"
    pip_install mysql-connector-python
fi

# --- Rust ----------------------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup) first"
