//! Session commands: run on every open backend; the client gets one reply, backends whose
//! reply disagrees are closed, and the command joins the history for backends opened later.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use switchyard_api::{RouteError, RouteReason, RouteTarget, Statement};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::{Command, COM_STMT_CLOSE};
use switchyard_protocol::packets::errors::*;
use switchyard_protocol::reply::ReplyTracker;
use switchyard_protocol::stmt::{execute_with_types, set_command_stmt_id, LAST_PREPARED_STMT_ID};

use super::execute::build_execute;
use super::prepared::BackendStmtId;
use super::relay::{self, RelayFail};
use super::route::Failure;
use super::statement_command::close_statement;
use super::{Session, SessionError};

impl Session {
    /// The open backend whose reply the client gets when a command runs on several: the
    /// router's choice ([`switchyard_api::RouterSession::reply_from`]).
    pub(super) fn reply_backend(&self) -> usize {
        let servers = self.service.servers.load();
        let mut open = self.backends.open.iter().map(|b| &b.server.name);
        let i = self.router.reply_from(&mut open, &servers);
        if i < self.backends.open.len() {
            i
        } else {
            0
        }
    }

    /// A session command: runs on every open backend; the client gets one reply; backends
    /// whose reply disagrees are closed; the command joins the history.
    pub(super) async fn session_command(
        &mut self,
        packet: &Packet,
        stmt: &mut Statement<'_>,
        dedup: bool,
    ) -> Result<(), SessionError> {
        let cmd = *stmt.command();
        if self.backends.open.is_empty() {
            let plan = self.router.connect(&self.service.servers.load());
            let opened = match &plan.target {
                RouteTarget::Server(s) => self.open_for(s).await.map(|_| ()),
                RouteTarget::Error(e) | RouteTarget::Close(e) => Err(Failure::Unsent {
                    why: e.message.clone(),
                    code: e.code,
                    end: None,
                    gone: false,
                }),
                RouteTarget::All { .. } => Err(Failure::Unsent {
                    why: "no server to run it on".into(),
                    code: ER_UNKNOWN_ERROR,
                    end: None,
                    gone: false,
                }),
            };
            if let Err(failure) = opened {
                return self.report(failure).await;
            }
        }
        let prepared_id = matches!(cmd, Command::StmtPrepare(_)).then(|| {
            self.backends.prepared.add(
                Bytes::copy_from_slice(&packet.payload),
                stmt.reads_thread_ids(),
            )
        });
        // A binary-protocol session command (`SET ...` prepared, then executed) runs on every
        // backend under that backend's own statement id. It is prepared everywhere before it
        // runs anywhere, so that a failure leaves no reply unread.
        let execute = match cmd {
            Command::StmtExecute { stmt_id, .. } => match self.backends.prepared.resolve(stmt_id) {
                Some(id) => Some(id),
                None => return self.unknown_statement(stmt_id, "mysqld_stmt_execute").await,
            },
            _ => None,
        };
        if let Some(id) = execute {
            for i in 0..self.backends.open.len() {
                if let Err(failure) = self.ensure_prepared(i, id).await {
                    return self.report(failure).await;
                }
            }
        }
        // Send to all first, so that the servers work in parallel.
        let started = Instant::now();
        let mut failed = Vec::new();
        for b in &mut self.backends.open {
            let payload = match execute.and_then(|id| self.backends.prepared.get_mut(id)) {
                Some(stmt) => {
                    build_execute(&mut self.scratch, stmt, &b.server.name, &packet.payload);
                    &self.scratch[..]
                }
                None => &packet.payload[..],
            };
            b.server.stats.statement_routed();
            b.io.queue(0, payload);
            if let Err(e) = b.io.flush().await {
                failed.push((b.server.name.clone(), e.to_string()));
            }
        }
        if let Some(e) = self.drop_failed(failed) {
            return Err(self.gone(e).await);
        }
        if self.backends.open.is_empty() {
            let msg = "Lost connection to backend server: every backend failed";
            return self.answer(ER_NET_READ_ERROR, "08S01", msg).await;
        }
        let chosen = self.reply_backend();
        let has_reply = self.tracker.start(&cmd);
        if has_reply {
            let failed = match self.relay(chosen, prepared_id).await {
                Ok(()) => None,
                Err(RelayFail::Session(e)) => return Err(e),
                Err(RelayFail::Unsent(why)) => Some((why, self.client.reply_seq)),
                Err(RelayFail::Lost { why, seq }) => Some((why, seq)),
            };
            if let Some((why, seq)) = failed {
                if let Some(e) = self.lose_backend(chosen, &why) {
                    return Err(self.gone(e).await);
                }
                // The command ran, or not, on the others: the session state is unknown.
                let msg =
                    format!("Lost connection to backend server during a session command: {why}");
                let e = RouteError {
                    code: ER_NET_READ_ERROR,
                    sqlstate: "08S01",
                    message: msg,
                };
                return Err(self.end(seq, e).await);
            }
        }
        if has_reply {
            self.count_reply(chosen, true, started.elapsed());
        }
        let summary = self.tracker.summary().clone();
        let ok = summary.error.is_none();
        let chosen_name = self.backends.open[chosen].server.name.clone();
        if let (Some(id), Some(p)) = (prepared_id, summary.prepared) {
            self.backends
                .prepared
                .set_backend(id, &chosen_name, BackendStmtId(p.stmt_id));
            if let Some(s) = self.backends.prepared.get_mut(id) {
                s.params = p.params;
            }
        }
        // The others' replies: read, compared, dropped.
        let mut disagree = Vec::new();
        let mut to_close = Vec::new();
        for (i, b) in self.backends.open.iter_mut().enumerate() {
            if i == chosen || !has_reply {
                continue;
            }
            let mut tracker = ReplyTracker::new(b.info.capabilities);
            tracker.start(&cmd);
            match relay::discard(b, &mut tracker, false).await {
                Err(e) => disagree.push((b.server.name.clone(), e.to_string())),
                Ok(()) => {
                    let theirs = tracker.summary();
                    if theirs.error.is_none() != ok {
                        disagree.push((
                            b.server.name.clone(),
                            format!(
                                "its reply to a session command differs from server '{chosen_name}''s"
                            ),
                        ));
                        if let Some(p) = theirs.prepared {
                            to_close.push((i, BackendStmtId(p.stmt_id)));
                        }
                    } else if let (Some(id), Some(p)) = (prepared_id, theirs.prepared) {
                        if ok {
                            self.backends.prepared.set_backend(
                                id,
                                &b.server.name,
                                BackendStmtId(p.stmt_id),
                            );
                        }
                    }
                }
            }
        }
        for (i, stmt_id) in to_close {
            close_statement(&mut self.backends.open[i], stmt_id).await;
        }
        self.count_backend_bytes();
        if let Some(e) = self.drop_failed(disagree) {
            return Err(self.end(0, e).await);
        }
        match prepared_id {
            Some(id) if !ok => {
                self.backends.prepared.remove(id);
            }
            Some(_) => {}
            None => {
                let stmt = execute.and_then(|id| self.backends.prepared.get(id));
                if let Some(h) = self.backends.history.as_mut() {
                    match stmt {
                        None => h.record(Bytes::copy_from_slice(&packet.payload), ok, dedup),
                        // A backend opened later replays the statement as a text query.
                        Some(s) if s.params == 0 => h.record(s.text_query(), ok, dedup),
                        Some(s) => {
                            for (entry, entry_ok) in binary_replay(s, &packet.payload, ok) {
                                h.record(entry, entry_ok, false);
                            }
                        }
                    }
                }
            }
        }
        let prepared_id = prepared_id.filter(|_| ok);
        self.replied(chosen, Some(RouteReason::SessionCommand), prepared_id, stmt);
        Ok(())
    }

    /// Closes the backends that failed; returns the error to end the session with, if any.
    pub(super) fn drop_failed(
        &mut self,
        failed: Vec<(switchyard_api::ServerName, String)>,
    ) -> Option<RouteError> {
        let mut end = None;
        for (name, why) in failed {
            if let Some(i) = self.backends.position(&name) {
                end = end.or(self.lose_backend(i, &why));
            }
        }
        end
    }
}

/// How a backend opened later replays an execute with parameters (whose values only the
/// execute carries): prepare the statement, execute the last prepared statement with the
/// client's values and their types, close it. Not de-duplicated: an execute refers to the
/// prepare before it.
fn binary_replay(
    stmt: &super::prepared::Statement,
    payload: &[u8],
    ok: bool,
) -> [(Bytes, bool); 3] {
    let mut execute = BytesMut::new();
    let types = stmt.types.as_deref().unwrap_or_default();
    if !execute_with_types(payload, stmt.params, types, &mut execute) {
        execute.extend_from_slice(payload);
    }
    set_command_stmt_id(&mut execute, LAST_PREPARED_STMT_ID);
    let mut close = BytesMut::from(&[COM_STMT_CLOSE][..]);
    close.extend_from_slice(&LAST_PREPARED_STMT_ID.to_le_bytes());
    [
        (stmt.prepare.clone(), true),
        (execute.freeze(), ok),
        (close.freeze(), true),
    ]
}
