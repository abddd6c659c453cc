//! Peak allocation of the protocol's parsers over peer bytes, measured by a counting global
//! allocator (this file is its own test binary, so the allocator counts only these tests).
//!
//! What a peer controls is the lengths it announces: a frame header says up to 16 MiB − 1, a
//! length-encoded integer up to 2^64 − 1. None of them may make the proxy allocate more than
//! the bytes it has actually received (or the packet limit, whichever is smaller): the codec
//! refuses an oversized packet from its first header, copies only to join frames of a packet
//! that is already complete, and the borrowed parsers and the reply tracker allocate nothing.

mod strategies;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

use strategies::*;
use switchyard_protocol::codec::{decode, encode, HEADER_LEN, MAX_FRAME};
use switchyard_protocol::conn::{
    PacketIo, CLIENT_READ_CHUNK, DEFAULT_MAX_PACKET, PRE_AUTH_MAX_PACKET,
};
use switchyard_protocol::handshake::{ChangeUser, HandshakeResponse, ServerHandshake};
use switchyard_protocol::packets::{ErrPacket, OkPacket};
use switchyard_protocol::reply::ReplyTracker;
use switchyard_protocol::session_track::{tracked_variable, untrack_ok, StateEntries};
use switchyard_protocol::stmt::execute_with_types;
use switchyard_protocol::{Command, ProtocolError};

/// Counts the bytes live on each thread and their peak. Per thread, because the test harness
/// runs tests on several threads at once.
struct Counting;

thread_local! {
    // Const-initialised and without destructors: reading them never allocates, so the
    // allocator can use them.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Both blocks may exist at once while the old one is copied.
            count(new_size as isize);
            count(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it had allocated at once (what it
/// returns included, what it freed of earlier allocations not subtracted).
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start) as usize)
}

/// The measure itself: a property that allocates nothing would pass vacuously if the
/// allocator did not count.
#[test]
fn the_allocator_counts() {
    let (v, peak) = peak_during(|| vec![1u8; 4096]);
    assert_eq!(v.len(), 4096);
    assert!(peak >= 4096);
    let (_, peak) = peak_during(|| drop(v));
    assert_eq!(peak, 0);
}

/// What the codec may allocate besides a joined payload: `Bytes`' shared header when a frame
/// is split off the read buffer, and an error's fields.
const SLACK: usize = 256;

fn frame_header(len: usize, seq: u8) -> [u8; 4] {
    let l = (len as u32).to_le_bytes();
    [l[0], l[1], l[2], seq]
}

/// A stream of frames as a peer may send them: honest headers, or headers that claim any
/// length (up to the 16 MiB − 1 that continues a packet), then cut anywhere.
fn frame_stream() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        prop_oneof![
            3 => Just(None),
            1 => prop_oneof![Just(MAX_FRAME), Just(MAX_FRAME - 1), Just(PRE_AUTH_MAX_PACKET + 1), 0..=MAX_FRAME].prop_map(Some),
        ],
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(claimed, seq, body)| {
            let mut f = frame_header(claimed.unwrap_or(body.len()), seq).to_vec();
            f.extend_from_slice(&body);
            f
        });
    (
        prop::collection::vec(frame, 0..6),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(frames, cut)| {
            let mut s = frames.concat();
            if let Some(cut) = cut {
                s.truncate(cut.index(s.len() + 1));
            }
            s
        })
}

fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(16),
        Just(PRE_AUTH_MAX_PACKET),
        Just(DEFAULT_MAX_PACKET),
        Just(usize::MAX),
        0usize..1 << 30,
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// Decoding any stream: a packet costs at most its payload (joined frames) plus a small
    /// header; waiting for more bytes and refusing a packet cost nothing, whatever the header
    /// claims.
    #[test]
    fn decode_allocates_at_most_the_packet(stream in frame_stream(), limit in limit()) {
        let mut buf = BytesMut::from(&stream[..]);
        loop {
            let before = buf.len();
            let (res, peak) = peak_during(|| decode(&mut buf, limit));
            match res {
                Ok(Some(p)) => {
                    prop_assert!(p.payload.len() <= limit);
                    prop_assert!(before - buf.len() >= p.payload.len() + HEADER_LEN);
                    prop_assert!(peak <= p.payload.len() + SLACK, "{} bytes for a packet of {}", peak, p.payload.len());
                }
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before);
                    prop_assert!(peak <= SLACK, "{} bytes while waiting", peak);
                    break;
                }
                Err(ProtocolError::PacketTooLarge { size, limit: l }) => {
                    prop_assert!(size > limit && l == limit);
                    prop_assert!(peak <= SLACK, "{} bytes to refuse a packet", peak);
                    break;
                }
                Err(e) => prop_assert!(false, "unexpected error {}", e),
            }
        }
    }

    /// Before login, a header that claims more than the pre-auth limit is refused at once,
    /// from its four bytes, allocating nothing; a packet within it is split off the read
    /// buffer without a copy.
    #[test]
    fn pre_auth_limit_is_enforced_from_the_header(
        len in (PRE_AUTH_MAX_PACKET + 1)..=MAX_FRAME,
        seq in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        ok_len in 0..=PRE_AUTH_MAX_PACKET,
    ) {
        let mut buf = BytesMut::from(&frame_header(len, seq)[..]);
        buf.extend_from_slice(&body);
        let (res, peak) = peak_during(|| decode(&mut buf, PRE_AUTH_MAX_PACKET));
        let refused = matches!(res, Err(ProtocolError::PacketTooLarge { size, .. }) if size == len);
        prop_assert!(refused);
        prop_assert!(peak <= SLACK);

        let mut buf = BytesMut::with_capacity(HEADER_LEN + ok_len);
        buf.put_slice(&frame_header(ok_len, seq));
        buf.put_bytes(0xAB, ok_len);
        let (res, peak) = peak_during(|| decode(&mut buf, PRE_AUTH_MAX_PACKET));
        let p = res.unwrap().unwrap();
        prop_assert_eq!(p.payload.len(), ok_len);
        prop_assert!(peak <= SLACK, "{} bytes for a single frame of {}", peak, ok_len);
    }

    /// A client socket before login: whatever it sends, the read buffer holds what arrived and
    /// a read chunk, never what a header claims.
    #[test]
    fn pre_auth_reads_buffer_only_what_arrives(stream in frame_stream()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            use tokio::io::AsyncWriteExt;
            let (mut client, server) = tokio::io::duplex(4096);
            let mut io = PacketIo::new(server, CLIENT_READ_CHUNK);
            io.set_max_packet(PRE_AUTH_MAX_PACKET);
            let input = stream.clone();
            let writer = tokio::spawn(async move {
                // The reader may stop early (an oversized packet); that is not a failure here.
                let _ = client.write_all(&input).await;
            });
            loop {
                let res = io.read_packet().await;
                prop_assert!(io.read_buf().capacity() <= 2 * (stream.len() + CLIENT_READ_CHUNK));
                match res {
                    Ok(Some(p)) => prop_assert!(p.payload.len() <= PRE_AUTH_MAX_PACKET),
                    Ok(None) | Err(ProtocolError::PacketTooLarge { .. } | ProtocolError::Closed) => break,
                    Err(e) => prop_assert!(false, "unexpected error {}", e),
                }
            }
            drop(io);
            writer.await.unwrap();
            Ok(())
        })?;
    }
}

proptest! {
    // Each case moves 16 to 50 MiB: a few are enough to cross every frame boundary.
    #![proptest_config(config(8))]

    /// Packets of 16 MiB and more, split into frames: joined into one payload of exactly their
    /// size, refused over the limit, and waited for while incomplete, without allocating.
    #[test]
    fn joined_frames_over_16_mib(
        size in prop_oneof![
            Just(MAX_FRAME - 1),
            Just(MAX_FRAME),
            Just(MAX_FRAME + 1),
            (MAX_FRAME..MAX_FRAME + 64),
            Just(2 * MAX_FRAME),
            Just(2 * MAX_FRAME + 1),
        ],
        seq in any::<u8>(),
        limit_delta in prop_oneof![Just(-1isize), Just(0), Just(1 << 20)],
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut payload = vec![0x5Au8; size];
        // Marks at the frame boundaries, so that a misjoined payload shows.
        for (i, at) in [0, MAX_FRAME - 1, MAX_FRAME, size - 1].into_iter().enumerate() {
            if at < size {
                payload[at] = i as u8;
            }
        }
        let mut buf = BytesMut::new();
        let next = encode(&mut buf, seq, &payload);
        let frames = size / MAX_FRAME + 1;
        prop_assert_eq!(next, seq.wrapping_add(frames as u8));
        let limit = size.saturating_add_signed(limit_delta);
        if let Some(cut) = &cut {
            buf.truncate(cut.index(buf.len()));
        }
        let (res, peak) = peak_during(|| decode(&mut buf, limit));
        match res {
            Ok(Some(p)) => {
                prop_assert!(cut.is_none() && size <= limit);
                prop_assert_eq!(p.seq, seq);
                prop_assert_eq!(p.last_seq, seq.wrapping_add(frames as u8 - 1));
                prop_assert!(p.payload[..] == payload[..]);
                prop_assert!(buf.is_empty());
                prop_assert!(peak <= size + SLACK);
            }
            Ok(None) => {
                prop_assert!(cut.is_some());
                prop_assert!(peak <= SLACK);
            }
            Err(ProtocolError::PacketTooLarge { .. }) => {
                prop_assert!(size > limit);
                prop_assert!(peak <= SLACK);
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// The reply tracker allocates nothing, whatever the server sends.
    #[test]
    fn reply_tracker_allocates_nothing(
        caps in any::<u32>(),
        cmd in command(),
        frames in prop::collection::vec(reply_frame(), 0..16),
    ) {
        let mut big = Vec::new();
        let mut t = ReplyTracker::new(caps);
        let ((), peak) = peak_during(|| {
            t.start(&cmd);
        });
        prop_assert_eq!(peak, 0);
        for frame in &frames {
            let payload = frame.bytes(&mut big);
            let (res, peak) = peak_during(|| t.on_frame(payload).map(|_| ()));
            prop_assert_eq!(peak, 0, "{} bytes for a frame ({:?})", peak, res);
            if res.is_err() {
                break;
            }
        }
    }

    /// The borrowed parsers allocate nothing for what they accept, and at most an error's
    /// message for what they refuse.
    #[test]
    fn borrowed_parsers_allocate_nothing(p in prop_oneof![reply_packet(), prop::collection::vec(any::<u8>(), 0..64)], caps in any::<u32>()) {
        // `parse` returns whether the input was accepted.
        fn check(parse: impl FnOnce() -> bool) -> Result<(), TestCaseError> {
            let (accepted, peak) = peak_during(parse);
            if accepted {
                prop_assert_eq!(peak, 0);
            } else {
                prop_assert!(peak <= SLACK);
            }
            Ok(())
        }
        check(|| Command::parse(&p).is_ok())?;
        check(|| HandshakeResponse::parse(&p).is_ok())?;
        check(|| ChangeUser::parse(&p, caps).is_ok())?;
        check(|| OkPacket::parse(&p, caps).is_ok())?;
        check(|| ErrPacket::parse(&p).is_ok())?;
        let (_, peak) = peak_during(|| {
            tracked_variable(&p, "last_gtid");
            StateEntries::new(&p).count()
        });
        prop_assert_eq!(peak, 0);
    }

    /// The parsers that build a payload allocate in proportion to their input: a server's
    /// greeting, an untracked OK, an execute with its types put back.
    #[test]
    fn building_parsers_allocate_in_proportion(
        p in prop_oneof![mutated(ok_packet()), prop::collection::vec(any::<u8>(), 0..64)],
        greeting in prop::collection::vec(any::<u8>(), 0..96),
        num_params in 0u16..40,
    ) {
        let mut hs = greeting.clone();
        hs.insert(0, 10); // protocol version 10, so that parsing goes on
        let (_, peak) = peak_during(|| ServerHandshake::parse(&hs).is_ok());
        prop_assert!(peak <= 2 * hs.len() + SLACK, "{} bytes for a greeting of {}", peak, hs.len());

        let (_, peak) = peak_during(|| {
            let mut out = BytesMut::new();
            untrack_ok(&p, &mut out);
            out
        });
        prop_assert!(peak <= p.len() + SLACK, "{} bytes to untrack {}", peak, p.len());

        let types = vec![0xFD; 2 * usize::from(num_params)];
        let mut exec = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        exec.extend_from_slice(&p);
        let (_, peak) = peak_during(|| {
            let mut out = BytesMut::new();
            execute_with_types(&exec, num_params, &types, &mut out);
            out
        });
        prop_assert!(peak <= exec.len() + types.len() + SLACK);
    }
}
