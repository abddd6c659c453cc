//! Packet framing: a 3-byte little-endian payload length, a 1-byte sequence id, the payload.
//! Payloads of 16 MiB − 1 bytes or more are split into frames; a frame of exactly
//! [`MAX_FRAME`] bytes is followed by a continuation frame (possibly empty). No I/O here.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};

/// The largest payload of one frame; a frame this large continues in the next one.
pub const MAX_FRAME: usize = 0xFF_FFFF;
pub const HEADER_LEN: usize = 4;

/// One logical packet: the payload of one frame or of several joined frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first frame.
    pub seq: u8,
    /// Sequence id of the last frame (the next packet of the exchange uses `last_seq + 1`).
    pub last_seq: u8,
    pub payload: Bytes,
}

/// The header of the frame at the start of `buf`: `(payload length, sequence id)`.
pub fn frame_header(buf: &[u8]) -> Option<(usize, u8)> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    let len = usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16;
    Some((len, buf[3]))
}

/// Takes one logical packet from the front of `buf` if it is complete; `Ok(None)` means more
/// bytes are needed. Payloads larger than `limit` are refused without being buffered whole.
pub fn decode(buf: &mut BytesMut, limit: usize) -> Result<Option<Packet>> {
    // First pass: find the end of the logical packet without copying.
    let mut offset = 0;
    let mut total = 0usize;
    let mut frames = 0usize;
    loop {
        let Some((len, _)) = frame_header(&buf[offset..]) else {
            return Ok(None);
        };
        total += len;
        if total > limit {
            return Err(ProtocolError::PacketTooLarge { size: total, limit });
        }
        if buf.len() < offset + HEADER_LEN + len {
            return Ok(None);
        }
        offset += HEADER_LEN + len;
        frames += 1;
        if len < MAX_FRAME {
            break;
        }
    }
    let seq = buf[3];
    let last_seq = seq.wrapping_add((frames - 1) as u8);
    if frames == 1 {
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(total).freeze();
        return Ok(Some(Packet {
            seq,
            last_seq,
            payload,
        }));
    }
    let mut payload = BytesMut::with_capacity(total);
    let mut frame_bytes = buf.split_to(offset);
    while !frame_bytes.is_empty() {
        let (len, _) = frame_header(&frame_bytes).expect("frame headers were checked above");
        frame_bytes.advance(HEADER_LEN);
        payload.extend_from_slice(&frame_bytes.split_to(len));
    }
    Ok(Some(Packet {
        seq,
        last_seq,
        payload: payload.freeze(),
    }))
}

/// Appends `payload` framed with sequence ids starting at `seq`; returns the next sequence id.
pub fn encode(buf: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_FRAME);
        buf.reserve(HEADER_LEN + n);
        buf.put_uint_le(n as u64, 3);
        buf.put_u8(seq);
        buf.put_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_FRAME {
            return seq;
        }
    }
}

/// Starts a packet in `buf` whose payload the caller appends next; [`finish`] fills in its
/// length. For small packets the proxy composes itself (OK, ERR, handshake), avoiding a copy.
pub fn begin(buf: &mut BytesMut, seq: u8) -> usize {
    let start = buf.len();
    buf.put_slice(&[0, 0, 0, seq]);
    start
}

/// Completes a packet started with [`begin`]. The payload must fit one frame.
pub fn finish(buf: &mut BytesMut, start: usize) {
    let len = buf.len() - start - HEADER_LEN;
    debug_assert!(len < MAX_FRAME, "proxy-made packets fit one frame");
    buf[start..start + 3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_packet_round_trip() {
        let mut buf = BytesMut::new();
        assert_eq!(encode(&mut buf, 7, b"\x03SELECT 1"), 8);
        assert_eq!(&buf[..4], &[9, 0, 0, 7]);
        let p = decode(&mut buf, 1 << 30).unwrap().unwrap();
        assert_eq!(
            (p.seq, p.last_seq, &p.payload[..]),
            (7, 7, &b"\x03SELECT 1"[..])
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn incomplete_is_none() {
        let mut buf = BytesMut::from(&[5u8, 0, 0][..]);
        assert_eq!(decode(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(&[0, 1, 2]);
        assert_eq!(decode(&mut buf, 100).unwrap(), None);
    }

    #[test]
    fn large_payload_is_split_and_joined() {
        for size in [MAX_FRAME - 1, MAX_FRAME, MAX_FRAME + 1, 2 * MAX_FRAME] {
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut buf = BytesMut::new();
            let next = encode(&mut buf, 0, &payload);
            let frames = size / MAX_FRAME + 1;
            assert_eq!(next as usize, frames);
            let p = decode(&mut buf, 1 << 30).unwrap().unwrap();
            assert_eq!(p.payload.len(), size);
            assert_eq!(p.last_seq as usize, frames - 1);
            assert_eq!(&p.payload[..], &payload[..]);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn limit_is_enforced_before_buffering() {
        let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0][..]);
        assert!(matches!(
            decode(&mut buf, 1024),
            Err(ProtocolError::PacketTooLarge { .. })
        ));
    }

    #[test]
    fn begin_finish() {
        let mut buf = BytesMut::new();
        let s = begin(&mut buf, 2);
        buf.put_slice(b"\x00\x00\x00\x02\x00\x00\x00");
        finish(&mut buf, s);
        assert_eq!(&buf[..4], &[7, 0, 0, 2]);
    }
}
