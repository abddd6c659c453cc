//! The generic response packets: OK, ERR and EOF, parsed from borrowed payloads and written
//! into buffers.

use bytes::{BufMut, BytesMut};

use crate::caps::CLIENT_SESSION_TRACK;
use crate::codec;
use crate::error::{ProtocolError, Result};
use crate::wire::{put_lenenc_int, Reader};

/// An OK packet (header `0x00`, or `0xFE` when it ends a result set under `DEPRECATE_EOF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkPacket<'a> {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: &'a [u8],
    /// Session state changes, still encoded, when the client asked for session tracking.
    pub session_state: &'a [u8],
}

impl<'a> OkPacket<'a> {
    pub fn parse(payload: &'a [u8], capabilities: u32) -> Result<Self> {
        let mut r = Reader::new(payload);
        let header = r.u8()?;
        if header != 0x00 && header != 0xFE {
            return Err(ProtocolError::Malformed("not an OK packet"));
        }
        let affected_rows = r.lenenc_int()?;
        let last_insert_id = r.lenenc_int()?;
        let status = r.u16()?;
        let warnings = r.u16()?;
        let mut ok = OkPacket {
            affected_rows,
            last_insert_id,
            status,
            warnings,
            info: &[],
            session_state: &[],
        };
        if capabilities & CLIENT_SESSION_TRACK != 0 {
            if !r.is_empty() {
                ok.info = r.lenenc_bytes()?;
            }
            if status & crate::caps::SERVER_SESSION_STATE_CHANGED != 0 && !r.is_empty() {
                ok.session_state = r.lenenc_bytes()?;
            }
        } else {
            // The manual calls this info `string<EOF>`, but MariaDB and MySQL both send it
            // length-encoded (`net_send_ok`), and client libraries read it so. The whole rest
            // is kept only for a server that really sends it bare.
            let rest = r.rest();
            ok.info = Reader::new(rest).lenenc_bytes().unwrap_or(rest);
        }
        Ok(ok)
    }
}

/// An ERR packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    pub code: u16,
    pub sqlstate: &'a [u8],
    pub message: &'a [u8],
}

impl<'a> ErrPacket<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        if r.u8()? != 0xFF {
            return Err(ProtocolError::Malformed("not an ERR packet"));
        }
        let code = r.u16()?;
        let sqlstate: &[u8] = if r.peek() == Some(b'#') {
            r.skip(1)?;
            r.take(5)?
        } else {
            b"HY000"
        };
        Ok(ErrPacket {
            code,
            sqlstate,
            message: r.rest(),
        })
    }

    /// Converts a server's error into a [`ProtocolError::Server`].
    pub fn to_error(&self) -> ProtocolError {
        ProtocolError::Server {
            code: self.code,
            sqlstate: String::from_utf8_lossy(self.sqlstate).into_owned(),
            message: String::from_utf8_lossy(self.message).into_owned(),
        }
    }
}

/// An EOF packet: `(warnings, status)`.
pub fn parse_eof(payload: &[u8]) -> Result<(u16, u16)> {
    let mut r = Reader::new(payload);
    if r.u8()? != 0xFE {
        return Err(ProtocolError::Malformed("not an EOF packet"));
    }
    if r.is_empty() {
        return Ok((0, 0));
    }
    Ok((r.u16()?, r.u16()?))
}

/// True if a packet of `len` bytes with this first byte ends a result set (EOF, or OK under
/// `DEPRECATE_EOF`). A row may also start with `0xFE`, but only when it is 16 MiB or longer.
pub fn is_terminator(first: u8, len: usize) -> bool {
    first == 0xFE && len < codec::MAX_FRAME
}

/// Appends a whole OK packet with sequence id `seq`.
pub fn write_ok(
    buf: &mut BytesMut,
    seq: u8,
    affected_rows: u64,
    last_insert_id: u64,
    status: u16,
    warnings: u16,
) {
    let start = codec::begin(buf, seq);
    buf.put_u8(0x00);
    put_lenenc_int(buf, affected_rows);
    put_lenenc_int(buf, last_insert_id);
    buf.put_u16_le(status);
    buf.put_u16_le(warnings);
    codec::finish(buf, start);
}

/// Appends a whole EOF packet with sequence id `seq`.
pub fn write_eof(buf: &mut BytesMut, seq: u8, warnings: u16, status: u16) {
    let start = codec::begin(buf, seq);
    buf.put_u8(0xFE);
    buf.put_u16_le(warnings);
    buf.put_u16_le(status);
    codec::finish(buf, start);
}

/// Appends a whole ERR packet with sequence id `seq`. Messages longer than a packet are cut.
pub fn write_err(buf: &mut BytesMut, seq: u8, code: u16, sqlstate: &str, message: &str) {
    let start = codec::begin(buf, seq);
    buf.put_u8(0xFF);
    buf.put_u16_le(code);
    buf.put_u8(b'#');
    let mut state = [b'H', b'Y', b'0', b'0', b'0'];
    for (d, s) in state.iter_mut().zip(sqlstate.bytes()) {
        *d = s;
    }
    buf.put_slice(&state);
    let msg = message.as_bytes();
    buf.put_slice(&msg[..msg.len().min(codec::MAX_FRAME - 16)]);
    codec::finish(buf, start);
}

/// Error codes and states the proxy itself answers with, worded as the server words them. Only
/// server codes: MariaDB Connector/C (the `mariadb` client, mysqltest, and what links it) reads
/// an ERR packet with a client-side code (2000-2999, CR_*) as "2027 Received malformed packet".
pub mod errors {
    pub const ER_ACCESS_DENIED: u16 = 1045;
    pub const ER_HOST_IS_BLOCKED: u16 = 1129;
    pub const ER_ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
    pub const ER_ACCOUNT_HAS_BEEN_LOCKED: u16 = 4151;
    pub const ER_MUST_CHANGE_PASSWORD_LOGIN: u16 = 1862;
    pub const ER_DBACCESS_DENIED: u16 = 1044;
    pub const ER_BAD_DB: u16 = 1049;
    pub const ER_HOST_NOT_PRIVILEGED: u16 = 1130;
    pub const ER_HANDSHAKE: u16 = 1043;
    pub const ER_NET_PACKETS_OUT_OF_ORDER: u16 = 1156;
    pub const ER_NET_PACKET_TOO_LARGE: u16 = 1153;
    pub const ER_UNKNOWN_COM: u16 = 1047;
    pub const ER_NO_SUCH_THREAD: u16 = 1094;
    pub const ER_NOT_SUPPORTED_YET: u16 = 1235;
    pub const ER_KILL_DENIED: u16 = 1095;
    pub const ER_CON_COUNT: u16 = 1040;
    pub const ER_SERVER_SHUTDOWN: u16 = 1053;
    pub const ER_CONNECTION_KILLED: u16 = 1927;
    pub const ER_UNKNOWN_STMT_HANDLER: u16 = 1243;
    pub const ER_STMT_HAS_NO_OPEN_CURSOR: u16 = 1421;
    pub const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;
    pub const ER_NOT_SUPPORTED_AUTH_MODE: u16 = 1251;
    pub const ER_OUT_OF_RESOURCES: u16 = 1041;
    /// No server can take the command (with the reason in the message).
    pub const ER_UNKNOWN_ERROR: u16 = 1105;
    /// A backend connection failed during the command, and the session goes on (08S01).
    pub const ER_NET_READ_ERROR: u16 = 1158;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;

    #[test]
    fn ok_round_trip() {
        let mut buf = BytesMut::new();
        write_ok(&mut buf, 1, 3, 300, SERVER_STATUS_AUTOCOMMIT, 1);
        let ok = OkPacket::parse(&buf[4..], CLIENT_PROTOCOL_41).unwrap();
        assert_eq!(
            (ok.affected_rows, ok.last_insert_id, ok.status, ok.warnings),
            (3, 300, 2, 1)
        );
    }

    #[test]
    fn ok_with_session_track() {
        // affected 0, id 0, status with SESSION_STATE_CHANGED, 0 warnings, info "", state 3 bytes
        let p = [0x00, 0, 0, 0x02, 0x40, 0, 0, 0, 3, 1, 1, b'x'];
        let ok = OkPacket::parse(&p, CLIENT_SESSION_TRACK).unwrap();
        assert_eq!(ok.session_state, &[1, 1, b'x']);
    }

    #[test]
    fn ok_info_is_length_encoded_without_session_track() {
        // UPDATE's info as MariaDB sends it to a client without CLIENT_SESSION_TRACK.
        let mut p = vec![0x00, 1, 0, 0x02, 0x00, 0, 0];
        p.push(40);
        p.extend_from_slice(b"Rows matched: 1  Changed: 1  Warnings: 0");
        let ok = OkPacket::parse(&p, CLIENT_PROTOCOL_41).unwrap();
        assert_eq!(ok.info, b"Rows matched: 1  Changed: 1  Warnings: 0");
        // A bare info that does not parse as length-encoded is kept whole.
        let p = [0x00, 0, 0, 0x02, 0x00, 0, 0, b'h', b'i'];
        assert_eq!(OkPacket::parse(&p, CLIENT_PROTOCOL_41).unwrap().info, b"hi");
    }

    #[test]
    fn err_round_trip() {
        let mut buf = BytesMut::new();
        write_err(&mut buf, 2, 1045, "28000", "Access denied");
        let e = ErrPacket::parse(&buf[4..]).unwrap();
        assert_eq!(
            (e.code, e.sqlstate, e.message),
            (1045, &b"28000"[..], &b"Access denied"[..])
        );
        assert!(ErrPacket::parse(&[0xFF, 1]).is_err());
    }

    #[test]
    fn terminator() {
        assert!(is_terminator(0xFE, 5));
        assert!(!is_terminator(0xFE, codec::MAX_FRAME));
        assert!(!is_terminator(0x00, 5));
    }
}
