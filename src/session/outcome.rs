//! How the command in flight ended, as the filters hear of it once it is answered: the server
//! that answered and why it was chosen, when the client got the first byte, the error the proxy
//! answered with itself, the prepared statement it named. The session records it while it runs
//! the command (only when the service has filters) and hands it to the chain afterwards.

use std::sync::Arc;
use std::time::Instant;

use switchyard_api::{ReplyInfo, RouteReason, RoutedTo, Server, StmtId};
use switchyard_protocol::command::Command;
use switchyard_protocol::reply::{ReplyError, ReplySummary};

pub(super) struct Outcome {
    started: Instant,
    first_byte: Option<Instant>,
    server: Option<Arc<Server>>,
    routed_to: RoutedTo,
    reason: Option<RouteReason>,
    /// The error the proxy answered with: code, SQLSTATE, message.
    error: Option<(u16, [u8; 5], String)>,
    statement_id: Option<StmtId>,
}

impl Outcome {
    /// A command that starts now; a statement-bound command names its statement.
    pub(super) fn new(cmd: &Command<'_>) -> Self {
        let statement_id = match *cmd {
            Command::StmtExecute { stmt_id, .. }
            | Command::StmtClose { stmt_id }
            | Command::StmtReset { stmt_id }
            | Command::StmtFetch { stmt_id, .. }
            | Command::StmtSendLongData { stmt_id } => Some(StmtId(stmt_id)),
            _ => None,
        };
        Outcome {
            started: Instant::now(),
            first_byte: None,
            server: None,
            routed_to: RoutedTo::Proxy,
            reason: None,
            error: None,
            statement_id,
        }
    }

    /// The first frame of the reply arrived, to go to the client.
    pub(super) fn first_byte(&mut self) {
        self.first_byte = Some(Instant::now());
    }

    /// The backend on `server` answered, having been chosen for `reason`.
    pub(super) fn routed(&mut self, server: &Arc<Server>, reason: Option<RouteReason>) {
        self.routed_to = RoutedTo::for_role(server.role);
        self.server = Some(server.clone());
        self.reason = reason;
    }

    /// A session command ran on every open backend; the client got `server`'s reply.
    pub(super) fn routed_all(&mut self, server: &Arc<Server>) {
        self.routed_to = RoutedTo::All;
        self.server = Some(server.clone());
        self.reason = Some(RouteReason::SessionCommand);
    }

    /// The command prepared the statement the client knows as `id`.
    pub(super) fn prepared(&mut self, id: StmtId) {
        self.statement_id = Some(id);
    }

    /// The proxy answered the command with an error.
    pub(super) fn answered(&mut self, code: u16, sqlstate: &str, message: &str) {
        let mut state = *b"HY000";
        if sqlstate.len() == 5 {
            state.copy_from_slice(sqlstate.as_bytes());
        }
        self.error = Some((code, state, message.to_string()));
    }

    /// What the filters are told; `backend` is the summary of the reply the client got from a
    /// backend, if it got one, and `local` the place for a summary of the proxy's own answer.
    pub(super) fn reply_info<'a>(
        &'a self,
        backend: &'a ReplySummary,
        local: &'a mut ReplySummary,
    ) -> ReplyInfo<'a> {
        let summary = match &self.error {
            Some((code, sqlstate, _)) => {
                *local = ReplySummary {
                    error: Some(ReplyError {
                        code: *code,
                        sqlstate: *sqlstate,
                    }),
                    ..ReplySummary::default()
                };
                &*local
            }
            None if self.server.is_some() => backend,
            None => {
                *local = ReplySummary::default();
                &*local
            }
        };
        let answered_by_proxy = self.error.is_some();
        ReplyInfo {
            summary,
            proxy_error: self.error.as_ref().map(|(_, _, m)| m.as_str()),
            server: self.server.as_deref().filter(|_| !answered_by_proxy),
            routed_to: if answered_by_proxy {
                RoutedTo::Proxy
            } else {
                self.routed_to
            },
            reason: self.reason,
            started: self.started,
            first_byte: self.first_byte.map(|t| t - self.started),
            last_byte: self.started.elapsed(),
            statement_id: self.statement_id,
        }
    }
}
