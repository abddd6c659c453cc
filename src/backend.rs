//! A session's connection to one backend server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_api::{Server, ServerStats};
use switchyard_protocol::command::COM_QUIT;
use switchyard_protocol::conn::{self, BackendInfo, Login, LoginError, PacketIo};
use switchyard_protocol::ProtocolError;
use tokio::net::TcpStream;

/// An open, logged-in backend connection. Counts itself in its server's connection count from
/// the moment it starts connecting (so that routers balancing a burst of new sessions see it)
/// until it is dropped.
#[derive(Debug)]
pub struct Backend {
    pub server: Arc<Server>,
    pub io: PacketIo<TcpStream>,
    pub info: BackendInfo,
    /// The status flags of the last reply on this connection (whether a transaction is open).
    pub status: u16,
    /// When the last reply ended; a connection idle for long is checked before use.
    pub last_used: Instant,
    _count: ConnectionCount,
}

#[derive(Debug)]
struct ConnectionCount(Arc<ServerStats>);

impl ConnectionCount {
    fn new(stats: &Arc<ServerStats>) -> Self {
        stats.connection_opened();
        ConnectionCount(stats.clone())
    }
}

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

impl Backend {
    /// Connects to `server` and logs in, all within `timeout`.
    pub async fn open(
        server: &Arc<Server>,
        login: &Login<'_>,
        timeout: Duration,
    ) -> Result<Backend, LoginError> {
        let count = ConnectionCount::new(&server.stats);
        let attempt = async {
            let stream = TcpStream::connect(&server.address)
                .await
                .map_err(ProtocolError::from)?;
            stream.set_nodelay(true).map_err(ProtocolError::from)?;
            let mut io = PacketIo::new(stream, conn::BACKEND_READ_CHUNK);
            let info = conn::login(&mut io, login).await?;
            Ok::<_, LoginError>((io, info))
        };
        let opened =
            tokio::time::timeout(timeout, attempt)
                .await
                .unwrap_or(Err(LoginError::Protocol(ProtocolError::Timeout(
                    "connecting to the server",
                ))));
        crate::metrics::backend_connected(server.name.as_str(), opened.is_ok());
        let (io, info) = opened?;
        Ok(Backend {
            server: server.clone(),
            status: info.status,
            io,
            info,
            last_used: Instant::now(),
            _count: count,
        })
    }

    /// Says goodbye to the server and closes the connection.
    pub async fn quit(mut self) {
        self.io.queue(0, &[COM_QUIT]);
        self.io.shutdown().await;
    }
}
