//! The per-session half: follows the session's database and prepared statements, and turns
//! each command and its reply into one record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use switchyard_api::{
    ClientInfo, FilterSession, LoginFailure, ReplyInfo, Statement, StmtId, Verdict,
};
use switchyard_protocol::caps::{SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS};
use switchyard_protocol::Command;

use crate::feed::Feed;
use crate::record::{
    cap_in_place, capped, floor_char_boundary, sqlstate, BackendPart, ClientPart, Digest, EventId,
    ProxyPart, QueryPart, Record, ResultPart, RoutePart, SessionPart, Timestamp, MESSAGE_MAX_BYTES,
    NAME_MAX_BYTES, PROGRAM_MAX_BYTES, SCHEMA,
};
use crate::redact::redact;
use crate::scope::Scope;

/// What every session of one filter shares.
pub(crate) struct Shared {
    pub instance: String,
    pub canonical_only: bool,
    pub max_text_bytes: usize,
    pub scope: Scope,
    pub feed: Feed,
}

/// A statement's text as records carry it: redacted, capped, with its digest. A session
/// refills one for each statement, keeping its buffers.
#[derive(Debug, Default)]
pub(crate) struct Text {
    /// Unused with `canonical_only`: the digest text stands for the text.
    text: String,
    canonical_only: bool,
    truncated: bool,
    invalid_utf8: bool,
    digest_text: String,
    fingerprint: u64,
}

impl Text {
    /// Makes this the text of `raw`, reusing the buffers.
    pub(crate) fn fill(&mut self, raw: &[u8], canonical_only: bool, max: usize) {
        // The digest is made from the redacted text: the digest keeps words, and a password
        // that one `sql_mode` reading puts outside every string (`'a\' , PASSWORD('x')`) would
        // otherwise reach the record in the digest text. Masks are literals or symbols, so
        // the fingerprint of an ordinary password statement is the same either way.
        let redacted = redact(raw);
        switchyard_sql::digest_into(&redacted, &mut self.digest_text);
        self.fingerprint = switchyard_sql::fingerprint(&self.digest_text);
        let digest_cut = cap(&mut self.digest_text, max);
        self.canonical_only = canonical_only;
        self.text.clear();
        if canonical_only {
            self.truncated = digest_cut;
            self.invalid_utf8 = std::str::from_utf8(raw).is_err();
        } else {
            (self.truncated, self.invalid_utf8) = capped_text(&redacted, max, &mut self.text);
        }
    }

    fn text(&self) -> &str {
        if self.canonical_only {
            &self.digest_text
        } else {
            &self.text
        }
    }
}

/// `bytes` as text of at most `max` bytes, appended to `out`: (truncated, invalid UTF-8
/// replaced).
fn capped_text(bytes: &[u8], max: usize, out: &mut String) -> (bool, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let end = floor_char_boundary(s, max);
            out.push_str(&s[..end]);
            (end < s.len(), false)
        }
        Err(_) => {
            // Replacements only ever lengthen the text, so a char cut at the end of this
            // prefix lands past `max` and is cut off again below.
            let prefix = &bytes[..bytes.len().min(max.saturating_add(4))];
            out.push_str(&String::from_utf8_lossy(prefix));
            let cut = cap(out, max);
            (cut || prefix.len() < bytes.len(), true)
        }
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary; true if it was cut.
fn cap(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    s.truncate(floor_char_boundary(s, max));
    true
}

/// A database name from the client's bytes, capped at [`NAME_MAX_BYTES`]: a `COM_INIT_DB` of
/// megabytes is refused by the server, and must not be copied whole before it is.
fn db_name(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => capped(s, NAME_MAX_BYTES).into_owned(),
        Err(_) => {
            let head = &bytes[..bytes.len().min(NAME_MAX_BYTES)];
            let mut s = String::from_utf8_lossy(head).into_owned();
            if head.len() < bytes.len() {
                s.push_str(&format!("…[{} more bytes]", bytes.len() - head.len()));
            } else {
                // Replacement characters may have lengthened it past the cap.
                cap_in_place(&mut s, NAME_MAX_BYTES);
            }
            s
        }
    }
}

/// The client-chosen names of a session (user, database, program) capped once when the
/// session starts, so that every record after costs nothing more.
fn capped_client(client: &ClientInfo) -> ClientInfo {
    let mut c = client.clone();
    cap_in_place(&mut c.user, NAME_MAX_BYTES);
    if let Some(db) = &mut c.db {
        cap_in_place(db, NAME_MAX_BYTES);
    }
    if let Some(program) = &mut c.program {
        cap_in_place(program, PROGRAM_MAX_BYTES);
    }
    c
}

/// The text of a command in flight: its own, or the prepared statement's.
enum TextRef {
    Owned(Text),
    Shared(Arc<Text>),
}

impl TextRef {
    fn get(&self) -> &Text {
        match self {
            TextRef::Owned(t) => t,
            TextRef::Shared(t) => t,
        }
    }
}

/// What a command changes in the session's state when it succeeds.
enum Effect {
    None,
    /// `COM_INIT_DB` or `USE`: the session's database.
    UseDb(String),
    /// `COM_STMT_PREPARE`: a statement id to remember.
    Prepare,
    /// `COM_STMT_CLOSE`: a statement id to forget (there is no reply to wait for).
    Close(StmtId),
    /// `COM_RESET_CONNECTION`, `COM_CHANGE_USER`: the prepared statements are gone.
    Reset,
}

/// A command waiting for its reply.
struct Pending {
    command: &'static str,
    /// False when `match` / `exclude` leave the statement out.
    recorded: bool,
    text: Option<TextRef>,
    statement_id: Option<StmtId>,
    effect: Effect,
}

/// The per-session half of [`crate::QueryLog`] for a session that is recorded.
pub(crate) struct QueryLogSession {
    shared: Arc<Shared>,
    client: ClientInfo,
    db: Option<String>,
    /// The number of the session's last record.
    seq: u64,
    /// Server status flags of the last reply that carried them.
    status: Option<u16>,
    opened: Instant,
    /// Client statement id → its text (`None`: the statement is not recorded).
    statements: HashMap<StmtId, Option<Arc<Text>>>,
    pending: Option<Pending>,
    closed: bool,
    /// The size of the last record, to size the next one's buffer.
    json_hint: usize,
    /// The text of the last command recorded, whose buffers the next one refills.
    spare_text: Option<Text>,
}

/// The largest text buffer a session keeps for its next statement (an idle session holds it).
const SPARE_TEXT_MAX: usize = 8 << 10;

impl QueryLogSession {
    /// Starts the session and records its `connect`.
    pub(crate) fn new(shared: Arc<Shared>, client: &ClientInfo) -> QueryLogSession {
        let client = capped_client(client);
        let mut s = QueryLogSession {
            shared,
            db: client.db.clone(),
            client,
            seq: 0,
            status: None,
            opened: Instant::now(),
            statements: HashMap::new(),
            pending: None,
            closed: false,
            json_hint: 768,
            spare_text: None,
        };
        s.emit_event("connect", None, None);
        s
    }

    fn pending_for(&mut self, stmt: &Statement<'_>) -> Option<Pending> {
        let cmd = stmt.command();
        let command = cmd.name();
        let (raw, effect) = match *cmd {
            // The disconnect record tells of it.
            Command::Quit => return None,
            Command::Query(sql) => (
                Some(sql),
                stmt.use_target().map_or(Effect::None, |mut db| {
                    cap_in_place(&mut db, NAME_MAX_BYTES);
                    Effect::UseDb(db)
                }),
            ),
            Command::StmtPrepare(sql) => (Some(sql), Effect::Prepare),
            Command::InitDb(db) => (Some(db), Effect::UseDb(db_name(db))),
            Command::StmtExecute { stmt_id, .. }
            | Command::StmtFetch { stmt_id, .. }
            | Command::StmtReset { stmt_id }
            | Command::StmtSendLongData { stmt_id } => {
                return Some(self.on_statement(command, StmtId(stmt_id), Effect::None))
            }
            Command::StmtClose { stmt_id } => {
                let id = StmtId(stmt_id);
                return Some(self.on_statement(command, id, Effect::Close(id)));
            }
            Command::ResetConnection | Command::ChangeUser(_) => (None, Effect::Reset),
            _ => (None, Effect::None),
        };
        let sh = &self.shared;
        let recorded = match raw {
            Some(raw) if sh.scope.has_regexes() => {
                sh.scope.statement(Some(&String::from_utf8_lossy(raw)))
            }
            Some(_) => true,
            None => sh.scope.statement(None),
        };
        let text = raw.filter(|_| recorded).map(|raw| {
            let mut text = self.spare_text.take().unwrap_or_default();
            text.fill(raw, sh.canonical_only, sh.max_text_bytes);
            TextRef::Owned(text)
        });
        Some(Pending {
            command,
            recorded,
            text,
            statement_id: None,
            effect,
        })
    }

    /// A command on a prepared statement: it carries the statement's text and fate.
    fn on_statement(&self, command: &'static str, id: StmtId, effect: Effect) -> Pending {
        let (recorded, text) = match self.statements.get(&id) {
            Some(Some(t)) => (true, Some(TextRef::Shared(t.clone()))),
            Some(None) => (false, None),
            // Prepared before this session half knew of it, or a bad id.
            None => (self.shared.scope.statement(None), None),
        };
        Pending {
            command,
            recorded,
            text,
            statement_id: Some(id),
            effect,
        }
    }

    /// The command is recorded: its text's buffers serve the next one, unless a huge
    /// statement grew them.
    fn done(&mut self, p: &mut Pending) {
        if let Some(TextRef::Owned(text)) = p.text.take() {
            if text.digest_text.capacity() <= SPARE_TEXT_MAX
                && text.text.capacity() <= SPARE_TEXT_MAX
            {
                self.spare_text = Some(text);
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn send(&mut self, json: Vec<u8>) {
        self.json_hint = json.len() + 64;
        self.shared.feed.send(self.client.session_id.0, json);
    }

    fn proxy(&self) -> ProxyPart<'_> {
        ProxyPart {
            instance: &self.shared.instance,
            service: &self.client.service,
            listener: &self.client.listener,
        }
    }

    fn client_part(&self) -> ClientPart<'_> {
        ClientPart {
            user: &self.client.user,
            ip: self.client.client_addr.ip(),
            port: self.client.client_addr.port(),
            tls: Some(self.client.tls),
            program: self.client.program.as_deref(),
        }
    }

    fn session_part(&self, seq: u64) -> SessionPart {
        SessionPart {
            id: self.client.session_id,
            seq,
            in_txn: self.status.map(|s| s & SERVER_STATUS_IN_TRANS != 0),
            autocommit: self.status.map(|s| s & SERVER_STATUS_AUTOCOMMIT != 0),
        }
    }

    /// Records `connect` or `disconnect`.
    fn emit_event(&mut self, event: &'static str, duration: Option<Duration>, why: Option<&str>) {
        let seq = self.next_seq();
        let now = SystemTime::now();
        let json = Record {
            schema: SCHEMA,
            event_id: EventId::at(now),
            event,
            ts: Timestamp(now),
            duration_us: duration.map(|d| Some(micros(d))),
            ttfb_us: None,
            proxy: self.proxy(),
            session: self.session_part(seq),
            client: self.client_part(),
            db: self.db.as_deref(),
            query: None,
            route: None,
            backend: None,
            result: None,
            reason: why,
        }
        .json_in(self.shared.feed.buffers.take(self.json_hint));
        self.send(json);
    }

    /// Records a command; `reply` is `None` for one the session ended before it was answered.
    fn emit_query(&mut self, p: &Pending, reply: Option<&ReplyInfo<'_>>) {
        let seq = self.next_seq();
        let text = p.text.as_ref().map(TextRef::get);
        let ts = match reply {
            Some(r) => {
                let now = SystemTime::now();
                now.checked_sub(r.started.elapsed()).unwrap_or(now)
            }
            None => SystemTime::now(),
        };
        let message = reply
            .and_then(|r| r.proxy_error)
            .map(|m| capped(m, MESSAGE_MAX_BYTES));
        let json = Record {
            schema: SCHEMA,
            event_id: EventId::at(ts),
            event: "query",
            ts: Timestamp(ts),
            duration_us: Some(reply.map(|r| micros(r.last_byte))),
            ttfb_us: Some(reply.and_then(|r| r.first_byte).map(micros)),
            proxy: self.proxy(),
            session: self.session_part(seq),
            client: self.client_part(),
            db: self.db.as_deref(),
            query: Some(QueryPart {
                command: p.command,
                text: text.map(Text::text),
                truncated: text.is_some_and(|t| t.truncated),
                invalid_utf8: text.is_some_and(|t| t.invalid_utf8),
                statement_id: p.statement_id,
                digest: text.map(|t| Digest(t.fingerprint)),
                digest_text: text.map(|t| t.digest_text.as_str()),
            }),
            route: Some(reply.map(|r| RoutePart {
                target: r.routed_to.as_str(),
                reason: r.reason.map(|r| r.as_str()),
            })),
            backend: Some(reply.and_then(|r| r.server).map(|s| BackendPart {
                name: s.name.as_str(),
                addr: &s.address,
                server_id: s.server_id,
            })),
            result: Some(reply.map(|r| result_part(r, message.as_deref()))),
            reason: None,
        }
        .json_in(self.shared.feed.buffers.take(self.json_hint));
        self.send(json);
    }
}

/// The record of a refused login. Its user, database and message are what the client sent
/// (or quote it), so each is capped: a padded name must not make the record too large for
/// Kafka, where it would be lost.
pub(crate) fn login_failed_record(instance: &str, f: &LoginFailure<'_>) -> Vec<u8> {
    let now = SystemTime::now();
    let user = capped(f.user, NAME_MAX_BYTES);
    let db = f.db.map(|d| capped(d, NAME_MAX_BYTES));
    let message = capped(f.message, MESSAGE_MAX_BYTES);
    Record {
        schema: SCHEMA,
        event_id: EventId::at(now),
        event: "login_failed",
        ts: Timestamp(now),
        duration_us: None,
        ttfb_us: None,
        proxy: ProxyPart {
            instance,
            service: f.service,
            listener: f.listener,
        },
        session: SessionPart {
            id: f.session_id,
            seq: 1,
            in_txn: None,
            autocommit: None,
        },
        client: ClientPart {
            user: &user,
            ip: f.client_addr.ip(),
            port: f.client_addr.port(),
            tls: None,
            program: None,
        },
        db: db.as_deref(),
        query: None,
        route: None,
        backend: None,
        result: Some(Some(ResultPart {
            ok: false,
            error_code: f.error_code,
            sqlstate: f.sqlstate,
            rows_sent: None,
            rows_affected: None,
            warnings: None,
            reply_bytes: None,
            message: Some(&message),
        })),
        reason: None,
    }
    .to_json(512)
}

/// The `result` part of a query record.
fn result_part<'a>(r: &ReplyInfo<'a>, message: Option<&'a str>) -> ResultPart<'a> {
    let s = r.summary;
    let (error_code, state) = match &s.error {
        Some(e) => (e.code, sqlstate(&e.sqlstate)),
        None => (0, "00000"),
    };
    // Only OK packets count affected rows: a reply of result sets alone has no such count.
    let rows_affected =
        (s.result_sets > s.column_sets || s.column_sets == 0).then_some(s.affected_rows);
    ResultPart {
        ok: s.error.is_none(),
        error_code,
        sqlstate: state,
        rows_sent: Some(s.rows),
        rows_affected: Some(rows_affected),
        warnings: Some(s.warnings),
        reply_bytes: Some(s.bytes),
        message,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl FilterSession for QueryLogSession {
    fn on_command(&mut self, stmt: &mut Statement<'_>) -> Verdict {
        if let Some(mut p) = self.pending.take() {
            // The previous command never got its reply: record it as it is.
            if p.recorded {
                self.emit_query(&p, None);
            }
            self.done(&mut p);
        }
        self.pending = self.pending_for(stmt);
        Verdict::Pass
    }

    fn on_reply(&mut self, reply: &ReplyInfo<'_>) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        let ok = reply.summary.error.is_none();
        if ok && reply.summary.result_sets > 0 {
            self.status = Some(reply.summary.status);
        }
        if let (Effect::Prepare, Some(id), true) = (&p.effect, reply.statement_id, ok) {
            let shared = match p.text.take() {
                Some(TextRef::Owned(t)) => Some(Arc::new(t)),
                Some(TextRef::Shared(t)) => Some(t),
                None => None,
            };
            p.text = shared.clone().map(TextRef::Shared);
            p.statement_id = Some(id);
            self.statements.insert(id, shared.filter(|_| p.recorded));
        }
        if p.recorded {
            self.emit_query(&p, Some(reply));
        }
        self.done(&mut p);
        match p.effect {
            Effect::UseDb(db) if ok => self.db = Some(db),
            Effect::Close(id) => {
                self.statements.remove(&id);
            }
            Effect::Reset if ok => self.statements.clear(),
            _ => {}
        }
    }

    fn on_close(&mut self, why: Option<&str>) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        if let Some(p) = self.pending.take() {
            if p.recorded {
                self.emit_query(&p, None);
            }
        }
        let lasted = self.opened.elapsed();
        self.emit_event("disconnect", Some(lasted), why);
    }
}

/// The session half for a session that is not recorded at all.
pub(crate) struct Unrecorded;

impl FilterSession for Unrecorded {
    fn on_command(&mut self, _stmt: &mut Statement<'_>) -> Verdict {
        Verdict::Pass
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
