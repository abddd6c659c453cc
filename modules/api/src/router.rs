//! The router contract: a per-service half that makes per-session halves, and a synchronous
//! `plan()` that decides where a command goes without doing any I/O.
//!
//! The runtime owns the session's sockets and does all I/O: it opens backends lazily, keeps
//! the session-command history and replays it on a backend opened later, maps prepared-statement
//! ids, waits for GTIDs and retries reads. A router only decides, and learns from what it is
//! told back ([`RouterSession::on_reply`], [`RouterSession::on_backend_closed`]), so that it can
//! be tested without sockets.

use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::reply::ReplySummary;

use crate::ids::{SessionId, StmtId};
use crate::server::{Server, ServerName, ServerSet};
use crate::statement::Statement;

/// What a router knows of the client session it serves.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub user: String,
    pub client_addr: std::net::SocketAddr,
    pub db: Option<String>,
}

/// An error a router answers a command with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub code: u16,
    pub sqlstate: &'static str,
    pub message: String,
}

impl RouteError {
    /// No server can take the command (ER_UNKNOWN_ERROR, 1105, with the reason: a client-side
    /// code such as 2003 would read as a malformed packet to MariaDB Connector/C).
    pub fn unavailable(message: String) -> Self {
        RouteError {
            code: 1105,
            sqlstate: "HY000",
            message,
        }
    }
}

/// Where a command goes.
#[derive(Debug, Clone)]
pub enum RouteTarget {
    /// This server; the runtime opens a connection to it (bringing it up to date with the
    /// session history) if the session has none.
    Server(Arc<Server>),
    /// Every backend the session has open: a session command. The client gets the reply of
    /// the backend [`RouterSession::reply_from`] picks; a backend whose reply disagrees is
    /// closed. The runtime keeps the command in the session history and
    /// replays it on backends opened later; with `dedup`, an identical earlier entry is
    /// dropped (for commands whose effect does not depend on what ran before).
    All { dedup: bool },
    /// The client gets this error; the session goes on.
    Error(RouteError),
    /// The session ends, with this error as its last word.
    Close(RouteError),
}

/// Why a router chose its target; a bounded set, usable as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// The server chosen for the whole connection (readconnroute).
    Connection,
    /// A write, DDL or a statement the classifier does not know.
    Write,
    /// Inside a read-write transaction (or with autocommit off).
    Transaction,
    /// Inside a `START TRANSACTION READ ONLY` transaction.
    ReadOnlyTransaction,
    /// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
    LockingRead,
    /// Between `LOCK TABLES` and `UNLOCK TABLES`: the locks are on the primary.
    LockedTables,
    /// `LAST_INSERT_ID()`, lock functions, `CALL`, sequences, multi-statements: primary only.
    PrimaryOnly,
    /// Reads a temporary table of this session.
    TempTable,
    /// Changes session state: runs on every backend.
    SessionCommand,
    /// `FOUND_ROWS()`, `SHOW WARNINGS`: where the previous statement ran.
    Previous,
    /// An autocommit read on a replica.
    Read,
    /// An autocommit read on the primary: no replica qualifies.
    ReadOnPrimary,
    /// A routing hint in a comment.
    Hint,
    /// No server can take it.
    Unavailable,
}

impl RouteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Connection => "connection",
            RouteReason::Write => "write",
            RouteReason::Transaction => "transaction",
            RouteReason::ReadOnlyTransaction => "read_only_transaction",
            RouteReason::LockingRead => "locking_read",
            RouteReason::LockedTables => "locked_tables",
            RouteReason::PrimaryOnly => "primary_only",
            RouteReason::TempTable => "temp_table",
            RouteReason::SessionCommand => "session_command",
            RouteReason::Previous => "previous",
            RouteReason::Read => "autocommit_read",
            RouteReason::ReadOnPrimary => "read_on_primary",
            RouteReason::Hint => "hint",
            RouteReason::Unavailable => "unavailable",
        }
    }
}

/// A causal read: the target must have replicated `gtid` before the command runs on it.
#[derive(Debug, Clone)]
pub struct GtidWait {
    /// A MariaDB GTID position (`0-1-42`, or a comma-separated list).
    pub gtid: Arc<str>,
    /// How long the target may take.
    pub timeout: Duration,
    /// Where the command runs when the wait times out or fails (the primary, for
    /// readwritesplit); `None`: on the target all the same.
    pub fallback: Option<Arc<Server>>,
}

/// A routing decision.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    pub target: RouteTarget,
    pub reason: RouteReason,
    /// Run `MASTER_GTID_WAIT` on the target first; when it times out or fails, the command
    /// runs where the wait says.
    pub wait_gtid: Option<GtidWait>,
    /// The command may run again on another server if its target fails before the client has
    /// seen any of the reply (an autocommit read). The runtime then tells the router
    /// ([`RouterSession::on_backend_closed`]) and asks it again.
    pub retryable: bool,
}

impl RoutePlan {
    /// A plan with no wait and no retry.
    pub fn new(target: RouteTarget, reason: RouteReason) -> Self {
        RoutePlan {
            target,
            reason,
            wait_gtid: None,
            retryable: false,
        }
    }
}

/// How a reply ended, as the router sees it.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    /// The server that answered (for a session command, the one whose reply the client got).
    pub server: &'a ServerName,
    pub summary: &'a ReplySummary,
    /// The client-visible id of a statement the command prepared (`COM_STMT_PREPARE`).
    pub prepared_id: Option<StmtId>,
    /// The GTID of the session's last write, when the server reported it in this reply
    /// (session tracking of `last_gtid`, requested by the runtime when the router wants it).
    pub last_gtid: Option<&'a str>,
}

/// How much session-command history the runtime keeps per session: a history over either limit
/// opens no new backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimit {
    pub commands: usize,
    pub bytes: usize,
}

/// The per-service half of a router.
pub trait Router: Send + Sync {
    /// Starts the router's half of a new client session (also after COM_CHANGE_USER, which
    /// logs in afresh).
    fn new_session(&self, session: &SessionInfo) -> Box<dyn RouterSession>;

    /// The router's state for the admin API.
    fn diagnostics(&self) -> serde_json::Value;

    /// The longest session-command history the runtime keeps per session; `None` for routers
    /// that use one backend per session and need none.
    fn history_limit(&self) -> Option<HistoryLimit> {
        None
    }

    /// True if the router uses [`Reply::last_gtid`]: the runtime then asks the servers to
    /// report it.
    fn wants_gtid(&self) -> bool {
        false
    }
}

/// The per-session half of a router. Owned by one session task; never shared.
///
/// `COM_STMT_SEND_LONG_DATA` is planned like the execute that follows it: the runtime sends it
/// to the planned server if the statement is prepared there (else where the statement last
/// ran), and the execute then runs where the long data went. The other commands bound to a
/// prepared statement (`COM_STMT_FETCH`, `COM_STMT_RESET`, `COM_STMT_CLOSE`) are sent by the
/// runtime where the statement lives; the router is not asked. Neither is it asked for
/// COM_QUIT, COM_CHANGE_USER, COM_RESET_CONNECTION and KILL.
pub trait RouterSession: Send {
    /// Where the session connects before the client's first command; its reply to the
    /// client's login is the reply of this server (so unknown databases or missing grants are
    /// reported as the server words them).
    fn connect(&mut self, servers: &ServerSet) -> RoutePlan;

    /// Where `stmt` goes, by its routing hint too when a filter attached one (routers that
    /// keep one server per connection ignore hints). Synchronous and free of I/O, so it can be
    /// tested without sockets.
    fn plan(&mut self, stmt: &mut Statement<'_>, servers: &ServerSet) -> RoutePlan;

    /// The reply to the command last planned has ended.
    fn on_reply(&mut self, _reply: &Reply<'_>) {}

    /// The client closed prepared statement `id` (its client-visible id).
    fn on_statement_closed(&mut self, _id: StmtId) {}

    /// The session state was reset on every backend (COM_RESET_CONNECTION, or a refused
    /// COM_CHANGE_USER): temporary tables, user variables, prepared statements and open
    /// transactions are gone. The session keeps its backends.
    fn on_reset(&mut self) {}

    /// Whose reply the client gets when a command runs on several backends (a session
    /// command, COM_STMT_RESET, COM_RESET_CONNECTION): a position in `open`, the session's
    /// backends in the order they were opened (a position past the end means the first). By
    /// default the primary's, when it is open, else the first opened: the primary's session
    /// state is the one writes see.
    fn reply_from(
        &self,
        open: &mut dyn Iterator<Item = &ServerName>,
        servers: &ServerSet,
    ) -> usize {
        let primary = servers.primary().map(|p| &p.name);
        open.enumerate()
            .find(|(_, name)| Some(*name) == primary)
            .map_or(0, |(i, _)| i)
    }

    /// The session's backend on `server` failed or was closed (`why` says why, in words).
    /// Returns the error to end the session with, if it cannot go on without it. By default a
    /// session cannot: single-backend routers end with their backend.
    fn on_backend_closed(&mut self, server: &ServerName, why: &str) -> Option<RouteError> {
        let _ = server;
        Some(RouteError {
            code: 1927,
            sqlstate: "70100",
            message: format!("Connection was killed: {why}"),
        })
    }
}
