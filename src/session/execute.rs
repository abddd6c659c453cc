//! A prepared statement on the backend it runs on: prepared there first when that backend
//! lacks it, its COM_STMT_EXECUTE rewritten for that backend's statement id and parameter types,
//! and where it ran or was prepared remembered.

use bytes::{Bytes, BytesMut};
use switchyard_api::{ServerName, StmtId};
use switchyard_protocol::command::Command;
use switchyard_protocol::packets::errors::*;
use switchyard_protocol::stmt::{execute_param_types, execute_with_types, set_command_stmt_id};

use super::prepared::BackendStmtId;
use super::relay;
use super::route::Failure;
use super::{Session, SessionError};

impl Session {
    /// Records where a statement ran (execute) or was prepared.
    pub(super) fn remember_statement(
        &mut self,
        index: usize,
        execute: Option<StmtId>,
        prepared_id: Option<StmtId>,
    ) {
        let name = self.backends.open[index].server.name.clone();
        if let Some(id) = execute {
            if let Some(s) = self.backends.prepared.get_mut(id) {
                s.last_server = Some(name.clone());
                s.long_data = None;
            }
        }
        if let Some(id) = prepared_id {
            match self.tracker.summary().prepared {
                Some(p) => {
                    self.backends
                        .prepared
                        .set_backend(id, &name, BackendStmtId(p.stmt_id));
                    if let Some(s) = self.backends.prepared.get_mut(id) {
                        s.params = p.params;
                    }
                }
                None => {
                    self.backends.prepared.remove(id);
                }
            }
        }
    }

    /// Builds in `scratch` the client's COM_STMT_EXECUTE for the backend at `index` (see
    /// [`build_execute`]), preparing the statement there first if it is not yet.
    pub(super) async fn execute_packet(
        &mut self,
        index: usize,
        id: StmtId,
        payload: &[u8],
    ) -> Result<(), Failure> {
        self.ensure_prepared(index, id).await?;
        let name = &self.backends.open[index].server.name;
        let Some(stmt) = self.backends.prepared.get_mut(id) else {
            return Err(Failure::Unsent {
                why: "the statement is gone".into(),
                code: ER_UNKNOWN_ERROR,
                end: None,
                gone: false,
            });
        };
        build_execute(&mut self.scratch, stmt, name, payload);
        Ok(())
    }

    /// Prepares statement `id` on the backend at `index` unless it has it.
    pub(super) async fn ensure_prepared(
        &mut self,
        index: usize,
        id: StmtId,
    ) -> Result<(), Failure> {
        let name = &self.backends.open[index].server.name;
        match self.backends.prepared.get(id).and_then(|s| s.on(name)) {
            Some(_) => Ok(()),
            None => self.prepare_on(index, id).await,
        }
    }

    /// Prepares statement `id` on the backend at `index`, which did not have it.
    pub(super) async fn prepare_on(&mut self, index: usize, id: StmtId) -> Result<(), Failure> {
        let Some(prepare) = self.backends.prepared.get(id).map(|s| s.prepare.clone()) else {
            return Ok(());
        };
        let backend = &mut self.backends.open[index];
        let cmd = Command::StmtPrepare(&prepare[1..]);
        let summary = match relay::run_quietly(backend, &prepare, &cmd).await {
            Ok(summary) => summary,
            Err(e) => return Err(self.unsent(index, e.to_string())),
        };
        match summary.prepared {
            Some(p) => {
                let name = self.backends.open[index].server.name.clone();
                self.backends
                    .prepared
                    .set_backend(id, &name, BackendStmtId(p.stmt_id));
                Ok(())
            }
            None => Err(Failure::Unsent {
                why: format!(
                    "server '{}' cannot prepare the statement",
                    self.backends.open[index].server.name
                ),
                code: ER_UNKNOWN_ERROR,
                end: None,
                gone: false,
            }),
        }
    }

    /// Answers a command naming a statement id the session does not have, as the server does.
    pub(super) async fn unknown_statement(
        &mut self,
        id: u32,
        command: &str,
    ) -> Result<(), SessionError> {
        let msg = format!("Unknown prepared statement handler ({id}) given to {command}");
        self.answer(ER_UNKNOWN_STMT_HANDLER, "HY000", &msg).await
    }
}

/// Builds in `scratch` the client's COM_STMT_EXECUTE `payload` of `stmt` for the backend on
/// `server`: that backend's statement id, and the parameter types if it has not seen them.
pub(super) fn build_execute(
    scratch: &mut BytesMut,
    stmt: &mut super::prepared::Statement,
    server: &ServerName,
    payload: &[u8],
) {
    let params = stmt.params;
    scratch.clear();
    if let Some(types) = execute_param_types(payload, params) {
        if stmt.types.as_deref() != Some(types) {
            stmt.types = Some(Bytes::copy_from_slice(types));
            // The other backends have seen older types, if any.
            for b in &mut stmt.backends {
                b.types_sent = false;
            }
        }
        scratch.extend_from_slice(payload);
    } else {
        let types_sent = stmt.on(server).is_some_and(|b| b.types_sent);
        let added = match (&stmt.types, types_sent) {
            (Some(types), false) => execute_with_types(payload, params, types, scratch),
            _ => false,
        };
        if !added {
            scratch.extend_from_slice(payload);
        }
    }
    if let Some(on) = stmt.on_mut(server) {
        on.types_sent = true;
    }
    let backend_id = stmt.on(server).map_or(0, |b| b.id.0);
    set_command_stmt_id(scratch, backend_id);
}
