//! Streaming one reply from a backend to the client, frame by frame as it arrives, following it
//! with the reply tracker to find its end. Nothing is buffered beyond one read.

use std::time::Instant;

use bytes::Buf;
use switchyard_api::StmtId;
use switchyard_protocol::caps::CLIENT_SESSION_TRACK;
use switchyard_protocol::codec::{frame_header, HEADER_LEN};
use switchyard_protocol::conn::PacketIo;
use switchyard_protocol::reply::{Progress, ReplySummary, ReplyTracker};
use switchyard_protocol::session_track::{tracked_variable, untrack_ok};
use switchyard_protocol::thread_ids::IdRewrite;
use switchyard_protocol::Command;
use switchyard_protocol::ProtocolError;
use tokio::net::TcpStream;
use tracing::warn;

use super::backends::Backends;
use super::{Session, SessionError};
use crate::backend::Backend;

/// How relaying a reply failed.
#[derive(Debug)]
pub(super) enum RelayFail {
    /// The backend failed before the client saw any of the reply.
    Unsent(String),
    /// The backend failed mid-reply, after part of it went to the client. The caller says
    /// why in place of the rest (sequence id `seq`), unless the session ends with it: then the
    /// client's connection closes, as a server's does when it fails mid-reply.
    Lost { why: String, seq: u8 },
    /// The client side failed: the session ends.
    Session(SessionError),
}

impl From<SessionError> for RelayFail {
    fn from(e: SessionError) -> Self {
        RelayFail::Session(e)
    }
}

impl From<ProtocolError> for RelayFail {
    fn from(e: ProtocolError) -> Self {
        RelayFail::Session(e.into())
    }
}

impl Session {
    /// Relays the reply of the command just sent to backend `index`. For a COM_STMT_PREPARE,
    /// `prepared_id` is the statement id the client is told in place of the backend's.
    pub(super) async fn relay(
        &mut self,
        index: usize,
        prepared_id: Option<StmtId>,
    ) -> Result<(), RelayFail> {
        let untrack = self.backends.track_gtid()
            && self.client.credentials.capabilities & CLIENT_SESSION_TRACK == 0;
        let Session {
            backends,
            client,
            tracker,
            scratch,
            outcome,
            thread_ids,
            proxy,
            id,
            ..
        } = self;
        let (client, registry) = (&mut client.io, &proxy.registry);
        let Backends {
            open,
            gtid,
            gtid_fresh,
            ..
        } = backends;
        let backend = &mut open[index];
        let mut ids = thread_ids.map(|format| {
            let sessions = registry.threads_on(&backend.server.name);
            let own = (u64::from(backend.info.connection_id), u64::from(id.0));
            IdRewrite::new(format, sessions, own, backend.info.extended_capabilities)
        });
        let watch_ok = untrack || gtid.is_some();
        let mut sent = false;
        let mut last_seq = 0u8;
        let mut first = true;
        loop {
            let buf = backend.io.read_buf();
            let mut consumed = 0;
            let mut progress = Progress::More;
            while let Some((len, seq)) = frame_header(&buf[consumed..]) {
                let start = consumed + HEADER_LEN;
                let end = start + len;
                if buf.len() < end {
                    // Make room for the whole frame at once rather than growing step by step.
                    buf.reserve(end - buf.len());
                    break;
                }
                last_seq = seq;
                progress = match tracker.on_frame(&buf[start..end]) {
                    Ok(p) => p,
                    Err(e) => {
                        let server = backend.server.name.to_string();
                        warn!(%server, error = %e, "the backend sent a reply the proxy cannot follow");
                        let bytes = buf.split_to(consumed);
                        client.write_framed(&bytes).await?;
                        return Err(RelayFail::Lost {
                            why: format!("unreadable reply: {e}"),
                            seq: last_seq,
                        });
                    }
                };
                if std::mem::take(&mut first) {
                    if let Some(o) = outcome.as_mut() {
                        o.first_byte();
                    }
                    if let Some(id) = prepared_id.filter(|_| len >= 5 && buf[start] == 0) {
                        buf[start + 1..start + 5].copy_from_slice(&id.0.to_le_bytes());
                    }
                }
                // A packet rewritten into `scratch` goes to the client in place of the
                // server's, after what came before it.
                let mut replaced = false;
                if watch_ok && tracker.last_was_ok() {
                    let payload = &buf[start..end];
                    if let Some(gtid) = gtid.as_mut() {
                        if let Some(value) = tracked_variable(payload, "last_gtid") {
                            gtid.clear();
                            gtid.push_str(&String::from_utf8_lossy(value));
                            *gtid_fresh = true;
                        }
                    }
                    scratch.clear();
                    // The client did not ask for session tracking: it gets the OK in the
                    // format it expects.
                    replaced = untrack && untrack_ok(payload, scratch);
                }
                if let Some(ids) = ids.as_mut() {
                    replaced |= ids.on_packet(tracker.last_kind(), &mut buf[start..end], scratch);
                }
                if replaced {
                    if consumed > 0 {
                        let bytes = buf.split_to(consumed);
                        client.write_framed(&bytes).await?;
                    }
                    buf.advance(HEADER_LEN + len);
                    client.queue(seq, scratch);
                    sent = true;
                    consumed = 0;
                    if progress != Progress::More {
                        break;
                    }
                    continue;
                }
                consumed = end;
                if progress != Progress::More {
                    break;
                }
            }
            if consumed > 0 {
                let bytes = buf.split_to(consumed);
                client.write_framed(&bytes).await?;
                sent = true;
            }
            match progress {
                Progress::Done if !backend.io.read_buf().is_empty() => {
                    // A server sends nothing unasked but its last words before it closes, and
                    // those come between commands. Bytes after the end of a reply mean the
                    // tracker lost its place: the client, who may be waiting for them, gets an
                    // error rather than a session that waits forever.
                    let server = backend.server.name.to_string();
                    warn!(%server, "the backend sent more than the reply the proxy followed");
                    return Err(RelayFail::Lost {
                        why: format!(
                            "server '{server}' sent more than the reply the proxy followed"
                        ),
                        seq: last_seq.wrapping_add(1),
                    });
                }
                Progress::Done => {
                    client.flush().await?;
                    backend.status = tracker.summary().status;
                    backend.last_used = Instant::now();
                    return Ok(());
                }
                Progress::LocalInfile => {
                    client.flush().await?;
                    last_seq = send_local_file(client, backend).await?;
                    tracker.local_infile_sent();
                }
                Progress::More => {
                    if backend.io.fill().await.unwrap_or(0) == 0 {
                        let server = backend.server.name.to_string();
                        if !sent && client.write_buf().is_empty() {
                            return Err(RelayFail::Unsent(format!(
                                "server '{server}' closed the connection"
                            )));
                        }
                        return Err(RelayFail::Lost {
                            why: format!("server '{server}' closed the connection during a reply"),
                            seq: last_seq.wrapping_add(1),
                        });
                    }
                }
            }
        }
    }
}

/// Sends `payload` (command `cmd`) to `backend` and drops its reply: for the backends whose
/// reply the client does not get.
pub(super) async fn run_quietly(
    backend: &mut Backend,
    payload: &[u8],
    cmd: &Command<'_>,
) -> Result<ReplySummary, ProtocolError> {
    backend.io.queue(0, payload);
    backend.io.flush().await?;
    let mut tracker = ReplyTracker::new(backend.info.capabilities);
    if tracker.start(cmd) {
        discard(backend, &mut tracker, false).await?;
    }
    Ok(tracker.summary().clone())
}

/// Reads and drops the reply of the command just sent to `backend` (a session command's reply
/// on the backends whose reply the client does not get, a replayed command, ...). With
/// `more_sent`, replies to later commands may follow it in the buffer.
pub(super) async fn discard(
    backend: &mut Backend,
    tracker: &mut ReplyTracker,
    more_sent: bool,
) -> Result<(), ProtocolError> {
    loop {
        let buf = backend.io.read_buf();
        let mut consumed = 0;
        let mut progress = Progress::More;
        while let Some((len, _)) = frame_header(&buf[consumed..]) {
            let end = consumed + HEADER_LEN + len;
            if buf.len() < end {
                buf.reserve(end - buf.len());
                break;
            }
            progress = tracker.on_frame(&buf[consumed + HEADER_LEN..end])?;
            consumed = end;
            if progress != Progress::More {
                break;
            }
        }
        buf.advance(consumed);
        match progress {
            Progress::Done if !more_sent && !buf.is_empty() => {
                return Err(ProtocolError::Malformed(
                    "the server sent more than the reply the proxy followed",
                ))
            }
            Progress::Done => {
                backend.status = tracker.summary().status;
                backend.last_used = Instant::now();
                return Ok(());
            }
            Progress::LocalInfile => {
                return Err(ProtocolError::Malformed(
                    "a local file was asked for outside of a client's command",
                ))
            }
            Progress::More => {
                if backend.io.fill().await? == 0 {
                    return Err(ProtocolError::Closed);
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
) -> Result<u8, RelayFail> {
    loop {
        let p = client
            .read_packet()
            .await?
            .ok_or(SessionError::ClientGone)?;
        backend.io.queue(p.seq, &p.payload);
        if p.payload.is_empty() || backend.io.write_buf().len() > 64 * 1024 {
            if let Err(e) = backend.io.flush().await {
                return Err(RelayFail::Lost {
                    why: e.to_string(),
                    seq: p.last_seq.wrapping_add(1),
                });
            }
        }
        if p.payload.is_empty() {
            return Ok(p.last_seq);
        }
    }
}
