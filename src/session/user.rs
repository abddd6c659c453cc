//! Commands the session answers with its own logic rather than a router's plan: KILL (as a
//! query or a prepared statement), COM_CHANGE_USER and COM_RESET_CONNECTION.

use bytes::{Bytes, BytesMut};
use switchyard_api::{RouteTarget, SessionId};
use switchyard_protocol::auth::{self, NATIVE_PLUGIN};
use switchyard_protocol::caps::SERVER_STATUS_AUTOCOMMIT;
use switchyard_protocol::codec::Packet;
use switchyard_protocol::command::{Command, COM_RESET_CONNECTION};
use switchyard_protocol::conn::LoginError;
use switchyard_protocol::handshake::{write_auth_switch, ChangeUser};
use switchyard_protocol::packets::{errors::*, write_err, write_ok, ErrPacket};
use switchyard_protocol::text_query;
use switchyard_protocol::ProtocolError;
use switchyard_sql::kill::Kill;
use tracing::{info, warn};

use super::login::{self, Credentials};
use super::relay::{self, RelayFail};
use super::{printable, session_info, Session, SessionError};
use crate::accounts::AuthOutcome;
use crate::backend::Backend;

impl Session {
    /// `KILL` of a connection id the client got from the proxy: run on the servers as a KILL of
    /// the target session's backend thread ids, with this client's credentials (so that the
    /// server checks the right privileges), and answered in the client's terms. The ids clients
    /// know are the proxy's, so an id that is not a live session is unknown, as on a server.
    pub(super) async fn kill(&mut self, k: Kill) -> Result<(), SessionError> {
        let target = u32::try_from(k.id)
            .ok()
            .and_then(|id| self.proxy.registry.get(SessionId(id)))
            .map(|t| t.backends)
            .unwrap_or_default();
        if target.is_empty() {
            let msg = format!("Unknown thread id: {}", k.id);
            return self.answer(ER_NO_SUCH_THREAD, "HY000", &msg).await;
        }
        // The first backend last: killing one's own session ends it there, as on a server.
        let mut result = Ok(());
        let mut failed_thread = 0;
        for (server, thread_id) in target.iter().rev() {
            let sql = k.backend_sql(*thread_id);
            let own = self
                .backends
                .open
                .iter_mut()
                .find(|b| b.server.name == server.name);
            let r = match own {
                Some(own) => text_query::query(&mut own.io, own.info.capabilities, &sql)
                    .await
                    .map(|_| ()),
                None => match Backend::open(
                    server,
                    &self.client.credentials.login(),
                    self.service.connect_timeout,
                )
                .await
                {
                    Ok(mut side) => {
                        let r = text_query::query(&mut side.io, side.info.capabilities, &sql).await;
                        side.quit().await;
                        r.map(|_| ())
                    }
                    Err(LoginError::Protocol(e)) => Err(e),
                    Err(LoginError::Rejected(p)) => Err(ErrPacket::parse(&p)?.to_error()),
                },
            };
            if r.is_err() && result.is_ok() {
                result = r;
                failed_thread = *thread_id;
            }
        }
        match result {
            Ok(()) => write_ok(self.client.io.write_buf(), 1, 0, 0, self.client.status, 0),
            Err(ProtocolError::Server {
                code,
                sqlstate,
                message,
            }) => {
                // The server names its own thread id; the client knows the proxy's.
                let message = match message.strip_suffix(&failed_thread.to_string()) {
                    Some(prefix) => format!("{prefix}{}", k.id),
                    None => message,
                };
                write_err(self.client.io.write_buf(), 1, code, &sqlstate, &message)
            }
            Err(e) => write_err(
                self.client.io.write_buf(),
                1,
                2003,
                "HY000",
                &format!("KILL failed: {e}"),
            ),
        }
        self.client.io.flush().await?;
        Ok(())
    }

    /// COM_STMT_PREPARE of a KILL: answered by the proxy, which runs the KILL at each execute.
    /// Sent on, the id would name some backend's thread rather than the session it names.
    pub(super) async fn prepare_kill(
        &mut self,
        packet: &Packet,
        k: Kill,
    ) -> Result<(), SessionError> {
        let id = self
            .backends
            .prepared
            .add(Bytes::copy_from_slice(&packet.payload), false);
        if let Some(stmt) = self.backends.prepared.get_mut(id) {
            stmt.kill = Some(k);
        }
        // PREPARE_OK with no columns and no parameters: nothing follows it.
        let mut ok = [0u8; 12];
        ok[1..5].copy_from_slice(&id.0.to_le_bytes());
        self.client.io.queue(self.client.reply_seq, &ok);
        self.client.io.flush().await?;
        Ok(())
    }

    /// COM_CHANGE_USER: the new account is checked like a login, then the session gets a
    /// fresh backend connection as that user, which resets the session state as the command
    /// does on a server. When the change is refused, the session goes on as the previous user
    /// with its state reset, as MariaDB does.
    pub(super) async fn change_user(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let Ok(req) = ChangeUser::parse(body, self.client.credentials.capabilities) else {
            return self
                .answer(ER_UNKNOWN_COM, "08S01", "Malformed COM_CHANGE_USER")
                .await;
        };
        let user = login::user_name(req.user);
        let mut seq = 1u8;
        let native = req
            .auth_plugin
            .is_none_or(|p| p == NATIVE_PLUGIN.as_bytes() || p.is_empty());
        let switched;
        let fresh_seed = auth::new_seed();
        let (response, seed): (&[u8], &[u8]) = if native {
            (req.auth_response, &self.client.credentials.seed)
        } else {
            let mut p = BytesMut::new();
            write_auth_switch(&mut p, NATIVE_PLUGIN.as_bytes(), &fresh_seed);
            self.client.io.queue(seq, &p);
            self.client.io.flush().await?;
            switched = self
                .client
                .io
                .read_packet()
                .await?
                .ok_or(SessionError::ClientGone)?;
            seq = switched.last_seq.wrapping_add(1);
            (&switched.payload[..], &fresh_seed)
        };
        let ip = self.client.peer.ip().to_canonical();
        if self.proxy.host_blocks.is_blocked(ip) {
            let msg = crate::host_blocks::blocked_message(ip);
            info!("change of user refused: the client's address is blocked");
            self.reset_backends().await?;
            write_err(
                self.client.io.write_buf(),
                seq,
                ER_HOST_IS_BLOCKED,
                "HY000",
                &msg,
            );
            self.change_refused(&user, req.db, ER_HOST_IS_BLOCKED, "HY000", &msg);
            self.client.io.flush().await?;
            return Ok(());
        }
        let caps = self.client.credentials.capabilities;
        let secret =
            match login::authenticate(&self.service, user.as_bytes(), ip, response, seed, caps)
                .await
            {
                Ok(secret) => secret,
                Err(outcome) => {
                    // A host no account allows is, to a change of user, a wrong account.
                    let outcome = match outcome {
                        AuthOutcome::HostNotAllowed => AuthOutcome::Denied,
                        other => other,
                    };
                    let (code, state, msg) =
                        login::refusal(&outcome, &user, ip, !response.is_empty());
                    info!(reason = %printable(&msg), "change of user refused");
                    self.reset_backends().await?;
                    write_err(self.client.io.write_buf(), seq, code, state, &msg);
                    self.change_refused(&user, req.db, code, state, &msg);
                    self.client.io.flush().await?;
                    return Ok(());
                }
            };
        let db = req.db;
        let old = &self.client.credentials;
        let credentials = Credentials {
            user,
            secret,
            db: db.map(|d| String::from_utf8_lossy(d).into_owned()),
            capabilities: old.capabilities,
            extended_capabilities: old.extended_capabilities,
            collation: req.collation.unwrap_or(old.collation),
            max_packet: old.max_packet,
            attributes: req
                .attributes
                .map(Bytes::copy_from_slice)
                .or_else(|| old.attributes.clone()),
            seed: old.seed,
            next_seq: seq,
        };
        let previous = std::mem::replace(&mut self.client.credentials, credentials);
        let mut router = self.service.router.new_session(&session_info(
            self.id,
            self.client.peer,
            &self.client.credentials,
        ));
        let opened = match router.connect(&self.service.servers.load()).target {
            RouteTarget::Server(server) => self.open(&server).await,
            RouteTarget::Error(e) | RouteTarget::Close(e) => {
                Err(LoginError::Protocol(ProtocolError::Unsupported(e.message)))
            }
            RouteTarget::All { .. } => Err(LoginError::Protocol(ProtocolError::Unsupported(
                "no server to connect to".into(),
            ))),
        };
        match opened {
            Ok(backend) => {
                for old in std::mem::replace(&mut self.backends.open, vec![backend]) {
                    old.quit().await;
                }
                self.router = router;
                if let Some(chain) = self.chain.as_mut() {
                    let c = &self.client.credentials;
                    chain.restart(&self.service.filters, &c.user, c.db.as_deref());
                }
                self.forget_state();
                self.register_backends();
                self.client.status = self.backends.open[0].info.status;
                write_ok(self.client.io.write_buf(), seq, 0, 0, self.client.status, 0);
                info!(user = %printable(&self.client.credentials.user), "client changed user");
            }
            Err(e) => {
                let error = printable(&e.to_string());
                info!(user = %printable(&self.client.credentials.user), %error, "change of user refused by the server");
                let credentials_user =
                    std::mem::replace(&mut self.client.credentials, previous).user;
                self.reset_backends().await?;
                let user = &credentials_user;
                match e {
                    LoginError::Rejected(payload) => {
                        self.client.io.queue(seq, &payload);
                        if let Ok(err) = ErrPacket::parse(&payload) {
                            let state = String::from_utf8_lossy(err.sqlstate);
                            let msg = String::from_utf8_lossy(err.message);
                            self.change_refused(user, db, err.code, &state, &msg);
                        }
                    }
                    LoginError::Protocol(e) => {
                        let msg = format!("Can't change user: {e}");
                        write_err(self.client.io.write_buf(), seq, 2003, "HY000", &msg);
                        self.change_refused(user, db, 2003, "HY000", &msg);
                    }
                }
            }
        }
        self.client.io.flush().await?;
        Ok(())
    }

    /// A COM_CHANGE_USER to `user` was refused with this error: it is a failed login, counted
    /// and told to the filters as one, and the command ends in that error for them.
    fn change_refused(&mut self, user: &str, db: Option<&[u8]>, code: u16, state: &str, msg: &str) {
        if let Some(o) = self.outcome.as_mut() {
            o.answered(code, state, msg);
        }
        let refusal = super::Refusal {
            code,
            sqlstate: state.to_string(),
            message: printable(msg),
            user: Some(user.to_string()),
            db: db.map(|d| String::from_utf8_lossy(d).into_owned()),
        };
        super::report_refusal(
            &self.service,
            &self.proxy.listener,
            &self.proxy.host_blocks,
            self.proxy.metrics.service(),
            self.id,
            self.client.peer,
            &refusal,
        );
    }

    /// COM_RESET_CONNECTION: every backend resets its session state; the client gets the reply
    /// of one of them.
    pub(super) async fn reset_connection(&mut self, packet: &Packet) -> Result<(), SessionError> {
        if self.backends.open.is_empty() {
            write_ok(
                self.client.io.write_buf(),
                1,
                0,
                0,
                SERVER_STATUS_AUTOCOMMIT,
                0,
            );
            self.client.io.flush().await?;
            self.forget_state();
            return Ok(());
        }
        let chosen = self.reply_backend();
        let cmd = Command::ResetConnection;
        let track_gtid = self.backends.track_gtid();
        for (i, b) in self.backends.open.iter_mut().enumerate() {
            if i == chosen {
                continue;
            }
            if let Err(e) = relay::run_quietly(b, &packet.payload, &cmd).await {
                warn!(server = %b.server.name, error = %e, "a backend failed to reset its session");
            } else if track_gtid {
                super::backends::track_gtid(b).await;
            }
        }
        let b = &mut self.backends.open[chosen];
        b.io.queue(0, &packet.payload);
        let sent = b.io.flush().await;
        self.tracker.start(&cmd);
        let outcome = match sent {
            Ok(()) => self.relay(chosen, None).await,
            Err(e) => Err(RelayFail::Unsent(e.to_string())),
        };
        self.forget_state();
        match outcome {
            Ok(()) => {
                self.client.status = self.tracker.summary().status;
                if self.backends.track_gtid() {
                    super::backends::track_gtid(&mut self.backends.open[chosen]).await;
                }
                Ok(())
            }
            Err(RelayFail::Session(e)) => Err(e),
            Err(RelayFail::Unsent(why) | RelayFail::Lost { why, .. }) => {
                let name = &self.backends.open[chosen].server.name;
                Err(SessionError::BackendLost(format!("server '{name}': {why}")))
            }
        }
    }

    /// Forgets the session state kept for the backends (after a reset or change of user).
    fn forget_state(&mut self) {
        self.router.on_reset();
        self.client.dialect.reset();
        if let Some(h) = self.backends.history.as_mut() {
            h.clear();
        }
        self.backends.prepared.clear();
    }

    /// Resets the session state on every backend (COM_RESET_CONNECTION), as a refused change
    /// of user does on a server.
    async fn reset_backends(&mut self) -> Result<(), SessionError> {
        let track_gtid = self.backends.track_gtid();
        for backend in &mut self.backends.open {
            let reset =
                relay::run_quietly(backend, &[COM_RESET_CONNECTION], &Command::ResetConnection);
            match reset.await {
                Ok(summary) if summary.error.is_some() => {
                    warn!(server = %backend.server.name, error = ?summary.error, "the backend refused to reset the session");
                }
                Ok(_) if track_gtid => super::backends::track_gtid(backend).await,
                Ok(_) => {}
                Err(e) => {
                    let name = &backend.server.name;
                    return Err(SessionError::BackendLost(format!("server '{name}': {e}")));
                }
            }
        }
        self.forget_state();
        Ok(())
    }
}
