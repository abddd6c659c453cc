//! The session's filter chain around each command: the command passes through the service's
//! filters in order before it runs, and every filter is told its [`Outcome`] after (the
//! session's `command` wraps the round trip in the two). Sessions of services without filters
//! have no chain and pay nothing for it.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use switchyard_api::{
    ClientInfo, Filter, FilterSession, RouteError, RouteHint, Statement, Verdict,
};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::{Command, COM_QUERY, COM_STMT_PREPARE};
use switchyard_protocol::reply::ReplySummary;

use super::outcome::Outcome;

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
