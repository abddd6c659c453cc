//! The proxy's own small text queries (the monitor's probes, the account loader): one helper
//! that sends a COM_QUERY and reads its whole reply, with column names, bounded in columns,
//! draining any further result sets so that the connection stays in step. Not for client
//! traffic, whose replies are relayed, never collected.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::caps::CLIENT_DEPRECATE_EOF;
use crate::command::COM_QUERY;
use crate::conn::PacketIo;
use crate::error::ProtocolError;
use crate::packets::{is_terminator, parse_eof, ErrPacket, OkPacket};
use crate::wire::Reader;

/// One row of a text result set; `None` is SQL NULL.
pub type TextRow = Vec<Option<Bytes>>;

/// A text result set with its column names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each with one value per column; `None` is SQL NULL.
    pub rows: Vec<TextRow>,
}

impl ResultSet {
    /// The index of the first column named like one of `names` (case-insensitive).
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.columns.iter().position(|c| c.eq_ignore_ascii_case(n)))
    }

    /// The value of a column of `row` as text; `None` for NULL or a missing column.
    pub fn text(&self, row: &TextRow, names: &[&str]) -> Option<String> {
        let i = self.column(names)?;
        let value = row.get(i)?.as_ref()?;
        Some(String::from_utf8_lossy(value).into_owned())
    }
}

/// The largest number of columns believed: more is a broken reply.
const MAX_COLUMNS: u64 = 4096;

/// Runs `sql` over the text protocol and returns its first result set with column names.
/// Further result sets are read and dropped so that the connection stays in step.
pub async fn query<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut PacketIo<S>,
    capabilities: u32,
    sql: &str,
) -> Result<ResultSet, ProtocolError> {
    let mut payload = Vec::with_capacity(sql.len() + 1);
    payload.push(COM_QUERY);
    payload.extend_from_slice(sql.as_bytes());
    io.queue(0, &payload);
    io.flush().await?;

    let mut first = None;
    loop {
        let (set, more) = read_result(io, capabilities).await?;
        first.get_or_insert(set);
        if !more {
            return Ok(first.unwrap_or_default());
        }
    }
}

const SERVER_MORE_RESULTS_EXISTS: u16 = 8;

/// Reads one result (OK or a result set); returns it and whether more results follow.
async fn read_result<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut PacketIo<S>,
    capabilities: u32,
) -> Result<(ResultSet, bool), ProtocolError> {
    let first = io.expect_packet().await?;
    let columns = match first.payload.first() {
        Some(0xFF) => return Err(ErrPacket::parse(&first.payload)?.to_error()),
        Some(0x00) => {
            let status = OkPacket::parse(&first.payload, capabilities)?.status;
            return Ok((
                ResultSet::default(),
                status & SERVER_MORE_RESULTS_EXISTS != 0,
            ));
        }
        Some(0xFB) => {
            return Err(ProtocolError::Unsupported(
                "LOCAL INFILE request in reply to a query of the proxy's own".to_string(),
            ))
        }
        Some(_) => Reader::new(&first.payload).lenenc_int()?,
        None => return Err(ProtocolError::Malformed("empty packet")),
    };
    if columns == 0 || columns > MAX_COLUMNS {
        return Err(ProtocolError::Malformed("implausible column count"));
    }
    let columns = columns as usize;
    let mut set = ResultSet {
        columns: Vec::with_capacity(columns),
        rows: Vec::new(),
    };
    for _ in 0..columns {
        let def = io.expect_packet().await?;
        set.columns.push(column_name(&def.payload)?);
    }
    if capabilities & CLIENT_DEPRECATE_EOF == 0 {
        let eof = io.expect_packet().await?;
        if eof.payload.first() != Some(&0xFE) {
            return Err(ProtocolError::Malformed(
                "no EOF after the column definitions",
            ));
        }
    }
    loop {
        let p = io.expect_packet().await?;
        let head = *p
            .payload
            .first()
            .ok_or(ProtocolError::Malformed("empty packet"))?;
        if head == 0xFF {
            return Err(ErrPacket::parse(&p.payload)?.to_error());
        }
        if is_terminator(head, p.payload.len()) {
            let status = if capabilities & CLIENT_DEPRECATE_EOF != 0 {
                OkPacket::parse(&p.payload, capabilities)?.status
            } else {
                parse_eof(&p.payload)?.1
            };
            return Ok((set, status & SERVER_MORE_RESULTS_EXISTS != 0));
        }
        let mut r = Reader::new(&p.payload);
        let mut row: Vec<Option<Bytes>> = Vec::with_capacity(columns);
        for _ in 0..columns {
            row.push(r.lenenc_bytes_or_null()?.map(|b| p.payload.slice_ref(b)));
        }
        set.rows.push(row);
    }
}

/// The name of a column from its definition packet: catalog, schema, table, org_table, name.
pub fn column_name(def: &[u8]) -> Result<String, ProtocolError> {
    let mut r = Reader::new(def);
    for _ in 0..4 {
        r.lenenc_bytes()?;
    }
    Ok(String::from_utf8_lossy(r.lenenc_bytes()?).into_owned())
}

#[cfg(test)]
mod tests;
