//! Packets over a socket: [`PacketIo`] buffers reads and writes of one connection, and
//! [`login`] / [`query`] are the client side towards a backend server.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::auth::{BackendSecret, NATIVE_PLUGIN};
use crate::caps::*;
use crate::codec::{self, Packet};
use crate::error::{ProtocolError, Result};
use crate::handshake::{parse_auth_switch, HandshakeResponse, ServerHandshake};
use crate::packets::{ErrPacket, OkPacket};

/// Read sizes: backends send result sets, clients mostly small commands.
pub const BACKEND_READ_CHUNK: usize = 16 * 1024;
pub const CLIENT_READ_CHUNK: usize = 4 * 1024;

/// The largest packet accepted by default: MariaDB's own maximum `max_allowed_packet`.
pub const DEFAULT_MAX_PACKET: usize = 1 << 30;

/// The largest packet a client may send before it has logged in. A handshake response is a
/// few hundred bytes; MariaDB refuses connect attributes over 64 KiB, and user, database, auth
/// data and plugin name add at most a few KiB more.
pub const PRE_AUTH_MAX_PACKET: usize = 80 << 10;

/// One connection's socket with its read and write buffers.
#[derive(Debug)]
pub struct PacketIo<S> {
    stream: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    max_packet: usize,
    read_chunk: usize,
    /// Bytes read from and written to the socket since [`PacketIo::take_byte_counts`].
    read_bytes: u64,
    written_bytes: u64,
}

/// What a read buffer first holds; it grows as reads fill it.
const FIRST_READ_CHUNK: usize = 512;

/// Read buffers above this size are given back once empty, so that one large reply does not
/// pin memory for the rest of a long session.
const SHRINK_ABOVE: usize = 1 << 20;

impl<S: AsyncRead + AsyncWrite + Unpin> PacketIo<S> {
    /// A connection that reads up to `read_chunk` bytes at a time. Buffers are allocated on
    /// first use: an idle session holds little memory.
    pub fn new(stream: S, read_chunk: usize) -> Self {
        PacketIo {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            max_packet: DEFAULT_MAX_PACKET,
            read_chunk,
            read_bytes: 0,
            written_bytes: 0,
        }
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Sets the largest logical packet [`PacketIo::read_packet`] accepts; a larger one is
    /// refused from its first frame header, before it is buffered.
    pub fn set_max_packet(&mut self, max_packet: usize) {
        self.max_packet = max_packet;
    }

    /// Reads one logical packet. `Ok(None)` is a clean end of stream between packets.
    pub async fn read_packet(&mut self) -> Result<Option<Packet>> {
        loop {
            if let Some(p) = codec::decode(&mut self.rbuf, self.max_packet)? {
                return Ok(Some(p));
            }
            if self.fill().await? == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(ProtocolError::Closed)
                };
            }
        }
    }

    /// Reads one logical packet; the end of stream is an error.
    pub async fn expect_packet(&mut self) -> Result<Packet> {
        self.read_packet().await?.ok_or(ProtocolError::Closed)
    }

    /// Reads whatever the socket has into the read buffer; 0 means end of stream.
    pub async fn fill(&mut self) -> Result<usize> {
        if self.rbuf.is_empty() && self.rbuf.capacity() > SHRINK_ABOVE {
            self.rbuf = BytesMut::new();
        }
        // The buffer starts small and grows (up to reads of `read_chunk`) only while reads fill
        // it: an idle session holds little, a busy one reads in large chunks, and once grown it
        // keeps its size, so steady traffic reserves nothing.
        let chunk = self
            .rbuf
            .capacity()
            .clamp(FIRST_READ_CHUNK, self.read_chunk);
        if self.rbuf.capacity() - self.rbuf.len() < chunk / 4 {
            self.rbuf.reserve(chunk);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        self.read_bytes += n as u64;
        Ok(n)
    }

    /// The bytes read and written since the last call: (read, written).
    pub fn take_byte_counts(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.read_bytes),
            std::mem::take(&mut self.written_bytes),
        )
    }

    /// Bytes read but not yet consumed.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Bytes queued for the next [`flush`](Self::flush).
    pub fn write_buf(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Queues `payload` as a packet starting at sequence id `seq`; returns the next id.
    pub fn queue(&mut self, seq: u8, payload: &[u8]) -> u8 {
        codec::encode(&mut self.wbuf, seq, payload)
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.written_bytes += self.wbuf.len() as u64;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Writes bytes that are already framed, bypassing the write buffer.
    pub async fn write_framed(&mut self, bytes: &[u8]) -> Result<()> {
        self.flush().await?;
        self.stream.write_all(bytes).await?;
        self.written_bytes += bytes.len() as u64;
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

/// How to log in to a backend.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    pub user: &'a [u8],
    pub secret: &'a BackendSecret,
    pub db: Option<&'a [u8]>,
    /// The capabilities to ask for: the client's, so that replies have the format it expects.
    pub capabilities: u32,
    /// MariaDB's extended capabilities to ask for, the client's too.
    pub extended_capabilities: u32,
    pub collation: u8,
    pub max_packet: u32,
    /// Connect attributes, encoded, passed on from the client.
    pub attributes: Option<&'a [u8]>,
}

/// What the backend told about itself during login.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    pub connection_id: u32,
    pub server_version: Bytes,
    /// The capabilities in force on this connection.
    pub capabilities: u32,
    /// MariaDB's extended capabilities in force: those asked for that the server offered.
    pub extended_capabilities: u32,
    pub status: u16,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The server refused; the ERR payload can be passed on to the client as it is.
    #[error("{}", describe_err(.0))]
    Rejected(Bytes),
}

fn describe_err(payload: &[u8]) -> String {
    match ErrPacket::parse(payload) {
        Ok(e) => e.to_error().to_string(),
        Err(e) => e.to_string(),
    }
}

/// Logs in on a fresh backend connection with `mysql_native_password`.
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut PacketIo<S>,
    login: &Login<'_>,
) -> Result<BackendInfo, LoginError> {
    let first = io.expect_packet().await?;
    if first.payload.first() == Some(&0xFF) {
        return Err(LoginError::Rejected(first.payload));
    }
    let hs = ServerHandshake::parse(&first.payload)?;
    if hs.capabilities & CLIENT_PROTOCOL_41 == 0 {
        return Err(ProtocolError::Unsupported("server without protocol 4.1".into()).into());
    }
    let required = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
    let capabilities =
        (login.capabilities | required) & hs.capabilities & !(CLIENT_SSL | CLIENT_COMPRESS);
    let extended_capabilities = login.extended_capabilities & hs.extended_capabilities;
    let response = HandshakeResponse {
        capabilities,
        extended_capabilities,
        max_packet: login.max_packet,
        collation: login.collation,
        user: login.user,
        auth_response: &login.secret.scramble(&hs.seed),
        db: login.db,
        auth_plugin: Some(NATIVE_PLUGIN.as_bytes()),
        attributes: login
            .attributes
            .filter(|_| capabilities & CLIENT_CONNECT_ATTRS != 0),
    };
    let mut payload = BytesMut::with_capacity(128);
    response.write(&mut payload);
    io.queue(first.last_seq.wrapping_add(1), &payload);
    io.flush().await?;
    loop {
        let reply = io.expect_packet().await?;
        match reply.payload.first() {
            Some(0x00) => {
                let status = OkPacket::parse(&reply.payload, capabilities)
                    .map(|ok| ok.status)
                    .unwrap_or(SERVER_STATUS_AUTOCOMMIT);
                return Ok(BackendInfo {
                    connection_id: hs.connection_id,
                    server_version: hs.server_version,
                    capabilities,
                    extended_capabilities,
                    status,
                });
            }
            Some(0xFF) => return Err(LoginError::Rejected(reply.payload)),
            Some(0xFE) => {
                let (plugin, seed) = parse_auth_switch(&reply.payload)?;
                if plugin != NATIVE_PLUGIN.as_bytes() {
                    return Err(ProtocolError::Unsupported(format!(
                        "the account uses the authentication plugin '{}', which Switchyard cannot pass on",
                        String::from_utf8_lossy(plugin)
                    ))
                    .into());
                }
                let answer = login.secret.scramble(seed);
                io.queue(reply.last_seq.wrapping_add(1), &answer);
                io.flush().await?;
            }
            _ => {
                return Err(ProtocolError::Malformed("unexpected packet during login").into());
            }
        }
    }
}

/// Opens a connection for the proxy's own use (account loading, monitoring) with a cleartext
/// password, within `timeout`.
pub async fn connect_admin(
    address: &str,
    user: &str,
    password: &str,
    timeout: std::time::Duration,
) -> Result<(PacketIo<tokio::net::TcpStream>, BackendInfo), LoginError> {
    let secret = BackendSecret::from_password(password);
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(ProtocolError::from)?;
        stream.set_nodelay(true).map_err(ProtocolError::from)?;
        let mut io = PacketIo::new(stream, BACKEND_READ_CHUNK);
        let info = login(
            &mut io,
            &Login {
                user: user.as_bytes(),
                secret: &secret,
                db: None,
                capabilities: CLIENT_LONG_PASSWORD
                    | CLIENT_LONG_FLAG
                    | CLIENT_TRANSACTIONS
                    | CLIENT_MULTI_RESULTS,
                // Asked for so that the account loader learns what the backends offer: the
                // proxy's own queries skip column definitions.
                extended_capabilities: PROXY_EXTENDED_CAPABILITIES,
                collation: DEFAULT_COLLATION,
                max_packet: 1 << 24,
                attributes: None,
            },
        )
        .await?;
        Ok((io, info))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(LoginError::Protocol(ProtocolError::Timeout(
            "connecting to the server",
        ))))
}
