//! The session's backends ([`Backends`]) and opening them: the first one at login, the others
//! when a plan first needs them, each brought to the session's state before use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_api::{HistoryLimit, RouteTarget, Server, ServerName};
use switchyard_protocol::auth::BackendSecret;
use switchyard_protocol::caps::CLIENT_SESSION_TRACK;
use switchyard_protocol::conn::LoginError;
use switchyard_protocol::packets::{errors::*, ErrPacket};
use switchyard_protocol::reply::ReplyTracker;
use switchyard_protocol::text_query;
use switchyard_protocol::{Command, ProtocolError};
use tracing::{debug, warn};

use super::history::History;
use super::prepared::Prepared;
use super::route::Failure;
use super::{relay, Session, SessionError};
use crate::backend::Backend;

/// A connection idle longer than this is checked for a goodbye from its server before use.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// Asks the server to report `last_gtid` in OK packets, keeping what it tracks already.
const TRACK_GTID: &str = "SET session_track_system_variables = \
     CONCAT_WS(',', NULLIF(@@session.session_track_system_variables, ''), 'last_gtid')";

/// The session's backend connections and what they must all have: the session-command history
/// to replay on one opened later, the prepared-statement id map, the GTID of the last write.
pub(super) struct Backends {
    /// The open backends; the first is the one opened at login.
    pub(super) open: Vec<Backend>,
    /// Session commands to replay on backends opened later; `None` for routers that keep one
    /// backend per session.
    pub(super) history: Option<History>,
    pub(super) prepared: Prepared,
    /// The last `last_gtid` a backend reported; `Some` when the router wants GTIDs, and then
    /// backends track `last_gtid`.
    pub(super) gtid: Option<String>,
    /// `gtid` was updated by the reply being relayed.
    pub(super) gtid_fresh: bool,
}

impl Backends {
    /// None open yet; a history within `history` if the router keeps one, the GTID tracked if
    /// it wants it.
    pub(super) fn new(history: Option<HistoryLimit>, track_gtid: bool) -> Self {
        Backends {
            open: Vec::new(),
            history: history.map(History::new),
            prepared: Prepared::default(),
            gtid: track_gtid.then(String::new),
            gtid_fresh: false,
        }
    }

    /// Where the open backend on `server` is.
    pub(super) fn position(&self, server: &ServerName) -> Option<usize> {
        self.open.iter().position(|b| b.server.name == *server)
    }

    /// The router wants the GTID of each write.
    pub(super) fn track_gtid(&self) -> bool {
        self.gtid.is_some()
    }
}

impl Session {
    /// Opens the backend the router wants at login; on failure the client gets the error (the
    /// server's own, when the server refused) with sequence id `seq`.
    pub(super) async fn connect_first(&mut self, seq: u8) -> Result<(), SessionError> {
        let plan = self.router.connect(&self.service.servers.load());
        let server = match plan.target {
            RouteTarget::Server(server) => server,
            RouteTarget::Error(e) | RouteTarget::Close(e) => {
                let msg = format!(
                    "Service '{}' cannot take the connection: {}",
                    self.service.name, e.message
                );
                return Err(self.refuse(seq, e.code, e.sqlstate, msg).await);
            }
            RouteTarget::All { .. } => {
                let msg = format!(
                    "Service '{}' has no server to connect to",
                    self.service.name
                );
                return Err(self.refuse(seq, ER_UNKNOWN_ERROR, "HY000", msg).await);
            }
        };
        match self.open(&server).await {
            Ok(backend) => {
                self.backends.open.push(backend);
                self.register_backends();
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
                    let yes = if self.client.credentials.secret == BackendSecret::Empty {
                        "NO"
                    } else {
                        "YES"
                    };
                    let (user, ip) = (
                        &self.client.credentials.user,
                        self.client.peer.ip().to_canonical(),
                    );
                    let msg =
                        format!("Access denied for user '{user}'@'{ip}' (using password: {yes})");
                    return Err(self.refuse(seq, ER_ACCESS_DENIED, "28000", msg).await);
                }
                self.client.io.queue(seq, &payload);
                let _ = self.client.io.flush().await;
                let why = refusal
                    .map(|e| e.to_error().to_string())
                    .unwrap_or_default();
                let (code, sqlstate) = refusal
                    .map_or((ER_ACCESS_DENIED, "28000".to_string()), |e| {
                        (e.code, String::from_utf8_lossy(e.sqlstate).into_owned())
                    });
                let msg = format!("server '{}' refused the login: {why}", server.name);
                Err(self.refusal(SessionError::refused(code, &sqlstate, &msg)))
            }
            Err(LoginError::Protocol(e)) => {
                let msg = format!(
                    "Can't connect to server '{}' ({}): {e}",
                    server.name, server.address
                );
                warn!(server = %server.name, error = %e, "cannot open a backend connection");
                Err(self.refuse(seq, ER_UNKNOWN_ERROR, "HY000", msg).await)
            }
        }
    }

    /// Logs in to `server` as the client, asking for GTID tracking if the router wants it.
    pub(super) fn open<'a>(
        &'a self,
        server: &'a Arc<Server>,
    ) -> impl Future<Output = Result<Backend, LoginError>> + Send + 'a {
        open(
            &self.client.credentials,
            &self.service,
            self.backends.track_gtid(),
            server,
        )
    }

    /// The index of the session's backend on `server`, opening it (and replaying the session
    /// history on it) if needed; a failure to open it is told to the router.
    pub(super) async fn open_for(&mut self, server: &Arc<Server>) -> Result<usize, Failure> {
        if let Some(i) = self.backends.position(&server.name) {
            if self.is_usable(i) {
                return Ok(i);
            }
            self.lose_backend(i, "the server closed the idle connection");
            // The router was told; the caller decides whether to go on here.
        }
        // Boxed: see `accept::run`.
        match Box::pin(self.open_new(server)).await {
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

    /// Opens a backend on `server` for the session, brought to its state; says why it could not
    /// in words.
    async fn open_new(&mut self, server: &Arc<Server>) -> Result<usize, String> {
        let history = self.backends.history.as_ref();
        if history.is_some_and(|h| !h.is_complete()) {
            let limit = self.service.router.history_limit();
            let (commands, bytes) = limit.map_or((0, 0), |l| (l.commands, l.bytes));
            return Err(format!(
                "the session-command history is over its limit of {commands} commands or \
                 {bytes} bytes: no new backend can be brought to the session's state"
            ));
        }
        let mut backend = self.open(server).await.map_err(|e| e.to_string())?;
        if let Some(history) = self.backends.history.as_ref().filter(|h| h.len() > 0) {
            replay(&mut backend, history, self.client.credentials.capabilities)
                .await
                .map_err(|e| format!("replaying the session history failed: {e}"))?;
        }
        self.backends.open.push(backend);
        self.register_backends();
        Ok(self.backends.open.len() - 1)
    }

    /// False if the backend at `i` has said something unasked (its goodbye) since its last
    /// reply: checked without waiting, and only on connections idle for a while.
    fn is_usable(&mut self, i: usize) -> bool {
        let backend = &mut self.backends.open[i];
        if !backend.io.read_buf().is_empty() {
            return false;
        }
        if backend.last_used.elapsed() < STALE_AFTER {
            return true;
        }
        let mut fill = std::pin::pin!(backend.io.fill());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        fill.as_mut().poll(&mut cx).is_pending()
    }
}

use std::future::Future;

/// Logs in to `server` as the client; a free function so that the session is not borrowed
/// across the wait.
async fn open(
    credentials: &super::Credentials,
    service: &crate::service::Service,
    wants_gtid: bool,
    server: &Arc<Server>,
) -> Result<Backend, LoginError> {
    let mut login = credentials.login();
    if wants_gtid {
        login.capabilities |= CLIENT_SESSION_TRACK;
    }
    let mut backend = Backend::open(server, &login, service.connect_timeout).await?;
    if backend.info.extended_capabilities != login.extended_capabilities {
        // The client parses every column definition with the extended metadata field: a
        // server that sends none (another version than the one the proxy learned) cannot
        // answer it.
        backend.io.shutdown().await;
        return Err(ProtocolError::Unsupported(format!(
            "server {} does not offer MariaDB's extended type metadata, which the client \
             negotiated with the proxy (are the servers of the service different versions?)",
            server.name
        ))
        .into());
    }
    if wants_gtid {
        track_gtid(&mut backend).await;
    }
    debug!(server = %server.name, thread_id = backend.info.connection_id, "backend connected");
    Ok(backend)
}

/// Asks the backend to report `last_gtid` (again after a reset, which forgets it).
pub(super) async fn track_gtid(backend: &mut Backend) {
    let caps = backend.info.capabilities;
    if let Err(e) = text_query::query(&mut backend.io, caps, TRACK_GTID).await {
        // Causal reads then fall back to the primary: no GTID is ever known.
        warn!(server = %backend.server.name, error = %e, "the server cannot track last_gtid");
    }
}

/// Runs the session history on a new backend, all commands at once, and checks that each ends
/// as it did for the client.
async fn replay(
    backend: &mut Backend,
    history: &super::history::History,
    capabilities: u32,
) -> Result<(), ProtocolError> {
    for entry in history.entries() {
        backend.io.queue(0, &entry.payload);
    }
    backend.io.flush().await?;
    let mut tracker = ReplyTracker::new(capabilities);
    let last = history.len().saturating_sub(1);
    for (i, entry) in history.entries().iter().enumerate() {
        let cmd = Command::parse(&entry.payload)?;
        if !tracker.start(&cmd) {
            continue;
        }
        relay::discard(backend, &mut tracker, i < last).await?;
        let ok = tracker.summary().error.is_none();
        if ok != entry.ok {
            return Err(ProtocolError::Unsupported(format!(
                "'{}' {} on this server, unlike when the client ran it",
                super::printable(&String::from_utf8_lossy(&entry.payload[1..])),
                if ok { "succeeded" } else { "failed" }
            )));
        }
    }
    backend.status = tracker.summary().status;
    backend.last_used = Instant::now();
    Ok(())
}
