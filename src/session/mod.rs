//! One client session: a task that owns the client socket and its backend connections, and
//! runs the statement path top to bottom: read → filters → plan → forward → relay the reply,
//! tracked → filters.
//!
//! The router decides where each command goes; the session does the I/O that follows from it:
//! it opens backends when a plan first needs them (bringing them up to date with the
//! session-command history), runs session commands on every open backend, maps prepared
//! statement ids, waits for GTIDs of causal reads and retries reads that failed before the
//! client saw anything.

mod backends;
mod filters;
mod history;
mod kill;
mod login;
mod prepared;
pub mod registry;
mod relay;
mod route;
mod user;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use switchyard_api::{RouteError, RouteHint, RouterSession, ServerName, SessionId, SessionInfo};
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::Command;
use switchyard_protocol::conn::PacketIo;
use switchyard_protocol::packets::{errors::*, write_err, write_ok};
use switchyard_protocol::reply::ReplyTracker;
use switchyard_protocol::thread_ids::RowFormat;
use switchyard_protocol::ProtocolError;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};

use crate::backend::Backend;
use crate::host_blocks::HostBlocks;
use crate::runtime::Lifecycle;
use crate::service::{Admission, PendingLimit, PendingLogin, Service};
use history::History;
use login::Credentials;
use prepared::Prepared;
use registry::{LiveState, Registration, SessionEntry, SessionRegistry};

/// Why a session ended early.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("client closed the connection")]
    ClientGone,
    /// The client was turned away, and told why.
    #[error("client refused: {0}")]
    Refused(Refusal),
    /// A backend failed and the session cannot go on without it.
    #[error("lost a backend connection: {0}")]
    BackendLost(String),
    /// The session was ended for the client, who has been told why.
    #[error("session closed: {0}")]
    Ended(String),
}

/// Why a client was turned away at login: what it was told.
#[derive(Debug)]
pub struct Refusal {
    pub code: u16,
    pub sqlstate: String,
    /// Safe to log (see [`printable`]).
    pub message: String,
    /// The user the client tried to log in as, once known.
    pub user: Option<String>,
    pub db: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl SessionError {
    pub fn refused(code: u16, sqlstate: &str, msg: &str) -> Self {
        SessionError::Refused(Refusal {
            code,
            sqlstate: sqlstate.to_string(),
            message: printable(msg),
            user: None,
            db: None,
        })
    }
}

/// The most bytes of one piece of client-chosen text that a log line holds.
pub const LOG_TEXT_MAX: usize = 256;

/// `s` as a log line may hold it: text that clients choose (user names, database names,
/// server messages quoting them) goes into logs, so control characters are escaped (it must
/// not forge log lines) and it is cut after [`LOG_TEXT_MAX`] bytes with a marker saying how
/// much was left out (a 64 KiB user name must not write megabytes of log per failed login).
pub fn printable(s: &str) -> String {
    let mut cut = s.len().min(LOG_TEXT_MAX);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let (head, rest) = s.split_at(cut);
    let mut out = String::with_capacity(head.len() + 24);
    for c in head.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if !rest.is_empty() {
        out.push_str(&format!("…[{} more bytes]", rest.len()));
    }
    out
}

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

/// The server's words for ER_CON_COUNT.
const TOO_MANY: &str = "Too many connections";

/// Runs a client session to its end. Never panics on peer input; logs how it ended.
pub async fn run(stream: TcpStream, peer: SocketAddr, ctx: Arc<ListenerContext>) {
    let id = ctx.registry.next_id();
    let span = tracing::info_span!("session", id, client = %peer, user = tracing::field::Empty, service = %ctx.service.name);
    async move {
        let _ = stream.set_nodelay(true);
        let metrics = crate::metrics::service(&ctx.service.name);
        metrics.accepted(&ctx.listener);
        let mut client = PacketIo::new(stream, switchyard_protocol::conn::CLIENT_READ_CHUNK);
        let ip = peer.ip().to_canonical();
        if ctx.host_blocks.is_blocked(ip) {
            // As a server answers a blocked host: an error in place of the handshake.
            let msg = crate::host_blocks::blocked_message(ip);
            write_err(client.write_buf(), 0, ER_HOST_IS_BLOCKED, "HY000", &msg);
            let _ = client.flush().await;
            info!("refused a client: its address is blocked after too many failed logins");
            let refusal = Refusal {
                code: ER_HOST_IS_BLOCKED,
                sqlstate: "HY000".into(),
                message: msg,
                user: None,
                db: None,
            };
            report_refusal(
                &ctx.service,
                &ctx.listener,
                &ctx.host_blocks,
                &metrics,
                id,
                peer,
                &refusal,
            );
            return;
        }
        // As the server does, a full service refuses before the handshake; the session's slot
        // is taken only once the client has logged in, so that connections that never do
        // cannot hold slots: they count against the pending-login limits instead.
        let pending = if ctx.service.is_full() {
            Err(None)
        } else {
            ctx.service.begin_login(ip).map_err(Some)
        };
        let pending = match pending {
            Ok(pending) => pending,
            Err(limit) => {
                write_err(client.write_buf(), 0, ER_CON_COUNT, "08004", TOO_MANY);
                let _ = client.flush().await;
                match limit {
                    None => {
                        metrics.refused_full();
                        warn!("refused a client: the service is at its max_connections");
                    }
                    Some(limit) => {
                        metrics.refused_pending();
                        warn!(
                            "refused a client: {} connections that have not logged in yet",
                            match limit {
                                PendingLimit::Service(n) => format!("the service has {n}"),
                                PendingLimit::Host(n) => format!("its address has {n}"),
                            }
                        );
                    }
                }
                return;
            }
        };
        match Session::start(client, id, peer, &ctx, &metrics, pending).await {
            Ok((mut session, _admission)) => {
                let _registration = Registration {
                    registry: ctx.registry.clone(),
                    id,
                };
                let ended = session.serve().await;
                if let Some(chain) = session.chain.as_mut() {
                    let why = ended.as_ref().err().map(|e| e.to_string());
                    chain.on_close(why.as_deref());
                }
                match ended {
                    Ok(()) => debug!("session ended"),
                    Err(e) => info!(error = %e, "session ended"),
                }
                session.count_backend_bytes();
                for backend in session.backends.drain(..) {
                    backend.quit().await;
                }
            }
            Err(SessionError::ClientGone) => debug!("client left during login"),
            Err(SessionError::Refused(r)) => {
                info!(error = %r, "login failed");
                report_refusal(
                    &ctx.service,
                    &ctx.listener,
                    &ctx.host_blocks,
                    &metrics,
                    id,
                    peer,
                    &r,
                );
            }
            Err(e) => {
                info!(error = %e, "login failed");
                let timeout = matches!(e, SessionError::Protocol(ProtocolError::Timeout(_)));
                metrics.login_broke_off(timeout);
            }
        }
    }
    .instrument(span)
    .await
}

/// Counts a refused login (at connect, or a COM_CHANGE_USER) and tells the service's filters,
/// so that the audit feed records it.
/// A wrong password or unknown user also counts towards blocking the client's address.
fn report_refusal(
    service: &Service,
    listener: &str,
    host_blocks: &HostBlocks,
    metrics: &crate::metrics::ServiceMetrics,
    session_id: u32,
    peer: SocketAddr,
    r: &Refusal,
) {
    metrics.login_refused(r.code);
    if matches!(r.code, ER_ACCESS_DENIED | ER_ACCESS_DENIED_NO_PASSWORD)
        && host_blocks.failed(peer.ip().to_canonical())
    {
        warn!(
            client = %peer.ip().to_canonical(),
            "client address blocked after too many failed logins (max_auth_errors_until_block)"
        );
    }
    let failure = switchyard_api::LoginFailure {
        session_id: SessionId(session_id),
        user: r.user.as_deref().unwrap_or(""),
        client_addr: peer,
        db: r.db.as_deref(),
        service: &service.name,
        listener,
        error_code: r.code,
        sqlstate: &r.sqlstate,
        message: &r.message,
    };
    for filter in service.filters.iter() {
        filter.on_login_failed(&failure);
    }
}

struct Session {
    id: u32,
    client: PacketIo<TcpStream>,
    /// The open backends; the first is the one opened at login.
    backends: Vec<Backend>,
    router: Box<dyn RouterSession>,
    service: Arc<Service>,
    registry: Arc<SessionRegistry>,
    credentials: Credentials,
    tracker: ReplyTracker,
    peer: SocketAddr,
    /// Session commands to replay on backends opened later; `None` for routers that keep one
    /// backend per session.
    history: Option<History>,
    prepared: Prepared,
    /// The last `last_gtid` a backend reported; `Some` when the router wants GTIDs, and then
    /// backends track `last_gtid`.
    gtid: Option<String>,
    /// `gtid` was updated by the reply being relayed.
    gtid_fresh: bool,
    /// The reply of the current command may hold connection ids, to rewrite to the proxy's;
    /// its rows are in this format.
    thread_ids: Option<RowFormat>,
    /// Rewritten packets are built here, to reuse one allocation.
    scratch: BytesMut,
    /// The status flags of the last reply the client got.
    status: u16,
    /// The sequence id of the proxy's answer to the current command: one after the command's
    /// last frame (a command of 16 MiB or more spans several).
    reply_seq: u8,
    /// The service's filters; `None` when it has none.
    chain: Option<Box<filters::Chain>>,
    /// What the admin API shows of the session as it runs.
    live: Arc<LiveState>,
    listener: Arc<str>,
    started: std::time::SystemTime,
    lifecycle: watch::Receiver<Lifecycle>,
    /// The last stage `lifecycle` announced.
    stage: Lifecycle,
    metrics: crate::metrics::SessionMetrics,
    host_blocks: Arc<HostBlocks>,
}

impl Session {
    async fn start(
        mut client: PacketIo<TcpStream>,
        id: u32,
        peer: SocketAddr,
        ctx: &ListenerContext,
        metrics: &Arc<crate::metrics::ServiceMetrics>,
        pending: PendingLogin,
    ) -> Result<(Session, Admission), SessionError> {
        let service = ctx.service.clone();
        let credentials = login::login(&mut client, id, peer, &service).await;
        drop(pending);
        let credentials = credentials?;
        let Some(admission) = service.admit() else {
            let seq = credentials.next_seq;
            return Err(
                login::refuse(&mut client, seq, ER_CON_COUNT, "08004", TOO_MANY.into()).await,
            );
        };
        let router = service
            .router
            .new_session(&session_info(id, peer, &credentials));
        let tracker = ReplyTracker::new(backend_capabilities(&credentials, &service));
        let mut session = Session {
            id,
            client,
            backends: Vec::new(),
            router,
            history: service.router.history_limit().map(History::new),
            gtid: service.router.wants_gtid().then(String::new),
            gtid_fresh: false,
            service,
            registry: ctx.registry.clone(),
            tracker,
            credentials,
            peer,
            prepared: Prepared::default(),
            thread_ids: None,
            scratch: BytesMut::new(),
            status: 0,
            reply_seq: 1,
            chain: None,
            live: Arc::default(),
            listener: ctx.listener.clone(),
            started: std::time::SystemTime::now(),
            lifecycle: ctx.lifecycle.clone(),
            stage: *ctx.lifecycle.borrow(),
            metrics: metrics.session(),
            host_blocks: ctx.host_blocks.clone(),
        };
        session.live.set_db(session.credentials.db.as_deref());
        let seq = session.credentials.next_seq;
        session.connect_first(seq).await?;
        session.status = session.backends.first().map_or(2, |b| b.info.status);
        write_ok(session.client.write_buf(), seq, 0, 0, session.status, 0);
        session.client.flush().await?;
        info!(
            user = %printable(&session.credentials.user),
            db = %printable(session.credentials.db.as_deref().unwrap_or("")),
            "client logged in"
        );
        session.start_filters(ctx);
        Ok((session, admission))
    }

    async fn refuse(&mut self, seq: u8, code: u16, state: &str, msg: String) -> SessionError {
        write_err(self.client.write_buf(), seq, code, state, &msg);
        let _ = self.client.flush().await;
        self.refusal(SessionError::refused(code, state, &msg))
    }

    /// `e`, with the user and database of this login if it is a refusal.
    fn refusal(&self, mut e: SessionError) -> SessionError {
        if let SessionError::Refused(r) = &mut e {
            r.user = Some(self.credentials.user.clone());
            r.db = self.credentials.db.clone();
        }
        e
    }

    /// Starts the service's filters for this session, if it has any.
    fn start_filters(&mut self, ctx: &ListenerContext) {
        if self.service.filters.is_empty() {
            return;
        }
        let client = switchyard_api::ClientInfo {
            session_id: SessionId(self.id),
            user: self.credentials.user.clone(),
            client_addr: self.peer,
            db: self.credentials.db.clone(),
            program: self
                .credentials
                .attributes
                .as_deref()
                .and_then(|a| switchyard_protocol::handshake::connect_attribute(a, b"program_name"))
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            tls: false,
            service: std::sync::Arc::from(self.service.name.as_str()),
            listener: ctx.listener.clone(),
        };
        self.chain = Some(Box::new(filters::Chain::start(
            &self.service.filters,
            client,
        )));
    }

    /// Answers the current command with an error; the session goes on.
    async fn answer(&mut self, code: u16, sqlstate: &str, msg: &str) -> Result<(), SessionError> {
        if let Some(chain) = self.chain.as_mut() {
            chain.answered(code, sqlstate, msg);
        }
        write_err(self.client.write_buf(), self.reply_seq, code, sqlstate, msg);
        self.metrics.answered(sqlstate);
        self.client.flush().await?;
        self.metrics.client_bytes(self.client.take_byte_counts());
        Ok(())
    }

    /// The session ends because a backend connection broke: the client's connection closes
    /// (after what it was sent), as a server's does; the reason goes to the log.
    async fn gone(&mut self, e: RouteError) -> SessionError {
        let _ = self.client.flush().await;
        SessionError::BackendLost(printable(&e.message))
    }

    /// Ends the session with `e` as the client's last packet (sequence id `seq`:
    /// `reply_seq` in answer to a command, 0 when unsolicited).
    async fn end(&mut self, seq: u8, e: RouteError) -> SessionError {
        if let Some(chain) = self.chain.as_mut() {
            chain.answered(e.code, e.sqlstate, &e.message);
        }
        write_err(self.client.write_buf(), seq, e.code, e.sqlstate, &e.message);
        if seq == 0 {
            self.metrics.unsolicited(e.sqlstate);
        } else {
            self.metrics.answered(e.sqlstate);
        }
        let _ = self.client.flush().await;
        SessionError::Ended(printable(&e.message))
    }

    /// The proxy is draining and the session is between transactions, or the drain is over.
    fn must_close(&self) -> bool {
        match self.stage {
            Lifecycle::Running => false,
            Lifecycle::Draining => {
                self.status & switchyard_protocol::caps::SERVER_STATUS_IN_TRANS == 0
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
        write_err(self.client.write_buf(), 0, e.code, e.sqlstate, &e.message);
        let _ = self.client.flush().await;
        SessionError::Ended(e.message)
    }

    /// The router wants the GTID of each write.
    fn wants_gtid(&self) -> bool {
        self.gtid.is_some()
    }

    /// The command loop.
    async fn serve(&mut self) -> Result<(), SessionError> {
        let mut changes = self.service.watch_changes();
        let mut check_servers = true;
        loop {
            if check_servers {
                check_servers = self.check_servers().await?;
            }
            if self.stage != Lifecycle::Running && self.must_close() {
                return Err(self.shut_down().await);
            }
            // While idle, watch the first backend too: a server that closes an idle connection
            // (wait_timeout, KILL) says why in a last packet. The others are checked before use.
            // It comes first: a server's goodbye came before the client's next command.
            let packet = tokio::select! {
                biased;
                n = idle_watch(self.backends.first_mut()) => {
                    if n > 0 && !self.goodbye_follows().await {
                        return Err(self.lost_place());
                    }
                    self.first_backend_closed().await?;
                    continue;
                }
                read = self.client.read_packet() => match read {
                    Ok(Some(p)) => p,
                    Ok(None) => return Ok(()),
                    Err(e @ ProtocolError::PacketTooLarge { .. }) => {
                        let msg = "Got a packet bigger than 'max_allowed_packet' bytes";
                        write_err(self.client.write_buf(), 1, ER_NET_PACKET_TOO_LARGE, "08S01", msg);
                        self.client.flush().await?;
                        return Err(e.into());
                    }
                    Err(e) => return Err(e.into()),
                },
                _ = changes.changed() => {
                    check_servers = true;
                    continue;
                }
                changed = self.lifecycle.changed() => {
                    self.stage = match changed {
                        Ok(()) => *self.lifecycle.borrow_and_update(),
                        Err(_) => Lifecycle::Closing,
                    };
                    continue;
                }
            };
            if packet.seq != 0 {
                let seq = packet.last_seq.wrapping_add(1);
                write_err(
                    self.client.write_buf(),
                    seq,
                    ER_NET_PACKETS_OUT_OF_ORDER,
                    "08S01",
                    "Got packets out of order",
                );
                self.client.flush().await?;
                return Err(ProtocolError::PacketsOutOfSync {
                    expected: 0,
                    got: packet.seq,
                }
                .into());
            }
            self.reply_seq = packet.last_seq.wrapping_add(1);
            // The command is parsed here, once; filters that rewrite SQL make a new one.
            let Ok(cmd) = Command::parse(&packet.payload) else {
                self.answer(ER_UNKNOWN_COM, "08S01", "Unknown command")
                    .await?;
                continue;
            };
            let go_on = self.filtered(&packet, cmd).await?;
            if !go_on {
                return Ok(());
            }
            self.live.set_status(self.status);
        }
    }

    /// Runs one client command, `cmd` parsed from `packet`, routed by `hint` if the filters
    /// gave one. Returns false when the client quit.
    async fn dispatch(
        &mut self,
        packet: &Packet,
        cmd: Command<'_>,
        hint: Option<&RouteHint>,
    ) -> Result<bool, SessionError> {
        let statement = match cmd {
            Command::StmtExecute { stmt_id, .. } => self.prepared.find(stmt_id),
            _ => None,
        };
        let kill = statement.and_then(|s| s.kill);
        self.thread_ids = match cmd {
            Command::Query(sql) => switchyard_sql::reads_thread_ids(sql).then_some(RowFormat::Text),
            _ => statement
                .filter(|s| s.reads_thread_ids)
                .map(|_| RowFormat::Binary),
        };
        if let Some(k) = kill {
            self.kill(k).await?;
            return Ok(true);
        }
        match cmd {
            Command::Quit => return Ok(false),
            Command::ChangeUser(body) => self.change_user(body).await?,
            Command::ResetConnection => self.reset_connection(packet).await?,
            Command::ProcessKill(id) => {
                self.kill(kill::Kill {
                    query_only: false,
                    id: id.into(),
                })
                .await?
            }
            Command::InitDb(db) => {
                let db = String::from_utf8_lossy(db).into_owned();
                self.forward(packet, cmd, hint).await?;
                self.switched_db(Some(db));
            }
            Command::Query(sql) => match kill::parse(sql) {
                kill::Parsed::Other => {
                    let db = switchyard_sql::classify::use_target(sql);
                    self.forward(packet, cmd, hint).await?;
                    self.switched_db(db);
                }
                kill::Parsed::Kill(k) => self.kill(k).await?,
                kill::Parsed::Unsupported => self.unsupported_kill().await?,
            },
            Command::StmtPrepare(sql) => match kill::parse(sql) {
                kill::Parsed::Other => self.forward(packet, cmd, hint).await?,
                kill::Parsed::Kill(k) => self.prepare_kill(packet, k).await?,
                kill::Parsed::Unsupported => self.unsupported_kill().await?,
            },
            Command::StmtSendLongData { .. }
            | Command::StmtClose { .. }
            | Command::StmtReset { .. }
            | Command::StmtFetch { .. } => self.statement_command(packet, cmd).await?,
            _ => self.forward(packet, cmd, hint).await?,
        }
        Ok(true)
    }

    async fn unsupported_kill(&mut self) -> Result<(), SessionError> {
        let msg = "Switchyard translates KILL only as a statement of its own with a literal \
                   connection id: KILL [CONNECTION|QUERY] <id>";
        self.answer(ER_NOT_SUPPORTED_YET, "42000", msg).await
    }

    /// The command just forwarded switched the default database to `db`, if it succeeded.
    fn switched_db(&self, db: Option<String>) {
        if let Some(db) = db.filter(|_| self.tracker.summary().error.is_none()) {
            self.live.set_db(Some(&db));
        }
    }

    /// The first backend closed while the session was idle. A server that ends a connection
    /// of its own accord (`KILL`, `wait_timeout`, `idle_transaction_timeout`, `COMMIT RELEASE`)
    /// ends the client's: its last packet, if it sent one, goes to the client, and then the
    /// connection closes, as it would straight to the server. A session that can move on
    /// without the backend (a replica, or a primary whose server is gone, to be replaced)
    /// goes on, and is given nothing for a command it has not sent.
    async fn first_backend_closed(&mut self) -> Result<(), SessionError> {
        let last_words = self.backends[0].io.read_buf().split();
        let server = self.backends[0].server.clone();
        let name = server.name.clone();
        let why = format!("server '{name}' closed the connection");
        let is_primary = self.service.servers.load().primary().map(|p| &p.name) == Some(&name);
        self.backends.remove(0);
        let end = self.forget_backend(&name, &why).is_some()
            || is_primary && server_answers(&server.address).await;
        if !end {
            info!(server = %name, "a backend closed an idle connection; the session goes on");
            return Ok(());
        }
        if !last_words.is_empty() {
            let _ = self.client.write_framed(&last_words).await;
        }
        Err(SessionError::BackendLost(why))
    }

    /// The first backend sent something while the session was idle: true once the server has
    /// closed the connection after it (its last words), within a second.
    async fn goodbye_follows(&mut self) -> bool {
        let backend = &mut self.backends[0];
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match tokio::time::timeout_at(deadline, backend.io.fill()).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// A backend sent bytes that belong to no reply and did not close: the proxy lost its place
    /// in a reply. The client, who may be waiting for the rest of it, is disconnected rather
    /// than left waiting.
    fn lost_place(&mut self) -> SessionError {
        let name = self.backends[0].server.name.clone();
        let bytes = self.backends[0].io.read_buf().len();
        warn!(server = %name, bytes, "the backend sent bytes outside of any reply; closing the session");
        SessionError::BackendLost(format!(
            "server '{name}' sent {bytes} bytes outside of any reply"
        ))
    }

    /// Closes backends on servers that were put in maintenance (or, for sessions that can move,
    /// went down), unless a transaction is open on them. Returns true while the session must
    /// check again after its next command.
    async fn check_servers(&mut self) -> Result<bool, SessionError> {
        let servers = self.service.servers.load_full();
        let can_move = self.history.is_some();
        let mut again = false;
        let mut i = 0;
        while i < self.backends.len() {
            let backend = &self.backends[i];
            let name = backend.server.name.clone();
            let why = match servers.get(name.as_str()) {
                Some(s) if s.maintenance => format!("server '{name}' is in maintenance"),
                Some(s) if can_move && s.role == switchyard_api::ServerRole::Down => {
                    format!("server '{name}' is down")
                }
                None if can_move => format!("server '{name}' was removed from the service"),
                _ => {
                    i += 1;
                    continue;
                }
            };
            if backend.status & switchyard_protocol::caps::SERVER_STATUS_IN_TRANS != 0 {
                again = true;
                i += 1;
                continue;
            }
            if let Some(e) = self.close_backend(i, &why).await {
                info!(server = %name, "closed the session: {why}");
                return Err(self.end(0, e).await);
            }
            info!(server = %name, "moved the session off the server: {why}");
        }
        Ok(again)
    }

    /// Closes the backend at `index` and tells the router; returns the error to end the session
    /// with, if the router cannot go on without it.
    async fn close_backend(&mut self, index: usize, why: &str) -> Option<RouteError> {
        let backend = self.backends.remove(index);
        let name = backend.server.name.clone();
        backend.quit().await;
        self.forget_backend(&name, why)
    }

    /// Drops a backend that failed, telling the router; like [`Session::close_backend`] for a
    /// connection that cannot say goodbye.
    fn lose_backend(&mut self, index: usize, why: &str) -> Option<RouteError> {
        let name = self.backends.remove(index).server.name.clone();
        warn!(server = %name, "lost a backend connection: {why}");
        self.forget_backend(&name, why)
    }

    /// The backend on `name` is gone: its statements with it; the router is told.
    fn forget_backend(&mut self, name: &ServerName, why: &str) -> Option<RouteError> {
        self.prepared.forget_server(name);
        self.register_backends();
        self.router.on_backend_closed(name, why)
    }

    /// Records the session's backends for `KILL`.
    fn register_backends(&self) {
        let backends = self
            .backends
            .iter()
            .map(|b| (b.server.clone(), b.info.connection_id))
            .collect();
        self.registry.set(
            self.id,
            SessionEntry {
                user: self.credentials.user.clone(),
                client: self.peer,
                service: Arc::from(self.service.name.as_str()),
                listener: self.listener.clone(),
                started: self.started,
                backends,
                live: self.live.clone(),
            },
        );
    }
}

/// The capabilities the session's backends are asked for: the client's, plus session tracking
/// when the router wants GTIDs (the relay then gives the client its own OK format).
fn backend_capabilities(credentials: &Credentials, service: &Service) -> u32 {
    let track = if service.router.wants_gtid() {
        switchyard_protocol::caps::CLIENT_SESSION_TRACK
    } else {
        0
    };
    credentials.capabilities | track
}

fn session_info(id: u32, peer: SocketAddr, credentials: &Credentials) -> SessionInfo {
    SessionInfo {
        id: SessionId(id),
        user: credentials.user.clone(),
        client_addr: peer,
        db: credentials.db.clone(),
    }
}

/// Whether the server at `address` still takes connections: a connection of the session that
/// it closed was closed for the session's own sake, not because the server went away.
async fn server_answers(address: &str) -> bool {
    let connect = TcpStream::connect(address);
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(1), connect).await,
        Ok(Ok(_))
    )
}

/// Waits for the first backend to send something unasked; never resolves without one.
async fn idle_watch(backend: Option<&mut Backend>) -> usize {
    match backend {
        Some(b) => b.io.fill().await.unwrap_or(0),
        None => std::future::pending().await,
    }
}
