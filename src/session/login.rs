//! The client's login: handshake, `mysql_native_password` check against the account table,
//! a switch to native auth for clients that start with another plugin.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use switchyard_protocol::auth::{self, BackendSecret, NATIVE_PLUGIN};
use switchyard_protocol::caps::*;
use switchyard_protocol::conn::{self, PacketIo};
use switchyard_protocol::handshake::{
    is_ssl_request, write_auth_switch, HandshakeResponse, ServerHandshake,
};
use switchyard_protocol::packets::errors::*;
use switchyard_protocol::ProtocolError;
use tokio::net::TcpStream;

use super::SessionError;
use crate::accounts::AuthOutcome;
use crate::service::Service;

/// How long a client may take to answer the handshake (MariaDB's `connect_timeout` default).
const CLIENT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that has proven who it is.
#[derive(Debug)]
pub struct Credentials {
    pub user: String,
    pub secret: BackendSecret,
    pub db: Option<String>,
    /// The capabilities both sides agreed on; backends are asked for the same.
    pub capabilities: u32,
    /// MariaDB's extended capabilities agreed on, the same way.
    pub extended_capabilities: u32,
    pub collation: u8,
    pub max_packet: u32,
    pub attributes: Option<Bytes>,
    /// The seed of the handshake, which COM_CHANGE_USER scrambles answer too.
    pub seed: [u8; 20],
    /// The sequence id of the proxy's next packet (the login's OK or ERR).
    pub next_seq: u8,
}

impl Credentials {
    pub fn login(&self) -> switchyard_protocol::conn::Login<'_> {
        switchyard_protocol::conn::Login {
            user: self.user.as_bytes(),
            secret: &self.secret,
            db: self.db.as_deref().map(str::as_bytes),
            capabilities: self.capabilities,
            extended_capabilities: self.extended_capabilities,
            collation: self.collation,
            max_packet: self.max_packet,
            attributes: self.attributes.as_deref(),
        }
    }
}

/// Runs the login exchange. On failure the client has been told why.
pub async fn login(
    client: &mut PacketIo<TcpStream>,
    id: u32,
    peer: SocketAddr,
    service: &Service,
) -> Result<Credentials, SessionError> {
    let ip = peer.ip().to_canonical();
    if service.accounts.table().is_empty() || !service.accounts.table().host_allowed(ip) {
        service.reload_accounts().await;
    }
    if !service.accounts.table().host_allowed(ip) && !service.accounts.table().is_empty() {
        let msg = format!("Host '{ip}' is not allowed to connect to this MariaDB server");
        return Err(refuse(client, 0, ER_HOST_NOT_PRIVILEGED, "HY000", msg).await);
    }

    let seed = auth::new_seed();
    // MariaDB's extended capabilities are offered as the backends offer them: a client then
    // gets the column definitions it would get from the server.
    let extended = service.accounts.extended_capabilities();
    let handshake = ServerHandshake {
        server_version: Bytes::clone(&service.accounts.server_version()),
        connection_id: id,
        seed: Bytes::copy_from_slice(&seed),
        capabilities: if extended == 0 {
            PROXY_CAPABILITIES
        } else {
            PROXY_CAPABILITIES & !CLIENT_MYSQL
        },
        extended_capabilities: extended,
        collation: DEFAULT_COLLATION,
        status: SERVER_STATUS_AUTOCOMMIT,
        auth_plugin: Bytes::from_static(NATIVE_PLUGIN.as_bytes()),
    };
    let mut payload = BytesMut::with_capacity(128);
    handshake.write(&mut payload);
    client.queue(0, &payload);
    client.flush().await?;

    // Until the client has logged in it may send only what a login needs; the limit rises to
    // `max_allowed_packet` once it has.
    client.set_max_packet(conn::PRE_AUTH_MAX_PACKET);
    let read = tokio::time::timeout(CLIENT_LOGIN_TIMEOUT, client.read_packet())
        .await
        .map_err(|_| {
            SessionError::Protocol(ProtocolError::Timeout("waiting for the client's login"))
        })?;
    let packet = match read {
        Err(e @ ProtocolError::PacketTooLarge { .. }) => {
            tracing::info!(error = %e, "client sent a login packet larger than any login");
            let msg = "Got a packet bigger than 'max_allowed_packet' bytes";
            return Err(refuse(client, 2, ER_NET_PACKET_TOO_LARGE, "08S01", msg.into()).await);
        }
        read => read?.ok_or(SessionError::ClientGone)?,
    };
    let mut next_seq = packet.last_seq.wrapping_add(1);
    if packet.seq != 1 {
        let err = ProtocolError::PacketsOutOfSync {
            expected: 1,
            got: packet.seq,
        };
        refuse(
            client,
            next_seq,
            ER_NET_PACKETS_OUT_OF_ORDER,
            "08S01",
            "Got packets out of order".into(),
        )
        .await;
        return Err(err.into());
    }
    if is_ssl_request(&packet.payload) {
        let msg = "This Switchyard listener does not offer TLS; connect without SSL";
        return Err(refuse(client, next_seq, ER_HANDSHAKE, "08S01", msg.into()).await);
    }
    let response = match HandshakeResponse::parse(&packet.payload) {
        Ok(r) => r,
        Err(e) => {
            let err = refuse(
                client,
                next_seq,
                ER_HANDSHAKE,
                "08S01",
                "Bad handshake".into(),
            )
            .await;
            tracing::info!(error = %e, "client sent an unreadable login packet");
            return Err(err);
        }
    };
    let user = user_name(response.user);
    tracing::Span::current().record("user", super::printable(&user).as_str());

    // Clients that start with another plugin (MySQL 8's caching_sha2_password) are asked to
    // switch to native auth, which the proxy can check without the cleartext password.
    let native = response
        .auth_plugin
        .is_none_or(|p| p == NATIVE_PLUGIN.as_bytes() || p.is_empty());
    let switched;
    let (auth_response, auth_seed): (&[u8], &[u8]) = if native {
        (response.auth_response, &seed)
    } else {
        let mut p = BytesMut::new();
        write_auth_switch(&mut p, NATIVE_PLUGIN.as_bytes(), &seed);
        client.queue(next_seq, &p);
        client.flush().await?;
        switched = tokio::time::timeout(CLIENT_LOGIN_TIMEOUT, client.read_packet())
            .await
            .map_err(|_| {
                SessionError::Protocol(ProtocolError::Timeout("waiting for the client's login"))
            })??
            .ok_or(SessionError::ClientGone)?;
        next_seq = switched.last_seq.wrapping_add(1);
        (&switched.payload[..], &seed)
    };

    let secret = match authenticate(
        service,
        user.as_bytes(),
        ip,
        auth_response,
        auth_seed,
        response.capabilities,
    )
    .await
    {
        Ok(secret) => secret,
        Err(outcome) => {
            let (code, state, msg) = refusal(&outcome, &user, ip, !auth_response.is_empty());
            tracing::info!(code, reason = %super::printable(&msg), "login refused");
            let mut e = refuse(client, next_seq, code, state, msg).await;
            if let SessionError::Refused(r) = &mut e {
                r.user = Some(user);
                r.db = response.db.map(|d| String::from_utf8_lossy(d).into_owned());
            }
            return Err(e);
        }
    };

    client.set_max_packet(conn::DEFAULT_MAX_PACKET);
    Ok(Credentials {
        user,
        secret,
        db: response.db.map(|d| String::from_utf8_lossy(d).into_owned()),
        capabilities: response.capabilities & PROXY_CAPABILITIES,
        extended_capabilities: response.extended_capabilities & extended,
        collation: response.collation,
        max_packet: response.max_packet,
        attributes: response.attributes.map(Bytes::copy_from_slice),
        seed,
        next_seq,
    })
}

/// Checks a scramble, reloading the account table once (throttled) if it fails: the account
/// may have been created or changed since the table was loaded.
pub async fn authenticate(
    service: &Service,
    user: &[u8],
    ip: std::net::IpAddr,
    response: &[u8],
    seed: &[u8],
    capabilities: u32,
) -> Result<BackendSecret, AuthOutcome> {
    let can_change_expired = capabilities & CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS != 0;
    let check = |table: &crate::accounts::AccountTable| {
        table.authenticate(user, ip, response, seed, can_change_expired)
    };
    let outcome = check(&service.accounts.table());
    let outcome = match outcome {
        AuthOutcome::Accepted(_) => outcome,
        _ if service.reload_accounts().await => check(&service.accounts.table()),
        _ => outcome,
    };
    match outcome {
        AuthOutcome::Accepted(secret) => Ok(secret),
        other => Err(other),
    }
}

/// The most characters of a user name the server reads (USERNAME_CHAR_LENGTH).
const USER_NAME_CHARS: usize = 128;

/// A user name as the server reads it: cut after 128 characters (no account has a longer
/// one), so that a padded name costs no more than a real one downstream.
pub(super) fn user_name(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    match name.char_indices().nth(USER_NAME_CHARS) {
        Some((end, _)) => name[..end].to_string(),
        None => name.into_owned(),
    }
}

/// What the server answers a login that failed with `outcome`: code, SQLSTATE, message.
pub(super) fn refusal(
    outcome: &AuthOutcome,
    user: &str,
    ip: std::net::IpAddr,
    used_password: bool,
) -> (u16, &'static str, String) {
    match outcome {
        AuthOutcome::HostNotAllowed => (
            ER_HOST_NOT_PRIVILEGED,
            "HY000",
            format!("Host '{ip}' is not allowed to connect to this MariaDB server"),
        ),
        AuthOutcome::Locked => (
            ER_ACCOUNT_HAS_BEEN_LOCKED,
            "HY000",
            "Access denied, this account is locked".into(),
        ),
        // The server's sandbox mode for clients that can change an expired password is not
        // offered: the proxy refuses them all, as the server does with
        // disconnect_on_expired_password.
        AuthOutcome::Expired => (
            ER_MUST_CHANGE_PASSWORD_LOGIN,
            "HY000",
            "Your password has expired. To log in you must change it using a client that \
             supports expired passwords."
                .into(),
        ),
        AuthOutcome::Denied | AuthOutcome::Accepted(_) => (
            ER_ACCESS_DENIED,
            "28000",
            format!(
                "Access denied for user '{user}'@'{ip}' (using password: {})",
                if used_password { "YES" } else { "NO" }
            ),
        ),
    }
}

/// Sends an error to a client that is being turned away, and gives the error to return.
pub(super) async fn refuse(
    client: &mut PacketIo<TcpStream>,
    seq: u8,
    code: u16,
    state: &str,
    msg: String,
) -> SessionError {
    switchyard_protocol::packets::write_err(client.write_buf(), seq, code, state, &msg);
    let _ = client.flush().await;
    SessionError::refused(code, state, &msg)
}
