//! The audit record (`switchyard.audit.v1`) as borrowed parts, serialized straight into the
//! one `Vec<u8>` that goes to Kafka.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

/// The schema name every record carries.
pub(crate) const SCHEMA: &str = "switchyard.audit.v1";

/// One record. Parts that an event kind does not have are left out (`None`); parts that it
/// has but cannot fill are `null` (`Some(None)`).
#[derive(Serialize)]
pub(crate) struct Record<'a> {
    pub schema: &'static str,
    pub event_id: EventId,
    pub event: &'static str,
    pub ts: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttfb_us: Option<Option<u64>>,
    pub proxy: ProxyPart<'a>,
    pub session: SessionPart,
    pub client: ClientPart<'a>,
    pub db: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryPart<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Option<RoutePart>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Option<BackendPart<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Option<ResultPart<'a>>>,
    /// Why the session ended (`disconnect` only, when the proxy closed it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl Record<'_> {
    /// The record as JSON, in a buffer of about `hint` bytes.
    pub(crate) fn to_json(&self, hint: usize) -> Vec<u8> {
        self.json_in(Vec::with_capacity(hint))
    }

    /// The record as JSON, written into `out` (empty).
    pub(crate) fn json_in(&self, mut out: Vec<u8>) -> Vec<u8> {
        // Writing into a Vec cannot fail, and every part serializes infallibly.
        if serde_json::to_writer(&mut out, self).is_err() {
            out.clear();
        }
        out
    }
}

#[derive(Serialize)]
pub(crate) struct ProxyPart<'a> {
    pub instance: &'a str,
    pub service: &'a str,
    pub listener: &'a str,
}

#[derive(Serialize)]
pub(crate) struct SessionPart {
    pub id: switchyard_api::SessionId,
    pub seq: u64,
    pub in_txn: Option<bool>,
    pub autocommit: Option<bool>,
}

#[derive(Serialize)]
pub(crate) struct ClientPart<'a> {
    pub user: &'a str,
    pub ip: IpAddr,
    pub port: u16,
    pub tls: Option<bool>,
    pub program: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct QueryPart<'a> {
    pub command: &'static str,
    pub text: Option<&'a str>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub invalid_utf8: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_id: Option<switchyard_api::StmtId>,
    pub digest: Option<Digest>,
    pub digest_text: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct RoutePart {
    pub target: &'static str,
    pub reason: Option<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct BackendPart<'a> {
    pub name: &'a str,
    pub addr: &'a str,
    pub server_id: Option<u32>,
}

#[derive(Serialize)]
pub(crate) struct ResultPart<'a> {
    pub ok: bool,
    pub error_code: u16,
    pub sqlstate: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_sent: Option<u64>,
    /// `Some(None)` is written as `null`: a reply that sent rows affected none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A UUID v7 (time-ordered), written in its hyphenated form.
pub(crate) struct EventId(uuid::Uuid);

impl EventId {
    /// An id for an event at `at`. Its random bits come from a per-thread generator seeded
    /// once from the OS: `Uuid::now_v7` would make a `getrandom` call for every record.
    pub(crate) fn at(at: SystemTime) -> Self {
        let millis = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (a, b) = RANDOM.with(|state| {
            let a = splitmix64(state);
            (a, splitmix64(state))
        });
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes()[..2]);
        EventId(uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid())
    }
}

thread_local! {
    static RANDOM: Cell<u64> = Cell::new({
        let (hi, lo) = uuid::Uuid::now_v7().as_u64_pair();
        lo ^ hi.rotate_left(32)
    });
}

/// The next output of a SplitMix64 generator: distinct for 2^64 calls from one seed.
fn splitmix64(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = uuid::Uuid::encode_buffer();
        s.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

/// A UTC time written as RFC 3339 with microseconds.
pub(crate) struct Timestamp(pub SystemTime);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_micros(self.0))
    }
}

/// A statement fingerprint, written as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Digest(pub u64);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 16];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = HEX[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        // Hex digits are ASCII.
        s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

/// The most bytes of a user or database name a record carries. The server accepts user names
/// of 128 characters and database names of 64 (MariaDB 10.11: `mysql.global_priv.User` is
/// 128 utf8mb3 characters, 384 bytes); 512 bytes holds 128 characters of any UTF-8, so a name
/// the server accepts is never cut, and a padded one cannot swell every record.
pub(crate) const NAME_MAX_BYTES: usize = 512;

/// The most bytes of the `program_name` connection attribute a record carries: clients cut
/// attribute values at 1024 bytes (libmysqlclient's limit), so a real program name fits.
pub(crate) const PROGRAM_MAX_BYTES: usize = 1024;

/// The most bytes of an error message a record carries: the server's own messages are at most
/// 512 bytes (`MYSQL_ERRMSG_SIZE`); the proxy's may quote what the client sent.
pub(crate) const MESSAGE_MAX_BYTES: usize = 512;

/// `s` cut to at most `max` bytes (on a character boundary) followed by the marker
/// `…[N more bytes]`, the wording the proxy's logs use for cut client text. Borrowed when it
/// fits, so the usual case costs one length check.
pub(crate) fn capped(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let end = floor_char_boundary(s, max);
    let mut out = String::with_capacity(end + 24);
    out.push_str(&s[..end]);
    push_marker(&mut out, s.len() - end);
    Cow::Owned(out)
}

/// Cuts an owned `s` in place like [`capped`]; true if it was cut.
pub(crate) fn cap_in_place(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let end = floor_char_boundary(s, max);
    let left = s.len() - end;
    s.truncate(end);
    push_marker(s, left);
    s.shrink_to_fit();
    true
}

fn push_marker(out: &mut String, left: usize) {
    // Writing to a String cannot fail.
    let _ = write!(out, "…[{left} more bytes]");
}

/// The largest char boundary of `s` at or below `max`.
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The SQLSTATE bytes of an error as text (`HY000` if they are not ASCII).
pub(crate) fn sqlstate(bytes: &[u8; 5]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.bytes().all(|b| b.is_ascii_alphanumeric()) => s,
        _ => "HY000",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_16_hex_digits() {
        let j = serde_json::to_string(&Digest(0xab)).unwrap();
        assert_eq!(j, "\"00000000000000ab\"");
        assert_eq!(Digest(u64::MAX).to_string(), "ffffffffffffffff");
        let j = serde_json::to_string(&Digest(0x0123_4567_89ab_cdef)).unwrap();
        assert_eq!(j, "\"0123456789abcdef\"");
    }

    #[test]
    fn timestamp_has_microseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_767_268_800_123_456);
        let j = serde_json::to_string(&Timestamp(t)).unwrap();
        assert_eq!(j, "\"2026-01-01T12:00:00.123456Z\"");
    }

    #[test]
    fn event_ids_are_v7_unique_and_time_ordered() {
        let id = |t| {
            serde_json::to_value(EventId::at(t))
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        };
        let t0 = SystemTime::now();
        let a = id(t0);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(
            matches!(&a[19..20], "8" | "9" | "a" | "b"),
            "RFC 4122 variant: {a}"
        );
        assert!(a < id(t0 + std::time::Duration::from_millis(2)));
        let same_ms: std::collections::HashSet<String> = (0..10_000).map(|_| id(t0)).collect();
        assert_eq!(same_ms.len(), 10_000);
        let other = std::thread::spawn(move || id(t0)).join().unwrap();
        assert!(!same_ms.contains(&other));
    }

    #[test]
    fn caps_mark_the_cut() {
        assert!(matches!(capped("app", 3), Cow::Borrowed("app")));
        assert_eq!(capped("abcdef", 4), "abcd…[2 more bytes]");
        // "é" is two bytes: the cut backs off to a char boundary.
        assert_eq!(capped("aéé", 2), "a…[4 more bytes]");
        assert_eq!(capped("ééé", 1), "…[6 more bytes]");
        let mut s = "x".repeat(70_000);
        assert!(cap_in_place(&mut s, NAME_MAX_BYTES));
        assert_eq!(s, format!("{}…[69488 more bytes]", "x".repeat(512)));
        assert!(s.capacity() < 600);
        let mut short = String::from("shop");
        assert!(!cap_in_place(&mut short, NAME_MAX_BYTES));
        assert_eq!(short, "shop");
    }

    #[test]
    fn sqlstates() {
        assert_eq!(sqlstate(b"42S02"), "42S02");
        assert_eq!(sqlstate(b"\xff2000"), "HY000");
        assert_eq!(sqlstate(b"42 02"), "HY000");
    }
}
