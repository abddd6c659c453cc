//! One client session: a task that owns the client socket and its backend connection, and
//! runs the statement path top to bottom: read → plan → forward → relay the reply, tracked.

mod kill;
mod login;
pub mod registry;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use switchyard_api::{RouteTarget, RouterSession, SessionInfo};
use switchyard_protocol::auth::{self, BackendSecret, NATIVE_PLUGIN};
use switchyard_protocol::caps::{SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS};
use switchyard_protocol::codec::{frame_header, Packet, HEADER_LEN};
use switchyard_protocol::command::{Command, COM_RESET_CONNECTION};
use switchyard_protocol::conn::{self, LoginError, PacketIo};
use switchyard_protocol::handshake::{write_auth_switch, ChangeUser};
use switchyard_protocol::packets::{errors::*, write_err, write_ok, ErrPacket};
use switchyard_protocol::reply::{Progress, ReplyTracker};
use switchyard_protocol::ProtocolError;
use thiserror::Error;
use tokio::net::TcpStream;
use tracing::{debug, info, warn, Instrument};

use crate::backend::Backend;
use crate::service::Service;
use login::Credentials;
use registry::{Registration, SessionEntry, SessionRegistry};

/// Why a session ended early.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("client closed the connection")]
    ClientGone,
    /// The client was turned away; the message is safe to log (see [`printable`]).
    #[error("client refused: {0}")]
    Refused(String),
    #[error("lost the backend connection to '{0}': {1}")]
    BackendLost(String, String),
}

impl SessionError {
    pub fn refused(msg: &str) -> Self {
        SessionError::Refused(printable(msg))
    }
}

/// `s` with control characters escaped: text that clients choose (user names, database names,
/// server messages quoting them) goes into logs, and must not forge log lines.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What every session of a listener shares.
pub struct ListenerContext {
    pub service: Arc<Service>,
    pub listener: String,
    pub registry: Arc<SessionRegistry>,
}

/// Runs a client session to its end. Never panics on peer input; logs how it ended.
pub async fn run(stream: TcpStream, peer: SocketAddr, ctx: Arc<ListenerContext>) {
    let id = ctx.registry.next_id();
    let span = tracing::info_span!("session", id, client = %peer, user = tracing::field::Empty, service = %ctx.service.name);
    async move {
        let _ = stream.set_nodelay(true);
        let mut client = PacketIo::new(stream, switchyard_protocol::conn::CLIENT_READ_CHUNK);
        let Some(_admission) = ctx.service.admit() else {
            write_err(
                client.write_buf(),
                0,
                ER_CON_COUNT,
                "08004",
                "Too many connections",
            );
            let _ = client.flush().await;
            warn!("refused a client: the service is at its max_connections");
            return;
        };
        match Session::start(client, id, peer, &ctx).await {
            Ok(mut session) => {
                let _registration = Registration {
                    registry: ctx.registry.clone(),
                    id,
                };
                match session.serve().await {
                    Ok(()) => debug!("session ended"),
                    Err(e) => info!(error = %e, "session ended"),
                }
                if let Some(backend) = session.backend.take() {
                    backend.quit().await;
                }
            }
            Err(SessionError::ClientGone) => debug!("client left during login"),
            Err(e) => info!(error = %e, "login failed"),
        }
    }
    .instrument(span)
    .await
}

struct Session {
    id: u32,
    client: PacketIo<TcpStream>,
    backend: Option<Backend>,
    router: Box<dyn RouterSession>,
    service: Arc<Service>,
    registry: Arc<SessionRegistry>,
    credentials: Credentials,
    tracker: ReplyTracker,
    peer: SocketAddr,
}

impl Session {
    async fn start(
        mut client: PacketIo<TcpStream>,
        id: u32,
        peer: SocketAddr,
        ctx: &ListenerContext,
    ) -> Result<Session, SessionError> {
        let service = ctx.service.clone();
        let credentials = login::login(&mut client, id, peer, &service).await?;
        let info = SessionInfo {
            id,
            user: credentials.user.clone(),
            client_addr: peer,
            db: credentials.db.clone(),
        };
        let mut router = service.router.new_session(&info);
        let plan = router.connect(&service.servers.load());
        let mut session = Session {
            id,
            client,
            backend: None,
            router,
            service,
            registry: ctx.registry.clone(),
            tracker: ReplyTracker::new(credentials.capabilities),
            credentials,
            peer,
        };
        let seq = session.credentials.next_seq;
        session.connect_backend(plan.target, seq).await?;
        let status = session.backend.as_ref().map_or(2, |b| b.info.status);
        write_ok(session.client.write_buf(), seq, 0, 0, status, 0);
        session.client.flush().await?;
        info!(user = ?session.credentials.user, db = ?session.credentials.db, "client logged in");
        Ok(session)
    }

    /// Opens the session's backend on `target`; on failure the client gets the error (the
    /// server's own, when the server refused) with sequence id `seq`.
    async fn connect_backend(&mut self, target: RouteTarget, seq: u8) -> Result<(), SessionError> {
        let server = match target {
            RouteTarget::Server(server) => server,
            RouteTarget::Unavailable(why) => {
                let msg = format!(
                    "Service '{}' cannot take the connection: {why}",
                    self.service.name
                );
                return Err(self.refuse(seq, 2003, "HY000", msg).await);
            }
        };
        match Backend::open(
            &server,
            &self.credentials.login(),
            self.service.connect_timeout,
        )
        .await
        {
            Ok(backend) => {
                debug!(server = %server.name, thread_id = backend.info.connection_id, "backend connected");
                self.backend = Some(backend);
                self.register_backend();
                Ok(())
            }
            Err(LoginError::Rejected(payload)) => {
                let refusal = ErrPacket::parse(&payload).ok();
                if refusal.is_some_and(|e| {
                    matches!(e.code, ER_ACCESS_DENIED | ER_ACCESS_DENIED_NO_PASSWORD)
                }) {
                    // The proxy accepted credentials the server refuses: its account table is
                    // stale (the account was dropped or changed since it was read). Answer as
                    // the server answers a client it refuses, and read the table again.
                    let service = self.service.clone();
                    tokio::spawn(async move { service.reload_accounts().await });
                    let yes = if self.credentials.secret == BackendSecret::Empty {
                        "NO"
                    } else {
                        "YES"
                    };
                    let (user, ip) = (&self.credentials.user, self.peer.ip().to_canonical());
                    let msg =
                        format!("Access denied for user '{user}'@'{ip}' (using password: {yes})");
                    return Err(self.refuse(seq, ER_ACCESS_DENIED, "28000", msg).await);
                }
                self.client.queue(seq, &payload);
                let _ = self.client.flush().await;
                let why = refusal
                    .map(|e| e.to_error().to_string())
                    .unwrap_or_default();
                Err(SessionError::refused(&format!(
                    "server '{}' refused the login: {why}",
                    server.name
                )))
            }
            Err(LoginError::Protocol(e)) => {
                let msg = format!(
                    "Can't connect to server '{}' ({}): {e}",
                    server.name, server.address
                );
                warn!(server = %server.name, error = %e, "cannot open a backend connection");
                Err(self.refuse(seq, 2003, "HY000", msg).await)
            }
        }
    }

    async fn refuse(&mut self, seq: u8, code: u16, state: &str, msg: String) -> SessionError {
        write_err(self.client.write_buf(), seq, code, state, &msg);
        let _ = self.client.flush().await;
        SessionError::refused(&msg)
    }

    /// The command loop.
    async fn serve(&mut self) -> Result<(), SessionError> {
        let mut changes = self.service.watch_changes();
        let mut check_maintenance = true;
        loop {
            if check_maintenance {
                check_maintenance = self.leave_maintenance().await?;
            }
            let Some(backend) = self.backend.as_mut() else {
                return Ok(());
            };
            // While idle, watch the backend too: a server that closes an idle connection
            // (wait_timeout, KILL) says why in a last packet, which goes to the client as is.
            let packet = tokio::select! {
                biased;
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
                    check_maintenance = true;
                    continue;
                }
                n = backend.io.fill() => {
                    let n = n.unwrap_or(0);
                    let bytes = backend.io.read_buf().split();
                    let _ = self.client.write_framed(&bytes).await;
                    if n == 0 {
                        let name = backend.server.name.to_string();
                        return Err(SessionError::BackendLost(name, "the server closed the connection".into()));
                    }
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
            let Ok(cmd) = Command::parse(&packet.payload) else {
                write_err(
                    self.client.write_buf(),
                    1,
                    ER_UNKNOWN_COM,
                    "08S01",
                    "Unknown command",
                );
                self.client.flush().await?;
                continue;
            };
            match cmd {
                Command::Quit => return Ok(()),
                Command::ChangeUser(body) => self.change_user(body).await?,
                Command::ProcessKill(id) => {
                    self.kill(kill::Kill {
                        query_only: false,
                        id: id.into(),
                    })
                    .await?
                }
                Command::Query(sql) => match kill::parse(sql) {
                    kill::Parsed::Other => self.forward(&packet, cmd).await?,
                    kill::Parsed::Kill(k) => self.kill(k).await?,
                    kill::Parsed::Unsupported => {
                        let msg = "Switchyard translates KILL only with a literal connection id: \
                                   KILL [CONNECTION|QUERY] <id>";
                        write_err(
                            self.client.write_buf(),
                            1,
                            ER_NOT_SUPPORTED_YET,
                            "42000",
                            msg,
                        );
                        self.client.flush().await?;
                    }
                },
                _ => self.forward(&packet, cmd).await?,
            }
        }
    }

    /// Ends the session when its server was put in maintenance and no transaction is open: a
    /// single-backend session cannot move, so it is closed as a server closes a killed
    /// connection, with a last error packet saying why. Returns true while the session must
    /// check again after its next command (a transaction is open).
    async fn leave_maintenance(&mut self) -> Result<bool, SessionError> {
        let Some(name) = self.backend.as_ref().map(|b| b.server.name.clone()) else {
            return Ok(false);
        };
        let maintenance = self
            .service
            .servers
            .load()
            .get(name.as_str())
            .is_some_and(|s| s.maintenance);
        if !maintenance {
            return Ok(false);
        }
        if self.status() & SERVER_STATUS_IN_TRANS != 0 {
            return Ok(true);
        }
        let msg = format!("Connection was killed: server '{name}' is in maintenance");
        write_err(
            self.client.write_buf(),
            0,
            ER_CONNECTION_KILLED,
            "70100",
            &msg,
        );
        self.client.flush().await?;
        info!(server = %name, "closed the session: its server is in maintenance");
        if let Some(backend) = self.backend.take() {
            backend.quit().await;
        }
        Ok(false)
    }

    /// Routes one command and relays its reply.
    async fn forward(&mut self, packet: &Packet, cmd: Command<'_>) -> Result<(), SessionError> {
        let plan = self.router.plan(&cmd, &self.service.servers.load());
        let backend = self.planned_backend(plan.target)?;
        backend.server.stats.statement_routed();
        backend.io.queue(0, &packet.payload);
        backend.io.flush().await.map_err(|e| lost(backend, e))?;
        if self.tracker.start(&cmd) {
            self.relay().await?;
        }
        Ok(())
    }

    /// The session's backend, if it is the planned target. A session has one backend
    /// connection; routers that move a session between servers come with their own session
    /// handling.
    fn planned_backend(&mut self, target: RouteTarget) -> Result<&mut Backend, SessionError> {
        match (target, self.backend.as_mut()) {
            (RouteTarget::Server(s), Some(b)) if s.name == b.server.name => Ok(b),
            (RouteTarget::Server(s), _) => Err(SessionError::BackendLost(
                s.name.to_string(),
                "not connected".into(),
            )),
            (RouteTarget::Unavailable(why), _) => {
                Err(SessionError::BackendLost(String::new(), why))
            }
        }
    }

    /// Streams the reply of the current command from the backend to the client, frame by
    /// frame as they arrive, following it with the tracker to find its end.
    async fn relay(&mut self) -> Result<(), SessionError> {
        let backend = self.backend.as_mut().expect("relay needs a backend");
        let mut last_seq = 0u8;
        loop {
            let buf = backend.io.read_buf();
            let mut consumed = 0;
            let mut progress = Progress::More;
            while let Some((len, seq)) = frame_header(&buf[consumed..]) {
                let end = consumed + HEADER_LEN + len;
                if buf.len() < end {
                    // Make room for the whole frame at once rather than growing step by step.
                    buf.reserve(end - buf.len());
                    break;
                }
                last_seq = seq;
                progress = match self.tracker.on_frame(&buf[consumed + HEADER_LEN..end]) {
                    Ok(p) => p,
                    Err(e) => {
                        let server = backend.server.name.to_string();
                        warn!(%server, error = %e, "the backend sent a reply the proxy cannot follow");
                        let bytes = buf.split_to(consumed);
                        self.client.write_framed(&bytes).await?;
                        write_err(
                            self.client.write_buf(),
                            last_seq,
                            CR_SERVER_LOST,
                            "HY000",
                            "Lost connection to backend server during query: unreadable reply",
                        );
                        self.client.flush().await?;
                        return Err(SessionError::BackendLost(server, e.to_string()));
                    }
                };
                consumed = end;
                if progress != Progress::More {
                    break;
                }
            }
            if consumed > 0 {
                let bytes = buf.split_to(consumed);
                self.client.write_framed(&bytes).await?;
            }
            match progress {
                Progress::Done => return Ok(()),
                Progress::LocalInfile => {
                    last_seq = Self::send_local_file(&mut self.client, backend).await?;
                    self.tracker.local_infile_sent();
                }
                Progress::More => {
                    if backend.io.fill().await.unwrap_or(0) == 0 {
                        let server = backend.server.name.to_string();
                        let msg =
                            format!("Lost connection to backend server '{server}' during query");
                        write_err(
                            self.client.write_buf(),
                            last_seq.wrapping_add(1),
                            CR_SERVER_LOST,
                            "HY000",
                            &msg,
                        );
                        self.client.flush().await?;
                        return Err(SessionError::BackendLost(
                            server,
                            "closed during a reply".into(),
                        ));
                    }
                }
            }
        }
    }

    /// Passes the client's local file to the backend, packet by packet, up to and including the
    /// empty packet that ends it. Returns the last sequence id.
    async fn send_local_file(
        client: &mut PacketIo<TcpStream>,
        backend: &mut Backend,
    ) -> Result<u8, SessionError> {
        loop {
            let p = client
                .read_packet()
                .await?
                .ok_or(SessionError::ClientGone)?;
            backend.io.queue(p.seq, &p.payload);
            if p.payload.is_empty() || backend.io.write_buf().len() > 64 * 1024 {
                backend.io.flush().await.map_err(|e| lost(backend, e))?;
            }
            if p.payload.is_empty() {
                return Ok(p.last_seq);
            }
        }
    }

    /// `KILL` of a connection id the client got from the proxy: run on the server as a KILL of
    /// the backend's thread id, with this client's credentials (so that the server checks the
    /// right privileges), and answered in the client's terms. The ids clients know are the
    /// proxy's, so an id that is not a live session is unknown, as on a server.
    async fn kill(&mut self, k: kill::Kill) -> Result<(), SessionError> {
        let target = u32::try_from(k.id)
            .ok()
            .and_then(|id| self.registry.get(id));
        let Some((server, thread_id)) = target.and_then(|t| t.backend) else {
            let msg = format!("Unknown thread id: {}", k.id);
            write_err(self.client.write_buf(), 1, ER_NO_SUCH_THREAD, "HY000", &msg);
            self.client.flush().await?;
            return Ok(());
        };
        let sql = k.backend_sql(thread_id);
        let result = match self.backend.as_mut() {
            // On our own server our own connection does it; killing oneself ends the session
            // as on a server (the backend answers 1927 and closes).
            Some(own) if own.server.name == server.name => {
                conn::query(&mut own.io, own.info.capabilities, &sql)
                    .await
                    .map(|_| ())
            }
            _ => match Backend::open(
                &server,
                &self.credentials.login(),
                self.service.connect_timeout,
            )
            .await
            {
                Ok(mut side) => {
                    let r = conn::query(&mut side.io, side.info.capabilities, &sql).await;
                    side.quit().await;
                    r.map(|_| ())
                }
                Err(LoginError::Protocol(e)) => Err(e),
                Err(LoginError::Rejected(p)) => Err(ErrPacket::parse(&p)?.to_error()),
            },
        };
        let status = self.status();
        match result {
            Ok(()) => write_ok(self.client.write_buf(), 1, 0, 0, status, 0),
            Err(ProtocolError::Server {
                code,
                sqlstate,
                message,
            }) => {
                // The server names its own thread id; the client knows the proxy's.
                let message = match message.strip_suffix(&thread_id.to_string()) {
                    Some(prefix) => format!("{prefix}{}", k.id),
                    None => message,
                };
                write_err(self.client.write_buf(), 1, code, &sqlstate, &message)
            }
            Err(e) => write_err(
                self.client.write_buf(),
                1,
                2003,
                "HY000",
                &format!("KILL failed: {e}"),
            ),
        }
        self.client.flush().await?;
        Ok(())
    }

    /// COM_CHANGE_USER: the new account is checked like a login, then the session gets a
    /// fresh backend connection as that user, which resets the session state as the command
    /// does on a server. When the change is refused, the session goes on as the previous user
    /// with its state reset, as MariaDB does.
    async fn change_user(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let Ok(req) = ChangeUser::parse(body, self.credentials.capabilities) else {
            write_err(
                self.client.write_buf(),
                1,
                ER_UNKNOWN_COM,
                "08S01",
                "Malformed COM_CHANGE_USER",
            );
            self.client.flush().await?;
            return Ok(());
        };
        let user = String::from_utf8_lossy(req.user).into_owned();
        let mut seq = 1u8;
        let native = req
            .auth_plugin
            .is_none_or(|p| p == NATIVE_PLUGIN.as_bytes() || p.is_empty());
        let switched;
        let fresh_seed = auth::new_seed();
        let (response, seed): (&[u8], &[u8]) = if native {
            (req.auth_response, &self.credentials.seed)
        } else {
            let mut p = BytesMut::new();
            write_auth_switch(&mut p, NATIVE_PLUGIN.as_bytes(), &fresh_seed);
            self.client.queue(seq, &p);
            self.client.flush().await?;
            switched = self
                .client
                .read_packet()
                .await?
                .ok_or(SessionError::ClientGone)?;
            seq = switched.last_seq.wrapping_add(1);
            (&switched.payload[..], &fresh_seed)
        };
        let ip = self.peer.ip().to_canonical();
        let secret = match login::authenticate(&self.service, req.user, ip, response, seed).await {
            Ok(secret) => secret,
            Err(_) => {
                let yes = if response.is_empty() { "NO" } else { "YES" };
                let msg = format!("Access denied for user '{user}'@'{ip}' (using password: {yes})");
                info!(reason = %printable(&msg), "change of user refused");
                self.reset_backend().await?;
                write_err(
                    self.client.write_buf(),
                    seq,
                    ER_ACCESS_DENIED,
                    "28000",
                    &msg,
                );
                self.client.flush().await?;
                return Ok(());
            }
        };
        let old = &self.credentials;
        let credentials = Credentials {
            user,
            secret,
            db: req.db.map(|d| String::from_utf8_lossy(d).into_owned()),
            capabilities: old.capabilities,
            collation: req.collation.unwrap_or(old.collation),
            max_packet: old.max_packet,
            attributes: req
                .attributes
                .map(Bytes::copy_from_slice)
                .or_else(|| old.attributes.clone()),
            seed: old.seed,
            next_seq: seq,
        };
        let plan = self.router.connect(&self.service.servers.load());
        let opened = match plan.target {
            RouteTarget::Server(server) => {
                Backend::open(&server, &credentials.login(), self.service.connect_timeout).await
            }
            RouteTarget::Unavailable(why) => {
                Err(LoginError::Protocol(ProtocolError::Unsupported(why)))
            }
        };
        match opened {
            Ok(backend) => {
                if let Some(old) = self.backend.replace(backend) {
                    old.quit().await;
                }
                self.credentials = credentials;
                self.register_backend();
                let status = self
                    .backend
                    .as_ref()
                    .map_or(SERVER_STATUS_AUTOCOMMIT, |b| b.info.status);
                write_ok(self.client.write_buf(), seq, 0, 0, status, 0);
                info!(user = ?self.credentials.user, "client changed user");
            }
            Err(e) => {
                let error = printable(&e.to_string());
                info!(user = ?credentials.user, %error, "change of user refused by the server");
                self.reset_backend().await?;
                match e {
                    LoginError::Rejected(payload) => {
                        self.client.queue(seq, &payload);
                    }
                    LoginError::Protocol(e) => write_err(
                        self.client.write_buf(),
                        seq,
                        2003,
                        "HY000",
                        &format!("Can't change user: {e}"),
                    ),
                }
            }
        }
        self.client.flush().await?;
        Ok(())
    }

    /// Resets the session state on the backend (COM_RESET_CONNECTION), as a refused change of
    /// user does on a server.
    async fn reset_backend(&mut self) -> Result<(), SessionError> {
        let Some(backend) = self.backend.as_mut() else {
            return Ok(());
        };
        backend.io.queue(0, &[COM_RESET_CONNECTION]);
        backend.io.flush().await.map_err(|e| lost(backend, e))?;
        let reply = backend
            .io
            .expect_packet()
            .await
            .map_err(|e| lost(backend, e))?;
        if reply.payload.first() == Some(&0xFF) {
            warn!(reply = ?ErrPacket::parse(&reply.payload).ok(), "the backend refused to reset the session");
        }
        Ok(())
    }

    /// Records the session's backend for `KILL`.
    fn register_backend(&self) {
        let backend = self
            .backend
            .as_ref()
            .map(|b| (b.server.clone(), b.info.connection_id));
        self.registry.set(
            self.id,
            SessionEntry {
                user: self.credentials.user.clone(),
                backend,
            },
        );
    }

    fn status(&self) -> u16 {
        self.tracker.summary().status
    }
}

fn lost(backend: &Backend, e: ProtocolError) -> SessionError {
    SessionError::BackendLost(backend.server.name.to_string(), e.to_string())
}
