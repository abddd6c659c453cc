//! The statement path: asks the router where a command goes, runs it there (or on every open
//! backend, for session commands) and relays the reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use switchyard_api::{
    GtidWait, Reply, RouteError, RouteHint, RoutePlan, RouteTarget, Server, ServerName, StmtId,
};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::{Command, COM_STMT_CLOSE};
use switchyard_protocol::packets::errors::*;
use switchyard_protocol::packets::write_err;
use switchyard_protocol::reply::ReplyTracker;
use switchyard_protocol::stmt::{
    execute_param_types, execute_with_types, set_command_stmt_id, LAST_PREPARED_STMT_ID,
};
use switchyard_protocol::text_query;
use tracing::{debug, info};

use super::relay::{self, RelayFail};
use super::{Session, SessionError};

/// How many times an autocommit read is tried on another server after its target failed.
const READ_RETRIES: usize = 3;

/// Why a command did not run to the end on its target.
enum Failure {
    /// The target failed before the client saw anything (`code` is the error to report if the
    /// command is not retried). The router has been told; `end` says whether the session must
    /// end. With `gone`, the backend connection broke (the server closed it, or the network
    /// failed): a session that ends with it closes the client's connection without an error
    /// of the proxy's making, as the server's own connection would have closed.
    Unsent {
        why: String,
        code: u16,
        end: Option<RouteError>,
        gone: bool,
    },
    /// The target failed mid-reply; the client got an error if the session goes on.
    Lost {
        end: Option<RouteError>,
    },
    Session(SessionError),
}

/// The SQLSTATE of an error the proxy answers with.
fn sqlstate(code: u16) -> &'static str {
    if code == ER_NET_READ_ERROR {
        "08S01"
    } else {
        "HY000"
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        Failure::Session(e)
    }
}

impl Session {
    /// Routes one command (by `hint`, when the filters gave one) and relays its reply.
    pub(super) async fn forward(
        &mut self,
        packet: &Packet,
        cmd: Command<'_>,
        hint: Option<&RouteHint>,
    ) -> Result<(), SessionError> {
        let mut attempt = 0;
        loop {
            let servers = self.service.servers.load();
            let plan = match hint {
                Some(hint) => self.router.plan_hinted(&cmd, &servers, hint),
                None => self.router.plan(&cmd, &servers),
            };
            let outcome = match &plan.target {
                RouteTarget::Error(e) => return self.answer(e.code, e.sqlstate, &e.message).await,
                RouteTarget::Close(e) => return Err(self.end(self.reply_seq, e.clone()).await),
                RouteTarget::All { dedup } => {
                    return self.session_command(packet, cmd, *dedup).await
                }
                RouteTarget::Server(server) => {
                    self.run_on(server.clone(), packet, cmd, &plan).await
                }
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(Failure::Unsent { why, end: None, .. })
                    if plan.retryable && attempt < READ_RETRIES =>
                {
                    attempt += 1;
                    info!(reason = %why, "retrying a read on another server");
                }
                Err(failure) => return self.report(failure).await,
            }
        }
    }

    /// Tells the client how its command failed; ends the session if the router said so.
    async fn report(&mut self, failure: Failure) -> Result<(), SessionError> {
        let end = match failure {
            Failure::Session(e) => return Err(e),
            Failure::Unsent {
                why,
                code,
                end,
                gone,
            } => {
                if end.is_none() || !gone {
                    let msg = format!("Lost connection to backend server: {why}");
                    self.answer(code, sqlstate(code), &msg).await?;
                }
                end
            }
            // The client has its error already.
            Failure::Lost { end } => end,
        };
        match end {
            Some(e) => Err(SessionError::BackendLost(e.message)),
            None => Ok(()),
        }
    }

    /// Runs `cmd` on `server` (opening it if needed) and relays the reply.
    async fn run_on(
        &mut self,
        mut server: Arc<Server>,
        packet: &Packet,
        cmd: Command<'_>,
        plan: &RoutePlan,
    ) -> Result<(), Failure> {
        let execute = match cmd {
            Command::StmtExecute { stmt_id, .. } => match self.prepared.resolve(stmt_id) {
                Some(id) => {
                    // Long data went to one backend: the statement runs there.
                    let holder = self.prepared.get(id).and_then(|s| s.long_data.as_ref());
                    if let Some(b) = holder
                        .and_then(|name| self.backends.iter().find(|b| &b.server.name == name))
                    {
                        server = b.server.clone();
                    }
                    Some(id)
                }
                None => {
                    self.unknown_statement(stmt_id, "mysqld_stmt_execute")
                        .await?;
                    return Ok(());
                }
            },
            _ => None,
        };
        let mut index = self.open_for(&server).await?;
        if let Some(wait) = &plan.wait_gtid {
            if !self.wait_gtid(index, wait).await {
                if let Some(fallback) = &wait.fallback {
                    debug!(replica = %server.name, fallback = %fallback.name, "causal read: the replica is behind, reading elsewhere");
                    index = self.open_for(fallback).await?;
                }
            }
        }
        let prepared_id = match cmd {
            Command::StmtPrepare(_) => {
                Some(self.prepared.add(Bytes::copy_from_slice(&packet.payload)))
            }
            _ => None,
        };
        let rewritten = match execute {
            Some(id) => {
                self.execute_packet(index, id, &packet.payload).await?;
                true
            }
            None => false,
        };
        let backend = &mut self.backends[index];
        backend.server.stats.statement_routed();
        let payload = if rewritten {
            &self.scratch[..]
        } else {
            &packet.payload[..]
        };
        backend.io.queue(0, payload);
        if let Err(e) = backend.io.flush().await {
            return Err(self.unsent(index, e.to_string()));
        }
        let started = Instant::now();
        if self.tracker.start(&cmd) {
            backend.server.stats.operation_started();
            let relayed = self.relay(index, prepared_id).await;
            let elapsed = started.elapsed();
            let stats = &self.backends[index].server.stats;
            stats.operation_finished();
            stats.record_response(elapsed.as_micros() as u64);
            if let Err(fail) = relayed {
                return Err(self.relay_failure(index, fail).await);
            }
            self.count_reply(index, false, elapsed);
        }
        if execute.is_some() || prepared_id.is_some() {
            self.remember_statement(index, execute, prepared_id);
        }
        let prepared_id = prepared_id.filter(|_| self.tracker.summary().prepared.is_some());
        if let Some(chain) = self.chain.as_mut() {
            chain.routed(&self.backends[index].server, Some(plan.reason));
            if let Some(id) = prepared_id {
                chain.prepared(id);
            }
        }
        let server = self.backends[index].server.clone();
        self.replied(&server.name, prepared_id);
        Ok(())
    }

    /// Records where a statement ran (execute) or was prepared.
    fn remember_statement(&mut self, index: usize, execute: Option<u32>, prepared_id: Option<u32>) {
        let name = self.backends[index].server.name.clone();
        if let Some(id) = execute {
            if let Some(s) = self.prepared.get_mut(id) {
                s.last_server = Some(name.clone());
                s.long_data = None;
            }
        }
        if let Some(id) = prepared_id {
            match self.tracker.summary().prepared {
                Some(p) => {
                    self.prepared.set_backend(id, &name, p.stmt_id);
                    if let Some(s) = self.prepared.get_mut(id) {
                        s.params = p.params;
                    }
                }
                None => {
                    self.prepared.remove(id);
                }
            }
        }
    }

    /// Tells the router how the command ended.
    fn replied(&mut self, server: &switchyard_api::ServerName, prepared_id: Option<u32>) {
        self.status = self.tracker.summary().status;
        let fresh = std::mem::take(&mut self.gtid_fresh);
        self.router.on_reply(&Reply {
            server,
            summary: self.tracker.summary(),
            prepared_id: prepared_id.map(StmtId),
            last_gtid: self.gtid.as_deref().filter(|_| fresh),
        });
    }

    /// The index of an open backend on `server`, opened if needed.
    async fn open_for(&mut self, server: &Arc<Server>) -> Result<usize, Failure> {
        match self.ensure_open(server).await {
            Ok(i) => Ok(i),
            Err(why) => {
                let end = self.router.on_backend_closed(&server.name, &why);
                Err(Failure::Unsent {
                    why: format!("cannot use server '{}': {why}", server.name),
                    code: ER_UNKNOWN_ERROR,
                    end,
                    gone: false,
                })
            }
        }
    }

    /// The connection to the backend at `index` broke before the client saw anything.
    fn unsent(&mut self, index: usize, why: String) -> Failure {
        let name = self.backends[index].server.name.clone();
        let end = self.lose_backend(index, &why);
        Failure::Unsent {
            why: format!("server '{name}': {why}"),
            code: ER_NET_READ_ERROR,
            end,
            gone: true,
        }
    }

    /// Waits until the backend at `index` has replicated the GTID; false if it has not within
    /// the timeout, or cannot say.
    async fn wait_gtid(&mut self, index: usize, wait: &GtidWait) -> bool {
        // The GTID comes from a server, but it is spliced into SQL: only digits, '-' and ','.
        let valid = !wait.gtid.is_empty()
            && wait
                .gtid
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b'-' || c == b',');
        if !valid {
            return false;
        }
        let sql = format!(
            "SELECT MASTER_GTID_WAIT('{}', {:.3})",
            wait.gtid,
            wait.timeout.as_secs_f64()
        );
        let backend = &mut self.backends[index];
        let caps = backend.info.capabilities;
        match text_query::query(&mut backend.io, caps, &sql).await {
            Ok(set) => {
                set.rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|v| v.as_deref())
                    == Some(b"0")
            }
            Err(e) => {
                debug!(server = %backend.server.name, error = %e, "MASTER_GTID_WAIT failed");
                false
            }
        }
    }

    /// Builds in `scratch` the client's COM_STMT_EXECUTE for the backend at `index` (see
    /// [`build_execute`]), preparing the statement there first if it is not yet.
    async fn execute_packet(
        &mut self,
        index: usize,
        id: u32,
        payload: &[u8],
    ) -> Result<(), Failure> {
        self.ensure_prepared(index, id).await?;
        let name = &self.backends[index].server.name;
        let Some(stmt) = self.prepared.get_mut(id) else {
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
    async fn ensure_prepared(&mut self, index: usize, id: u32) -> Result<(), Failure> {
        let name = &self.backends[index].server.name;
        match self.prepared.get(id).and_then(|s| s.on(name)) {
            Some(_) => Ok(()),
            None => self.prepare_on(index, id).await,
        }
    }

    /// Prepares statement `id` on the backend at `index`, which did not have it.
    async fn prepare_on(&mut self, index: usize, id: u32) -> Result<(), Failure> {
        let Some(prepare) = self.prepared.get(id).map(|s| s.prepare.clone()) else {
            return Ok(());
        };
        let backend = &mut self.backends[index];
        let cmd = Command::StmtPrepare(&prepare[1..]);
        let summary = match relay::run_quietly(backend, &prepare, &cmd).await {
            Ok(summary) => summary,
            Err(e) => return Err(self.unsent(index, e.to_string())),
        };
        match summary.prepared {
            Some(p) => {
                let name = self.backends[index].server.name.clone();
                self.prepared.set_backend(id, &name, p.stmt_id);
                Ok(())
            }
            None => Err(Failure::Unsent {
                why: format!(
                    "server '{}' cannot prepare the statement",
                    self.backends[index].server.name
                ),
                code: ER_UNKNOWN_ERROR,
                end: None,
                gone: false,
            }),
        }
    }

    /// Answers a command naming a statement id the session does not have, as the server does.
    async fn unknown_statement(&mut self, id: u32, command: &str) -> Result<(), SessionError> {
        let msg = format!("Unknown prepared statement handler ({id}) given to {command}");
        self.answer(ER_UNKNOWN_STMT_HANDLER, "HY000", &msg).await
    }

    /// The backend whose reply a session command's client gets: the primary's if it is open,
    /// else the first.
    pub(super) fn reply_backend(&self) -> usize {
        let servers = self.service.servers.load();
        let primary = servers.primary().map(|p| p.name.clone());
        self.backends
            .iter()
            .position(|b| Some(&b.server.name) == primary.as_ref())
            .unwrap_or(0)
    }

    /// A session command: runs on every open backend; the client gets one reply; backends
    /// whose reply disagrees are closed; the command joins the history.
    async fn session_command(
        &mut self,
        packet: &Packet,
        cmd: Command<'_>,
        dedup: bool,
    ) -> Result<(), SessionError> {
        if self.backends.is_empty() {
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
        let prepared_id = matches!(cmd, Command::StmtPrepare(_))
            .then(|| self.prepared.add(Bytes::copy_from_slice(&packet.payload)));
        // A binary-protocol session command (`SET ...` prepared, then executed) runs on every
        // backend under that backend's own statement id. It is prepared everywhere before it
        // runs anywhere, so that a failure leaves no reply unread.
        let execute = match cmd {
            Command::StmtExecute { stmt_id, .. } => match self.prepared.resolve(stmt_id) {
                Some(id) => Some(id),
                None => return self.unknown_statement(stmt_id, "mysqld_stmt_execute").await,
            },
            _ => None,
        };
        if let Some(id) = execute {
            for i in 0..self.backends.len() {
                if let Err(failure) = self.ensure_prepared(i, id).await {
                    return self.report(failure).await;
                }
            }
        }
        // Send to all first, so that the servers work in parallel.
        let started = Instant::now();
        let mut failed = Vec::new();
        for b in &mut self.backends {
            let payload = match execute.and_then(|id| self.prepared.get_mut(id)) {
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
        if self.backends.is_empty() {
            let msg = "Lost connection to backend server: every backend failed";
            return self.answer(ER_NET_READ_ERROR, "08S01", msg).await;
        }
        let chosen = self.reply_backend();
        let has_reply = self.tracker.start(&cmd);
        if has_reply {
            let failed = match self.relay(chosen, prepared_id).await {
                Ok(()) => None,
                Err(RelayFail::Session(e)) => return Err(e),
                Err(RelayFail::Unsent(why)) => Some((why, self.reply_seq)),
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
        let chosen_name = self.backends[chosen].server.name.clone();
        if let (Some(id), Some(p)) = (prepared_id, summary.prepared) {
            self.prepared.set_backend(id, &chosen_name, p.stmt_id);
            if let Some(s) = self.prepared.get_mut(id) {
                s.params = p.params;
            }
        }
        // The others' replies: read, compared, dropped.
        let mut disagree = Vec::new();
        let mut to_close = Vec::new();
        for (i, b) in self.backends.iter_mut().enumerate() {
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
                            to_close.push((i, p.stmt_id));
                        }
                    } else if let (Some(id), Some(p)) = (prepared_id, theirs.prepared) {
                        if ok {
                            self.prepared.set_backend(id, &b.server.name, p.stmt_id);
                        }
                    }
                }
            }
        }
        for (i, stmt_id) in to_close {
            close_statement(&mut self.backends[i], stmt_id).await;
        }
        self.count_backend_bytes();
        if let Some(e) = self.drop_failed(disagree) {
            return Err(self.end(0, e).await);
        }
        match prepared_id {
            Some(id) if !ok => {
                self.prepared.remove(id);
            }
            Some(_) => {}
            None => {
                let stmt = execute.and_then(|id| self.prepared.get(id));
                if let Some(h) = self.history.as_mut() {
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
        if let Some(chain) = self.chain.as_mut() {
            chain.routed_all(&self.backends[chosen].server);
            if let Some(id) = prepared_id {
                chain.prepared(id);
            }
        }
        self.replied(&chosen_name, prepared_id);
        Ok(())
    }

    /// Closes the backends that failed; returns the error to end the session with, if any.
    fn drop_failed(
        &mut self,
        failed: Vec<(switchyard_api::ServerName, String)>,
    ) -> Option<RouteError> {
        let mut end = None;
        for (name, why) in failed {
            if let Some(i) = self.backends.iter().position(|b| b.server.name == name) {
                end = end.or(self.lose_backend(i, &why));
            }
        }
        end
    }

    /// COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE, COM_STMT_RESET and COM_STMT_FETCH: sent where
    /// the statement lives.
    pub(super) async fn statement_command(
        &mut self,
        packet: &Packet,
        cmd: Command<'_>,
    ) -> Result<(), SessionError> {
        let (client_id, name) = match cmd {
            Command::StmtSendLongData { stmt_id } => (stmt_id, "mysqld_stmt_send_long_data"),
            Command::StmtClose { stmt_id } => (stmt_id, "mysqld_stmt_close"),
            Command::StmtReset { stmt_id } => (stmt_id, "mysqld_stmt_reset"),
            Command::StmtFetch { stmt_id, .. } => (stmt_id, "mysqld_stmt_fetch"),
            _ => return Ok(()),
        };
        let Some(id) = self.prepared.resolve(client_id) else {
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
                self.router.on_statement_closed(StmtId(id));
                if let Some(stmt) = self.prepared.remove(id) {
                    for on in stmt.backends {
                        if let Some(b) = self
                            .backends
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
                // it to the next round's.
                // Where the router would run it now, if that backend has it.
                let execute = Command::StmtExecute {
                    stmt_id: client_id,
                    flags: 0,
                };
                let planned = match self
                    .router
                    .plan(&execute, &self.service.servers.load())
                    .target
                {
                    RouteTarget::Server(s) => Some(s.name.clone()),
                    _ => None,
                };
                let reply_from = self
                    .backends
                    .get(self.reply_backend())
                    .map(|b| b.server.name.clone());
                let Some(stmt) = self.prepared.get_mut(id) else {
                    return Ok(());
                };
                let open = |name: &ServerName| self.backends.iter().any(|b| &b.server.name == name);
                let holder = stmt
                    .long_data
                    .clone()
                    .filter(|s| open(s))
                    .or_else(|| planned.filter(|s| open(s) && stmt.on(s).is_some()))
                    .or_else(|| {
                        stmt.last_server
                            .clone()
                            .filter(|s| open(s) && stmt.on(s).is_some())
                    })
                    .or_else(|| reply_from.filter(|s| stmt.on(s).is_some()))
                    .or_else(|| {
                        stmt.backends
                            .iter()
                            .map(|b| b.server.clone())
                            .find(|s| open(s))
                    });
                let Some(holder) = holder else {
                    return Ok(());
                };
                let backend_id = stmt.on(&holder).map_or(0, |b| b.id);
                stmt.long_data = Some(holder.clone());
                let index = self
                    .backends
                    .iter()
                    .position(|b| b.server.name == holder)
                    .expect("chosen among the open backends");
                with_stmt_id(&mut self.scratch, &packet.payload, backend_id);
                let b = &mut self.backends[index];
                b.io.queue(0, &self.scratch);
                if let Err(e) = b.io.flush().await {
                    if let Some(e) = self.lose_backend(index, &e.to_string()) {
                        return Err(self.end(0, e).await);
                    }
                }
                Ok(())
            }
            Command::StmtFetch { .. } => {
                let last = self.prepared.get(id).and_then(|s| {
                    let server = s.last_server.as_ref()?;
                    Some((server.clone(), s.on(server)?.id))
                });
                let index = last.as_ref().and_then(|(server, _)| {
                    self.backends.iter().position(|b| &b.server.name == server)
                });
                let (Some((server, backend_id)), Some(index)) = (last, index) else {
                    let msg = format!("The statement ({client_id}) has no open cursor");
                    return self.answer(ER_STMT_HAS_NO_OPEN_CURSOR, "HY000", &msg).await;
                };
                with_stmt_id(&mut self.scratch, &packet.payload, backend_id);
                self.run_bound(index, &cmd, &server).await
            }
            Command::StmtReset { .. } => {
                let mut targets: Vec<_> = self.prepared.get(id).map_or(Vec::new(), |s| {
                    s.backends
                        .iter()
                        .map(|b| (b.server.clone(), b.id))
                        .collect()
                });
                if let Some(s) = self.prepared.get_mut(id) {
                    s.long_data = None;
                }
                targets
                    .retain(|(server, _)| self.backends.iter().any(|b| &b.server.name == server));
                // The client gets the reply of the backend a session command's reply comes
                // from, when it has the statement; the others reset theirs silently.
                let reply_from = self
                    .backends
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
                    let Some(b) = self.backends.iter_mut().find(|b| &b.server.name == server)
                    else {
                        continue;
                    };
                    with_stmt_id(&mut self.scratch, &packet.payload, *backend_id);
                    if let Err(e) = relay::run_quietly(b, &self.scratch, &cmd).await {
                        failed.push((server.clone(), e.to_string()));
                    }
                }
                if let Some(e) = self.drop_failed(failed) {
                    return Err(self.end(self.reply_seq, e).await);
                }
                let Some(index) = self
                    .backends
                    .iter()
                    .position(|b| b.server.name == chosen_server)
                else {
                    return self.unknown_statement(client_id, name).await;
                };
                with_stmt_id(&mut self.scratch, &packet.payload, chosen_id);
                self.run_bound(index, &cmd, &chosen_server).await
            }
            _ => Ok(()),
        }
    }

    /// Sends the command in `scratch` to the backend at `index` and relays its reply; a failure
    /// is reported to the client, not retried (the statement lives there).
    async fn run_bound(
        &mut self,
        index: usize,
        cmd: &Command<'_>,
        server: &switchyard_api::ServerName,
    ) -> Result<(), SessionError> {
        let started = Instant::now();
        let backend = &mut self.backends[index];
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
                if let Some(chain) = self.chain.as_mut() {
                    chain.routed(&self.backends[index].server, None);
                }
                self.replied(server, None);
                Ok(())
            }
            Err(fail) => {
                let failure = self.relay_failure(index, fail).await;
                self.report(failure).await
            }
        }
    }

    /// What a failed relay from the backend at `index` means for the command; the backend is
    /// dropped unless the client side failed.
    async fn relay_failure(&mut self, index: usize, fail: RelayFail) -> Failure {
        match fail {
            RelayFail::Session(e) => Failure::Session(e),
            RelayFail::Unsent(why) => self.unsent(index, why),
            RelayFail::Lost { why, seq } => {
                let end = self.lose_backend(index, &why);
                if end.is_none() {
                    // The session goes on: the client gets an error in place of the rest.
                    let msg = format!("Lost connection to backend server during query: {why}");
                    write_err(
                        self.client.write_buf(),
                        seq,
                        ER_NET_READ_ERROR,
                        "08S01",
                        &msg,
                    );
                    self.metrics.answered("08S01");
                }
                if let Err(e) = self.client.flush().await {
                    return Failure::Session(e.into());
                }
                Failure::Lost { end }
            }
        }
    }

    /// Counts a command whose reply the client got from the backend at `index` (a session
    /// command on every backend, with `all`) after `elapsed`, and the bytes it moved.
    fn count_reply(&mut self, index: usize, all: bool, elapsed: Duration) {
        let backend = &mut self.backends[index];
        let bytes = backend.io.take_byte_counts();
        self.metrics
            .replied(&backend.server, all, self.tracker.summary(), elapsed, bytes);
        self.metrics.client_bytes(self.client.take_byte_counts());
    }

    /// Counts the bytes every open backend moved since last counted (replies the client does
    /// not get, replays).
    pub(super) fn count_backend_bytes(&mut self) {
        for b in &mut self.backends {
            self.metrics
                .backend_bytes(&b.server.name, b.io.take_byte_counts());
        }
        self.metrics.client_bytes(self.client.take_byte_counts());
    }
}

/// Builds in `scratch` the client's COM_STMT_EXECUTE `payload` of `stmt` for the backend on
/// `server`: that backend's statement id, and the parameter types if it has not seen them.
fn build_execute(
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
    let backend_id = stmt.on(server).map_or(0, |b| b.id);
    set_command_stmt_id(scratch, backend_id);
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

/// Copies a statement-bound command into `scratch` with the backend's statement id.
fn with_stmt_id(scratch: &mut BytesMut, payload: &[u8], backend_id: u32) {
    scratch.clear();
    scratch.extend_from_slice(payload);
    set_command_stmt_id(scratch, backend_id);
}

/// Sends COM_STMT_CLOSE for a backend's statement id (it has no reply).
async fn close_statement(backend: &mut crate::backend::Backend, stmt_id: u32) {
    let mut payload = [0u8; 5];
    payload[0] = COM_STMT_CLOSE;
    payload[1..].copy_from_slice(&stmt_id.to_le_bytes());
    backend.io.queue(0, &payload);
    let _ = backend.io.flush().await;
}
