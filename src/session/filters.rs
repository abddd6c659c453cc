//! The session's filter chain around each command: the command passes through the service's
//! filters in order before it is dispatched, and every filter is told its [`Outcome`] after.
//! Sessions of services without filters have no chain and pay nothing for it.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use switchyard_api::{ClientInfo, Filter, FilterSession, RouteError, RouteHint, Verdict};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::{Command, COM_QUERY, COM_STMT_PREPARE};
use switchyard_protocol::reply::ReplySummary;

use super::outcome::Outcome;
use super::Session;

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
    /// Dispatch the client's packet as it is, with the hint the filters attached (the last
    /// one wins).
    Forward(Option<RouteHint>),
    /// Dispatch this packet instead: a filter rewrote the SQL.
    Rewritten(Packet, Option<RouteHint>),
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

    /// Passes a client command (`cmd`, parsed from `packet`) through the filters, in order.
    pub(super) fn on_command(&mut self, packet: &Packet, cmd: &Command<'_>) -> Step {
        let mut rewritten: Option<Packet> = None;
        let mut hint = None;
        for filter in &mut self.filters {
            let parsed;
            let cmd = match &rewritten {
                None => cmd,
                Some(p) => match Command::parse(&p.payload) {
                    Ok(c) => {
                        parsed = c;
                        &parsed
                    }
                    Err(_) => break,
                },
            };
            let code = match cmd {
                Command::Query(_) => Some(COM_QUERY),
                Command::StmtPrepare(_) => Some(COM_STMT_PREPARE),
                _ => None,
            };
            match filter.on_command(cmd) {
                Verdict::Pass => {}
                Verdict::Hint(h) => hint = Some(h),
                Verdict::Answer(e) => return Step::Answer(e),
                Verdict::Rewrite(sql) => {
                    let Some(code) = code else { continue };
                    let mut payload = BytesMut::with_capacity(1 + sql.len());
                    payload.put_u8(code);
                    payload.put_slice(&sql);
                    rewritten = Some(Packet {
                        seq: packet.seq,
                        last_seq: packet.last_seq,
                        payload: Bytes::from(payload),
                    });
                }
            }
        }
        match rewritten {
            Some(p) => Step::Rewritten(p, hint),
            None => Step::Forward(hint),
        }
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

impl Session {
    /// Runs a client command through the filters, dispatches it, and tells the filters how
    /// it ended. Returns false when the client quit.
    pub(super) async fn filtered(
        &mut self,
        packet: &Packet,
        cmd: Command<'_>,
    ) -> Result<bool, super::SessionError> {
        // COM_QUIT ends the session (the filters hear of it through on_close).
        let chain = self
            .chain
            .as_mut()
            .filter(|_| !matches!(cmd, Command::Quit));
        let Some(chain) = chain else {
            return self.dispatch(packet, cmd, None).await;
        };
        self.outcome = Some(Outcome::new(&cmd));
        let result = match chain.on_command(packet, &cmd) {
            Step::Forward(hint) => self.dispatch(packet, cmd, hint.as_ref()).await,
            // A rewritten COM_QUERY or COM_STMT_PREPARE always parses.
            Step::Rewritten(packet, hint) => match Command::parse(&packet.payload) {
                Ok(cmd) => self.dispatch(&packet, cmd, hint.as_ref()).await,
                Err(e) => Err(e.into()),
            },
            Step::Answer(e) => self
                .answer(e.code, e.sqlstate, &e.message)
                .await
                .map(|()| true),
        };
        if let (Some(chain), Some(outcome)) = (self.chain.as_mut(), self.outcome.take()) {
            chain.on_reply(&outcome, self.tracker.summary());
        }
        result
    }
}
