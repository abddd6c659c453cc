//! The login exchange: the server's initial handshake (v10), the client's handshake response
//! (protocol 41), and the auth-switch request.

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::*;
use crate::error::{ProtocolError, Result};
use crate::wire::{put_lenenc_bytes, put_null_terminated, Reader};

/// The server's first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    pub server_version: Bytes,
    pub connection_id: u32,
    /// The 20-byte scramble seed.
    pub seed: Bytes,
    pub capabilities: u32,
    /// MariaDB's extended capabilities; zero (and not on the wire) when `CLIENT_MYSQL` is set.
    pub extended_capabilities: u32,
    pub collation: u8,
    pub status: u16,
    pub auth_plugin: Bytes,
}

impl ServerHandshake {
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let version = r.u8()?;
        if version != 10 {
            return Err(ProtocolError::Unsupported(format!(
                "handshake protocol version {version}"
            )));
        }
        let server_version = Bytes::copy_from_slice(r.null_terminated());
        let connection_id = r.u32()?;
        let mut seed = r.take(8)?.to_vec();
        r.skip(1)?;
        let mut capabilities = u32::from(r.u16()?);
        let mut extended_capabilities = 0;
        let mut collation = 0;
        let mut status = 0;
        let mut auth_plugin = Bytes::new();
        if !r.is_empty() {
            collation = r.u8()?;
            status = r.u16()?;
            capabilities |= u32::from(r.u16()?) << 16;
            let seed_len = r.u8()?;
            r.skip(6)?;
            let extended = r.u32()?;
            if capabilities & CLIENT_MYSQL == 0 {
                extended_capabilities = extended;
            }
            if capabilities & CLIENT_SECURE_CONNECTION != 0 {
                let n = usize::from(seed_len).saturating_sub(8).max(13);
                let part2 = r.take(n.min(r.remaining()))?;
                // The second part is NUL-terminated on the wire.
                let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
                seed.extend_from_slice(part2);
            }
            if capabilities & CLIENT_PLUGIN_AUTH != 0 {
                auth_plugin = Bytes::copy_from_slice(r.null_terminated());
            }
        }
        Ok(ServerHandshake {
            server_version,
            connection_id,
            seed: seed.into(),
            capabilities,
            extended_capabilities,
            collation,
            status,
            auth_plugin,
        })
    }

    /// Appends the payload of this handshake.
    pub fn write(&self, buf: &mut BytesMut) {
        buf.put_u8(10);
        put_null_terminated(buf, &self.server_version);
        buf.put_u32_le(self.connection_id);
        buf.put_slice(&self.seed[..8]);
        buf.put_u8(0);
        buf.put_u16_le(self.capabilities as u16);
        buf.put_u8(self.collation);
        buf.put_u16_le(self.status);
        buf.put_u16_le((self.capabilities >> 16) as u16);
        buf.put_u8(self.seed.len() as u8 + 1);
        buf.put_bytes(0, 6);
        if self.capabilities & CLIENT_MYSQL == 0 {
            buf.put_u32_le(self.extended_capabilities);
        } else {
            buf.put_bytes(0, 4);
        }
        put_null_terminated(buf, &self.seed[8..]);
        put_null_terminated(buf, &self.auth_plugin);
    }
}

/// The client's answer to the handshake. Borrowed from the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse<'a> {
    pub capabilities: u32,
    /// MariaDB's extended capabilities; zero (and not on the wire) when `CLIENT_MYSQL` is set.
    pub extended_capabilities: u32,
    pub max_packet: u32,
    pub collation: u8,
    pub user: &'a [u8],
    pub auth_response: &'a [u8],
    pub db: Option<&'a [u8]>,
    pub auth_plugin: Option<&'a [u8]>,
    /// The connect attributes, still encoded (key/value pairs of length-encoded strings).
    pub attributes: Option<&'a [u8]>,
}

/// True if the payload is an SSL request (the short packet a client sends before TLS).
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & CLIENT_SSL != 0
}

impl<'a> HandshakeResponse<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32()?;
        if capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err(ProtocolError::Unsupported(
                "clients older than protocol 4.1 are not supported".into(),
            ));
        }
        let max_packet = r.u32()?;
        let collation = r.u8()?;
        r.skip(19)?;
        let extended = r.u32()?;
        // As the server reads it: a client that clears `CLIENT_MYSQL` sends its extended
        // capabilities in the last four bytes of the filler.
        let extended_capabilities = if capabilities & CLIENT_MYSQL == 0 {
            extended
        } else {
            0
        };
        let user = r.null_terminated();
        let auth_response = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes()?
        } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = r.u8()?;
            r.take(usize::from(n))?
        } else {
            r.null_terminated()
        };
        let db = if capabilities & CLIENT_CONNECT_WITH_DB != 0 && !r.is_empty() {
            Some(r.null_terminated()).filter(|d| !d.is_empty())
        } else {
            None
        };
        let auth_plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(r.null_terminated())
        } else {
            None
        };
        let attributes = if capabilities & CLIENT_CONNECT_ATTRS != 0 && !r.is_empty() {
            Some(r.lenenc_bytes()?)
        } else {
            None
        };
        Ok(HandshakeResponse {
            capabilities,
            extended_capabilities,
            max_packet,
            collation,
            user,
            auth_response,
            db,
            auth_plugin,
            attributes,
        })
    }

    /// Appends the payload of this response.
    pub fn write(&self, buf: &mut BytesMut) {
        let mut caps = self.capabilities | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
        if self.db.is_some() {
            caps |= CLIENT_CONNECT_WITH_DB;
        } else {
            caps &= !CLIENT_CONNECT_WITH_DB;
        }
        if self.attributes.is_none() {
            caps &= !CLIENT_CONNECT_ATTRS;
        }
        if self.extended_capabilities != 0 {
            caps &= !CLIENT_MYSQL;
        }
        buf.put_u32_le(caps);
        buf.put_u32_le(self.max_packet);
        buf.put_u8(self.collation);
        buf.put_bytes(0, 19);
        buf.put_u32_le(self.extended_capabilities);
        put_null_terminated(buf, self.user);
        put_lenenc_bytes(buf, self.auth_response);
        if let Some(db) = self.db {
            put_null_terminated(buf, db);
        }
        if caps & CLIENT_PLUGIN_AUTH != 0 {
            put_null_terminated(buf, self.auth_plugin.unwrap_or_default());
        }
        if let Some(attrs) = self.attributes {
            put_lenenc_bytes(buf, attrs);
        }
    }

    /// The value of one connect attribute (e.g. `program_name`), if the client sent it.
    pub fn attribute(&self, key: &[u8]) -> Option<&'a [u8]> {
        connect_attribute(self.attributes?, key)
    }
}

/// The value of one connect attribute in `attributes` (still encoded, as in a login packet).
pub fn connect_attribute<'a>(attributes: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut r = Reader::new(attributes);
    while !r.is_empty() {
        let k = r.lenenc_bytes().ok()?;
        let v = r.lenenc_bytes().ok()?;
        if k == key {
            return Some(v);
        }
    }
    None
}

/// The body of a COM_CHANGE_USER (after the command byte). Borrowed from the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser<'a> {
    pub user: &'a [u8],
    pub auth_response: &'a [u8],
    pub db: Option<&'a [u8]>,
    pub collation: Option<u8>,
    pub auth_plugin: Option<&'a [u8]>,
    pub attributes: Option<&'a [u8]>,
}

impl<'a> ChangeUser<'a> {
    /// Parses the body as a client with `capabilities` sends it.
    pub fn parse(body: &'a [u8], capabilities: u32) -> Result<Self> {
        let mut r = Reader::new(body);
        let user = r.null_terminated();
        let auth_response = if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = r.u8()?;
            r.take(usize::from(n))?
        } else {
            r.null_terminated()
        };
        let db = Some(r.null_terminated()).filter(|d| !d.is_empty());
        let collation = if r.remaining() >= 2 {
            Some(r.u16()? as u8)
        } else {
            None
        };
        let auth_plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(r.null_terminated())
        } else {
            None
        };
        let attributes = if capabilities & CLIENT_CONNECT_ATTRS != 0 && !r.is_empty() {
            Some(r.lenenc_bytes()?)
        } else {
            None
        };
        Ok(ChangeUser {
            user,
            auth_response,
            db,
            collation,
            auth_plugin,
            attributes,
        })
    }
}

/// Appends an auth-switch request asking the client to use `plugin` with `seed`.
pub fn write_auth_switch(buf: &mut BytesMut, plugin: &[u8], seed: &[u8]) {
    buf.put_u8(0xFE);
    put_null_terminated(buf, plugin);
    put_null_terminated(buf, seed);
}

/// Parses an auth-switch request (payload starting with `0xFE`): `(plugin, seed)`.
pub fn parse_auth_switch(payload: &[u8]) -> Result<(&[u8], &[u8])> {
    let mut r = Reader::new(payload);
    if r.u8()? != 0xFE {
        return Err(ProtocolError::Malformed("not an auth switch request"));
    }
    let plugin = r.null_terminated();
    let seed = r.rest();
    Ok((plugin, seed.strip_suffix(&[0]).unwrap_or(seed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_round_trip() {
        let hs = ServerHandshake {
            server_version: Bytes::from_static(b"11.8.3-MariaDB"),
            connection_id: 42,
            seed: Bytes::from_static(b"abcdefghijklmnopqrst"),
            capabilities: PROXY_CAPABILITIES,
            extended_capabilities: 0,
            collation: DEFAULT_COLLATION,
            status: SERVER_STATUS_AUTOCOMMIT,
            auth_plugin: Bytes::from_static(b"mysql_native_password"),
        };
        let mut buf = BytesMut::new();
        hs.write(&mut buf);
        assert_eq!(ServerHandshake::parse(&buf).unwrap(), hs);

        // A MariaDB greeting: no CLIENT_MYSQL, extended capabilities in the filler.
        let hs = ServerHandshake {
            capabilities: PROXY_CAPABILITIES & !CLIENT_MYSQL,
            extended_capabilities: 0x1d,
            ..hs
        };
        let mut buf = BytesMut::new();
        hs.write(&mut buf);
        assert_eq!(ServerHandshake::parse(&buf).unwrap(), hs);
    }

    #[test]
    fn extended_capabilities_only_without_client_mysql() {
        let resp = HandshakeResponse {
            capabilities: PROXY_CAPABILITIES,
            extended_capabilities: MARIADB_CLIENT_EXTENDED_METADATA,
            max_packet: 1 << 24,
            collation: 45,
            user: b"app",
            auth_response: &[],
            db: None,
            auth_plugin: None,
            attributes: None,
        };
        let mut buf = BytesMut::new();
        resp.write(&mut buf);
        let parsed = HandshakeResponse::parse(&buf).unwrap();
        assert_eq!(parsed.capabilities & CLIENT_MYSQL, 0);
        assert_eq!(
            parsed.extended_capabilities,
            MARIADB_CLIENT_EXTENDED_METADATA
        );

        // A MySQL client's filler is not read as capabilities.
        buf[28] = 0xff;
        buf[0] |= CLIENT_MYSQL as u8;
        assert_eq!(
            HandshakeResponse::parse(&buf)
                .unwrap()
                .extended_capabilities,
            0
        );
    }

    #[test]
    fn response_round_trip() {
        let attrs = b"\x0c_client_name\x0alibmariadb";
        let resp = HandshakeResponse {
            capabilities: PROXY_CAPABILITIES | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
            extended_capabilities: 0,
            max_packet: 1 << 24,
            collation: 45,
            user: b"app",
            auth_response: &[1; 20],
            db: Some(b"test"),
            auth_plugin: Some(b"mysql_native_password"),
            attributes: Some(attrs),
        };
        let mut buf = BytesMut::new();
        resp.write(&mut buf);
        let parsed = HandshakeResponse::parse(&buf).unwrap();
        assert_eq!(parsed.user, b"app");
        assert_eq!(parsed.auth_response, &[1; 20]);
        assert_eq!(parsed.db, Some(&b"test"[..]));
        assert_eq!(parsed.attribute(b"_client_name"), Some(&b"libmariadb"[..]));
    }

    #[test]
    fn truncated_response_is_an_error() {
        assert!(HandshakeResponse::parse(&[0x0f, 0xa2, 0x3e]).is_err());
        assert!(HandshakeResponse::parse(&[0x00, 0x02, 0, 0, 0, 0, 0, 0, 45]).is_err());
        // Protocol 41 with user but a secure-connection length beyond the packet.
        let mut p = vec![0u8; 32];
        p[..4].copy_from_slice(&(CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION).to_le_bytes());
        p.extend_from_slice(b"app\0\x14ab");
        assert!(HandshakeResponse::parse(&p).is_err());
    }

    #[test]
    fn change_user() {
        let body = b"bob\0\x02ab" as &[u8];
        let mut body = body.to_vec();
        body.extend_from_slice(b"shop\0\x2d\x00mysql_native_password\0");
        let caps = CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
        let c = ChangeUser::parse(&body, caps).unwrap();
        assert_eq!(
            (c.user, c.auth_response, c.db, c.collation),
            (&b"bob"[..], &b"ab"[..], Some(&b"shop"[..]), Some(45))
        );
        assert_eq!(c.auth_plugin, Some(&b"mysql_native_password"[..]));
        assert!(ChangeUser::parse(b"bob\0\x09ab", caps).is_err());
    }

    #[test]
    fn auth_switch_round_trip() {
        let mut buf = BytesMut::new();
        write_auth_switch(&mut buf, b"mysql_native_password", b"01234567890123456789");
        let (plugin, seed) = parse_auth_switch(&buf).unwrap();
        assert_eq!(plugin, b"mysql_native_password");
        assert_eq!(seed, b"01234567890123456789");
    }
}
