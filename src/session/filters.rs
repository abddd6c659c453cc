//! The session's filter chain around each command: the command passes through the service's
//! filters in order before it runs, and every filter is told its [`Outcome`] after (the
//! session's `command` wraps the round trip in the two). Sessions of services without filters
//! have no chain and pay nothing for it.
//!
//! The outcome is how the command in flight ended, as the filters hear of it once it is
//! answered: the server that answered and why it was chosen, when the client got the first
//! byte, the error the proxy answered with itself, the prepared statement it named. The session
//! records it while it runs the command (only when the service has filters).

use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use switchyard_api::{
    ClientInfo, Filter, FilterSession, ReplyInfo, RouteError, RouteHint, RouteReason, RoutedTo,
    Server, Statement, StmtId, Verdict,
};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::{Command, COM_QUERY, COM_STMT_PREPARE};
use switchyard_protocol::reply::{ReplyError, ReplySummary};

/// The filters' halves for one session.
pub(super) struct Chain {
    filters: Vec<Box<dyn FilterSession>>,
    /// Who the session is, for the filters' halves started after a COM_CHANGE_USER.
    client: ClientInfo,
    /// The filters to start afresh once the command in flight (a COM_CHANGE_USER) is told.
    restart: Option<Vec<Arc<dyn Filter>>>,
}

/// What the filters made of a command.
pub(super) enum Step {
    /// Dispatch it, with the hint the filters attached (the last one wins).
    Forward(Option<RouteHint>),
    /// A filter rewrote the SQL: the filters from `next` on see the new packet, with the hint
    /// attached so far.
    Rewritten {
        packet: Packet,
        next: usize,
        hint: Option<RouteHint>,
    },
    /// A filter answered it with this error.
    Answer(RouteError),
}

impl Chain {
    /// Starts the service's filters for a logged-in client.
    pub(super) fn start(filters: &[Arc<dyn Filter>], client: ClientInfo) -> Self {
        Chain {
            filters: filters.iter().map(|f| f.new_session(&client)).collect(),
            client,
            restart: None,
        }
    }

    /// The client logged in afresh as `user` (COM_CHANGE_USER): once the filters are told of
    /// the command, their halves end and new ones start, as for a new session.
    pub(super) fn restart(&mut self, filters: &[Arc<dyn Filter>], user: &str, db: Option<&str>) {
        self.client.user = user.to_string();
        self.client.db = db.map(str::to_string);
        self.restart = Some(filters.to_vec());
    }

    /// Passes a statement (parsed from `packet`) through the filters from `from` on, in order,
    /// starting with the hint attached so far; stops at the first rewrite.
    pub(super) fn on_command(
        &mut self,
        packet: &Packet,
        stmt: &mut Statement<'_>,
        from: usize,
        mut hint: Option<RouteHint>,
    ) -> Step {
        let code = match stmt.command() {
            Command::Query(_) => Some(COM_QUERY),
            Command::StmtPrepare(_) => Some(COM_STMT_PREPARE),
            _ => None,
        };
        for (i, filter) in self.filters.iter_mut().enumerate().skip(from) {
            match filter.on_command(stmt) {
                Verdict::Pass => {}
                Verdict::Hint(h) => hint = Some(h),
                Verdict::Answer(e) => return Step::Answer(e),
                Verdict::Rewrite(sql) => {
                    let Some(code) = code else { continue };
                    let mut payload = BytesMut::with_capacity(1 + sql.len());
                    payload.put_u8(code);
                    payload.put_slice(&sql);
                    let packet = Packet {
                        seq: packet.seq,
                        last_seq: packet.last_seq,
                        payload: Bytes::from(payload),
                    };
                    return Step::Rewritten {
                        packet,
                        next: i + 1,
                        hint,
                    };
                }
            }
        }
        Step::Forward(hint)
    }

    /// Tells every filter how the command ended; `backend` is the summary of the reply the
    /// client got from a backend, if it got one.
    pub(super) fn on_reply(&mut self, outcome: &Outcome, backend: &ReplySummary) {
        let mut local = ReplySummary::default();
        let reply = outcome.reply_info(backend, &mut local);
        for filter in &mut self.filters {
            filter.on_reply(&reply);
        }
        if let Some(filters) = self.restart.take() {
            self.on_close(Some("COM_CHANGE_USER"));
            self.filters = filters
                .iter()
                .map(|f| f.new_session(&self.client))
                .collect();
        }
    }

    /// The session ended (`why` is `None` when the client quit).
    pub(super) fn on_close(&mut self, why: Option<&str>) {
        for filter in &mut self.filters {
            filter.on_close(why);
        }
    }
}

/// How the command in flight is going.
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
