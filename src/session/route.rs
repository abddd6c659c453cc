//! The statement path: asks the router where a command goes, runs it there and relays the
//! reply; session commands are in `session_command.rs`, statement-bound commands in
//! `statement_command.rs`, prepared statements on their backends in `execute.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_api::{
    GtidWait, Reply, RouteError, RoutePlan, RouteReason, RouteTarget, Server, Statement, StmtId,
};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::Command;
use switchyard_protocol::packets::errors::*;
use switchyard_protocol::packets::write_err;
use switchyard_protocol::text_query;
use tracing::{debug, info};

use super::relay::RelayFail;
use super::{Session, SessionError};

/// How many times an autocommit read is tried on another server after its target failed.
const READ_RETRIES: usize = 3;

/// Why a command did not run to the end on its target.
pub(super) enum Failure {
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
    /// Routes one statement and relays its reply.
    pub(super) async fn forward(
        &mut self,
        packet: &Packet,
        stmt: &mut Statement<'_>,
    ) -> Result<(), SessionError> {
        let mut attempt = 0;
        loop {
            let plan = self.router.plan(stmt, &self.service.servers.load());
            let outcome = match &plan.target {
                RouteTarget::Error(e) => return self.answer(e.code, e.sqlstate, &e.message).await,
                RouteTarget::Close(e) => {
                    return Err(self.end(self.client.reply_seq, e.clone()).await)
                }
                RouteTarget::All { dedup } => {
                    return self.session_command(packet, stmt, *dedup).await
                }
                RouteTarget::Server(server) => {
                    self.run_on(server.clone(), packet, stmt, &plan).await
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
    pub(super) async fn report(&mut self, failure: Failure) -> Result<(), SessionError> {
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

    /// Runs `stmt` on `server` (opening it if needed) and relays the reply.
    pub(super) async fn run_on(
        &mut self,
        mut server: Arc<Server>,
        packet: &Packet,
        stmt: &mut Statement<'_>,
        plan: &RoutePlan,
    ) -> Result<(), Failure> {
        let cmd = *stmt.command();
        let execute = match cmd {
            Command::StmtExecute { stmt_id, .. } => match self.backends.prepared.resolve(stmt_id) {
                Some(id) => {
                    // Long data went to one backend: the statement runs there.
                    let holder = self
                        .backends
                        .prepared
                        .get(id)
                        .and_then(|s| s.long_data.as_ref());
                    if let Some(b) = holder
                        .and_then(|name| self.backends.open.iter().find(|b| &b.server.name == name))
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
            Command::StmtPrepare(_) => Some(self.backends.prepared.add(
                Bytes::copy_from_slice(&packet.payload),
                stmt.reads_thread_ids(),
            )),
            _ => None,
        };
        let rewritten = match execute {
            Some(id) => {
                self.execute_packet(index, id, &packet.payload).await?;
                true
            }
            None => false,
        };
        let backend = &mut self.backends.open[index];
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
            let stats = &self.backends.open[index].server.stats;
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
        self.replied(index, Some(plan.reason), prepared_id, stmt);
        Ok(())
    }

    /// The client got the reply to `stmt` from the backend at `index`, chosen for `reason`
    /// (`RouteReason::SessionCommand`: the reply of a command that ran on every backend; `None`:
    /// a statement-bound command, sent where its statement lives), which prepared the
    /// statement the client knows as `prepared_id`, if any. Tells the filters' outcome and the
    /// router, and follows the session's dialect and default database.
    pub(super) fn replied(
        &mut self,
        index: usize,
        reason: Option<RouteReason>,
        prepared_id: Option<StmtId>,
        stmt: &mut Statement<'_>,
    ) {
        let server = &self.backends.open[index].server;
        if let Some(o) = self.outcome.as_mut() {
            match reason {
                Some(RouteReason::SessionCommand) => o.routed_all(server),
                reason => o.routed(server, reason),
            }
            if let Some(id) = prepared_id {
                o.prepared(id);
            }
        }
        let summary = self.tracker.summary();
        self.client.status = summary.status;
        if let Some(db) = stmt.use_target().filter(|_| summary.error.is_none()) {
            self.proxy.live.set_db(Some(&db));
        }
        self.client.dialect.on_reply(stmt, summary);
        let fresh = std::mem::take(&mut self.backends.gtid_fresh);
        self.router.on_reply(&Reply {
            server: &server.name,
            summary: self.tracker.summary(),
            prepared_id,
            last_gtid: self.backends.gtid.as_deref().filter(|_| fresh),
        });
    }

    /// The connection to the backend at `index` broke before the client saw anything.
    pub(super) fn unsent(&mut self, index: usize, why: String) -> Failure {
        let name = self.backends.open[index].server.name.clone();
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
    pub(super) async fn wait_gtid(&mut self, index: usize, wait: &GtidWait) -> bool {
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
        let backend = &mut self.backends.open[index];
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

    /// What a failed relay from the backend at `index` means for the command; the backend is
    /// dropped unless the client side failed.
    pub(super) async fn relay_failure(&mut self, index: usize, fail: RelayFail) -> Failure {
        match fail {
            RelayFail::Session(e) => Failure::Session(e),
            RelayFail::Unsent(why) => self.unsent(index, why),
            RelayFail::Lost { why, seq } => {
                let end = self.lose_backend(index, &why);
                if end.is_none() {
                    // The session goes on: the client gets an error in place of the rest.
                    let msg = format!("Lost connection to backend server during query: {why}");
                    write_err(
                        self.client.io.write_buf(),
                        seq,
                        ER_NET_READ_ERROR,
                        "08S01",
                        &msg,
                    );
                    self.proxy.metrics.answered("08S01");
                }
                if let Err(e) = self.client.io.flush().await {
                    return Failure::Session(e.into());
                }
                Failure::Lost { end }
            }
        }
    }

    /// Counts a command whose reply the client got from the backend at `index` (a session
    /// command on every backend, with `all`) after `elapsed`, and the bytes it moved.
    pub(super) fn count_reply(&mut self, index: usize, all: bool, elapsed: Duration) {
        let backend = &mut self.backends.open[index];
        let bytes = backend.io.take_byte_counts();
        self.proxy
            .metrics
            .replied(&backend.server, all, self.tracker.summary(), elapsed, bytes);
        self.count_client_bytes();
    }

    /// Counts the bytes the client connection moved since last counted.
    pub(super) fn count_client_bytes(&mut self) {
        let bytes = self.client.io.take_byte_counts();
        self.proxy.metrics.client_bytes(bytes);
    }

    /// Counts the bytes every open backend moved since last counted (replies the client does
    /// not get, replays).
    pub(super) fn count_backend_bytes(&mut self) {
        for b in &mut self.backends.open {
            self.proxy
                .metrics
                .backend_bytes(&b.server.name, b.io.take_byte_counts());
        }
        self.count_client_bytes();
    }
}
