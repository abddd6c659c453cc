//! A client connection from accept to its end: turned away before the handshake (blocked
//! address, full service), logged in, served, and how it ended.

use std::net::SocketAddr;
use std::sync::Arc;

use switchyard_api::SessionId;
use switchyard_protocol::conn::PacketIo;
use switchyard_protocol::packets::{errors::*, write_err};
use switchyard_protocol::ProtocolError;
use tokio::net::TcpStream;
use tracing::{debug, info, warn, Instrument};

use super::registry::Registration;
use super::{ListenerContext, Refusal, Session, SessionError};
use crate::host_blocks::HostBlocks;
use crate::service::{PendingLimit, Service};

/// The server's words for ER_CON_COUNT.
pub(super) const TOO_MANY: &str = "Too many connections";

/// Runs a client session to its end. Never panics on peer input; logs how it ended.
pub async fn run(stream: TcpStream, peer: SocketAddr, ctx: Arc<ListenerContext>) {
    let id = ctx.registry.next_id();
    let span = tracing::info_span!("session", id = id.0, client = %peer, user = tracing::field::Empty, service = %ctx.service.name);
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
        // Boxed, as the other deep futures the session rarely runs (opening a backend,
        // COM_CHANGE_USER, KILL): the session's future is as large as its largest state, and
        // an idle session would hold that space all its life.
        match Box::pin(Session::start(client, id, peer, &ctx, &metrics, pending)).await {
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
                for backend in session.backends.open.drain(..) {
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
pub(super) fn report_refusal(
    service: &Service,
    listener: &str,
    host_blocks: &HostBlocks,
    metrics: &crate::metrics::ServiceMetrics,
    session_id: SessionId,
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
        session_id,
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
