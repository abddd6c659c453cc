//! Follows a server's reply frame by frame, so that the proxy knows where it ends and what it
//! said, while the bytes stream on to the client unbuffered. The summary it keeps is what
//! routers, filters and logs see of a reply.

use crate::caps::{CLIENT_DEPRECATE_EOF, SERVER_MORE_RESULTS_EXISTS, SERVER_STATUS_CURSOR_EXISTS};
use crate::codec::MAX_FRAME;
use crate::command::Command;
use crate::error::{ProtocolError, Result};
use crate::packets::{is_terminator, parse_eof, ErrPacket, OkPacket};
use crate::wire::Reader;

/// The COM_STMT_EXECUTE flag that asks for a read-only cursor.
const CURSOR_TYPE_READ_ONLY: u8 = 0x01;

/// What the tracker wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More reply packets follow.
    More,
    /// The reply is complete.
    Done,
    /// The server asked for a local file: the client sends it next, ending with an empty
    /// packet; then call [`ReplyTracker::local_infile_sent`] and keep reading the reply.
    LocalInfile,
}

/// What the frame just fed was, for those who look into result sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// The column count that starts a result set.
    ColumnCount,
    /// A column definition of a result set.
    ColumnDef,
    /// A row of a result set (text or binary), in one frame.
    Row,
    /// Anything else, or a frame of a packet that spans several.
    Other,
}

/// The error a reply carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyError {
    pub code: u16,
    pub sqlstate: [u8; 5],
}

/// The reply to a COM_STMT_PREPARE, as the server numbered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    pub stmt_id: u32,
    pub columns: u16,
    pub params: u16,
}

/// What a reply said, accumulated over its packets (every result of a multi-result reply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplySummary {
    /// The first error of the reply, if any.
    pub error: Option<ReplyError>,
    pub rows: u64,
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub warnings: u16,
    /// Server status flags of the last OK or EOF packet.
    pub status: u16,
    /// Results in the reply: result sets and OK packets alike.
    pub result_sets: u32,
    /// Of those, the result sets with columns (a `SELECT`'s, even with no rows).
    pub column_sets: u32,
    pub bytes: u64,
    pub prepared: Option<Prepared>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Done,
    /// The first packet of a result: OK, ERR, local-infile request or a column count.
    First,
    Columns(u64),
    ColumnsEof,
    Rows,
    PrepareOk,
    PrepareDefs {
        params: u16,
        columns: u16,
    },
    PrepareEof {
        columns: u16,
    },
    /// One packet of any kind (COM_STATISTICS's string, an OK/ERR/EOF).
    Single,
    /// Column definitions until an EOF (COM_FIELD_LIST).
    FieldList,
    LocalInfile,
}

/// Follows one reply at a time. Reused across commands; it allocates nothing.
#[derive(Debug, Clone)]
pub struct ReplyTracker {
    capabilities: u32,
    deprecate_eof: bool,
    state: State,
    /// The reply is to a COM_STMT_EXECUTE that asked for a cursor: only there does
    /// `SERVER_STATUS_CURSOR_EXISTS` after the column definitions mean that the rows come
    /// later, with COM_STMT_FETCH. (Any other result can carry the flag too, from a cursor a
    /// stored program opened, and its rows follow as usual.)
    cursor: bool,
    /// The previous frame was a full frame: this one continues the same packet.
    continuation: bool,
    /// The last packet was an OK packet (also one ending a result set).
    ok: bool,
    kind: PacketKind,
    summary: ReplySummary,
}

impl ReplyTracker {
    /// A tracker for a connection that negotiated `capabilities`.
    pub fn new(capabilities: u32) -> Self {
        ReplyTracker {
            capabilities,
            deprecate_eof: capabilities & CLIENT_DEPRECATE_EOF != 0,
            state: State::Done,
            cursor: false,
            continuation: false,
            ok: false,
            kind: PacketKind::Other,
            summary: ReplySummary::default(),
        }
    }

    /// Prepares for the reply to `cmd`; returns false if the command has no reply.
    pub fn start(&mut self, cmd: &Command<'_>) -> bool {
        self.summary = ReplySummary::default();
        self.continuation = false;
        self.cursor =
            matches!(cmd, Command::StmtExecute { flags, .. } if flags & CURSOR_TYPE_READ_ONLY != 0);
        self.state = match cmd {
            Command::Quit | Command::StmtClose { .. } | Command::StmtSendLongData { .. } => {
                State::Done
            }
            Command::Query(_) | Command::StmtExecute { .. } | Command::Other(_) => State::First,
            Command::StmtPrepare(_) => State::PrepareOk,
            Command::StmtFetch { .. } => State::Rows,
            Command::FieldList(_) => State::FieldList,
            Command::Statistics => State::Single,
            Command::InitDb(_)
            | Command::Ping
            | Command::ProcessKill(_)
            | Command::ChangeUser(_)
            | Command::StmtReset { .. }
            | Command::SetOption(_)
            | Command::ResetConnection => State::First,
        };
        self.state != State::Done
    }

    pub fn summary(&self) -> &ReplySummary {
        &self.summary
    }

    /// True if the frame just fed was a whole OK packet (an OK reply, or the OK that ends a
    /// result set under `CLIENT_DEPRECATE_EOF`): the packets that carry session state.
    pub fn last_was_ok(&self) -> bool {
        self.ok
    }

    /// What the frame just fed was.
    pub fn last_kind(&self) -> PacketKind {
        self.kind
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done && !self.continuation
    }

    /// The client has sent the whole local file; the server's OK or ERR comes next.
    pub fn local_infile_sent(&mut self) {
        if self.state == State::LocalInfile {
            self.state = State::First;
        }
    }

    /// Feeds the payload of the next frame of the reply.
    pub fn on_frame(&mut self, payload: &[u8]) -> Result<Progress> {
        self.summary.bytes += payload.len() as u64 + 4;
        let continued = std::mem::replace(&mut self.continuation, payload.len() == MAX_FRAME);
        self.ok = false;
        self.kind = PacketKind::Other;
        if !continued {
            self.on_packet(payload)?;
            if self.continuation {
                self.kind = PacketKind::Other;
            }
        }
        Ok(match self.state {
            _ if self.continuation => Progress::More,
            State::Done => Progress::Done,
            State::LocalInfile => Progress::LocalInfile,
            _ => Progress::More,
        })
    }

    fn on_packet(&mut self, p: &[u8]) -> Result<()> {
        let first = *p
            .first()
            .ok_or(ProtocolError::Malformed("empty reply packet"))?;
        if first == 0xFF && !matches!(self.state, State::Done | State::LocalInfile) {
            return self.on_error(p);
        }
        match self.state {
            State::Done | State::LocalInfile => {
                return Err(ProtocolError::Malformed(
                    "reply packet after the end of the reply",
                ))
            }
            State::First => match first {
                // COM_SET_OPTION and old servers answer with a bare EOF.
                0xFE if p.len() <= 5 => self.end_of_result(p)?,
                0x00 | 0xFE => self.on_ok(p)?,
                0xFB => self.state = State::LocalInfile,
                _ => {
                    let n = Reader::new(p).lenenc_int()?;
                    if n == 0 {
                        return Err(ProtocolError::Malformed("result set with no columns"));
                    }
                    self.state = State::Columns(n);
                    self.kind = PacketKind::ColumnCount;
                }
            },
            State::Columns(n) => {
                self.kind = PacketKind::ColumnDef;
                self.state = match (n - 1, self.deprecate_eof) {
                    (0, false) => State::ColumnsEof,
                    (0, true) => State::Rows,
                    (left, _) => State::Columns(left),
                }
            }
            State::ColumnsEof => {
                let (warnings, status) = parse_eof(p)?;
                self.summary.warnings = warnings;
                self.summary.status = status;
                // A cursor was opened: rows come with COM_STMT_FETCH.
                let opened = status & SERVER_STATUS_CURSOR_EXISTS != 0
                    && status & SERVER_MORE_RESULTS_EXISTS == 0;
                self.state = if self.cursor && opened {
                    self.summary.result_sets += 1;
                    self.summary.column_sets += 1;
                    State::Done
                } else {
                    State::Rows
                };
            }
            State::Rows => {
                if is_terminator(first, p.len()) {
                    self.end_of_result(p)?;
                } else {
                    self.summary.rows += 1;
                    self.kind = PacketKind::Row;
                }
            }
            State::PrepareOk => {
                if first != 0x00 {
                    return Err(ProtocolError::Malformed(
                        "unexpected reply to COM_STMT_PREPARE",
                    ));
                }
                let mut r = Reader::new(p);
                r.skip(1)?;
                let stmt_id = r.u32()?;
                let columns = r.u16()?;
                let params = r.u16()?;
                r.skip(1)?;
                self.summary.warnings = if r.remaining() >= 2 { r.u16()? } else { 0 };
                self.summary.prepared = Some(Prepared {
                    stmt_id,
                    columns,
                    params,
                });
                self.state = prepare_state(params, columns);
            }
            State::PrepareDefs { params, columns } => {
                // Each group of definitions ends with an EOF unless DEPRECATE_EOF is on.
                let eof = !self.deprecate_eof;
                self.state = if params > 0 {
                    if params == 1 && eof {
                        State::PrepareEof { columns }
                    } else {
                        prepare_state(params - 1, columns)
                    }
                } else if columns == 1 && eof {
                    State::PrepareEof { columns: 0 }
                } else {
                    prepare_state(0, columns - 1)
                };
            }
            State::PrepareEof { columns } => {
                parse_eof(p)?;
                self.state = prepare_state(0, columns);
            }
            State::Single => self.state = State::Done,
            State::FieldList => {
                if is_terminator(first, p.len()) {
                    self.state = State::Done;
                }
            }
        }
        Ok(())
    }

    fn on_error(&mut self, p: &[u8]) -> Result<()> {
        let e = ErrPacket::parse(p)?;
        if self.summary.error.is_none() {
            let mut sqlstate = [b'H', b'Y', b'0', b'0', b'0'];
            for (d, s) in sqlstate.iter_mut().zip(e.sqlstate) {
                *d = *s;
            }
            self.summary.error = Some(ReplyError {
                code: e.code,
                sqlstate,
            });
        }
        self.state = State::Done;
        Ok(())
    }

    fn on_ok(&mut self, p: &[u8]) -> Result<()> {
        let ok = OkPacket::parse(p, self.capabilities)?;
        self.ok = true;
        // A server's count, up to 2^64 - 1 per result: summed over the results of one reply it
        // can overflow (a panic in debug builds), so it stops at the maximum instead.
        self.summary.affected_rows = self.summary.affected_rows.saturating_add(ok.affected_rows);
        if ok.last_insert_id != 0 {
            self.summary.last_insert_id = ok.last_insert_id;
        }
        self.summary.warnings = ok.warnings;
        self.summary.status = ok.status;
        self.summary.result_sets += 1;
        self.state = if ok.status & SERVER_MORE_RESULTS_EXISTS != 0 {
            State::First
        } else {
            State::Done
        };
        Ok(())
    }

    fn end_of_result(&mut self, p: &[u8]) -> Result<()> {
        if self.deprecate_eof && p.len() > 5 {
            let ok = OkPacket::parse(p, self.capabilities)?;
            self.ok = true;
            self.summary.warnings = ok.warnings;
            self.summary.status = ok.status;
        } else {
            let (warnings, status) = parse_eof(p)?;
            self.summary.warnings = warnings;
            self.summary.status = status;
        }
        self.summary.result_sets += 1;
        self.summary.column_sets += 1;
        self.state = if self.summary.status & SERVER_MORE_RESULTS_EXISTS != 0 {
            State::First
        } else {
            State::Done
        };
        Ok(())
    }
}

/// The state once `params` parameter and `columns` column definitions are left to read.
fn prepare_state(params: u16, columns: u16) -> State {
    if params == 0 && columns == 0 {
        State::Done
    } else {
        State::PrepareDefs { params, columns }
    }
}

#[cfg(test)]
mod tests;
