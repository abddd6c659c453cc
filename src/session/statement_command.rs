//! Commands bound to a prepared statement (COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE,
//! COM_STMT_RESET, COM_STMT_FETCH): sent where the statement lives, under that backend's id.

use std::time::Instant;

use bytes::BytesMut;
use switchyard_api::{RouteTarget, ServerName, Statement};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::{Command, COM_STMT_CLOSE};
use switchyard_protocol::packets::errors::*;
use switchyard_protocol::stmt::set_command_stmt_id;

use super::prepared::BackendStmtId;
use super::relay::{self, RelayFail};
use super::{Session, SessionError};

impl Session {
    /// COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE, COM_STMT_RESET and COM_STMT_FETCH: sent where
    /// the statement lives.
    pub(super) async fn statement_command(
        &mut self,
        packet: &Packet,
        stmt: &mut Statement<'_>,
    ) -> Result<(), SessionError> {
        let cmd = *stmt.command();
        let (client_id, name) = match cmd {
            Command::StmtSendLongData { stmt_id } => (stmt_id, "mysqld_stmt_send_long_data"),
            Command::StmtClose { stmt_id } => (stmt_id, "mysqld_stmt_close"),
            Command::StmtReset { stmt_id } => (stmt_id, "mysqld_stmt_reset"),
            Command::StmtFetch { stmt_id, .. } => (stmt_id, "mysqld_stmt_fetch"),
            _ => return Ok(()),
        };
        let Some(id) = self.backends.prepared.resolve(client_id) else {
            // Long data and close have no reply, even for an unknown statement.
            return match cmd {
                Command::StmtReset { .. } | Command::StmtFetch { .. } => {
                    self.unknown_statement(client_id, name).await
                }
                _ => Ok(()),
            };
        };
        match cmd {
            Command::StmtClose { .. } => {
                self.router.on_statement_closed(id);
                if let Some(prepared) = self.backends.prepared.remove(id) {
                    for on in prepared.backends {
                        if let Some(b) = self
                            .backends
                            .open
                            .iter_mut()
                            .find(|b| b.server.name == on.server)
                        {
                            close_statement(b, on.id).await;
                        }
                    }
                }
                Ok(())
            }
            Command::StmtSendLongData { .. } => {
                // Long data goes to one backend only, and the next execute runs there: a
                // backend that got it without running the statement would keep it and prepend
                // it to the next round's. Where the router plans it, if that backend has the
                // statement; else where the statement last ran, and so on.
                let planned = match self.router.plan(stmt, &self.service.servers.load()).target {
                    RouteTarget::Server(s) => Some(s.name.clone()),
                    _ => None,
                };
                let reply_from = self
                    .backends
                    .open
                    .get(self.reply_backend())
                    .map(|b| b.server.name.clone());
                let Some(prepared) = self.backends.prepared.get_mut(id) else {
                    return Ok(());
                };
                let open =
                    |name: &ServerName| self.backends.open.iter().any(|b| &b.server.name == name);
                let holder = prepared
                    .long_data
                    .clone()
                    .filter(|s| open(s))
                    .or_else(|| planned.filter(|s| open(s) && prepared.on(s).is_some()))
                    .or_else(|| {
                        prepared
                            .last_server
                            .clone()
                            .filter(|s| open(s) && prepared.on(s).is_some())
                    })
                    .or_else(|| reply_from.filter(|s| prepared.on(s).is_some()))
                    .or_else(|| {
                        prepared
                            .backends
                            .iter()
                            .map(|b| b.server.clone())
                            .find(|s| open(s))
                    });
                let Some(holder) = holder else {
                    return Ok(());
                };
                let backend_id = prepared.on(&holder).map_or(BackendStmtId(0), |b| b.id);
                prepared.long_data = Some(holder.clone());
                let index = self
                    .backends
                    .position(&holder)
                    .expect("chosen among the open backends");
                with_stmt_id(&mut self.scratch, &packet.payload, backend_id);
                let b = &mut self.backends.open[index];
                b.io.queue(0, &self.scratch);
                if let Err(e) = b.io.flush().await {
                    if let Some(e) = self.lose_backend(index, &e.to_string()) {
                        return Err(self.end(0, e).await);
                    }
                }
                Ok(())
            }
            Command::StmtFetch { .. } => {
                let last = self.backends.prepared.get(id).and_then(|s| {
                    let server = s.last_server.as_ref()?;
                    Some((self.backends.position(server)?, s.on(server)?.id))
                });
                let Some((index, backend_id)) = last else {
                    let msg = format!("The statement ({client_id}) has no open cursor");
                    return self.answer(ER_STMT_HAS_NO_OPEN_CURSOR, "HY000", &msg).await;
                };
                with_stmt_id(&mut self.scratch, &packet.payload, backend_id);
                self.run_bound(index, stmt).await
            }
            Command::StmtReset { .. } => {
                let mut targets: Vec<_> = self.backends.prepared.get(id).map_or(Vec::new(), |s| {
                    s.backends
                        .iter()
                        .map(|b| (b.server.clone(), b.id))
                        .collect()
                });
                if let Some(s) = self.backends.prepared.get_mut(id) {
                    s.long_data = None;
                }
                targets.retain(|(server, _)| {
                    self.backends.open.iter().any(|b| &b.server.name == server)
                });
                // The client gets the reply of the backend a session command's reply comes
                // from, when it has the statement; the others reset theirs silently.
                let reply_from = self
                    .backends
                    .open
                    .get(self.reply_backend())
                    .map(|b| b.server.name.clone());
                let chosen = targets
                    .iter()
                    .position(|(server, _)| Some(server) == reply_from.as_ref())
                    .unwrap_or(0);
                if targets.is_empty() {
                    return self.unknown_statement(client_id, name).await;
                }
                let (chosen_server, chosen_id) = targets.swap_remove(chosen);
                let mut failed = Vec::new();
                for (server, backend_id) in &targets {
                    let Some(b) = self
                        .backends
                        .open
                        .iter_mut()
                        .find(|b| &b.server.name == server)
                    else {
                        continue;
                    };
                    with_stmt_id(&mut self.scratch, &packet.payload, *backend_id);
                    if let Err(e) = relay::run_quietly(b, &self.scratch, &cmd).await {
                        failed.push((server.clone(), e.to_string()));
                    }
                }
                if let Some(e) = self.drop_failed(failed) {
                    return Err(self.end(self.client.reply_seq, e).await);
                }
                let Some(index) = self.backends.position(&chosen_server) else {
                    return self.unknown_statement(client_id, name).await;
                };
                with_stmt_id(&mut self.scratch, &packet.payload, chosen_id);
                self.run_bound(index, stmt).await
            }
            _ => Ok(()),
        }
    }

    /// Sends the command in `scratch` to the backend at `index` and relays its reply; a failure
    /// is reported to the client, not retried (the statement lives there).
    pub(super) async fn run_bound(
        &mut self,
        index: usize,
        stmt: &mut Statement<'_>,
    ) -> Result<(), SessionError> {
        let cmd = stmt.command();
        let started = Instant::now();
        let backend = &mut self.backends.open[index];
        backend.io.queue(0, &self.scratch);
        let sent = backend.io.flush().await;
        let outcome = match sent {
            Err(e) => Err(RelayFail::Unsent(e.to_string())),
            Ok(()) if self.tracker.start(cmd) => self.relay(index, None).await,
            Ok(()) => Ok(()),
        };
        match outcome {
            Ok(()) => {
                self.count_reply(index, false, started.elapsed());
                self.replied(index, None, None, stmt);
                Ok(())
            }
            Err(fail) => {
                let failure = self.relay_failure(index, fail).await;
                self.report(failure).await
            }
        }
    }
}

/// Copies a statement-bound command into `scratch` with the backend's statement id.
fn with_stmt_id(scratch: &mut BytesMut, payload: &[u8], backend_id: BackendStmtId) {
    scratch.clear();
    scratch.extend_from_slice(payload);
    set_command_stmt_id(scratch, backend_id.0);
}

/// Sends COM_STMT_CLOSE for a backend's statement id (it has no reply).
pub(super) async fn close_statement(backend: &mut crate::backend::Backend, stmt_id: BackendStmtId) {
    let mut payload = [0u8; 5];
    payload[0] = COM_STMT_CLOSE;
    payload[1..].copy_from_slice(&stmt_id.0.to_le_bytes());
    backend.io.queue(0, &payload);
    let _ = backend.io.flush().await;
}
