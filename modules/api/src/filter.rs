//! The filter contract: modules that sit between the client and the router. A service lists
//! filters by name; each client command passes through them in that order before the router
//! sees it, and each reply's summary passes back through them.
//!
//! A filter sees the command, and may rewrite its SQL text, attach a routing hint, answer it
//! itself (with an error) or let it pass. On the reply side it sees a [`ReplyInfo`]: a
//! summary kept while the reply streamed to the client, never the result set itself.
//!
//! Filters run on the session's task, in the statement path: they must not block or wait on
//! I/O. A filter with work to do elsewhere (the audit feed's Kafka producer) hands it off to
//! its own task or thread through a bounded queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_protocol::reply::ReplySummary;

use crate::ids::{SessionId, StmtId};
use crate::router::{RouteError, RouteReason};
use crate::server::{Server, ServerName};
use crate::statement::Statement;

/// Who the session is: what filters know of it from the login on.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The session id (also the client's `CONNECTION_ID()` as the proxy numbers sessions).
    pub session_id: SessionId,
    pub user: String,
    pub client_addr: SocketAddr,
    /// The database given at login.
    pub db: Option<String>,
    /// The `program_name` connection attribute, if the client sent it.
    pub program: Option<String>,
    pub tls: bool,
    pub service: Arc<str>,
    pub listener: Arc<str>,
}

/// A login the proxy refused: the filters hear of it through [`Filter::on_login_failed`].
#[derive(Debug, Clone)]
pub struct LoginFailure<'a> {
    pub session_id: SessionId,
    pub user: &'a str,
    pub client_addr: SocketAddr,
    pub db: Option<&'a str>,
    pub service: &'a str,
    pub listener: &'a str,
    pub error_code: u16,
    pub sqlstate: &'a str,
    pub message: &'a str,
}

/// Where a filter asks the router to send a command. Routers that choose a server per
/// statement obey it when they may (not inside a transaction, nor for session commands);
/// routers that keep one server per connection ignore it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteHint {
    Primary,
    Replica,
    /// A server by its configured name.
    Server(ServerName),
    /// Route as usual, but a replica may take the read only if it lags the primary by at most
    /// this (in place of the router's own limit); otherwise the primary takes it.
    MaxReplicationLag(Duration),
}

/// What a filter does with a command.
#[derive(Debug)]
pub enum Verdict {
    /// Let it pass, unchanged.
    Pass,
    /// Replace the SQL text of a `COM_QUERY` or `COM_STMT_PREPARE` (ignored for other
    /// commands). The next filters and the router see the new text; the server runs it.
    Rewrite(Vec<u8>),
    /// Attach a routing hint (the last hint attached wins).
    Hint(RouteHint),
    /// Answer the command with this error; it goes no further (the next filters do not see
    /// it, but every filter's [`FilterSession::on_reply`] does see the answer).
    Answer(RouteError),
}

/// Where the router sent a command, as a bounded set of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutedTo {
    Primary,
    Replica,
    /// A server whose role was neither (a `running` server, or one just demoted).
    Server,
    /// Every open backend: a session command.
    All,
    /// Nowhere: the proxy answered the command itself.
    Proxy,
}

impl RoutedTo {
    /// Where a command that ran on a server of `role` went.
    pub fn for_role(role: crate::ServerRole) -> RoutedTo {
        match role {
            crate::ServerRole::Primary => RoutedTo::Primary,
            crate::ServerRole::Replica => RoutedTo::Replica,
            _ => RoutedTo::Server,
        }
    }
}

impl RoutedTo {
    pub fn as_str(self) -> &'static str {
        match self {
            RoutedTo::Primary => "primary",
            RoutedTo::Replica => "replica",
            RoutedTo::Server => "server",
            RoutedTo::All => "all",
            RoutedTo::Proxy => "proxy",
        }
    }
}

/// How a command ended, as filters see it.
#[derive(Debug, Clone, Copy)]
pub struct ReplyInfo<'a> {
    /// Counts of the reply (rows, affected rows, warnings, bytes, status flags) and its error.
    /// For a command answered by the proxy, an error-only summary; for a command with no reply
    /// (`COM_STMT_CLOSE`, `COM_STMT_SEND_LONG_DATA`), an empty one.
    pub summary: &'a ReplySummary,
    /// The error message, when the proxy answered with an error (the server's messages are
    /// not kept: the reply streams through).
    pub proxy_error: Option<&'a str>,
    /// The backend whose reply the client got; `None` when the proxy answered.
    pub server: Option<&'a Server>,
    pub routed_to: RoutedTo,
    /// Why the router chose it; `None` for commands the router was not asked about.
    pub reason: Option<RouteReason>,
    /// When the command arrived from the client.
    pub started: Instant,
    /// From arrival to the first byte of the reply sent to the client.
    pub first_byte: Option<Duration>,
    /// From arrival to the last byte of the reply.
    pub last_byte: Duration,
    /// The client-visible id of a statement this command prepared, or executed, closed,
    /// reset or fetched from.
    pub statement_id: Option<StmtId>,
}

/// The per-service (or per-config, shared by the services that list it) half of a filter.
pub trait Filter: Send + Sync {
    /// Starts the filter's half of a new client session, after a successful login (and after
    /// a COM_CHANGE_USER, which logs in afresh).
    fn new_session(&self, client: &ClientInfo) -> Box<dyn FilterSession>;

    /// A client that failed to log in.
    fn on_login_failed(&self, _failure: &LoginFailure<'_>) {}

    /// The filter's state for the admin API and logs (counters and the like).
    fn diagnostics(&self) -> serde_json::Value;

    /// The filter's numbers for `/metrics`; the runtime adds the label `filter="<name>"`.
    fn metrics(&self) -> Vec<crate::MetricSample> {
        Vec::new()
    }

    /// What is wrong with the filter, when it works in a degraded way (an audit feed that
    /// cannot reach Kafka); `/health` reports it.
    fn health(&self) -> Option<String> {
        None
    }

    /// The proxy is shutting down: finish what can be finished within `timeout`. Called once,
    /// off the async runtime (it may block).
    fn shutdown(&self, _timeout: Duration) {}
}

/// The per-session half of a filter. Owned by one session task; never shared.
pub trait FilterSession: Send {
    /// A client command, before the router sees it. `stmt` is the command as the filters
    /// before this one left it (a rewrite makes a new statement; hints come after).
    fn on_command(&mut self, stmt: &mut Statement<'_>) -> Verdict;

    /// The command last seen by [`FilterSession::on_command`] has been answered (also when a
    /// filter after this one answered it).
    fn on_reply(&mut self, _reply: &ReplyInfo<'_>) {}

    /// The session ended; `why` is `None` when the client quit.
    fn on_close(&mut self, _why: Option<&str>) {}
}
