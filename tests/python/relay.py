"""A controllable TCP relay placed between the proxy and a real backend, to make a backend
"die" (reset its connections, stop listening, go silent) without touching the shared sandbox
servers."""

import socket
import struct
import threading


class Relay:
    def __init__(self, listen_port, target=("127.0.0.1", 3307)):
        self.port = listen_port
        self.target = target
        self.lock = threading.Lock()
        self.pairs = []          # (client_side_socket, server_side_socket)
        self.lsock = None
        self.mode = "normal"     # normal | blackhole
        self.cut_after = None    # cut the next connections after this many server->proxy bytes
        self.accepted = 0
        self._held = []

    # --- control -----------------------------------------------------------------------
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.lsock = s
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True).start()

    def stop(self):
        """Stop listening (new backend connections are refused) and cut every connection."""
        s, self.lsock = self.lsock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.cut_all()

    def cut_all(self):
        """Reset every relayed connection (as if the backend server died)."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            held, self._held = self._held, []
        for a, b in pairs:
            _reset(a)
            _reset(b)
        for h in held:
            _reset(h)

    def normal(self):
        self.mode = "normal"
        self.cut_after = None

    def connections(self):
        with self.lock:
            return len(self.pairs)

    # --- relaying ------------------------------------------------------------------------
    def _accept_loop(self, ls):
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "blackhole":
                with self.lock:
                    self._held.append(c)  # accept, then never answer
                continue
            try:
                b = socket.create_connection(self.target, timeout=5)
                b.settimeout(None)
            except OSError:
                _reset(c)
                continue
            for x in (c, b):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.pairs.append((c, b))
            limit = self.cut_after
            threading.Thread(target=self._pump, args=(c, b, None, c, b), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, c, limit, c, b), daemon=True).start()

    def _pump(self, src, dst, limit, c, b):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        with self.lock:
            if (c, b) in self.pairs:
                self.pairs.remove((c, b))
        _reset(c)
        _reset(b)


def _reset(s):
    """Close with a TCP RST (linger 0), waking a thread blocked in recv() on it first."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
