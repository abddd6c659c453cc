//! Connection ids in result sets. A client behind the proxy knows its session by the id the
//! proxy gave it in the handshake (and `KILL` takes that id), but servers report their own
//! thread ids. For a statement that reads ids, [`IdRewrite`] finds the columns that hold them
//! (a PROCESSLIST's `Id`, a `CONNECTION_ID()`) and rewrites each value that is a proxied
//! backend thread into the id of its proxy session, so that what a client sees agrees.

use std::collections::HashMap;

use bytes::BytesMut;

use crate::caps::MARIADB_CLIENT_EXTENDED_METADATA;
use crate::reply::PacketKind;
use crate::wire::{put_lenenc_bytes, Reader};

const TYPE_LONG: u8 = 3;
const TYPE_LONGLONG: u8 = 8;
const FLAG_UNSIGNED: u16 = 32;

/// How the rows of a reply are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// COM_QUERY's rows: every value a length-encoded string.
    Text,
    /// COM_STMT_EXECUTE's rows: a null bitmap, then values by column type.
    Binary,
}

/// What a column of the result holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    None,
    /// Thread ids of any connection (a processlist's `Id`).
    AnyThread,
    /// An unsigned integer expression, which `CONNECTION_ID()` is: only the session's own
    /// backend thread id is rewritten there.
    OwnThread,
}

#[derive(Debug, Clone, Copy)]
struct Column {
    ty: u8,
    role: Role,
}

/// Rewrites the thread ids in the result sets of one reply.
#[derive(Debug)]
pub struct IdRewrite {
    format: RowFormat,
    /// Backend thread id → proxy session id, for the server that answers.
    sessions: HashMap<u64, u64>,
    /// The session's own thread id on that server, and its proxy id.
    own: (u64, u64),
    /// Column definitions carry MariaDB's extended metadata field.
    extended_metadata: bool,
    columns: Vec<Column>,
}

impl IdRewrite {
    /// For a reply from a server where `sessions` maps thread ids to proxy session ids, and the
    /// session's own thread is `own.0` (proxy id `own.1`), on a connection that negotiated
    /// `extended_capabilities`.
    pub fn new(
        format: RowFormat,
        sessions: HashMap<u64, u64>,
        own: (u64, u64),
        extended_capabilities: u32,
    ) -> Self {
        IdRewrite {
            format,
            sessions,
            own,
            extended_metadata: extended_capabilities & MARIADB_CLIENT_EXTENDED_METADATA != 0,
            columns: Vec::new(),
        }
    }

    /// Feeds a packet of the reply (`kind` as the tracker saw it). Returns true if the packet
    /// was a row with ids to rewrite: its new payload is then in `out`, to send in its place.
    /// A binary row is rewritten in place (`payload` changes, false is returned).
    pub fn on_packet(&mut self, kind: PacketKind, payload: &mut [u8], out: &mut BytesMut) -> bool {
        match kind {
            PacketKind::ColumnCount => self.columns.clear(),
            PacketKind::ColumnDef => self.columns.push(column(payload, self.extended_metadata)),
            PacketKind::Row if self.columns.iter().any(|c| c.role != Role::None) => {
                if self.format == RowFormat::Binary {
                    self.binary_row(payload);
                } else {
                    return self.text_row(payload, out).unwrap_or(false);
                }
            }
            PacketKind::Row | PacketKind::Other => {}
        }
        false
    }

    fn proxy_id(&self, role: Role, thread: u64) -> Option<u64> {
        match role {
            Role::None => None,
            Role::AnyThread => self.sessions.get(&thread).copied(),
            Role::OwnThread => (thread == self.own.0).then_some(self.own.1),
        }
    }

    fn text_row(&self, payload: &[u8], out: &mut BytesMut) -> Option<bool> {
        let mut r = Reader::new(payload);
        let mut changed = false;
        out.clear();
        for c in &self.columns {
            let Some(value) = r.lenenc_bytes_or_null().ok()? else {
                out.extend_from_slice(&[0xFB]);
                continue;
            };
            let id = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .and_then(|thread| self.proxy_id(c.role, thread));
            match id {
                Some(id) => {
                    put_lenenc_bytes(out, id.to_string().as_bytes());
                    changed = true;
                }
                None => put_lenenc_bytes(out, value),
            }
        }
        r.is_empty().then_some(changed)
    }

    fn binary_row(&self, payload: &mut [u8]) -> Option<()> {
        let bitmap_len = (self.columns.len() + 7 + 2) / 8;
        let mut at = 1 + bitmap_len;
        for (i, c) in self.columns.iter().enumerate() {
            let bit = i + 2;
            if payload.get(1 + bit / 8)? & (1 << (bit % 8)) != 0 {
                continue;
            }
            let len = binary_len(c.ty, payload.get(at..)?)?;
            // `len` comes from the server's bytes and may be near `usize::MAX`: an overflowing
            // end is a malformed row, like one past the payload.
            let value = payload.get_mut(at..at.checked_add(len)?)?;
            let width = match c.ty {
                TYPE_LONG => 4,
                TYPE_LONGLONG => 8,
                _ => 0,
            };
            if width > 0 && c.role != Role::None {
                let mut le = [0u8; 8];
                le[..width].copy_from_slice(value);
                if let Some(id) = self.proxy_id(c.role, u64::from_le_bytes(le)) {
                    if width == 8 || id <= u64::from(u32::MAX) {
                        value.copy_from_slice(&id.to_le_bytes()[..width]);
                    }
                }
            }
            at += len;
        }
        Some(())
    }
}

/// What a column definition says the column holds.
fn column(payload: &[u8], extended_metadata: bool) -> Column {
    let parse = || -> crate::error::Result<Column> {
        let mut r = Reader::new(payload);
        r.lenenc_bytes()?; // catalog
        r.lenenc_bytes()?; // schema
        r.lenenc_bytes()?; // table
        let org_table = r.lenenc_bytes()?;
        let name = r.lenenc_bytes()?;
        let org_name = r.lenenc_bytes()?;
        if extended_metadata {
            r.lenenc_bytes()?;
        }
        r.lenenc_int()?; // length of the fixed fields
        r.skip(2 + 4)?; // character set, length
        let ty = r.u8()?;
        let flags = r.u16()?;
        let is = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
        let integer = ty == TYPE_LONG || ty == TYPE_LONGLONG;
        let role = if is(org_table, b"PROCESSLIST") && is(org_name, b"ID")
            || is(org_table, b"threads") && is(org_name, b"PROCESSLIST_ID")
            // SHOW PROCESSLIST's column comes from no table.
            || org_table.is_empty() && name == b"Id" && integer
        {
            Role::AnyThread
        } else if org_table.is_empty() && integer && flags & FLAG_UNSIGNED != 0 {
            Role::OwnThread
        } else {
            Role::None
        };
        Ok(Column { ty, role })
    };
    parse().unwrap_or(Column {
        ty: 0xFF,
        role: Role::None,
    })
}

/// The length of a binary-protocol value of type `ty` at the start of `rest`.
fn binary_len(ty: u8, rest: &[u8]) -> Option<usize> {
    Some(match ty {
        6 => 0,                                              // NULL
        1 => 1,                                              // TINY
        2 | 13 => 2,                                         // SHORT, YEAR
        3 | 4 | 9 => 4,                                      // LONG, FLOAT, INT24
        5 | 8 => 8,                                          // DOUBLE, LONGLONG
        7 | 10 | 11 | 12 => 1 + usize::from(*rest.first()?), // TIMESTAMP, DATE, TIME, DATETIME
        _ => {
            let mut r = Reader::new(rest);
            let n = r.lenenc_int().ok()?;
            // A length of up to 2^64 - 1 plus its prefix overflows: the row is malformed.
            (rest.len() - r.remaining()).checked_add(usize::try_from(n).ok()?)?
        }
    })
}

#[cfg(test)]
mod tests;
