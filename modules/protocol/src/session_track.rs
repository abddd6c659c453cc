//! Session state tracking in OK packets (`CLIENT_SESSION_TRACK`): reading a tracked system
//! variable such as MariaDB's `last_gtid`, and rewriting an OK packet of a backend connection
//! that tracks session state for a client that did not ask for it.
//!
//! After the status and warnings, an OK packet of a tracking connection carries a
//! length-encoded info string when the info is non-empty or the status has
//! `SERVER_SESSION_STATE_CHANGED`, then, with that flag, a length-encoded block of entries,
//! each a type byte and length-encoded data. Without the capability the info is length-encoded
//! too and present only when non-empty, and no block follows. (The MySQL manual calls that
//! info `string<EOF>`, but MariaDB's and MySQL's `net_send_ok` write it length-encoded, and
//! Connector/C and `mysql_common` read it so.) The two formats therefore differ only in OK
//! packets that have `SERVER_SESSION_STATE_CHANGED`.

use bytes::{BufMut, BytesMut};

use crate::caps::SERVER_SESSION_STATE_CHANGED;
use crate::error::{ProtocolError, Result};
use crate::wire::{put_lenenc_bytes, Reader};

/// Entry type: a changed system variable; data is its length-encoded name and value.
pub const SESSION_TRACK_SYSTEM_VARIABLES: u8 = 0;
/// Entry type: the default schema changed; data is the length-encoded schema name.
pub const SESSION_TRACK_SCHEMA: u8 = 1;
/// Entry type: some session state changed; data is `"1"`.
pub const SESSION_TRACK_STATE_CHANGE: u8 = 2;
/// Entry type: MySQL's GTIDs of the transaction (MariaDB tracks `last_gtid` as a variable).
pub const SESSION_TRACK_GTIDS: u8 = 3;
/// Entry type: the characteristics of the current transaction, as SQL.
pub const SESSION_TRACK_TRANSACTION_CHARACTERISTICS: u8 = 4;
/// Entry type: the state of the current transaction, as an 8-character code.
pub const SESSION_TRACK_TRANSACTION_STATE: u8 = 5;

/// An OK packet of a tracking connection, split where the two formats differ.
struct TrackedOk<'a> {
    /// Header, affected rows, last insert id, status and warnings, as sent.
    head: &'a [u8],
    status: u16,
    info: &'a [u8],
    /// The state block without its length, empty when absent.
    state: &'a [u8],
}

impl<'a> TrackedOk<'a> {
    fn split(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let header = r.u8()?;
        if header != 0x00 && header != 0xFE {
            return Err(ProtocolError::Malformed("not an OK packet"));
        }
        r.lenenc_int()?;
        r.lenenc_int()?;
        let status = r.u16()?;
        r.skip(2)?;
        let head = &payload[..payload.len() - r.remaining()];
        // Either part may be missing at the end of the packet: a server leaves out an empty
        // info, and MariaDB sets the flag (without a block) even for non-tracking clients.
        let info = if r.is_empty() {
            &[][..]
        } else {
            r.lenenc_bytes()?
        };
        let state = if status & SERVER_SESSION_STATE_CHANGED != 0 && !r.is_empty() {
            r.lenenc_bytes()?
        } else {
            &[]
        };
        Ok(TrackedOk {
            head,
            status,
            info,
            state,
        })
    }
}

/// The entries of a session state block ([`OkPacket::session_state`]) as `(type, data)`, in
/// the server's order. A malformed entry is yielded as an error and ends the iteration.
///
/// [`OkPacket::session_state`]: crate::packets::OkPacket::session_state
#[derive(Debug, Clone)]
pub struct StateEntries<'a> {
    r: Reader<'a>,
}

impl<'a> StateEntries<'a> {
    /// Iterates over `block`, the state block without its length prefix.
    pub fn new(block: &'a [u8]) -> Self {
        StateEntries {
            r: Reader::new(block),
        }
    }
}

impl<'a> Iterator for StateEntries<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let entry = self.r.u8().and_then(|t| Ok((t, self.r.lenenc_bytes()?)));
        if entry.is_err() {
            self.r = Reader::new(&[]);
        }
        Some(entry)
    }
}

/// The value of the tracked system variable `name` (compared ASCII case-insensitively, as
/// the server compares variable names) in an OK packet (header `0x00` or `0xFE`) of a
/// connection with `CLIENT_SESSION_TRACK`; `None` when the packet does not carry it or is
/// malformed.
pub fn tracked_variable<'a>(ok_payload: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let ok = TrackedOk::split(ok_payload).ok()?;
    for entry in StateEntries::new(ok.state) {
        let (kind, data) = entry.ok()?;
        if kind != SESSION_TRACK_SYSTEM_VARIABLES {
            continue;
        }
        let mut r = Reader::new(data);
        if r.lenenc_bytes().ok()?.eq_ignore_ascii_case(name.as_bytes()) {
            return r.lenenc_bytes().ok();
        }
    }
    None
}

/// Rewrites an OK packet of a connection with `CLIENT_SESSION_TRACK` into the format of a
/// client without it: `SERVER_SESSION_STATE_CHANGED` cleared, the state block dropped, the
/// (length-encoded) info kept when non-empty. Appends the new payload to `out` and returns
/// true; returns false, appending nothing, when the packet is the same in both formats (no
/// state-changed flag) or is malformed, so that the caller forwards the original as it is.
pub fn untrack_ok(ok_payload: &[u8], out: &mut BytesMut) -> bool {
    let Ok(ok) = TrackedOk::split(ok_payload) else {
        return false;
    };
    if ok.status & SERVER_SESSION_STATE_CHANGED == 0 {
        return false;
    }
    // The head ends with the status and the warnings, two bytes each.
    let (before_status, status_warnings) = ok.head.split_at(ok.head.len() - 4);
    out.reserve(
        ok.head.len()
            + if ok.info.is_empty() {
                0
            } else {
                9 + ok.info.len()
            },
    );
    out.put_slice(before_status);
    out.put_u16_le(ok.status & !SERVER_SESSION_STATE_CHANGED);
    out.put_slice(&status_warnings[2..]);
    // A client library that sees any byte after the warnings reads an info string.
    if !ok.info.is_empty() {
        put_lenenc_bytes(out, ok.info);
    }
    true
}

#[cfg(test)]
mod tests;
