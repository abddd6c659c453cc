//! One client session: a task that owns the client socket and its backend connections.
//!
//! A command's way, as the code reads: `serve` reads the packet and makes the [`Statement`] (parsed
//! once, read in the session's dialect, its KILL and connection-id facts found); `command` passes
//! it through the filter chain (`filters`), which may answer, hint or rewrite it; `dispatch`
//! answers the proxy's own commands (KILL, COM_CHANGE_USER, COM_RESET_CONNECTION) and hands the
//! rest to `forward` (`route`), which asks the router for a plan, opens the planned backend if
//! needed, sends the command and relays the reply (`relay`); `replied` tells the router how it went
//! and follows the session's dialect and database; last, `command` tells the chain the outcome.
//!
//! The session is made of owned parts: `Client` (the client's connection and the state its
//! answers carry), `Backends` (the open backends, the history, the prepared-statement map, the
//! last GTID), the router's half, the filter chain, and `ProxySide` (registry, metrics,
//! lifecycle).
//!
//! The router decides where each command goes; the session does the I/O that follows from it:
//! it opens backends when a plan first needs them (bringing them up to date with the
//! session-command history), runs session commands on every open backend, maps prepared
//! statement ids, waits for GTIDs of causal reads and retries reads that failed before the
//! client saw anything.
//!
//! This file is the session and its command loop; the rest, in the order a command meets it:
//! `accept` (from accept to login), `login`, `start` (the logged-in session), `filters` (the chain
//! around each command and the outcome it is told), `user` (KILL, COM_CHANGE_USER,
//! COM_RESET_CONNECTION), `route` (plan, run, retry), `session_command`, `statement_command`,
//! `prepared` (statement ids), `execute` (a prepared statement on its backend), `relay` (the
//! reply), `backends` (the backends, opening and replaying them), `history`, `backend_loss`,
//! `registry` (for KILL and the admin API), `error`.

mod accept;
mod backend_loss;
mod backends;
mod error;
mod execute;
mod filters;
mod history;
mod login;
mod prepared;
pub mod registry;
mod relay;
mod route;
mod session_command;
mod start;
mod statement_command;
mod user;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use switchyard_api::{RouteError, RouterSession, SessionId, SqlDialect, Statement};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::Command;
use switchyard_protocol::conn::PacketIo;
use switchyard_protocol::packets::{errors::*, write_err};
use switchyard_protocol::reply::ReplyTracker;
use switchyard_protocol::thread_ids::RowFormat;
use switchyard_protocol::ProtocolError;
use switchyard_sql::kill::{Kill, Parsed};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::info;

use crate::host_blocks::HostBlocks;
use crate::runtime::Lifecycle;
use crate::service::Service;
use accept::report_refusal;
pub use accept::run;
use backend_loss::idle_watch;
use backends::Backends;
pub use error::{printable, Refusal, SessionError, LOG_TEXT_MAX};
use filters::{Outcome, Step};
use login::Credentials;
use registry::{LiveState, SessionRegistry};
use start::session_info;

/// What every session of a listener shares.
pub struct ListenerContext {
    pub service: Arc<Service>,
    pub listener: Arc<str>,
    pub registry: Arc<SessionRegistry>,
    /// Tells sessions when the proxy drains or closes.
    pub lifecycle: watch::Receiver<Lifecycle>,
    /// Failed logins by address: login throttling.
    pub host_blocks: Arc<HostBlocks>,
}

/// One client session, in owned parts with one job each.
struct Session {
    id: SessionId,
    client: Client,
    backends: Backends,
    router: Box<dyn RouterSession>,
    /// The service's filters; `None` when it has none.
    chain: Option<Box<filters::Chain>>,
    /// How the command in flight is going, for the chain; `Some` only while a chain wraps it.
    outcome: Option<Outcome>,
    /// Follows the reply being relayed.
    tracker: ReplyTracker,
    /// The reply of the current command may hold connection ids, to rewrite to the proxy's;
    /// its rows are in this format.
    thread_ids: Option<RowFormat>,
    /// Rewritten packets (executes, statement ids, connection ids) are built here, to reuse
    /// one allocation.
    scratch: BytesMut,
    service: Arc<Service>,
    proxy: ProxySide,
}

/// The client's side: its connection, who it logged in as, and the state its answers carry.
struct Client {
    io: PacketIo<TcpStream>,
    peer: SocketAddr,
    credentials: Credentials,
    /// The status flags of the last reply the client got.
    status: u16,
    /// The sequence id of the proxy's answer to the current command: one after the command's
    /// last frame (a command of 16 MiB or more spans several).
    reply_seq: u8,
    /// The session's `sql_mode` as far as it can be followed; statements are read in it.
    dialect: SqlDialect,
}

/// The proxy around the session: where it is registered and shown, its metrics, the proxy's
/// lifecycle, and the login throttle a failed COM_CHANGE_USER counts towards.
struct ProxySide {
    registry: Arc<SessionRegistry>,
    /// What the admin API shows of the session as it runs.
    live: Arc<LiveState>,
    listener: Arc<str>,
    started: std::time::SystemTime,
    metrics: crate::metrics::SessionMetrics,
    lifecycle: watch::Receiver<Lifecycle>,
    /// The last stage `lifecycle` announced.
    stage: Lifecycle,
    host_blocks: Arc<HostBlocks>,
}

impl Session {
    /// Answers the current command with an error; the session goes on.
    async fn answer(&mut self, code: u16, sqlstate: &str, msg: &str) -> Result<(), SessionError> {
        if let Some(o) = self.outcome.as_mut() {
            o.answered(code, sqlstate, msg);
        }
        write_err(
            self.client.io.write_buf(),
            self.client.reply_seq,
            code,
            sqlstate,
            msg,
        );
        self.proxy.metrics.answered(sqlstate);
        self.client.io.flush().await?;
        self.count_client_bytes();
        Ok(())
    }

    /// The session ends because a backend connection broke: the client's connection closes
    /// (after what it was sent), as a server's does; the reason goes to the log.
    async fn gone(&mut self, e: RouteError) -> SessionError {
        let _ = self.client.io.flush().await;
        SessionError::BackendLost(printable(&e.message))
    }

    /// Ends the session with `e` as the client's last packet (sequence id `seq`:
    /// `reply_seq` in answer to a command, 0 when unsolicited).
    async fn end(&mut self, seq: u8, e: RouteError) -> SessionError {
        if let Some(o) = self.outcome.as_mut() {
            o.answered(e.code, e.sqlstate, &e.message);
        }
        write_err(
            self.client.io.write_buf(),
            seq,
            e.code,
            e.sqlstate,
            &e.message,
        );
        if seq == 0 {
            self.proxy.metrics.unsolicited(e.sqlstate);
        } else {
            self.proxy.metrics.answered(e.sqlstate);
        }
        let _ = self.client.io.flush().await;
        SessionError::Ended(printable(&e.message))
    }

    /// The proxy is draining and the session is between transactions, or the drain is over.
    fn must_close(&self) -> bool {
        match self.proxy.stage {
            Lifecycle::Running => false,
            Lifecycle::Draining => {
                self.client.status & switchyard_protocol::caps::SERVER_STATUS_IN_TRANS == 0
            }
            Lifecycle::Closing => true,
        }
    }

    /// Ends the session as a server does at shutdown: with an unsolicited error.
    async fn shut_down(&mut self) -> SessionError {
        info!("closing the session: the proxy is shutting down");
        let e = RouteError {
            code: ER_SERVER_SHUTDOWN,
            sqlstate: "08S01",
            message: "Server shutdown in progress".to_string(),
        };
        write_err(
            self.client.io.write_buf(),
            0,
            e.code,
            e.sqlstate,
            &e.message,
        );
        let _ = self.client.io.flush().await;
        SessionError::Ended(e.message)
    }

    /// The command loop.
    async fn serve(&mut self) -> Result<(), SessionError> {
        let mut changes = self.service.watch_changes();
        let mut check_servers = true;
        loop {
            if check_servers {
                check_servers = self.check_servers().await?;
            }
            if self.proxy.stage != Lifecycle::Running && self.must_close() {
                return Err(self.shut_down().await);
            }
            // While idle, watch the first backend too: a server that closes an idle connection
            // (wait_timeout, KILL) says why in a last packet. The others are checked before use.
            // It comes first: a server's goodbye came before the client's next command.
            let packet = tokio::select! {
                biased;
                n = idle_watch(self.backends.open.first_mut()) => {
                    if n > 0 && !self.goodbye_follows().await {
                        return Err(self.lost_place());
                    }
                    self.first_backend_closed().await?;
                    continue;
                }
                read = self.client.io.read_packet() => match read {
                    Ok(Some(p)) => p,
                    Ok(None) => return Ok(()),
                    Err(e @ ProtocolError::PacketTooLarge { .. }) => {
                        let msg = "Got a packet bigger than 'max_allowed_packet' bytes";
                        write_err(self.client.io.write_buf(), 1, ER_NET_PACKET_TOO_LARGE, "08S01", msg);
                        self.client.io.flush().await?;
                        return Err(e.into());
                    }
                    Err(e) => return Err(e.into()),
                },
                _ = changes.changed() => {
                    check_servers = true;
                    continue;
                }
                changed = self.proxy.lifecycle.changed() => {
                    self.proxy.stage = match changed {
                        Ok(()) => *self.proxy.lifecycle.borrow_and_update(),
                        Err(_) => Lifecycle::Closing,
                    };
                    continue;
                }
            };
            if packet.seq != 0 {
                let seq = packet.last_seq.wrapping_add(1);
                write_err(
                    self.client.io.write_buf(),
                    seq,
                    ER_NET_PACKETS_OUT_OF_ORDER,
                    "08S01",
                    "Got packets out of order",
                );
                self.client.io.flush().await?;
                return Err(ProtocolError::PacketsOutOfSync {
                    expected: 0,
                    got: packet.seq,
                }
                .into());
            }
            self.client.reply_seq = packet.last_seq.wrapping_add(1);
            // The command is parsed here, once; filters that rewrite SQL make a new one.
            let Ok(stmt) = self.client.dialect.parse(&packet.payload) else {
                self.answer(ER_UNKNOWN_COM, "08S01", "Unknown command")
                    .await?;
                continue;
            };
            if !self.command(&packet, stmt).await? {
                return Ok(());
            }
            self.proxy.live.set_status(self.client.status);
        }
    }

    /// One client command, start to end: the filters see it first (each may answer it, attach
    /// a routing hint or rewrite it), it runs, and the filters hear how it ended. Returns false
    /// when the client quit.
    async fn command(
        &mut self,
        packet: &Packet,
        mut stmt: Statement<'_>,
    ) -> Result<bool, SessionError> {
        // COM_QUIT ends the session (the filters hear of it through on_close).
        let chain = match self.chain.as_mut() {
            Some(chain) if !matches!(stmt.command(), Command::Quit) => chain,
            _ => return self.dispatch(packet, &mut stmt).await,
        };
        self.outcome = Some(Outcome::new(stmt.command()));
        // A rewrite makes a new packet, which the filters after the one that rewrote it see as
        // a statement, and which runs.
        let mut rewritten;
        let mut packet = packet;
        let (mut from, mut hint) = (0, None);
        let result = loop {
            match chain.on_command(packet, &mut stmt, from, hint) {
                Step::Forward(h) => break self.dispatch(packet, &mut stmt.with_hint(h)).await,
                Step::Answer(e) => {
                    break self
                        .answer(e.code, e.sqlstate, &e.message)
                        .await
                        .map(|()| true)
                }
                Step::Rewritten {
                    packet: p,
                    next,
                    hint: h,
                } => {
                    drop(stmt);
                    rewritten = p;
                    packet = &rewritten;
                    // A rewritten COM_QUERY or COM_STMT_PREPARE always parses.
                    stmt = self.client.dialect.parse(&packet.payload)?;
                    (from, hint) = (next, h);
                }
            }
        };
        if let (Some(chain), Some(outcome)) = (self.chain.as_mut(), self.outcome.take()) {
            chain.on_reply(&outcome, self.tracker.summary());
        }
        result
    }

    /// Runs one client statement, parsed from `packet`: the proxy's own commands (KILL,
    /// COM_CHANGE_USER, COM_RESET_CONNECTION) here, the rest where the router plans them.
    /// Returns false when the client quit.
    async fn dispatch(
        &mut self,
        packet: &Packet,
        stmt: &mut Statement<'_>,
    ) -> Result<bool, SessionError> {
        let cmd = *stmt.command();
        let statement = match cmd {
            Command::StmtExecute { stmt_id, .. } => self.backends.prepared.find(stmt_id),
            _ => None,
        };
        let kill = statement.and_then(|s| s.kill);
        self.thread_ids = match cmd {
            Command::Query(_) => stmt.reads_thread_ids().then_some(RowFormat::Text),
            _ => statement
                .filter(|s| s.reads_thread_ids)
                .map(|_| RowFormat::Binary),
        };
        if let Some(k) = kill {
            Box::pin(self.kill(k)).await?;
            return Ok(true);
        }
        match cmd {
            Command::Quit => return Ok(false),
            // Boxed, as the proxy's other own commands: see `accept::run`.
            Command::ChangeUser(body) => Box::pin(self.change_user(body)).await?,
            Command::ResetConnection => Box::pin(self.reset_connection(packet)).await?,
            Command::ProcessKill(id) => {
                let k = Kill {
                    query_only: false,
                    id: id.into(),
                };
                Box::pin(self.kill(k)).await?
            }
            Command::Query(_) => match stmt.kill() {
                Parsed::Other => self.forward(packet, stmt).await?,
                Parsed::Kill(k) => Box::pin(self.kill(k)).await?,
                Parsed::Unsupported => self.unsupported_kill().await?,
            },
            Command::StmtPrepare(_) => match stmt.kill() {
                Parsed::Other => self.forward(packet, stmt).await?,
                Parsed::Kill(k) => Box::pin(self.prepare_kill(packet, k)).await?,
                Parsed::Unsupported => self.unsupported_kill().await?,
            },
            Command::StmtSendLongData { .. }
            | Command::StmtClose { .. }
            | Command::StmtReset { .. }
            | Command::StmtFetch { .. } => self.statement_command(packet, stmt).await?,
            _ => self.forward(packet, stmt).await?,
        }
        Ok(true)
    }

    async fn unsupported_kill(&mut self) -> Result<(), SessionError> {
        let msg = "Switchyard translates KILL only as a statement of its own with a literal \
                   connection id: KILL [CONNECTION|QUERY] <id>";
        self.answer(ER_NOT_SUPPORTED_YET, "42000", msg).await
    }
}
