//! Client commands as borrowed views of their packet payload: parsing copies nothing.

use crate::error::{ProtocolError, Result};
use crate::wire::Reader;

pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_CREATE_DB: u8 = 0x05;
pub const COM_DROP_DB: u8 = 0x06;
pub const COM_REFRESH: u8 = 0x07;
pub const COM_SHUTDOWN: u8 = 0x08;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PROCESS_INFO: u8 = 0x0A;
pub const COM_PROCESS_KILL: u8 = 0x0C;
pub const COM_DEBUG: u8 = 0x0D;
pub const COM_PING: u8 = 0x0E;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_BINLOG_DUMP: u8 = 0x12;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1A;
pub const COM_SET_OPTION: u8 = 0x1B;
pub const COM_STMT_FETCH: u8 = 0x1C;
pub const COM_RESET_CONNECTION: u8 = 0x1F;

/// One client command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    Quit,
    InitDb(&'a [u8]),
    Query(&'a [u8]),
    FieldList(&'a [u8]),
    Statistics,
    ProcessKill(u32),
    Ping,
    /// COM_CHANGE_USER; the body is parsed by the session, which owns the login logic.
    ChangeUser(&'a [u8]),
    StmtPrepare(&'a [u8]),
    StmtExecute {
        stmt_id: u32,
        flags: u8,
    },
    StmtSendLongData {
        stmt_id: u32,
    },
    StmtClose {
        stmt_id: u32,
    },
    StmtReset {
        stmt_id: u32,
    },
    SetOption(u16),
    StmtFetch {
        stmt_id: u32,
        rows: u32,
    },
    ResetConnection,
    /// Any other command, passed through as it is.
    Other(u8),
}

impl<'a> Command<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let code = r
            .u8()
            .map_err(|_| ProtocolError::Malformed("empty command packet"))?;
        Ok(match code {
            COM_QUIT => Command::Quit,
            COM_INIT_DB => Command::InitDb(r.rest()),
            COM_QUERY => Command::Query(r.rest()),
            COM_FIELD_LIST => Command::FieldList(r.rest()),
            COM_STATISTICS => Command::Statistics,
            COM_PROCESS_KILL => Command::ProcessKill(r.u32()?),
            COM_PING => Command::Ping,
            COM_CHANGE_USER => Command::ChangeUser(r.rest()),
            COM_STMT_PREPARE => Command::StmtPrepare(r.rest()),
            COM_STMT_EXECUTE => Command::StmtExecute {
                stmt_id: r.u32()?,
                flags: r.u8()?,
            },
            COM_STMT_SEND_LONG_DATA => Command::StmtSendLongData { stmt_id: r.u32()? },
            COM_STMT_CLOSE => Command::StmtClose { stmt_id: r.u32()? },
            COM_STMT_RESET => Command::StmtReset { stmt_id: r.u32()? },
            COM_SET_OPTION => Command::SetOption(r.u16()?),
            COM_STMT_FETCH => Command::StmtFetch {
                stmt_id: r.u32()?,
                rows: r.u32()?,
            },
            COM_RESET_CONNECTION => Command::ResetConnection,
            other => Command::Other(other),
        })
    }

    /// The command's protocol name, as logs and the audit feed show it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Quit => "COM_QUIT",
            Command::InitDb(_) => "COM_INIT_DB",
            Command::Query(_) => "COM_QUERY",
            Command::FieldList(_) => "COM_FIELD_LIST",
            Command::Statistics => "COM_STATISTICS",
            Command::ProcessKill(_) => "COM_PROCESS_KILL",
            Command::Ping => "COM_PING",
            Command::ChangeUser(_) => "COM_CHANGE_USER",
            Command::StmtPrepare(_) => "COM_STMT_PREPARE",
            Command::StmtExecute { .. } => "COM_STMT_EXECUTE",
            Command::StmtSendLongData { .. } => "COM_STMT_SEND_LONG_DATA",
            Command::StmtClose { .. } => "COM_STMT_CLOSE",
            Command::StmtReset { .. } => "COM_STMT_RESET",
            Command::SetOption(_) => "COM_SET_OPTION",
            Command::StmtFetch { .. } => "COM_STMT_FETCH",
            Command::ResetConnection => "COM_RESET_CONNECTION",
            Command::Other(_) => "COM_OTHER",
        }
    }

    /// False for the commands the server never answers.
    pub fn expects_reply(&self) -> bool {
        !matches!(
            self,
            Command::Quit | Command::StmtClose { .. } | Command::StmtSendLongData { .. }
        )
    }

    /// True for the commands whose successful reply ends with the session's status flags
    /// (transaction state, autocommit, `NO_BACKSLASH_ESCAPES`) as they are after it.
    pub fn reply_has_status(&self) -> bool {
        matches!(
            self,
            Command::Query(_)
                | Command::StmtExecute { .. }
                | Command::InitDb(_)
                | Command::Ping
                | Command::SetOption(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_commands() {
        assert_eq!(
            Command::parse(b"\x03SELECT 1").unwrap(),
            Command::Query(b"SELECT 1")
        );
        assert_eq!(
            Command::parse(b"\x02test").unwrap(),
            Command::InitDb(b"test")
        );
        assert_eq!(
            Command::parse(&[0x17, 1, 0, 0, 0, 1, 1, 0, 0, 0]).unwrap(),
            Command::StmtExecute {
                stmt_id: 1,
                flags: 1
            }
        );
        assert_eq!(
            Command::parse(&[0x19, 7, 0, 0, 0]).unwrap(),
            Command::StmtClose { stmt_id: 7 }
        );
        assert_eq!(Command::parse(&[0xEE]).unwrap(), Command::Other(0xEE));
    }

    #[test]
    fn truncated_commands_are_errors() {
        assert!(Command::parse(b"").is_err());
        assert!(Command::parse(&[0x17, 1, 0]).is_err());
        assert!(Command::parse(&[0x0C, 1]).is_err());
        assert!(Command::parse(&[0x1C, 1, 0, 0, 0]).is_err());
    }
}
