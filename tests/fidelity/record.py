#!/usr/bin/env python3
"""A recording TCP relay for MySQL/MariaDB traffic (Python 3 standard library only).

    record.py --listen PORT --to HOST:PORT --dir DIR [--max-bytes N] [--proxy-caps]

Listens on 127.0.0.1:PORT; for each accepted connection it connects to HOST:PORT and relays
the bytes both ways unchanged, appending every chunk it relays to DIR/conn-<n>.rec as a
record: 1 byte direction (b'C' client to server, b'S' server to client), a 4-byte
little-endian length, then the bytes. One lock per connection orders the records: a chunk is
written to the file when it is received, before it is forwarded, so a reply the client reacts
to is always in the file before the client's reaction.

With --proxy-caps, and only then, one thing is changed: the server's greeting is relayed with
MariaDB's extended capabilities cut down to those Switchyard offers (extended type metadata;
CLIENT_MYSQL, bit 0, set when none is left), as Switchyard's own greeting is, so that a MariaDB
client negotiates no metadata caching and no progress reports and the replies have the formats
they have through the proxy. The file records the greeting as relayed.

Past --max-bytes of recorded data (default 4 MiB) a connection is still relayed but no longer
recorded, and its file is renamed to conn-<n>.rec.partial when the connection closes (readers
ignore those). SIGTERM (or SIGINT) stops accepting, closes the open connections, finishes their
files and exits with status 0.

The recordings feed modules/protocol/tests/recorded.rs (env SWITCHYARD_RECORDINGS=DIR).
"""

import argparse
import os
import re
import signal
import socket
import struct
import sys
import threading

CHUNK = 64 * 1024


PROXY_EXTENDED_CAPS = 1 << 3  # MARIADB_CLIENT_EXTENDED_METADATA


def rewrite_greeting(buf):
    """The greeting in `buf` with the extended capabilities cut down to Switchyard's, with
    whatever followed it; None while it is incomplete. Left alone if it is not a v10 greeting."""
    if len(buf) < 4:
        return None
    length = int.from_bytes(buf[:3], "little")
    if len(buf) < 4 + length:
        return None
    out = bytearray(buf)
    p = 4
    if out[p] == 10 and b"\0" in out[p + 1:4 + length]:
        o = out.index(b"\0", p + 1) + 1 + 4 + 8 + 1  # version, thread id, scramble 1, filler
        ext = o + 2 + 1 + 2 + 2 + 1 + 6  # caps, collation, status, upper caps, seed len
        offered = 0
        if o + 2 <= 4 + length and not out[o] & 1 and ext + 4 <= 4 + length:
            offered = int.from_bytes(out[ext:ext + 4], "little") & PROXY_EXTENDED_CAPS
            out[ext:ext + 4] = offered.to_bytes(4, "little")
        if o + 2 <= 4 + length and not offered:
            out[o] |= 1  # CLIENT_MYSQL, the lower capability bytes
            if ext + 4 <= 4 + length:
                out[ext:ext + 4] = b"\0\0\0\0"
    return bytes(out)


class Connection:
    def __init__(self, n, client, server, path, max_bytes, proxy_caps=False):
        self.n = n
        # The greeting to rewrite is held back until it is whole.
        self.greeting = bytearray() if proxy_caps else None
        self.client = client
        self.server = server
        self.path = path
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.file = open(path, "wb")
        self.recorded = 0
        self.truncated = False
        self.closed = False
        self.threads = []

    def record(self, direction, data):
        # Called with self.lock held.
        if self.truncated or self.file is None:
            return
        if self.recorded + len(data) > self.max_bytes:
            self.truncated = True
            return
        self.file.write(direction + struct.pack("<I", len(data)) + data)
        self.recorded += len(data)

    def pump(self, src, dst, direction):
        try:
            while True:
                try:
                    data = src.recv(CHUNK)
                except OSError:
                    break
                if not data:
                    if direction == b"S" and self.greeting:
                        data, self.greeting = bytes(self.greeting), None
                    else:
                        break
                if direction == b"S" and self.greeting is not None:
                    self.greeting += data
                    data = rewrite_greeting(self.greeting)
                    if data is None:
                        continue
                    self.greeting = None
                with self.lock:
                    self.record(direction, data)
                try:
                    dst.sendall(data)
                except OSError:
                    break
        finally:
            # Pass the end of stream on; the other direction may still be running.
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def start(self):
        for src, dst, d in ((self.client, self.server, b"C"), (self.server, self.client, b"S")):
            t = threading.Thread(target=self.pump, args=(src, dst, d), daemon=True)
            t.start()
            self.threads.append(t)

    def abort(self):
        """Ends both directions (used on SIGTERM)."""
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish(self):
        for t in self.threads:
            t.join()
        with self.lock:
            if self.closed:
                return
            self.closed = True
            for s in (self.client, self.server):
                try:
                    s.close()
                except OSError:
                    pass
            self.file.close()
            self.file = None
            if self.truncated:
                os.replace(self.path, self.path + ".partial")


class Relay:
    def __init__(self, listen_port, target, directory, max_bytes, proxy_caps=False):
        self.proxy_caps = proxy_caps
        self.target = target
        self.directory = directory
        self.max_bytes = max_bytes
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.connections = set()
        os.makedirs(directory, exist_ok=True)
        # Continue numbering after the recordings already in the directory.
        self.next_n = 1 + max(
            [int(m.group(1)) for f in os.listdir(directory)
             if (m := re.match(r"conn-(\d+)\.rec", f))],
            default=0,
        )
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(64)
        self.listener.settimeout(0.2)

    def serve(self):
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stop.is_set():
                    break
                raise
            client.settimeout(None)
            try:
                server = socket.create_connection(self.target)
            except OSError as e:
                print(f"record.py: cannot connect to {self.target}: {e}", file=sys.stderr)
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            n = self.next_n
            self.next_n += 1
            path = os.path.join(self.directory, f"conn-{n}.rec")
            conn = Connection(n, client, server, path, self.max_bytes, self.proxy_caps)
            with self.lock:
                self.connections.add(conn)
            conn.start()
            threading.Thread(target=self.reap, args=(conn,), daemon=True).start()
        self.listener.close()
        with self.lock:
            open_conns = list(self.connections)
        for conn in open_conns:
            conn.abort()
        for conn in open_conns:
            conn.finish()

    def reap(self, conn):
        conn.finish()
        with self.lock:
            self.connections.discard(conn)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=int, required=True, help="port to listen on (127.0.0.1)")
    ap.add_argument("--to", required=True, help="HOST:PORT of the server")
    ap.add_argument("--dir", required=True, help="directory for conn-<n>.rec files")
    ap.add_argument("--max-bytes", type=int, default=4 << 20,
                    help="stop recording a connection past this many bytes (default 4 MiB)")
    ap.add_argument("--proxy-caps", action="store_true",
                    help="relay the greeting with CLIENT_MYSQL set and no MariaDB extended "
                         "capabilities, as the proxy's greeting is")
    args = ap.parse_args()
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit():
        ap.error("--to must be HOST:PORT")
    relay = Relay(args.listen, (host.strip("[]"), int(port)), args.dir, args.max_bytes,
                  args.proxy_caps)

    def on_signal(signum, frame):
        relay.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    relay.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
