//! Backends that go away: closed by their server while the session is idle, lost mid-command,
//! or left because their server went into maintenance or down. The router is told each time,
//! and says whether the session can go on.

use std::sync::Arc;

use switchyard_api::{RouteError, ServerName};
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::registry::SessionEntry;
use super::{Session, SessionError};
use crate::backend::Backend;

impl Session {
    /// The first backend closed while the session was idle. A server that ends a connection
    /// of its own accord (`KILL`, `wait_timeout`, `idle_transaction_timeout`, `COMMIT RELEASE`)
    /// ends the client's: its last packet, if it sent one, goes to the client, and then the
    /// connection closes, as it would straight to the server. A session that can move on
    /// without the backend (a replica, or a primary whose server is gone, to be replaced)
    /// goes on, and is given nothing for a command it has not sent.
    pub(super) async fn first_backend_closed(&mut self) -> Result<(), SessionError> {
        let last_words = self.backends.open[0].io.read_buf().split();
        let server = self.backends.open[0].server.clone();
        let name = server.name.clone();
        let why = format!("server '{name}' closed the connection");
        let is_primary = self.service.servers.load().primary().map(|p| &p.name) == Some(&name);
        self.backends.open.remove(0);
        let end = self.forget_backend(&name, &why).is_some()
            || is_primary && server_answers(&server.address).await;
        if !end {
            info!(server = %name, "a backend closed an idle connection; the session goes on");
            return Ok(());
        }
        if !last_words.is_empty() {
            let _ = self.client.io.write_framed(&last_words).await;
        }
        Err(SessionError::BackendLost(why))
    }

    /// The first backend sent something while the session was idle: true once the server has
    /// closed the connection after it (its last words), within a second.
    pub(super) async fn goodbye_follows(&mut self) -> bool {
        let backend = &mut self.backends.open[0];
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
    pub(super) fn lost_place(&mut self) -> SessionError {
        let name = self.backends.open[0].server.name.clone();
        let bytes = self.backends.open[0].io.read_buf().len();
        warn!(server = %name, bytes, "the backend sent bytes outside of any reply; closing the session");
        SessionError::BackendLost(format!(
            "server '{name}' sent {bytes} bytes outside of any reply"
        ))
    }

    /// Closes backends on servers that were put in maintenance (or, for sessions that can move,
    /// went down), unless a transaction is open on them. Returns true while the session must
    /// check again after its next command.
    pub(super) async fn check_servers(&mut self) -> Result<bool, SessionError> {
        let servers = self.service.servers.load_full();
        let can_move = self.backends.history.is_some();
        let mut again = false;
        let mut i = 0;
        while i < self.backends.open.len() {
            let backend = &self.backends.open[i];
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
    pub(super) async fn close_backend(&mut self, index: usize, why: &str) -> Option<RouteError> {
        let backend = self.backends.open.remove(index);
        let name = backend.server.name.clone();
        backend.quit().await;
        self.forget_backend(&name, why)
    }

    /// Drops a backend that failed, telling the router; like [`Session::close_backend`] for a
    /// connection that cannot say goodbye.
    pub(super) fn lose_backend(&mut self, index: usize, why: &str) -> Option<RouteError> {
        let name = self.backends.open.remove(index).server.name.clone();
        warn!(server = %name, "lost a backend connection: {why}");
        self.forget_backend(&name, why)
    }

    /// The backend on `name` is gone: its statements with it; the router is told.
    pub(super) fn forget_backend(&mut self, name: &ServerName, why: &str) -> Option<RouteError> {
        self.backends.prepared.forget_server(name);
        self.register_backends();
        self.router.on_backend_closed(name, why)
    }

    /// Records the session's backends for `KILL`.
    pub(super) fn register_backends(&self) {
        let backends = self
            .backends
            .open
            .iter()
            .map(|b| (b.server.clone(), b.info.connection_id))
            .collect();
        self.proxy.registry.set(
            self.id,
            SessionEntry {
                user: self.client.credentials.user.clone(),
                client: self.client.peer,
                service: Arc::from(self.service.name.as_str()),
                listener: self.proxy.listener.clone(),
                started: self.proxy.started,
                backends,
                live: self.proxy.live.clone(),
            },
        );
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
pub(super) async fn idle_watch(backend: Option<&mut Backend>) -> usize {
    match backend {
        Some(b) => b.io.fill().await.unwrap_or(0),
        None => std::future::pending().await,
    }
}
