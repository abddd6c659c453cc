#!/usr/bin/env python3
"""Measure the memory that idle client sessions add to a proxy (or any server) process.

Opens N client sessions with PyMySQL through HOST:PORT (each runs one `SELECT 1`, so that the
session is established end to end, then stays idle), and prints the resident set size (VmRSS)
of the process before and after: the memory the idle sessions add.

    python3 benches/idle_sessions.py [--host 127.0.0.1] [--port 4107] [--user app --password app]
                                     [-n 1000] [--pid PID]

Without --pid, the process listening on PORT is looked up in /proc (needs permission to read
its file descriptors, e.g. run as the same user or root).
"""

import argparse
import glob
import os
import resource
import sys
import time

try:
    import pymysql
except ImportError:  # pragma: no cover
    sys.exit("PyMySQL is missing: run scripts/install-deps.sh")


def listening_inodes(port):
    """Inodes of the TCP sockets listening on `port` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local, state, inode = cols[1], cols[3], cols[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except FileNotFoundError:
            pass
    return inodes


def pid_listening_on(port):
    inodes = listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for fd in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in targets:
                return int(fd.split("/")[2])
        except OSError:
            continue
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4107)
    ap.add_argument("--user", default="app")
    ap.add_argument("--password", default="app")
    ap.add_argument("--database", default=None)
    ap.add_argument("-n", "--sessions", type=int, default=1000)
    ap.add_argument("--pid", type=int, default=None, help="process to measure (default: the one listening on --port)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before measuring (default 1)")
    ap.add_argument("--hold", type=float, default=0.0, help="seconds to keep the sessions open after measuring")
    ap.add_argument("--tls", action="store_true",
                    help="let PyMySQL negotiate TLS when offered (its default; off here: costly per connect)")
    ap.add_argument("--quiet", action="store_true", help="print only the result line")
    args = ap.parse_args()

    def say(msg):
        if not args.quiet:
            print(msg, flush=True)

    pid = args.pid or pid_listening_on(args.port)
    if pid is None:
        sys.exit(f"no process found listening on port {args.port}; pass --pid")

    # Each session needs a descriptor here (and two in a proxy): lift the soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.sessions + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(hard, want)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))

    time.sleep(args.settle)
    before = rss_kib(pid)
    say(f"pid {pid}: RSS before {before / 1024:.1f} MiB; opening {args.sessions} sessions "
        f"to {args.host}:{args.port} as {args.user}")
    conns = []
    t0 = time.monotonic()
    try:
        for i in range(args.sessions):
            try:
                c = pymysql.connect(host=args.host, port=args.port, user=args.user, password=args.password,
                                    database=args.database, connect_timeout=10, read_timeout=30,
                                    ssl_disabled=not args.tls)
                with c.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchall()
            except pymysql.MySQLError as e:
                sys.exit(f"session {i + 1} of {args.sessions} failed: {e}")
            conns.append(c)
        opened = time.monotonic() - t0
        time.sleep(args.settle)
        after = rss_kib(pid)
        delta = after - before
        say(f"opened {len(conns)} sessions in {opened:.1f}s; RSS after {after / 1024:.1f} MiB")
        print(f"{len(conns)} idle sessions add {delta / 1024:.1f} MiB RSS "
              f"({delta / len(conns):.1f} KiB per session; before {before / 1024:.1f} MiB, "
              f"after {after / 1024:.1f} MiB)", flush=True)
        if args.hold > 0:
            time.sleep(args.hold)
    finally:
        for c in conns:
            try:
                c.close()
            except Exception:
                pass


if __name__ == "__main__":
    main()
