//! The per-session half: classifies each command once and decides where it goes, from what it
//! has learnt of the session so far (transaction state from the servers' status flags,
//! temporary tables, prepared statements, which backends are open or failed, the last write's
//! GTID).
//!
//! The order of the rules in [`RwSplitSession::route`] is the routing table of the design:
//! session commands, the open transaction, transaction boundaries, hints, then the statement's
//! own needs from the strongest (primary only) to the weakest (any replica).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_api::{
    GtidWait, Reply, RouteError, RouteHint, RoutePlan, RouteReason, RouteTarget, RouterSession,
    Server, ServerName, ServerRole, ServerSet, Statement, StmtId,
};
use switchyard_protocol::caps::{
    SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS, SERVER_STATUS_IN_TRANS_READONLY,
};
use switchyard_protocol::Command;
use switchyard_sql::classify::{dropped_database, use_target};
use switchyard_sql::{
    classify_with_mode, mentions_table, parse_prepare, statement_name, Classification, Flags,
    Lexer, SqlMode, StatementKind, TableName, TokenKind,
};

use crate::config::{CausalReads, PrimaryFailureMode};
use crate::hint::{self, Hint};
use crate::{gtid, select, Shared};

/// How long a backend that failed is left out of replica selection (unless its role changes
/// first).
const FAILED_FOR: Duration = Duration::from_secs(10);

/// Flags of statements that run on the primary only (besides `GLOBAL_VAR`, which changes the
/// server rather than the session).
fn primary_only() -> Flags {
    Flags::STORED_FUNCTION
        | Flags::LAST_INSERT_ID
        | Flags::LOCK_FUNCTION
        | Flags::CALL
        | Flags::SEQUENCE
        | Flags::MULTI_STATEMENT
        | Flags::LOAD_DATA
        | Flags::INTO_OUTFILE
        | Flags::XA
}

/// Flags of statements that read what the previous statement left behind.
fn previous() -> Flags {
    Flags::FOUND_ROWS | Flags::SHOW_WARNINGS
}

/// Flags of statements that may assign user variables where only the server sees it: what
/// they assign lives on the backend they ran on.
fn assigns_unseen() -> Flags {
    Flags::ASSIGNS_USER_VAR | Flags::CALL | Flags::STORED_FUNCTION | Flags::WRITE
}

/// Flags that keep a session command from running on every backend.
fn not_everywhere() -> Flags {
    primary_only() | previous() | Flags::WRITE | Flags::FOR_UPDATE
}

/// The transaction the servers say is open.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trx {
    None,
    /// Open on `server` (the primary, or for a read-only transaction usually a replica).
    Open {
        server: ServerName,
        read_only: bool,
    },
}

/// Session state that some statement left on the primary only, so that later statements
/// depending on it must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pinned {
    Nothing,
    /// User variables were assigned on the primary only: reads that use them go there.
    UserVars,
    /// A stored program ran on the primary: it may have set user variables and session
    /// system variables there (`SET @@sort_buffer_size = ...` in a function), so reads that
    /// use either go there.
    Variables,
    /// A session command could not run everywhere (a multi-statement `SET ...; SELECT ...`):
    /// the backends differ, so everything goes to the primary.
    Everything,
}

/// What a prepared statement (text or binary) was prepared from.
#[derive(Debug)]
struct Prepared {
    class: Classification,
    sql: Box<[u8]>,
}

/// A backend that failed, left out of replica selection for a while.
#[derive(Debug)]
struct Failed {
    server: ServerName,
    at: Instant,
    /// The server's role when the router next looked; a change of role ends the exclusion.
    role: Option<ServerRole>,
}

/// The session's last write, for causal reads.
#[derive(Debug, Default)]
struct Causal {
    /// The GTID of the session's last write; empty before the first.
    gtid: String,
    /// `gtid` shared with wait plans, made on the first wait after a write.
    shared: Option<Arc<str>>,
    /// Replicas known to have replicated `gtid`.
    past: Vec<ServerName>,
    /// A statement that may have written ran on the primary, and its reply brought no GTID (it
    /// failed, its result set ended with an EOF that carries no session state, it changed
    /// nothing): what it wrote is not known, so reads stay on the primary until a reply
    /// brings the GTID of a write.
    unseen: bool,
}

pub(crate) struct RwSplitSession {
    shared: Arc<Shared>,
    trx: Trx,
    autocommit: bool,
    /// The `sql_mode` of the statement being planned (the runtime follows the session's).
    sql_mode: SqlMode,
    pinned: Pinned,
    /// The planned command's reply ends with server status flags worth reading.
    expect_status: bool,
    /// A COM_STMT_PREPARE waiting for its reply (and its client-visible id).
    pending_prepare: Option<Arc<Prepared>>,
    /// The replica the planned command waits on for a GTID.
    waiting_on: Option<ServerName>,
    /// The planned command may write on the primary.
    may_write: bool,
    /// The session's default database, as the router saw it chosen (at login, by `USE` or
    /// COM_INIT_DB).
    db: Option<String>,
    /// The database the planned `USE` or COM_INIT_DB switches to, once it succeeds.
    switching_db: Option<String>,
    /// `LOCK TABLES` ran and no `UNLOCK TABLES` or transaction start has released the locks:
    /// the session reads only what it locked, on the primary.
    tables_locked: bool,
    temp_tables: Vec<TableName>,
    /// Text prepared statements by name (names ignore ASCII case).
    text_prepared: Vec<(Vec<u8>, Arc<Prepared>)>,
    binary_prepared: HashMap<StmtId, Arc<Prepared>>,
    /// The server whose reply the client got last.
    previous: Option<ServerName>,
    /// Servers this session has a working connection to, as far as the router knows.
    open: Vec<ServerName>,
    failed: Vec<Failed>,
    /// A replica left with a read-only transaction open (a statement ended the transaction
    /// implicitly, on the primary): its snapshot is stale, so autocommit reads avoid it.
    abandoned: Option<ServerName>,
    /// The server that had the primary role when last seen.
    primary_name: Option<ServerName>,
    causal: Causal,
}

/// What a filter's hint asks of one plan: a target (in place of a comment hint), or a
/// replication lag limit (in place of the router's own).
#[derive(Clone, Copy, Default)]
struct Hints<'h> {
    target: Option<&'h RouteHint>,
    max_lag: Option<Duration>,
}

impl<'h> Hints<'h> {
    fn of(hint: &'h RouteHint) -> Self {
        match hint {
            RouteHint::MaxReplicationLag(limit) => Hints {
                target: None,
                max_lag: Some(*limit),
            },
            target => Hints {
                target: Some(target),
                max_lag: None,
            },
        }
    }
}

impl RwSplitSession {
    pub(crate) fn new(shared: Arc<Shared>, db: Option<String>) -> Self {
        RwSplitSession {
            shared,
            trx: Trx::None,
            autocommit: true,
            sql_mode: SqlMode::default(),
            pinned: Pinned::Nothing,
            expect_status: false,
            pending_prepare: None,
            waiting_on: None,
            may_write: false,
            db,
            switching_db: None,
            tables_locked: false,
            temp_tables: Vec::new(),
            text_prepared: Vec::new(),
            binary_prepared: HashMap::new(),
            previous: None,
            open: Vec::new(),
            failed: Vec::new(),
            abandoned: None,
            primary_name: None,
            causal: Causal::default(),
        }
    }
}

impl RouterSession for RwSplitSession {
    fn connect(&mut self, servers: &ServerSet) -> RoutePlan {
        if let Some(p) = self.primary(servers) {
            self.mark_open(&p.name);
            self.previous = Some(p.name.clone());
            return plan(p, RouteReason::Write);
        }
        if self.shared.config.primary_failure_mode == PrimaryFailureMode::FailInstantly {
            return close(RouteError::unavailable(
                "no primary server is available".to_string(),
            ));
        }
        match self.pick_replica(servers, false, None) {
            Some(r) => {
                self.mark_open(&r.name);
                self.previous = Some(r.name.clone());
                plan(r, RouteReason::Read)
            }
            None => close(RouteError::unavailable(
                "neither a primary nor a replica is available".to_string(),
            )),
        }
    }

    fn plan(&mut self, stmt: &mut Statement<'_>, servers: &ServerSet) -> RoutePlan {
        // Cloned (an `Arc` at most) so that the statement can be asked for more.
        let hint = stmt.hint().cloned();
        let hints = hint.as_ref().map_or_else(Hints::default, Hints::of);
        self.sql_mode = stmt.sql_mode();
        self.may_write = false;
        self.switching_db = None;
        self.pending_prepare = None;
        let cmd = stmt.command();
        self.expect_status = cmd.reply_has_status();
        match *cmd {
            Command::Query(sql) => self.query(stmt, sql, servers, hints),
            Command::StmtPrepare(sql) => {
                // Prepared everywhere, so that it can run wherever its executions go.
                let class = stmt.classification().cloned().unwrap_or_default();
                self.pending_prepare = Some(Arc::new(Prepared {
                    class,
                    sql: sql.into(),
                }));
                self.everywhere(false, servers)
            }
            // Long data goes where the execute that follows it will run.
            Command::StmtExecute { stmt_id, .. } | Command::StmtSendLongData { stmt_id } => {
                match self.binary_prepared.get(&StmtId(stmt_id)).cloned() {
                    Some(p) => self.route(&p.class, &p.sql, servers, false, hints),
                    None => self.unknown(servers),
                }
            }
            Command::InitDb(db) => {
                self.switching_db = Some(String::from_utf8_lossy(db).into_owned());
                self.everywhere(true, servers)
            }
            Command::SetOption(_) => self.everywhere(true, servers),
            Command::FieldList(payload) => self.field_list(payload, servers, hints),
            Command::Ping | Command::Statistics | Command::StmtFetch { .. } => {
                self.previous_or_read(servers, hints)
            }
            _ => self.unknown(servers),
        }
    }

    fn on_reply(&mut self, reply: &Reply<'_>) {
        let server = reply.server;
        if self.pending_prepare.is_some() {
            // A prepare runs everywhere and leaves what FOUND_ROWS() reads as it was: the
            // statement before it stays the previous one.
            self.mark_open(server);
        } else if self.previous.as_ref() != Some(server) {
            // `previous` is always open (a lost backend stops being `previous`), so only a
            // change of server can open one.
            self.previous = Some(server.clone());
            self.mark_open(server);
        }
        let ok = reply.summary.error.is_none();
        if let Some(db) = self.switching_db.take().filter(|_| ok) {
            self.db = Some(db);
        }
        if let Some(p) = self.pending_prepare.take() {
            if let (true, Some(id)) = (ok, reply.prepared_id) {
                self.binary_prepared.insert(id, p);
            }
        }
        if self.expect_status && ok {
            self.track_status(server, reply.summary.status);
        }
        let waited = self.waiting_on.take();
        if let Some(g) = reply.last_gtid.filter(|g| *g != self.causal.gtid) {
            self.causal.gtid.clear();
            self.causal.gtid.push_str(g);
            self.causal.shared = None;
            self.causal.past.clear();
            self.causal.unseen = false;
        } else if self.may_write && self.primary_name.as_ref() == Some(server) {
            self.causal.unseen = true;
        } else if let Some(w) = waited {
            // A read whose wait fails runs on the primary (the plan's fallback), so a reply
            // from the replica itself means the wait succeeded.
            if ok && w == *server && !self.causal.past.contains(&w) {
                self.causal.past.push(w);
            }
        }
    }

    fn on_statement_closed(&mut self, id: StmtId) {
        self.binary_prepared.remove(&id);
    }

    fn on_reset(&mut self) {
        // The backends are the same, and so is what they have replicated; the session state
        // on them is gone.
        self.trx = Trx::None;
        self.autocommit = true;
        self.tables_locked = false;
        self.pinned = Pinned::Nothing;
        self.pending_prepare = None;
        self.temp_tables.clear();
        self.text_prepared.clear();
        self.binary_prepared.clear();
        self.abandoned = None;
    }

    fn on_backend_closed(&mut self, server: &ServerName, why: &str) -> Option<RouteError> {
        self.open.retain(|s| s != server);
        self.causal.past.retain(|s| s != server);
        if self.previous.as_ref() == Some(server) {
            self.previous = None;
        }
        if self.abandoned.as_ref() == Some(server) {
            self.abandoned = None;
        }
        self.failed.retain(|f| f.server != *server);
        self.failed.push(Failed {
            server: server.clone(),
            at: Instant::now(),
            role: None,
        });
        if let Trx::Open { server: s, .. } = &self.trx {
            if s == server {
                self.trx = Trx::None;
                return Some(killed(format!(
                    "the transaction was lost with server '{server}': {why}"
                )));
            }
        }
        let primary = self.primary_name.as_ref() == Some(server);
        if primary && self.shared.config.primary_failure_mode == PrimaryFailureMode::FailInstantly {
            return Some(RouteError::unavailable(format!(
                "the primary server is lost: {why}"
            )));
        }
        None
    }
}

impl RwSplitSession {
    fn query(
        &mut self,
        stmt: &mut Statement<'_>,
        sql: &[u8],
        servers: &ServerSet,
        hints: Hints<'_>,
    ) -> RoutePlan {
        let Some(class) = stmt.classification() else {
            return self.unknown(servers);
        };
        match class.kind {
            StatementKind::Use => self.switching_db = use_target(sql),
            StatementKind::Drop => self.dropping_database(sql),
            StatementKind::Lock => self.tables_locked = true,
            StatementKind::Unlock => self.tables_locked = false,
            StatementKind::Prepare => self.text_prepare(sql),
            StatementKind::Deallocate => {
                if let Some(name) = statement_name(sql) {
                    self.text_prepared
                        .retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
                }
            }
            StatementKind::Execute if !class.flags.contains(Flags::MULTI_STATEMENT) => {
                let prepared = statement_name(sql).and_then(|name| {
                    self.text_prepared
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                        .map(|(_, p)| p.clone())
                });
                if let Some(p) = prepared {
                    return self.route(&p.class, &p.sql, servers, false, hints);
                }
            }
            _ => {}
        }
        self.route(class, sql, servers, true, hints)
    }

    /// `DROP DATABASE` of the session's default database leaves the primary's session without
    /// one, and the other backends' sessions in a database that is gone: the backends differ,
    /// so the session stays on the primary.
    fn dropping_database(&mut self, sql: &[u8]) {
        let current = self.db.as_deref();
        if dropped_database(sql)
            .is_some_and(|d| current.is_some_and(|c| c.eq_ignore_ascii_case(&d)))
        {
            self.pinned = Pinned::Everything;
        }
    }

    /// Records what `PREPARE name FROM ...` prepares; a source the proxy cannot see
    /// (`FROM @var`) counts as a write.
    fn text_prepare(&mut self, sql: &[u8]) {
        let Some(p) = parse_prepare(sql) else { return };
        let prepared = match p.source {
            Some(source) => Prepared {
                class: classify_with_mode(&source, self.sql_mode),
                sql: source.into(),
            },
            None => Prepared {
                class: Classification {
                    flags: Flags::WRITE,
                    ..Classification::default()
                },
                sql: Box::default(),
            },
        };
        self.text_prepared
            .retain(|(n, _)| !n.eq_ignore_ascii_case(&p.name));
        self.text_prepared.push((p.name, Arc::new(prepared)));
    }

    /// Routes a classified statement. `sql` is its text (for hints and temporary tables);
    /// `dedup` is false for statements that run with parameters (their text says nothing of
    /// what they set).
    fn route(
        &mut self,
        c: &Classification,
        sql: &[u8],
        servers: &ServerSet,
        dedup: bool,
        hints: Hints<'_>,
    ) -> RoutePlan {
        let f = c.flags;
        let primary = self.primary(servers);
        if let Some(lost) = self.fail_instantly(primary) {
            return lost;
        }
        if f.intersects(Flags::CREATE_TEMP_TABLE | Flags::DROP_TABLE) {
            self.track_temp_tables(c);
        }

        // Session state must be the same on every backend, inside a transaction or not.
        let assigns_in_read = f.contains(Flags::READ | Flags::ASSIGNS_USER_VAR);
        if f.contains(Flags::SESSION_CMD) || assigns_in_read {
            let one_backend = f.intersects(not_everywhere()) || self.mentions_temp_table(sql);
            if !one_backend && !f.contains(Flags::GLOBAL_VAR) {
                let dedup = dedup && !assigns_in_read && dedup_safe(c, sql, self.sql_mode);
                return RoutePlan::new(RouteTarget::All { dedup }, RouteReason::SessionCommand);
            }
            if one_backend {
                // What it sets lives on the backend it runs on: later statements follow.
                let only_user_vars = assigns_in_read
                    || c.kind == StatementKind::Set
                        && f.contains(Flags::ASSIGNS_USER_VAR)
                        && !f.intersects(
                            Flags::MULTI_STATEMENT | Flags::AUTOCOMMIT_OFF | Flags::AUTOCOMMIT_ON,
                        );
                let pin = if only_user_vars {
                    Pinned::UserVars
                } else {
                    Pinned::Everything
                };
                self.pinned = self.pinned.max(pin);
            }
        } else if f.intersects(assigns_unseen()) {
            // `SELECT ... INTO @x FOR UPDATE`, `UPDATE ... SET a = (@x := ...)`, and what the
            // proxy cannot see: a procedure's `SET @x` or its OUT parameter, a stored
            // function's, a trigger's. Such values live on the primary only; a stored
            // program may have set session system variables there too.
            let pin = if f.intersects(Flags::CALL | Flags::STORED_FUNCTION) {
                Pinned::Variables
            } else {
                Pinned::UserVars
            };
            self.pinned = self.pinned.max(pin);
        }

        self.may_write = (f.intersects(Flags::WRITE | Flags::CALL | Flags::STORED_FUNCTION)
            || !f.contains(Flags::READ))
            && !f.intersects(Flags::BEGIN_TRX | Flags::COMMIT | Flags::ROLLBACK);
        if let Some(plan) = self.in_transaction(f, primary, servers) {
            return plan;
        }
        if f.contains(Flags::BEGIN_TRX) {
            // A transaction's start releases the table locks.
            self.tables_locked = false;
        }
        if self.tables_locked && !matches!(c.kind, StatementKind::Lock | StatementKind::Unlock) {
            return self.on_primary(primary, RouteReason::LockedTables);
        }
        if f.contains(Flags::BEGIN_TRX) {
            if f.contains(Flags::BEGIN_READ_ONLY_TRX) && self.autocommit {
                return self.read_only_begin(primary, servers, hints);
            }
            return self.on_primary(primary, RouteReason::Transaction);
        }
        if f.intersects(Flags::COMMIT | Flags::ROLLBACK) {
            return self.on_primary(primary, RouteReason::Transaction);
        }
        if let Some(plan) = self.hinted(f, sql, primary, servers, hints) {
            return plan;
        }
        if f.intersects(previous()) && !f.intersects(primary_only() | Flags::WRITE) {
            if let Some(s) = self.previous_server(servers) {
                return plan(s, RouteReason::Previous);
            }
        }
        if f.contains(Flags::FOR_UPDATE) {
            return self.on_primary(primary, RouteReason::LockingRead);
        }
        if f.intersects(primary_only() | Flags::GLOBAL_VAR) {
            return self.on_primary(primary, RouteReason::PrimaryOnly);
        }
        if f.contains(Flags::WRITE) || !f.contains(Flags::READ) {
            return self.on_primary(primary, RouteReason::Write);
        }
        // With no primary, a replica's copy of the variables (what was broadcast) beats none.
        let pinned = match self.pinned {
            Pinned::Nothing => false,
            Pinned::UserVars => f.contains(Flags::USES_USER_VAR) && primary.is_some(),
            Pinned::Variables => {
                f.intersects(Flags::USES_USER_VAR | Flags::USES_SESSION_VAR) && primary.is_some()
            }
            Pinned::Everything => true,
        };
        if pinned {
            return self.on_primary(primary, RouteReason::PrimaryOnly);
        }
        if self.mentions_temp_table(sql) {
            return self.on_primary(primary, RouteReason::TempTable);
        }
        self.read(primary, servers, hints)
    }

    /// Where a statement goes because a transaction is open (or autocommit is off); `None`
    /// outside one.
    fn in_transaction(
        &mut self,
        f: Flags,
        primary: Option<&Arc<Server>>,
        servers: &ServerSet,
    ) -> Option<RoutePlan> {
        match &self.trx {
            Trx::Open {
                server,
                read_only: true,
            } => {
                let on_primary = self.primary_name.as_ref() == Some(server);
                if f.contains(Flags::IMPLICIT_COMMIT)
                    && !f.contains(Flags::BEGIN_READ_ONLY_TRX)
                    && !on_primary
                {
                    // A DDL or a read-write BEGIN commits the read-only transaction where it
                    // runs, on the primary; the replica's transaction stays open.
                    self.abandoned = Some(server.clone());
                    self.trx = Trx::None;
                    return None;
                }
                Some(match servers.get(server.as_str()) {
                    Some(s) if s.role != ServerRole::Down => {
                        plan(s, RouteReason::ReadOnlyTransaction)
                    }
                    _ => close(killed(format!(
                        "the read-only transaction was lost: server '{server}' is gone"
                    ))),
                })
            }
            Trx::Open { server, .. } => Some(match primary {
                Some(p) if p.name == *server => plan(p, RouteReason::Transaction),
                _ => close(killed(format!(
                    "the transaction was lost: server '{server}' is no longer the primary"
                ))),
            }),
            Trx::None if !self.autocommit => {
                Some(self.on_primary(primary, RouteReason::Transaction))
            }
            Trx::None => None,
        }
    }

    /// `START TRANSACTION READ ONLY`: one replica for the whole transaction.
    fn read_only_begin(
        &mut self,
        primary: Option<&Arc<Server>>,
        servers: &ServerSet,
        hints: Hints<'_>,
    ) -> RoutePlan {
        if let Some(r) = self.pick_replica(servers, true, hints.max_lag) {
            if self.abandoned.as_ref() == Some(&r.name) {
                // The new transaction ends the stale one.
                self.abandoned = None;
            }
            return self.on_replica(r, RouteReason::ReadOnlyTransaction, primary);
        }
        match primary {
            Some(p) => retryable(plan(p, RouteReason::ReadOnlyTransaction)),
            None => error(RouteError::unavailable(
                "no server is available for a read-only transaction: no replica qualifies \
                 and the primary is lost"
                    .to_string(),
            )),
        }
    }

    /// A routing hint, unless the statement must not move (session commands and open
    /// transactions were handled before).
    fn hinted(
        &mut self,
        f: Flags,
        sql: &[u8],
        primary: Option<&Arc<Server>>,
        servers: &ServerSet,
        hints: Hints<'_>,
    ) -> Option<RoutePlan> {
        let hint = match hints.target {
            Some(RouteHint::Primary) => Hint::Primary,
            Some(RouteHint::Replica) => Hint::Replica,
            Some(RouteHint::Server(name)) => Hint::Server(name.as_str().as_bytes()),
            Some(RouteHint::MaxReplicationLag(_)) | None => hint::parse(sql, self.sql_mode)?,
        };
        let read = f.contains(Flags::READ) && !f.contains(Flags::WRITE);
        let mut plan = match hint {
            Hint::Primary => self.on_primary(primary, RouteReason::Hint),
            Hint::Replica => match self.pick_replica(servers, false, hints.max_lag) {
                Some(r) => self.on_replica(r, RouteReason::Hint, primary),
                None => self.on_primary(primary, RouteReason::Hint),
            },
            Hint::Server(name) => {
                let s = servers.get(std::str::from_utf8(name).ok()?)?;
                if s.role == ServerRole::Down || s.maintenance {
                    return None;
                }
                plan(s, RouteReason::Hint)
            }
        };
        plan.retryable = read && matches!(plan.target, RouteTarget::Server(_));
        Some(plan)
    }

    /// An autocommit read: a replica by policy, else the primary if it may take reads.
    fn read(
        &mut self,
        primary: Option<&Arc<Server>>,
        servers: &ServerSet,
        hints: Hints<'_>,
    ) -> RoutePlan {
        let causal = self.shared.config.causal_reads != CausalReads::None;
        if let Some(p) = primary.filter(|_| causal && self.causal.unseen) {
            return retryable(plan(p, RouteReason::ReadOnPrimary));
        }
        if let Some(r) = self.pick_replica(servers, false, hints.max_lag) {
            return self.on_replica(r, RouteReason::Read, primary);
        }
        let config = &self.shared.config;
        let causal_fast = config.causal_reads == CausalReads::Fast && !self.causal.gtid.is_empty();
        if !config.primary_accepts_reads && !causal_fast {
            return error(RouteError::unavailable(
                "no replica is available for a read, and primary_accepts_reads is false"
                    .to_string(),
            ));
        }
        match primary {
            Some(p) => retryable(plan(p, RouteReason::ReadOnPrimary)),
            None => error(RouteError::unavailable(
                "no replica is available for a read, and the primary is lost".to_string(),
            )),
        }
    }

    /// A plan for replica `r`, waiting for the session's last write if causal reads ask so;
    /// a read whose wait fails runs on the primary.
    fn on_replica(
        &mut self,
        r: &Arc<Server>,
        reason: RouteReason,
        primary: Option<&Arc<Server>>,
    ) -> RoutePlan {
        let mut p = retryable(plan(r, reason));
        let causal = &mut self.causal;
        if self.shared.config.causal_reads == CausalReads::Local
            && !causal.gtid.is_empty()
            && !causal.past.contains(&r.name)
            && !r
                .gtid_pos
                .as_deref()
                .is_some_and(|pos| gtid::reached(pos, &causal.gtid))
        {
            let gtid = causal
                .shared
                .get_or_insert_with(|| Arc::from(causal.gtid.as_str()))
                .clone();
            p.wait_gtid = Some(GtidWait {
                gtid,
                timeout: self.shared.config.causal_reads_timeout,
                fallback: primary.cloned(),
            });
            self.waiting_on = Some(r.name.clone());
        }
        p
    }

    /// A statement that needs the primary; without one, what `primary_failure_mode` says.
    fn on_primary(&self, primary: Option<&Arc<Server>>, reason: RouteReason) -> RoutePlan {
        match primary {
            Some(p) => plan(p, reason),
            None => match self.shared.config.primary_failure_mode {
                PrimaryFailureMode::FailInstantly | PrimaryFailureMode::FailOnWrite => {
                    close(self.primary_lost())
                }
                PrimaryFailureMode::ErrorOnWrite => error(RouteError {
                    code: 1290,
                    sqlstate: "HY000",
                    message: "The MariaDB server is running with the --read-only option so it \
                              cannot execute this statement"
                        .to_string(),
                }),
            },
        }
    }

    /// With `fail_instantly`, every command ends the session once the primary is gone.
    fn fail_instantly(&self, primary: Option<&Arc<Server>>) -> Option<RoutePlan> {
        (primary.is_none()
            && self.shared.config.primary_failure_mode == PrimaryFailureMode::FailInstantly)
            .then(|| close(self.primary_lost()))
    }

    fn primary_lost(&self) -> RouteError {
        RouteError::unavailable(match &self.primary_name {
            Some(name) => format!(
                "the primary server is lost: '{name}' is no longer a usable primary and no \
                 other server took its place"
            ),
            None => "the primary server is lost: no server has the primary role".to_string(),
        })
    }

    /// A session command: every backend.
    fn everywhere(&mut self, dedup: bool, servers: &ServerSet) -> RoutePlan {
        let primary = self.primary(servers);
        if let Some(lost) = self.fail_instantly(primary) {
            return lost;
        }
        RoutePlan::new(RouteTarget::All { dedup }, RouteReason::SessionCommand)
    }

    /// A command the router does not know: the primary.
    fn unknown(&mut self, servers: &ServerSet) -> RoutePlan {
        let primary = self.primary(servers);
        if let Some(plan) = self.in_transaction(Flags::WRITE, primary, servers) {
            return plan;
        }
        self.on_primary(primary, RouteReason::Write)
    }

    /// COM_FIELD_LIST: a read, of a table named in the command.
    fn field_list(&mut self, payload: &[u8], servers: &ServerSet, hints: Hints<'_>) -> RoutePlan {
        let table = payload.split(|&b| b == 0).next().unwrap_or_default();
        let c = Classification {
            kind: StatementKind::Show,
            flags: Flags::READ,
            statements: 1,
            tables: Vec::new(),
        };
        if self
            .temp_tables
            .iter()
            .any(|t| t.name.eq_ignore_ascii_case(table))
        {
            let primary = self.primary(servers);
            if let Some(plan) = self.in_transaction(c.flags, primary, servers) {
                return plan;
            }
            return self.on_primary(primary, RouteReason::TempTable);
        }
        self.route(&c, b"", servers, false, hints)
    }

    /// COM_PING, COM_STATISTICS: the server the session used last, else like a read.
    fn previous_or_read(&mut self, servers: &ServerSet, hints: Hints<'_>) -> RoutePlan {
        if let Some(s) = self.previous_server(servers) {
            return plan(s, RouteReason::Previous);
        }
        let c = Classification {
            flags: Flags::READ,
            ..Classification::default()
        };
        self.route(&c, b"", servers, false, hints)
    }

    fn previous_server<'s>(&self, servers: &'s ServerSet) -> Option<&'s Arc<Server>> {
        let s = servers.get(self.previous.as_ref()?.as_str())?;
        (s.role != ServerRole::Down).then_some(s)
    }

    /// The primary, if this session may use it: not in maintenance, and if draining, only
    /// when the session already has a connection to it. A primary in maintenance keeps the
    /// transaction open on it.
    fn primary<'s>(&mut self, servers: &'s ServerSet) -> Option<&'s Arc<Server>> {
        let p = servers.primary()?;
        if self.primary_name.as_ref() != Some(&p.name) {
            self.primary_name = Some(p.name.clone());
        }
        let trx_on_it = matches!(&self.trx, Trx::Open { server, .. } if *server == p.name);
        let usable = trx_on_it || !p.maintenance && (!p.drain || self.is_open(&p.name));
        usable.then_some(p)
    }

    /// A replica for a read, by the configured policy, among those that qualify: a replica
    /// role, not in maintenance, not draining unless already open, within the lag limit, not
    /// recently failed, and for `causal_reads: fast`, past the session's last write.
    fn pick_replica<'s>(
        &mut self,
        servers: &'s ServerSet,
        allow_abandoned: bool,
        max_lag: Option<Duration>,
    ) -> Option<&'s Arc<Server>> {
        if !self.failed.is_empty() {
            self.expire_failed(servers);
        }
        let config = &self.shared.config;
        let lag_limit = max_lag.or(config.max_replication_lag);
        let past_gtid = (config.causal_reads == CausalReads::Fast && !self.causal.gtid.is_empty())
            .then_some(self.causal.gtid.as_str());
        let qualifies = |s: &Server| {
            s.role == ServerRole::Replica
                && !s.maintenance
                && (!s.drain || self.is_open(&s.name))
                && lag_limit.is_none_or(|limit| {
                    s.lag_seconds
                        .is_some_and(|lag| Duration::from_secs(lag) <= limit)
                })
                && !self.failed.iter().any(|f| f.server == s.name)
                && (allow_abandoned || self.abandoned.as_ref() != Some(&s.name))
                && past_gtid
                    .is_none_or(|g| s.gtid_pos.as_deref().is_some_and(|p| gtid::reached(p, g)))
        };
        select::pick(
            config.replica_selection,
            &self.shared.round_robin,
            servers,
            qualifies,
            |s| self.is_open(&s.name),
        )
    }

    fn expire_failed(&mut self, servers: &ServerSet) {
        let now = Instant::now();
        self.failed.retain_mut(|f| {
            let role = servers.get(f.server.as_str()).map(|s| s.role);
            let same_role = match f.role {
                None => {
                    f.role = role;
                    true
                }
                Some(before) => role == Some(before),
            };
            same_role && now.duration_since(f.at) < FAILED_FOR
        });
    }

    /// Learns the transaction state and autocommit from a reply's status flags.
    fn track_status(&mut self, server: &ServerName, status: u16) {
        self.autocommit = status & SERVER_STATUS_AUTOCOMMIT != 0;
        let in_trx = status & SERVER_STATUS_IN_TRANS != 0;
        let read_only = status & SERVER_STATUS_IN_TRANS_READONLY != 0;
        match &self.trx {
            // A session command answered by the primary while a read-only transaction runs
            // on a replica says nothing about that transaction.
            Trx::Open { server: s, .. } if s != server => {}
            Trx::Open { read_only: ro, .. } if in_trx && *ro == read_only => {}
            _ if in_trx => {
                self.trx = Trx::Open {
                    server: server.clone(),
                    read_only,
                }
            }
            _ => self.trx = Trx::None,
        }
    }

    fn track_temp_tables(&mut self, c: &Classification) {
        if c.flags.contains(Flags::CREATE_TEMP_TABLE) {
            for t in &c.tables {
                if !self
                    .temp_tables
                    .iter()
                    .any(|x| x.name.eq_ignore_ascii_case(&t.name))
                {
                    self.temp_tables.push(t.clone());
                }
            }
        } else {
            // `DROP TABLE t` drops a temporary `t` first, whatever the schema.
            self.temp_tables.retain(|x| {
                !c.tables
                    .iter()
                    .any(|t| t.name.eq_ignore_ascii_case(&x.name))
            });
        }
    }

    fn mentions_temp_table(&self, sql: &[u8]) -> bool {
        !self.temp_tables.is_empty() && mentions_table(sql, &self.temp_tables)
    }

    fn is_open(&self, name: &ServerName) -> bool {
        self.open.contains(name)
    }

    fn mark_open(&mut self, name: &ServerName) {
        if !self.is_open(name) {
            self.open.push(name.clone());
        }
        if let Some(i) = self.failed.iter().position(|f| f.server == *name) {
            self.failed.swap_remove(i);
        }
    }
}

/// True if a session command may replace an identical earlier one in the history: a `SET`
/// or `USE` whose values are constants (no variables, no function calls, no placeholders),
/// so that running it again later gives the same state whatever ran in between.
fn dedup_safe(c: &Classification, sql: &[u8], mode: SqlMode) -> bool {
    if !matches!(c.kind, StatementKind::Set | StatementKind::Use)
        || c.flags
            .intersects(Flags::USES_USER_VAR | Flags::ASSIGNS_USER_VAR | Flags::MULTI_STATEMENT)
    {
        return false;
    }
    let mut in_value = false;
    for t in Lexer::with_mode(sql, mode) {
        match t.kind {
            TokenKind::Symbol if t.text == b"=" || t.text == b":=" => in_value = true,
            TokenKind::Symbol if t.text == b"," => in_value = false,
            TokenKind::Symbol if t.text == b"(" => return false,
            TokenKind::SysVar | TokenKind::UserVar | TokenKind::Placeholder if in_value => {
                return false
            }
            _ => {}
        }
    }
    true
}

fn plan(server: &Arc<Server>, reason: RouteReason) -> RoutePlan {
    RoutePlan::new(RouteTarget::Server(server.clone()), reason)
}

fn retryable(mut plan: RoutePlan) -> RoutePlan {
    plan.retryable = true;
    plan
}

fn close(e: RouteError) -> RoutePlan {
    RoutePlan::new(RouteTarget::Close(e), RouteReason::Unavailable)
}

fn error(e: RouteError) -> RoutePlan {
    RoutePlan::new(RouteTarget::Error(e), RouteReason::Unavailable)
}

/// The error that ends a session whose transaction was lost (as the server words a killed
/// connection).
fn killed(message: String) -> RouteError {
    RouteError {
        code: 1927,
        sqlstate: "70100",
        message: format!("Connection was killed: {message}"),
    }
}
