"""A small raw MySQL/MariaDB wire-protocol client for the bad-input and command tests.

It speaks just enough of the protocol to log in with mysql_native_password (following an
auth switch), send arbitrary packets, and read replies, so that tests can send exactly the
bytes they want: malformed, truncated, out of order, or commands PyMySQL does not offer
(COM_FIELD_LIST, COM_STATISTICS, COM_SET_OPTION, COM_RESET_CONNECTION, COM_CHANGE_USER).
"""

import hashlib
import socket
import struct

# Capability flags
CLIENT_LONG_PASSWORD = 1
CLIENT_FOUND_ROWS = 2
CLIENT_LONG_FLAG = 4
CLIENT_CONNECT_WITH_DB = 8
CLIENT_LOCAL_FILES = 0x80
CLIENT_PROTOCOL_41 = 0x200
CLIENT_INTERACTIVE = 0x400
CLIENT_SSL = 0x800
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_MULTI_STATEMENTS = 0x10000
CLIENT_MULTI_RESULTS = 0x20000
CLIENT_PS_MULTI_RESULTS = 0x40000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_CONNECT_ATTRS = 0x100000
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000
CLIENT_SESSION_TRACK = 0x800000
CLIENT_DEPRECATE_EOF = 0x1000000

DEFAULT_CAPS = (
    CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
)

SERVER_MORE_RESULTS_EXISTS = 0x0008

COM_QUIT = 0x01
COM_INIT_DB = 0x02
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_STATISTICS = 0x09
COM_PROCESS_KILL = 0x0C
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
COM_STMT_RESET = 0x1A
COM_SET_OPTION = 0x1B
COM_STMT_FETCH = 0x1C
COM_RESET_CONNECTION = 0x1F


class ServerError(Exception):
    def __init__(self, code, state, message):
        super().__init__(f"{code} ({state}): {message}")
        self.code = code
        self.state = state
        self.message = message


class Closed(Exception):
    """The peer closed the connection (EOF or reset) while we were reading."""


def native_scramble(password: bytes, salt: bytes) -> bytes:
    if not password:
        return b""
    h1 = hashlib.sha1(password).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(salt + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def lenenc_int(n: int) -> bytes:
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def read_lenenc_int(buf: bytes, pos: int):
    """Returns (value or None for NULL 0xfb, new position)."""
    b = buf[pos]
    if b < 251:
        return b, pos + 1
    if b == 0xFB:
        return None, pos + 1
    if b == 0xFC:
        return struct.unpack_from("<H", buf, pos + 1)[0], pos + 3
    if b == 0xFD:
        return int.from_bytes(buf[pos + 1 : pos + 4], "little"), pos + 4
    return struct.unpack_from("<Q", buf, pos + 1)[0], pos + 9


def parse_err(payload: bytes) -> ServerError:
    code = struct.unpack_from("<H", payload, 1)[0]
    if len(payload) > 3 and payload[3:4] == b"#":
        state = payload[4:9].decode()
        msg = payload[9:].decode("utf-8", "replace")
    else:
        state = ""
        msg = payload[3:].decode("utf-8", "replace")
    return ServerError(code, state, msg)


def parse_ok(payload: bytes):
    """Returns dict(affected, insert_id, status, warnings, info)."""
    pos = 1
    affected, pos = read_lenenc_int(payload, pos)
    insert_id, pos = read_lenenc_int(payload, pos)
    status, warnings = struct.unpack_from("<HH", payload, pos)
    return {"affected": affected, "insert_id": insert_id, "status": status, "warnings": warnings}


class Handshake:
    def __init__(self, payload: bytes):
        self.raw = payload
        self.protocol = payload[0]
        end = payload.index(b"\0", 1)
        self.server_version = payload[1:end].decode()
        pos = end + 1
        self.connection_id = struct.unpack_from("<I", payload, pos)[0]
        pos += 4
        salt1 = payload[pos : pos + 8]
        pos += 9  # + filler
        caps_lo = struct.unpack_from("<H", payload, pos)[0]
        pos += 2
        self.charset = payload[pos]
        pos += 1
        self.status = struct.unpack_from("<H", payload, pos)[0]
        pos += 2
        caps_hi = struct.unpack_from("<H", payload, pos)[0]
        pos += 2
        self.capabilities = caps_lo | (caps_hi << 16)
        auth_len = payload[pos]
        pos += 1
        pos += 6  # reserved
        self.mariadb_caps = struct.unpack_from("<I", payload, pos)[0]
        pos += 4
        n2 = max(13, auth_len - 8)
        salt2 = payload[pos : pos + n2]
        pos += n2
        self.salt = (salt1 + salt2).rstrip(b"\0")[:20]
        self.auth_plugin = ""
        if self.capabilities & CLIENT_PLUGIN_AUTH and pos < len(payload):
            self.auth_plugin = payload[pos:].split(b"\0", 1)[0].decode()


class RawConn:
    def __init__(self, host, port, timeout=10.0, source_address=None):
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=source_address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.seq = 0
        self.handshake = None
        self.caps = 0

    # --- framing -------------------------------------------------------------------------
    def recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(str(e)) from e
            if not chunk:
                raise Closed(f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def read_packet(self) -> bytes:
        """Reads one logical packet (joining 16 MiB continuation packets)."""
        out = bytearray()
        while True:
            hdr = self.recv_exact(4)
            length = int.from_bytes(hdr[:3], "little")
            self.seq = (hdr[3] + 1) & 0xFF
            out += self.recv_exact(length)
            if length < 0xFFFFFF:
                return bytes(out)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def write_packet(self, payload: bytes, seq=None):
        if seq is not None:
            self.seq = seq
        pos = 0
        while True:
            chunk = payload[pos : pos + 0xFFFFFF]
            self.sock.sendall(len(chunk).to_bytes(3, "little") + bytes([self.seq & 0xFF]) + chunk)
            self.seq = (self.seq + 1) & 0xFF
            pos += len(chunk)
            if len(chunk) < 0xFFFFFF:
                break

    def is_closed(self, timeout=10.0) -> bool:
        """Drains what the peer sends until EOF; True if it closes within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # --- connection phase ------------------------------------------------------------------
    def read_handshake(self) -> Handshake:
        p = self.read_packet()
        if p[0] == 0xFF:
            raise parse_err(p)
        self.handshake = Handshake(p)
        return self.handshake

    def handshake_response(self, user, password, db=None, caps=DEFAULT_CAPS, plugin="mysql_native_password",
                           auth=None, attrs=None, charset=45):
        hs = self.handshake
        if db:
            caps |= CLIENT_CONNECT_WITH_DB
        if attrs is not None:
            caps |= CLIENT_CONNECT_ATTRS
        caps &= hs.capabilities | CLIENT_CONNECT_ATTRS
        self.caps = caps
        if auth is None:
            if plugin == "caching_sha2_password":
                p = password.encode()
                h1 = hashlib.sha256(p).digest()
                h2 = hashlib.sha256(hashlib.sha256(h1).digest() + hs.salt).digest()
                auth = bytes(a ^ b for a, b in zip(h1, h2)) if p else b""
            else:
                auth = native_scramble(password.encode(), hs.salt)
        pl = struct.pack("<IIB23s", caps, 1 << 24, charset, b"")
        pl += user.encode() + b"\0"
        if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
            pl += lenenc_int(len(auth)) + auth
        else:
            pl += bytes([len(auth)]) + auth
        if caps & CLIENT_CONNECT_WITH_DB:
            pl += db.encode() + b"\0"
        if caps & CLIENT_PLUGIN_AUTH:
            pl += plugin.encode() + b"\0"
        if caps & CLIENT_CONNECT_ATTRS:
            a = b"".join(lenenc_int(len(k.encode())) + k.encode() + lenenc_int(len(v.encode())) + v.encode()
                         for k, v in (attrs or {}).items())
            pl += lenenc_int(len(a)) + a
        self.write_packet(pl)

    def finish_auth(self, password):
        """Reads the reply to the handshake response, following an auth switch to native."""
        while True:
            p = self.read_packet()
            if p[0] == 0x00:
                return parse_ok(p)
            if p[0] == 0xFF:
                raise parse_err(p)
            if p[0] == 0xFE:
                end = p.index(b"\0", 1)
                plugin = p[1:end].decode()
                salt = p[end + 1 :].rstrip(b"\0")
                if plugin != "mysql_native_password":
                    raise AssertionError(f"unexpected auth switch to {plugin}")
                self.write_packet(native_scramble(password.encode(), salt))
                continue
            if p[0] == 0x01:
                raise AssertionError(f"unexpected extra auth data {p!r}")
            raise AssertionError(f"unexpected packet during auth {p!r}")

    def login(self, user, password, db=None, caps=DEFAULT_CAPS, plugin="mysql_native_password", attrs=None):
        self.read_handshake()
        self.handshake_response(user, password, db=db, caps=caps, plugin=plugin, attrs=attrs)
        return self.finish_auth(password)

    # --- commands --------------------------------------------------------------------------
    def command(self, cmd: int, arg: bytes = b""):
        self.write_packet(bytes([cmd]) + arg, seq=0)

    def read_result(self):
        """Reads one result: returns ('ok', okdict) or ('rows', columns, rows, status).
        Raises ServerError on an ERR packet."""
        p = self.read_packet()
        if p[0] == 0x00:
            return ("ok", parse_ok(p))
        if p[0] == 0xFF:
            raise parse_err(p)
        if p[0] == 0xFB:
            return ("infile", p[1:].decode())
        ncols, _ = read_lenenc_int(p, 0)
        cols = []
        for _ in range(ncols):
            c = self.read_packet()
            pos = 0
            fields = []
            for _ in range(6):  # catalog, schema, table, org_table, name, org_name
                n, pos = read_lenenc_int(c, pos)
                fields.append(c[pos : pos + n].decode())
                pos += n
            cols.append(fields[4])
        if not self.caps & CLIENT_DEPRECATE_EOF:
            e = self.read_packet()
            assert e[0] == 0xFE and len(e) < 9, f"expected EOF after column definitions, got {e!r}"
        rows = []
        while True:
            r = self.read_packet()
            if r[0] == 0xFE and len(r) < 0xFFFFFF and (len(r) < 9 or self.caps & CLIENT_DEPRECATE_EOF):
                if self.caps & CLIENT_DEPRECATE_EOF:
                    status = parse_ok(r)["status"]
                else:
                    status = struct.unpack_from("<H", r, 3)[0]
                return ("rows", cols, rows, status)
            if r[0] == 0xFF:
                raise parse_err(r)
            pos = 0
            row = []
            for _ in range(ncols):
                n, pos = read_lenenc_int(r, pos)
                if n is None:
                    row.append(None)
                else:
                    row.append(r[pos : pos + n].decode("utf-8", "replace"))
                    pos += n
            rows.append(tuple(row))

    def query(self, sql: str):
        """Runs a COM_QUERY and returns the list of results (several with multi-statements)."""
        self.command(COM_QUERY, sql.encode())
        results = []
        while True:
            r = self.read_result()
            results.append(r)
            status = r[1]["status"] if r[0] == "ok" else (r[3] if r[0] == "rows" else 0)
            if not status & SERVER_MORE_RESULTS_EXISTS:
                return results

    def scalar(self, sql: str):
        res = self.query(sql)
        assert res[0][0] == "rows", res
        return res[0][2][0][0]


# --- binary protocol (prepared statements) ---------------------------------------------------
# Just enough of COM_STMT_PREPARE / EXECUTE / FETCH / CLOSE / RESET / SEND_LONG_DATA to drive
# prepared statements and cursors by hand: parameters are sent as LONGLONG, DOUBLE, VAR_STRING,
# BLOB or NULL; binary result rows are decoded for the common column types (integers, floats,
# strings and blobs; temporal values are returned as their raw bytes).

CURSOR_TYPE_NO_CURSOR = 0
CURSOR_TYPE_READ_ONLY = 1
SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002
SERVER_STATUS_CURSOR_EXISTS = 0x0040
SERVER_STATUS_LAST_ROW_SENT = 0x0080

TYPE_DECIMAL, TYPE_TINY, TYPE_SHORT, TYPE_LONG, TYPE_FLOAT, TYPE_DOUBLE, TYPE_NULL = 0, 1, 2, 3, 4, 5, 6
TYPE_TIMESTAMP, TYPE_LONGLONG, TYPE_INT24, TYPE_DATE, TYPE_TIME, TYPE_DATETIME, TYPE_YEAR = 7, 8, 9, 10, 11, 12, 13
TYPE_BLOB, TYPE_VAR_STRING = 0xFC, 0xFD
UNSIGNED_FLAG = 0x20
BINARY_CHARSET = 63


class LongData:
    """A parameter whose value was sent with COM_STMT_SEND_LONG_DATA (nothing in the execute)."""


LONG_DATA = LongData()


class Column:
    def __init__(self, payload: bytes):
        pos = 0
        fields = []
        for _ in range(6):  # catalog, schema, table, org_table, name, org_name
            n, pos = read_lenenc_int(payload, pos)
            fields.append(payload[pos : pos + n].decode("utf-8", "replace"))
            pos += n
        self.name = fields[4]
        _, pos = read_lenenc_int(payload, pos)  # length of the fixed fields (0x0c)
        self.charset, self.length, self.type, self.flags, self.decimals = struct.unpack_from(
            "<HIBHB", payload, pos)

    def __repr__(self):
        return f"Column({self.name!r}, type={self.type})"


class Prepared:
    def __init__(self, stmt_id, params, columns, warnings):
        self.id = stmt_id
        self.params = params          # number of parameters
        self.columns = columns        # list of Column
        self.warnings = warnings


def decode_binary_row(payload: bytes, cols):
    """A binary protocol result row (header 0x00, NULL bitmap with offset 2, values)."""
    n = len(cols)
    nb = (n + 7 + 2) // 8
    bitmap = payload[1 : 1 + nb]
    pos = 1 + nb
    row = []
    for i, col in enumerate(cols):
        bit = i + 2
        if bitmap[bit // 8] & (1 << (bit % 8)):
            row.append(None)
            continue
        t = col.type
        unsigned = bool(col.flags & UNSIGNED_FLAG)
        if t == TYPE_TINY:
            v = struct.unpack_from("<B" if unsigned else "<b", payload, pos)[0]
            pos += 1
        elif t in (TYPE_SHORT, TYPE_YEAR):
            v = struct.unpack_from("<H" if unsigned else "<h", payload, pos)[0]
            pos += 2
        elif t in (TYPE_LONG, TYPE_INT24):
            v = struct.unpack_from("<I" if unsigned else "<i", payload, pos)[0]
            pos += 4
        elif t == TYPE_LONGLONG:
            v = struct.unpack_from("<Q" if unsigned else "<q", payload, pos)[0]
            pos += 8
        elif t == TYPE_FLOAT:
            v = struct.unpack_from("<f", payload, pos)[0]
            pos += 4
        elif t == TYPE_DOUBLE:
            v = struct.unpack_from("<d", payload, pos)[0]
            pos += 8
        elif t == TYPE_NULL:
            v = None
        elif t in (TYPE_TIMESTAMP, TYPE_DATE, TYPE_DATETIME, TYPE_TIME):
            ln = payload[pos]
            v = payload[pos + 1 : pos + 1 + ln]
            pos += 1 + ln
        else:  # strings, decimals, blobs, enums, sets, json, bit, geometry
            ln, pos = read_lenenc_int(payload, pos)
            raw = payload[pos : pos + ln]
            pos += ln
            v = raw if col.charset == BINARY_CHARSET and t != 0xF6 else raw.decode("utf-8", "replace")
        row.append(v)
    return tuple(row)


def _param(v):
    """(type, unsigned flag, encoded value) of one execute parameter."""
    if v is None:
        return TYPE_NULL, b""
    if isinstance(v, LongData):
        return TYPE_BLOB, b""
    if isinstance(v, bool) or isinstance(v, int):
        return TYPE_LONGLONG, struct.pack("<q", int(v))
    if isinstance(v, float):
        return TYPE_DOUBLE, struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode()
        return TYPE_VAR_STRING, lenenc_int(len(b)) + b
    b = bytes(v)
    return TYPE_BLOB, lenenc_int(len(b)) + b


def _is_eof(p: bytes, caps: int) -> bool:
    return p[0] == 0xFE and len(p) < 0xFFFFFF and (len(p) < 9 or bool(caps & CLIENT_DEPRECATE_EOF))


def _eof_status(p: bytes, caps: int) -> int:
    if caps & CLIENT_DEPRECATE_EOF:
        return parse_ok(p)["status"]
    return struct.unpack_from("<H", p, 3)[0]


def _stmt_prepare(self, sql) -> Prepared:
    """COM_STMT_PREPARE; raises ServerError."""
    self.command(COM_STMT_PREPARE, sql.encode() if isinstance(sql, str) else sql)
    p = self.read_packet()
    if p[0] == 0xFF:
        raise parse_err(p)
    assert p[0] == 0x00, f"unexpected reply to COM_STMT_PREPARE: {p!r}"
    stmt_id, ncols, nparams, _, warnings = struct.unpack_from("<IHHBH", p, 1)
    columns = []
    for n, keep in ((nparams, False), (ncols, True)):
        if n:
            defs = [self.read_packet() for _ in range(n)]
            if keep:
                columns = [Column(d) for d in defs]
            if not self.caps & CLIENT_DEPRECATE_EOF:
                e = self.read_packet()
                assert e[0] == 0xFE, f"expected EOF after definitions, got {e!r}"
    return Prepared(stmt_id, nparams, columns, warnings)


def _read_binary_result(self):
    """One binary result: ('ok', okdict), ('rows', columns, rows, status) or
    ('cursor', columns, status) when the server opened a cursor. Raises ServerError."""
    p = self.read_packet()
    if p[0] == 0x00:
        return ("ok", parse_ok(p))
    if p[0] == 0xFF:
        raise parse_err(p)
    ncols, _ = read_lenenc_int(p, 0)
    cols = [Column(self.read_packet()) for _ in range(ncols)]
    self._cursor_columns = cols
    if not self.caps & CLIENT_DEPRECATE_EOF:
        e = self.read_packet()
        assert e[0] == 0xFE, f"expected EOF after column definitions, got {e!r}"
        status = struct.unpack_from("<H", e, 3)[0]
        if status & SERVER_STATUS_CURSOR_EXISTS:
            return ("cursor", cols, status)
    rows = []
    while True:
        r = self.read_packet()
        if r[0] == 0xFF:
            raise parse_err(r)
        if _is_eof(r, self.caps):
            return ("rows", cols, rows, _eof_status(r, self.caps))
        rows.append(decode_binary_row(r, cols))


def _stmt_execute(self, stmt, params=(), cursor=CURSOR_TYPE_NO_CURSOR, send_types=True):
    """COM_STMT_EXECUTE of `stmt` (a Prepared, or an id with `params` giving the count).
    Returns the list of results (several for CALL), like query()."""
    stmt_id = stmt.id if isinstance(stmt, Prepared) else stmt
    params = list(params)
    pl = struct.pack("<IBI", stmt_id, cursor, 1)
    if params:
        bitmap = bytearray((len(params) + 7) // 8)
        types = b""
        values = b""
        for i, v in enumerate(params):
            t, enc = _param(v)
            if v is None:
                bitmap[i // 8] |= 1 << (i % 8)
            types += bytes([t, 0])
            values += enc
        pl += bytes(bitmap) + (b"\x01" + types if send_types else b"\x00") + values
    self.command(COM_STMT_EXECUTE, pl)
    results = []
    while True:
        r = self.read_binary_result()
        results.append(r)
        status = r[1]["status"] if r[0] == "ok" else r[-1]
        if not status & SERVER_MORE_RESULTS_EXISTS:
            return results


def _stmt_fetch(self, stmt, rows, columns=None):
    """COM_STMT_FETCH: returns (rows, status). Raises ServerError."""
    stmt_id = stmt.id if isinstance(stmt, Prepared) else stmt
    cols = columns if columns is not None else self._cursor_columns
    self.command(COM_STMT_FETCH, struct.pack("<II", stmt_id, rows))
    out = []
    while True:
        r = self.read_packet()
        if r[0] == 0xFF:
            raise parse_err(r)
        if _is_eof(r, self.caps):
            return out, _eof_status(r, self.caps)
        out.append(decode_binary_row(r, cols))


def _stmt_close(self, stmt):
    stmt_id = stmt.id if isinstance(stmt, Prepared) else stmt
    self.command(COM_STMT_CLOSE, struct.pack("<I", stmt_id))  # no reply


def _stmt_reset(self, stmt):
    stmt_id = stmt.id if isinstance(stmt, Prepared) else stmt
    self.command(COM_STMT_RESET, struct.pack("<I", stmt_id))
    p = self.read_packet()
    if p[0] == 0xFF:
        raise parse_err(p)
    return parse_ok(p)


def _stmt_send_long_data(self, stmt, param, data: bytes):
    stmt_id = stmt.id if isinstance(stmt, Prepared) else stmt
    self.command(COM_STMT_SEND_LONG_DATA, struct.pack("<IH", stmt_id, param) + data)  # no reply


RawConn._cursor_columns = []
RawConn.stmt_prepare = _stmt_prepare
RawConn.read_binary_result = _read_binary_result
RawConn.stmt_execute = _stmt_execute
RawConn.stmt_fetch = _stmt_fetch
RawConn.stmt_close = _stmt_close
RawConn.stmt_reset = _stmt_reset
RawConn.stmt_send_long_data = _stmt_send_long_data
