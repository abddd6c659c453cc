//! A logged-in client becomes a session: its router's half, its backends (the first one opened
//! and logged in as the client), and its filters; and how a login is refused from here on.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use switchyard_api::{SessionId, SessionInfo, SqlDialect};
use switchyard_protocol::conn::PacketIo;
use switchyard_protocol::packets::{errors::*, write_err, write_ok};
use switchyard_protocol::reply::ReplyTracker;
use tokio::net::TcpStream;
use tracing::info;

use super::accept::TOO_MANY;
use super::backends::Backends;
use super::login::{self, Credentials};
use super::{filters, printable, Client, ListenerContext, ProxySide, Session, SessionError};
use crate::service::{Admission, PendingLogin, Service};

impl Session {
    /// Logs the client in and opens its first backend; the session is ready to serve.
    pub(super) async fn start(
        mut client: PacketIo<TcpStream>,
        id: SessionId,
        peer: SocketAddr,
        ctx: &ListenerContext,
        metrics: &Arc<crate::metrics::ServiceMetrics>,
        pending: PendingLogin,
    ) -> Result<(Session, Admission), SessionError> {
        let service = ctx.service.clone();
        let credentials = login::login(&mut client, id.0, peer, &service).await;
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
            client: Client {
                io: client,
                peer,
                credentials,
                status: 0,
                reply_seq: 1,
                dialect: SqlDialect::default(),
            },
            backends: Backends::new(service.router.history_limit(), service.router.wants_gtid()),
            router,
            chain: None,
            outcome: None,
            tracker,
            thread_ids: None,
            scratch: BytesMut::new(),
            service,
            proxy: ProxySide {
                registry: ctx.registry.clone(),
                live: Arc::default(),
                listener: ctx.listener.clone(),
                started: std::time::SystemTime::now(),
                metrics: metrics.session(),
                lifecycle: ctx.lifecycle.clone(),
                stage: *ctx.lifecycle.borrow(),
                host_blocks: ctx.host_blocks.clone(),
            },
        };
        session
            .proxy
            .live
            .set_db(session.client.credentials.db.as_deref());
        let seq = session.client.credentials.next_seq;
        session.connect_first(seq).await?;
        session.client.status = session.backends.open.first().map_or(2, |b| b.info.status);
        write_ok(
            session.client.io.write_buf(),
            seq,
            0,
            0,
            session.client.status,
            0,
        );
        session.client.io.flush().await?;
        info!(
            user = %printable(&session.client.credentials.user),
            db = %printable(session.client.credentials.db.as_deref().unwrap_or("")),
            "client logged in"
        );
        session.start_filters(ctx);
        Ok((session, admission))
    }

    pub(super) async fn refuse(
        &mut self,
        seq: u8,
        code: u16,
        state: &str,
        msg: String,
    ) -> SessionError {
        write_err(self.client.io.write_buf(), seq, code, state, &msg);
        let _ = self.client.io.flush().await;
        self.refusal(SessionError::refused(code, state, &msg))
    }

    /// `e`, with the user and database of this login if it is a refusal.
    pub(super) fn refusal(&self, mut e: SessionError) -> SessionError {
        if let SessionError::Refused(r) = &mut e {
            r.user = Some(self.client.credentials.user.clone());
            r.db = self.client.credentials.db.clone();
        }
        e
    }

    /// Starts the service's filters for this session, if it has any.
    fn start_filters(&mut self, ctx: &ListenerContext) {
        if self.service.filters.is_empty() {
            return;
        }
        let client = switchyard_api::ClientInfo {
            session_id: self.id,
            user: self.client.credentials.user.clone(),
            client_addr: self.client.peer,
            db: self.client.credentials.db.clone(),
            program: self
                .client
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

/// Who the session is, for a router's half.
pub(super) fn session_info(
    id: SessionId,
    peer: SocketAddr,
    credentials: &Credentials,
) -> SessionInfo {
    SessionInfo {
        id,
        user: credentials.user.clone(),
        client_addr: peer,
        db: credentials.db.clone(),
    }
}
