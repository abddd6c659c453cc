//! One client command as the filters, the router and the runtime see it: parsed once, read in
//! the session's SQL dialect, with what it does with connection ids (a KILL, results that show
//! them) found as it is made and its classification worked out at most once, on first use; and
//! the dialect itself, followed from statement to statement.

use switchyard_protocol::reply::ReplySummary;
use switchyard_protocol::{Command, ProtocolError};
use switchyard_sql::classify::use_target;
use switchyard_sql::kill;
use switchyard_sql::{
    classify_with_mode, contains_ignore_case, thread_ids, Classification, Lexer, SqlMode, ThreadIds,
};

use crate::filter::RouteHint;

/// A client command with its facts. The runtime makes one per command (and a new one when a
/// filter rewrites the SQL); filters and the router borrow it mutably, but only so that a fact
/// worked out on first use is kept for the next who asks: the command itself cannot change.
/// (A shared borrow would need a lock or a `OnceLock` for that, since the session holds the
/// statement across awaits; measured, its initialisation cost more than the rest of the
/// statement's bookkeeping.)
#[derive(Debug)]
pub struct Statement<'a> {
    cmd: Command<'a>,
    mode: SqlMode,
    ids: ThreadIds,
    hint: Option<RouteHint>,
    class: Option<Classification>,
}

/// What a command that is not SQL text does with connection ids: nothing.
const NO_IDS: ThreadIds = ThreadIds {
    kill: kill::Parsed::Other,
    read: false,
};

impl<'a> Statement<'a> {
    /// `cmd` read in the session's `mode`.
    #[inline]
    pub fn new(cmd: Command<'a>, mode: SqlMode) -> Self {
        let ids = match cmd {
            Command::Query(sql) | Command::StmtPrepare(sql) => thread_ids(sql),
            _ => NO_IDS,
        };
        Statement {
            cmd,
            mode,
            ids,
            hint: None,
            class: None,
        }
    }

    /// The same statement with the routing hint the filters attached.
    #[inline]
    pub fn with_hint(mut self, hint: Option<RouteHint>) -> Self {
        self.hint = hint;
        self
    }

    #[inline]
    pub fn command(&self) -> &Command<'a> {
        &self.cmd
    }

    /// The SQL text of a `COM_QUERY` or `COM_STMT_PREPARE`.
    #[inline]
    pub fn sql(&self) -> Option<&'a [u8]> {
        match self.cmd {
            Command::Query(sql) | Command::StmtPrepare(sql) => Some(sql),
            _ => None,
        }
    }

    /// The session's `sql_mode` as far as the proxy can follow it: it decides where strings
    /// and comments end.
    #[inline]
    pub fn sql_mode(&self) -> SqlMode {
        self.mode
    }

    /// Whether the SQL text is a KILL of a connection id (which the runtime translates).
    #[inline]
    pub fn kill(&self) -> kill::Parsed {
        self.ids.kill
    }

    /// Whether the results of the SQL text may show connection ids (which the runtime
    /// rewrites to the proxy's).
    #[inline]
    pub fn reads_thread_ids(&self) -> bool {
        self.ids.read
    }

    /// What [`sql`](Self::sql) does, classified in the session's `sql_mode` the first time
    /// anyone asks.
    #[inline]
    pub fn classification(&mut self) -> Option<&Classification> {
        let (sql, mode) = (self.sql()?, self.mode);
        Some(
            self.class
                .get_or_insert_with(|| classify_with_mode(sql, mode)),
        )
    }

    /// The database a `USE <db>` query or a COM_INIT_DB switches to, once it succeeds. (Not
    /// kept: a look at the first word, cheaper than a cell to keep it in.)
    pub fn use_target(&self) -> Option<String> {
        match self.cmd {
            Command::Query(sql) => use_target(sql),
            Command::InitDb(db) => Some(String::from_utf8_lossy(db).into_owned()),
            _ => None,
        }
    }

    /// The routing hint the filters attached (the last one wins).
    #[inline]
    pub fn hint(&self) -> Option<&RouteHint> {
        self.hint.as_ref()
    }
}

impl<'a> From<Command<'a>> for Statement<'a> {
    /// A statement of a session in the default `sql_mode`, with no hint.
    #[inline]
    fn from(cmd: Command<'a>) -> Self {
        Statement::new(cmd, SqlMode::default())
    }
}

/// The session's SQL dialect as the proxy follows it: `SET sql_mode = '...'` with a value it
/// can read, and `NO_BACKSLASH_ESCAPES` from the servers' status flags after each reply. One
/// per session, kept by the runtime; statements are read in it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlDialect {
    mode: SqlMode,
}

impl SqlDialect {
    /// The client command in `payload` as a statement of this session.
    #[inline]
    pub fn parse<'a>(&self, payload: &'a [u8]) -> Result<Statement<'a>, ProtocolError> {
        Ok(self.statement(Command::parse(payload)?))
    }

    /// `cmd` as a statement of this session.
    #[inline]
    pub fn statement<'a>(&self, cmd: Command<'a>) -> Statement<'a> {
        Statement::new(cmd, self.mode)
    }

    /// `stmt` was answered with `reply`.
    pub fn on_reply(&mut self, stmt: &mut Statement<'_>, reply: &ReplySummary) {
        if reply.error.is_some() {
            return;
        }
        if let Command::Query(sql) = stmt.cmd {
            // Only a SET (or in ORACLE mode `name := value`) can change it: the first word
            // rules out the rest without reading the whole text, then the scan comes before a
            // classification that may not be needed otherwise.
            let mode = stmt.mode;
            let may_set = mode.oracle
                || Lexer::with_mode(sql, mode)
                    .next()
                    .is_some_and(|t| t.is_word(b"SET"));
            if may_set
                && contains_ignore_case(sql, b"sql_mode")
                && stmt
                    .classification()
                    .is_some_and(|c| c.kind == switchyard_sql::StatementKind::Set)
            {
                if let Some(mode) = SqlMode::assigned_by(sql) {
                    self.mode = mode;
                }
            }
        }
        if stmt.cmd.reply_has_status() {
            self.mode.no_backslash_escapes =
                reply.status & switchyard_protocol::caps::SERVER_STATUS_NO_BACKSLASH_ESCAPES != 0;
        }
    }

    /// The session state was reset (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub fn reset(&mut self) {
        self.mode = SqlMode::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(status: u16) -> ReplySummary {
        ReplySummary {
            status,
            ..ReplySummary::default()
        }
    }

    #[test]
    fn the_dialect_follows_set_sql_mode_once_it_succeeds() {
        let mut d = SqlDialect::default();
        let mut set = d.statement(Command::Query(b"SET sql_mode = 'ORACLE'"));
        let failed = ReplySummary {
            error: Some(switchyard_protocol::reply::ReplyError {
                code: 1231,
                sqlstate: *b"42000",
            }),
            ..ReplySummary::default()
        };
        d.on_reply(&mut set, &failed);
        assert!(!d.statement(Command::Ping).sql_mode().oracle);
        d.on_reply(&mut set, &ok(2));
        assert!(d.statement(Command::Ping).sql_mode().oracle);
        // The servers' status flags say NO_BACKSLASH_ESCAPES, whatever set it.
        let mut select = d.statement(Command::Query(b"SELECT 1"));
        d.on_reply(&mut select, &ok(2 | 0x200));
        let next = d.statement(Command::Ping);
        assert!(next.sql_mode().no_backslash_escapes && next.sql_mode().oracle);
        // A prepare's reply carries no status.
        let mut prepare = d.statement(Command::StmtPrepare(b"SELECT 1"));
        d.on_reply(&mut prepare, &ok(0));
        assert!(d.statement(Command::Ping).sql_mode().no_backslash_escapes);
        d.reset();
        assert_eq!(d.statement(Command::Ping).sql_mode(), SqlMode::default());
    }

    #[test]
    fn facts_are_worked_out_once() {
        let mut s = Statement::from(Command::Query(b"USE `shop`"));
        assert_eq!(s.use_target().as_deref(), Some("shop"));
        let init_db = Statement::from(Command::InitDb(b"shop"));
        assert_eq!(init_db.use_target().as_deref(), Some("shop"));
        let first = s.classification().unwrap() as *const Classification;
        assert_eq!(first, s.classification().unwrap() as *const _);
        assert_eq!(Statement::from(Command::Ping).classification(), None);
        let kill = SqlDialect::default().parse(b"\x03KILL QUERY 7").unwrap();
        assert!(matches!(kill.kill(), kill::Parsed::Kill(k) if k.query_only && k.id == 7));
        assert!(!kill.reads_thread_ids());
        let ids = Statement::from(Command::StmtPrepare(b"SELECT CONNECTION_ID()"));
        assert!(ids.reads_thread_ids() && ids.kill() == kill::Parsed::Other);
        assert!(SqlDialect::default().parse(b"").is_err());
    }
}
