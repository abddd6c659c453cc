//! Statement classification: query text → [`Classification`] (kind + routing flags).
//!
//! The classifier reads the token stream once, with a cloned lexer as lookahead. It decides the
//! statement kind from its leading keywords and collects flags from the whole text (function
//! calls, variables, locking clauses). A text with several `;`-separated statements is
//! classified statement by statement: the kind is the first statement's, the flags are the union
//! of all, and [`Flags::MULTI_STATEMENT`] is set. Bodies of stored programs (`CREATE PROCEDURE
//! ... BEGIN ...; ...; END`, `BEGIN NOT ATOMIC`) are not split, as the server parses them whole.
//!
//! Known limits, all on the safe side (towards the primary) unless noted:
//! - executable comments are assumed to run whatever their version number (`/*M!` as on
//!   MariaDB);
//! - `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES` must be passed through [`classify_with_mode`], or
//!   a string or `"identifier"` ending in a backslash can hide a following statement (not
//!   safe: the router must track `sql_mode`); with `ORACLE`, `name := expr` is a `SET`;
//! - text `EXECUTE` is a write: use [`crate::prepared`] to classify what was prepared;
//! - a call of a stored function or UDF (a name followed by `(` that is not built-in, see
//!   [`crate::builtins`]) sets [`Flags::STORED_FUNCTION`], as the function may write; in DDL
//!   (`CREATE`, `ALTER`) names before `(` are only looked at after a `SELECT`, and never in
//!   the body of a stored program;
//! - `SET [SESSION] TRANSACTION READ ONLY` does not mark the next `BEGIN` read-only;
//! - unquoted `user@host` reads as a user variable (only in account statements, all writes).

use crate::builtins;
use crate::lexer::{Lexer, SqlMode, Token, TokenKind};
use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};

/// A set of classification flags (a `u32` bitset).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u32);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $bit:expr;)*) => {
        impl Flags {
            $($(#[$doc])* pub const $name: Flags = Flags(1 << $bit);)*
            const NAMES: &'static [(&'static str, Flags)] = &[$((stringify!($name), Flags::$name)),*];
        }
    };
}

flags! {
    /// Reads data and changes nothing: may run on a replica.
    READ = 0;
    /// Changes data or server state, or is not understood: runs on the primary.
    WRITE = 1;
    /// Changes session state (`SET`, `USE`, `SET NAMES`, text `PREPARE`/`DEALLOCATE`): runs on
    /// every backend and is kept in the session history.
    SESSION_CMD = 2;
    /// Starts a transaction (`BEGIN`, `START TRANSACTION`, `COMMIT AND CHAIN`, ...).
    BEGIN_TRX = 3;
    /// Starts a read-only transaction (`START TRANSACTION READ ONLY`); set with `BEGIN_TRX`.
    BEGIN_READ_ONLY_TRX = 4;
    /// Ends a transaction with `COMMIT`.
    COMMIT = 5;
    /// Ends a transaction with `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`).
    ROLLBACK = 6;
    /// Reads a user variable (`@x`).
    USES_USER_VAR = 7;
    /// Assigns a user variable (`SET @a=`, `SELECT @a:=1`, `SELECT ... INTO @a`).
    ASSIGNS_USER_VAR = 8;
    /// `CREATE [OR REPLACE] TEMPORARY TABLE`; the name is in [`Classification::tables`].
    CREATE_TEMP_TABLE = 9;
    /// `DROP [TEMPORARY] TABLE`; the names are in [`Classification::tables`].
    DROP_TABLE = 10;
    /// Calls `GET_LOCK`, `RELEASE_LOCK`, `IS_FREE_LOCK`, `IS_USED_LOCK` or `RELEASE_ALL_LOCKS`.
    LOCK_FUNCTION = 11;
    /// Reads the last insert id: `LAST_INSERT_ID()`, `@@identity`, `@@last_insert_id`.
    LAST_INSERT_ID = 12;
    /// A locking read: `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
    FOR_UPDATE = 13;
    /// A `CALL` of a stored procedure.
    CALL = 14;
    /// More than one non-empty statement separated by `;`.
    MULTI_STATEMENT = 15;
    /// `LOAD DATA [LOCAL] INFILE` or `LOAD XML`.
    LOAD_DATA = 16;
    /// Commits an open transaction implicitly (DDL, `LOCK TABLES`, `GRANT`, `BEGIN`, ...).
    IMPLICIT_COMMIT = 17;
    /// Uses a sequence: `NEXTVAL()`, `SETVAL()`, `LASTVAL()`, `NEXT/PREVIOUS VALUE FOR`.
    SEQUENCE = 18;
    /// Reads the previous statement's row count: `FOUND_ROWS()`, `ROW_COUNT()`.
    FOUND_ROWS = 19;
    /// Reads the previous statement's diagnostics: `SHOW WARNINGS/ERRORS`, `GET DIAGNOSTICS`,
    /// `@@warning_count`, `@@error_count`.
    SHOW_WARNINGS = 20;
    /// An `XA` statement.
    XA = 21;
    /// `SET autocommit=0` (also `@@autocommit`, `@@session.autocommit`, `OFF`, `FALSE`).
    AUTOCOMMIT_OFF = 22;
    /// `SET autocommit=1` (also `ON`, `TRUE`, `DEFAULT`).
    AUTOCOMMIT_ON = 23;
    /// `SELECT ... INTO OUTFILE/DUMPFILE`: writes a file on the server (also sets `WRITE`).
    INTO_OUTFILE = 24;
    /// `SET GLOBAL`/`@@global.` assignment (also sets `SESSION_CMD`).
    GLOBAL_VAR = 25;
    /// Calls a stored function or UDF (`f()`, `db.f()`: a name that is not built-in), which may
    /// change data: the statement belongs on the primary even if it is a `SELECT`.
    STORED_FUNCTION = 26;
    /// Reads a session system variable (`@@x`, `@@session.x`; not `@@global.x`), which a
    /// stored program may have set.
    USES_SESSION_VAR = 27;
}

impl Flags {
    /// No flags.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True if every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any flag of `other` is set.
    #[inline]
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Sets the flags of `other`.
    #[inline]
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    #[inline]
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    /// The names of the set flags, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .iter()
            .filter(move |(_, f)| self.contains(*f))
            .map(|(n, _)| *n)
    }

    /// The flag called `name` (as in [`Flags::names`]), if there is one.
    pub fn from_name(name: &str) -> Option<Flags> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        for (i, n) in self.names().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(n)?;
        }
        f.write_str(")")
    }
}

/// The kind of a statement, from its leading keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StatementKind {
    /// `SELECT`, `VALUES`, `TABLE t`, `WITH ... SELECT`, `(SELECT ...) UNION ...`.
    Select,
    /// `INSERT` (also `INSERT ... SELECT`, `... ON DUPLICATE KEY UPDATE`, `WITH ... INSERT`).
    Insert,
    /// `UPDATE` (also `WITH ... UPDATE`).
    Update,
    /// `DELETE` (also `WITH ... DELETE`).
    Delete,
    /// `REPLACE`.
    Replace,
    /// `SET` (variables, `NAMES`, `TRANSACTION`, `PASSWORD`, `ROLE`).
    Set,
    /// `USE db`.
    Use,
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT`.
    Savepoint,
    /// `XA START/END/PREPARE/COMMIT/ROLLBACK/RECOVER`.
    Xa,
    /// `SHOW ...`.
    Show,
    /// `EXPLAIN`, `DESCRIBE`, `DESC`, MariaDB `ANALYZE SELECT`.
    Explain,
    /// `CALL`.
    Call,
    /// Text `PREPARE`.
    Prepare,
    /// Text `EXECUTE`, `EXECUTE IMMEDIATE`.
    Execute,
    /// `DEALLOCATE PREPARE`, `DROP PREPARE`.
    Deallocate,
    /// `CREATE ...`.
    Create,
    /// `ALTER ...`.
    Alter,
    /// `DROP ...` (not `DROP PREPARE`).
    Drop,
    /// `RENAME TABLE/USER`.
    Rename,
    /// `TRUNCATE [TABLE]`.
    Truncate,
    /// `LOAD DATA`, `LOAD XML`.
    Load,
    /// `LOCK TABLE(S)`.
    Lock,
    /// `UNLOCK TABLES`.
    Unlock,
    /// `GRANT`, `REVOKE`.
    Grant,
    /// `DO expr`.
    Do,
    /// `HANDLER t OPEN/READ/CLOSE`.
    Handler,
    /// Anything else (also empty input).
    #[default]
    Other,
}

/// A table name from `CREATE TEMPORARY TABLE` or `DROP TABLE`, unquoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName {
    /// The schema, when the name is qualified (`db.t`).
    pub schema: Option<Vec<u8>>,
    /// The table name.
    pub name: Vec<u8>,
}

/// The result of [`classify`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Classification {
    /// The kind of the (first) statement.
    pub kind: StatementKind,
    /// The flags of all statements together.
    pub flags: Flags,
    /// How many non-empty statements the text holds.
    pub statements: u32,
    /// Tables created by `CREATE TEMPORARY TABLE` or dropped by `DROP [TEMPORARY] TABLE`, in
    /// text order. Empty (and not allocated) for every other statement.
    pub tables: Vec<TableName>,
}

/// How deep `SET STATEMENT ... FOR` may nest before the classifier gives up (conservatively).
const MAX_NESTING: u32 = 8;

/// Classifies one query text (one `COM_QUERY` payload, possibly several statements), for the
/// default `sql_mode`.
pub fn classify(sql: &[u8]) -> Classification {
    classify_with_mode(sql, SqlMode::default())
}

/// Classifies one query text lexed for the session's `sql_mode` (see [`SqlMode`]).
pub fn classify_with_mode(sql: &[u8], mode: SqlMode) -> Classification {
    let mut out = Classification::default();
    let mut w = Walker {
        lex: Lexer::with_mode(sql, mode),
        split: true,
        ended: false,
        oracle: mode.oracle,
    };
    while let Some(first) = w.lex.next() {
        if first.is_symbol(b";") {
            continue; // an empty statement
        }
        let mut st = Stmt::default();
        st.scan(first, &w);
        let kind = st.statement(&mut w, first, 0);
        // Consume what the statement handler left (it may stop early).
        while let Some(t) = w.next() {
            st.scan(t, &w);
        }
        w.split = true;
        w.ended = false;
        out.statements += 1;
        if out.statements == 1 {
            out.kind = kind;
        }
        out.flags |= st.flags;
        out.tables.append(&mut st.tables);
    }
    if out.statements > 1 {
        out.flags |= Flags::MULTI_STATEMENT;
    }
    out
}

/// A token source for one statement: `next` stops at a `;` (consuming it) when splitting.
struct Walker<'a> {
    lex: Lexer<'a>,
    split: bool,
    /// The statement's terminating `;` has been consumed.
    ended: bool,
    /// `sql_mode=ORACLE`: `name := expr` is an assignment statement.
    oracle: bool,
}

impl<'a> Walker<'a> {
    #[inline]
    fn next(&mut self) -> Option<Token<'a>> {
        if self.ended {
            return None;
        }
        let t = self.lex.next()?;
        if self.split && t.is_symbol(b";") {
            self.ended = true;
            return None;
        }
        Some(t)
    }

    #[inline]
    fn peek(&self) -> Option<Token<'a>> {
        if self.ended {
            return None;
        }
        let t = self.lex.peek()?;
        if self.split && t.is_symbol(b";") {
            return None;
        }
        Some(t)
    }

    /// Consumes the next token if it is the word `kw`.
    fn eat_word(&mut self, kw: &[u8]) -> bool {
        match self.peek() {
            Some(t) if t.is_word(kw) => {
                self.lex.next();
                true
            }
            _ => false,
        }
    }
}

/// The database a `USE <name>` statement switches to.
pub fn use_target(sql: &[u8]) -> Option<String> {
    let mut tokens = Lexer::new(sql);
    if !tokens.next()?.is_word(b"USE") {
        return None;
    }
    last_name(tokens)
}

/// The database a `DROP {DATABASE|SCHEMA} [IF EXISTS] <name>` statement drops.
pub fn dropped_database(sql: &[u8]) -> Option<String> {
    let mut tokens = Lexer::new(sql);
    if !tokens.next()?.is_word(b"DROP") {
        return None;
    }
    let what = tokens.next()?;
    if !what.is_word(b"DATABASE") && !what.is_word(b"SCHEMA") {
        return None;
    }
    let mut rest = tokens.clone();
    if rest.next()?.is_word(b"IF") && rest.next()?.is_word(b"EXISTS") {
        tokens = rest;
    }
    last_name(tokens)
}

/// The name that ends the statement in `tokens` (a `;` may follow), unquoted.
fn last_name(mut tokens: Lexer<'_>) -> Option<String> {
    let name = tokens.next()?;
    match tokens.next() {
        None => {}
        Some(t) if t.is_symbol(b";") && tokens.next().is_none() => {}
        Some(_) => return None,
    }
    let text = match name.kind {
        TokenKind::Word => String::from_utf8_lossy(name.text).into_owned(),
        TokenKind::QuotedIdent => String::from_utf8_lossy(name.inner()).replace("``", "`"),
        _ => return None,
    };
    Some(text)
}

/// Upper-cases a short word into `buf`; longer words give an empty slice (no keyword matches).
#[inline]
fn upper<'b>(w: &[u8], buf: &'b mut [u8; 24]) -> &'b [u8] {
    if w.len() > buf.len() {
        return &[];
    }
    let b = &mut buf[..w.len()];
    b.copy_from_slice(w);
    b.make_ascii_uppercase();
    b
}

#[inline]
fn word_upper<'b>(t: Option<Token<'_>>, buf: &'b mut [u8; 24]) -> &'b [u8] {
    match t {
        Some(t) if t.kind == TokenKind::Word => upper(t.text, buf),
        _ => &[],
    }
}

/// Per-statement state.
#[derive(Default)]
struct Stmt<'a> {
    flags: Flags,
    tables: Vec<TableName>,
    prev: Option<Token<'a>>,
    /// Inside a `... INTO @a, @b` list.
    into_list: bool,
    /// `@x =` assigns (`GET DIAGNOSTICS @x = NUMBER`).
    eq_assigns: bool,
    /// Parenthesis depth of the scanned tokens.
    depth: u32,
    /// Where a `WITH` list is, so that `cte (a, b) AS` is not read as a call.
    cte: Cte,
    /// The depth of the `WITH` list `cte` follows.
    cte_depth: u32,
    /// The token before the current (possibly qualified) name: `INTO` in `INTO db.t`.
    before_name: Option<Token<'a>>,
    /// The current name is qualified (`db.f`).
    qualified: bool,
    /// The last `.` followed an identifier (a qualified name may go on).
    dot_after_ident: bool,
    /// Whether a name before `(` may be a function call (not in DDL column lists).
    calls: Calls,
}

/// Where the scanner is in a `WITH [RECURSIVE] name [(cols)] AS (body), ...` list.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Cte {
    #[default]
    Off,
    /// Expecting `RECURSIVE` or a CTE name.
    Name,
    /// After the name: `(` opens a column list, not a call.
    AfterName,
    /// Inside the column list.
    ColList,
    /// After the column list, expecting `AS`.
    BeforeAs,
    /// After `AS`, expecting the body's `(`.
    BeforeBody,
    /// Inside the body.
    Body,
    /// After the body: `,` starts the next CTE.
    AfterBody,
}

/// Whether `name (` is looked at as a call.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Calls {
    #[default]
    On,
    /// DDL: off until a `SELECT` (`CREATE TABLE t (a DECIMAL(10,2)) SELECT f()`).
    UntilSelect,
    /// The body of a stored program: not run now.
    Off,
}

impl<'a> Stmt<'a> {
    fn set(&mut self, f: Flags) {
        self.flags |= f;
    }

    /// Looks at one token of the statement body for flags that do not depend on the kind.
    fn scan(&mut self, t: Token<'a>, w: &Walker<'a>) {
        match t.kind {
            TokenKind::Symbol => {
                if t.text == b"(" {
                    let cte_name = self.cte == Cte::AfterName && self.depth == self.cte_depth;
                    let name = self
                        .prev
                        .filter(|p| matches!(p.kind, TokenKind::Word | TokenKind::QuotedIdent));
                    if let Some(p) = name {
                        // Cheap length filter before upper-casing: only a few names matter.
                        if p.kind == TokenKind::Word
                            && matches!(p.text.len(), 6..=10 | 12 | 14 | 17)
                        {
                            let mut buf = [0u8; 24];
                            self.function(upper(p.text, &mut buf));
                        }
                        if !cte_name && self.is_stored_call(p) {
                            self.set(Flags::STORED_FUNCTION);
                        }
                    }
                    self.cte_step(t);
                    self.depth += 1;
                } else if t.text == b")" {
                    self.depth = self.depth.saturating_sub(1);
                    self.cte_step(t);
                } else {
                    if t.text == b"." {
                        self.dot_after_ident = self.prev.is_some_and(|p| {
                            matches!(p.kind, TokenKind::Word | TokenKind::QuotedIdent)
                        });
                    }
                    self.cte_step(t);
                }
                if t.text != b"," {
                    self.into_list = false;
                }
            }
            TokenKind::Word => {
                let text = t.text;
                self.name_start();
                if text.len() == 4 && text.eq_ignore_ascii_case(b"WITH") {
                    self.cte = Cte::Name;
                    self.cte_depth = self.depth;
                } else {
                    self.cte_step(t);
                }
                if self.calls == Calls::UntilSelect && t.is_word(b"SELECT") {
                    self.calls = Calls::On;
                }
                // Two-word markers, keyed on the previous word (FOR, IN, NEXT, PREVIOUS, INTO).
                if let Some(p) = self.prev.filter(|p| p.kind == TokenKind::Word) {
                    let is = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
                    let pt = p.text;
                    match pt.len() {
                        3 if is(pt, b"FOR") && (is(text, b"UPDATE") || is(text, b"SHARE")) => {
                            self.set(Flags::FOR_UPDATE)
                        }
                        2 if is(pt, b"IN") && is(text, b"SHARE") => self.set(Flags::FOR_UPDATE),
                        4 if self.into_list && (is(text, b"OUTFILE") || is(text, b"DUMPFILE")) => {
                            self.set(Flags::WRITE | Flags::INTO_OUTFILE)
                        }
                        4 | 8 if (is(pt, b"NEXT") || is(pt, b"PREVIOUS")) && is(text, b"VALUE") => {
                            self.set(Flags::SEQUENCE)
                        }
                        _ => {}
                    }
                }
                self.into_list = text.len() == 4 && text.eq_ignore_ascii_case(b"INTO");
            }
            TokenKind::UserVar => {
                let assigned = self.into_list
                    || w.peek().is_some_and(|n| {
                        n.is_symbol(b":=") || self.eq_assigns && n.is_symbol(b"=")
                    });
                self.set(if assigned {
                    Flags::ASSIGNS_USER_VAR
                } else {
                    Flags::USES_USER_VAR
                });
            }
            TokenKind::SysVar => {
                let inner = t.inner();
                if !inner
                    .get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"global."))
                {
                    self.set(Flags::USES_SESSION_VAR);
                }
                let name = sysvar_name(inner);
                if name.eq_ignore_ascii_case(b"identity")
                    || name.eq_ignore_ascii_case(b"last_insert_id")
                {
                    self.set(Flags::LAST_INSERT_ID);
                } else if name.eq_ignore_ascii_case(b"warning_count")
                    || name.eq_ignore_ascii_case(b"error_count")
                {
                    self.set(Flags::SHOW_WARNINGS);
                }
                self.into_list = false;
            }
            TokenKind::QuotedIdent => {
                self.name_start();
                self.cte_step(t);
                self.into_list = false;
            }
            _ => {
                self.cte_step(t);
                self.into_list = false;
            }
        }
        self.prev = Some(t);
    }

    /// Notes where the name that the current word or quoted identifier belongs to starts.
    #[inline]
    fn name_start(&mut self) {
        if self.dot_after_ident && self.prev.is_some_and(|p| p.is_symbol(b".")) {
            self.qualified = true;
        } else {
            self.qualified = false;
            self.before_name = self.prev;
        }
    }

    /// Advances the `WITH` list state over `t` (depth already lowered for a `)`).
    fn cte_step(&mut self, t: Token<'a>) {
        use Cte::*;
        if self.cte == Off {
            return;
        }
        if self.depth < self.cte_depth {
            self.cte = Off;
            return;
        }
        if self.depth > self.cte_depth {
            return;
        }
        let sym = |s: &[u8]| t.is_symbol(s);
        self.cte = match self.cte {
            ColList if sym(b")") => BeforeAs,
            Body if sym(b")") => AfterBody,
            Name if t.is_word(b"RECURSIVE") => Name,
            Name if matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent) => AfterName,
            AfterName if sym(b"(") => ColList,
            AfterName | BeforeAs if t.is_word(b"AS") => BeforeBody,
            BeforeBody if sym(b"(") => Body,
            AfterBody if sym(b",") => Name,
            _ => Off,
        };
    }

    /// Whether `name (` with `name` the previous token (a word or quoted identifier) calls a
    /// stored function: not a built-in, not a table or procedure name, not a type.
    fn is_stored_call(&self, name: Token<'a>) -> bool {
        if self.calls != Calls::On {
            return false;
        }
        if let Some(b) = self.before_name.filter(|b| b.kind == TokenKind::Word) {
            // INSERT INTO t (a), INSERT t(a), REPLACE t(a), LOAD DATA ... INTO TABLE t (a),
            // CALL p(1), CAST(x AS type(n)).
            if b.text.len() <= 12 {
                let mut buf = [0u8; 24];
                if matches!(
                    upper(b.text, &mut buf),
                    b"INTO"
                        | b"TABLE"
                        | b"CALL"
                        | b"INSERT"
                        | b"REPLACE"
                        | b"IGNORE"
                        | b"LOW_PRIORITY"
                        | b"DELAYED"
                        | b"HIGH_PRIORITY"
                        | b"AS"
                ) {
                    return false;
                }
            }
        }
        if self.qualified {
            // db.f(...) is always a stored function, whatever its name.
            return true;
        }
        match name.kind {
            TokenKind::Word => !builtins::is_builtin(name.text),
            // A quoted name calls a native function (`concat`), else a stored one.
            _ => !builtins::is_native_function(name.inner()),
        }
    }

    /// Flags for a call of the (upper-cased) function `name`.
    fn function(&mut self, name: &[u8]) {
        let f = match name {
            b"GET_LOCK" | b"RELEASE_LOCK" | b"IS_FREE_LOCK" | b"IS_USED_LOCK"
            | b"RELEASE_ALL_LOCKS" => Flags::LOCK_FUNCTION,
            b"LAST_INSERT_ID" => Flags::LAST_INSERT_ID,
            b"NEXTVAL" | b"SETVAL" | b"LASTVAL" => Flags::SEQUENCE,
            b"FOUND_ROWS" | b"ROW_COUNT" => Flags::FOUND_ROWS,
            _ => return,
        };
        self.set(f);
    }

    /// Consumes a token that the head parser looked at, keeping the scan context.
    fn take(&mut self, w: &mut Walker<'a>) -> Option<Token<'a>> {
        let t = w.next()?;
        self.scan(t, w);
        Some(t)
    }

    /// Classifies one statement from its first token; may leave the rest of it unconsumed.
    fn statement(&mut self, w: &mut Walker<'a>, first: Token<'a>, depth: u32) -> StatementKind {
        use StatementKind as K;
        if w.oracle
            && matches!(first.kind, TokenKind::Word | TokenKind::QuotedIdent)
            && w.peek().is_some_and(|t| t.is_symbol(b":="))
        {
            // sql_mode=ORACLE: `name := expr` is `SET name = expr`.
            self.set(Flags::SESSION_CMD);
            self.assignments(w, Some(first));
            return K::Set;
        }
        let mut buf = [0u8; 24];
        let mut first = Some(first);
        // `(SELECT ...) UNION (SELECT ...)`
        while first.is_some_and(|t| t.is_symbol(b"(")) {
            first = self.take(w);
        }
        let kw = word_upper(first, &mut buf);
        let write = Flags::WRITE;
        let ddl = Flags::WRITE | Flags::IMPLICIT_COMMIT;
        let (kind, flags) = match kw {
            b"SELECT" | b"VALUES" | b"TABLE" => (K::Select, Flags::READ),
            b"WITH" => return self.with(w),
            b"INSERT" => (K::Insert, write),
            b"REPLACE" => (K::Replace, write),
            b"UPDATE" => (K::Update, write),
            b"DELETE" => (K::Delete, write),
            b"SET" => return self.set_statement(w, depth),
            b"USE" => (K::Use, Flags::SESSION_CMD),
            b"BEGIN" => {
                if w.peek().is_some_and(|t| t.is_word(b"NOT")) {
                    // `BEGIN NOT ATOMIC ... END`: a compound statement.
                    w.split = false;
                    (K::Other, write)
                } else {
                    (K::Begin, Flags::BEGIN_TRX | Flags::IMPLICIT_COMMIT)
                }
            }
            b"START" => {
                if w.eat_word(b"TRANSACTION") {
                    self.start_transaction(w);
                    (K::Begin, Flags::BEGIN_TRX | Flags::IMPLICIT_COMMIT)
                } else {
                    // START SLAVE / REPLICA / ALL SLAVES
                    (K::Other, ddl)
                }
            }
            b"COMMIT" => (K::Commit, Flags::COMMIT | self.chain(w)),
            b"ROLLBACK" => {
                w.eat_word(b"WORK");
                if w.peek().is_some_and(|t| t.is_word(b"TO")) {
                    (K::Savepoint, Flags::empty())
                } else {
                    (K::Rollback, Flags::ROLLBACK | self.chain(w))
                }
            }
            b"SAVEPOINT" => (K::Savepoint, Flags::empty()),
            b"RELEASE" => (K::Savepoint, Flags::empty()),
            b"XA" => (K::Xa, Flags::XA | write),
            b"SHOW" => {
                let mut f = Flags::READ;
                let mut b2 = [0u8; 24];
                let next = word_upper(w.peek(), &mut b2);
                if matches!(next, b"WARNINGS" | b"ERRORS" | b"COUNT") {
                    f |= Flags::SHOW_WARNINGS;
                }
                (K::Show, f)
            }
            b"EXPLAIN" | b"DESCRIBE" | b"DESC" => {
                if w.eat_word(b"ANALYZE") {
                    (K::Explain, self.analyze_target(w))
                } else {
                    (K::Explain, Flags::READ)
                }
            }
            b"ANALYZE" => {
                let mut b2 = [0u8; 24];
                if matches!(
                    word_upper(w.peek(), &mut b2),
                    b"TABLE" | b"NO_WRITE_TO_BINLOG" | b"LOCAL"
                ) {
                    (K::Other, ddl)
                } else {
                    (K::Explain, self.analyze_target(w))
                }
            }
            b"CALL" => (K::Call, Flags::CALL | write),
            b"PREPARE" => (K::Prepare, Flags::SESSION_CMD),
            b"EXECUTE" => (K::Execute, write),
            b"DEALLOCATE" => (K::Deallocate, Flags::SESSION_CMD),
            b"DROP" => return self.drop(w),
            b"CREATE" => return self.create(w),
            b"ALTER" => {
                self.calls = Calls::UntilSelect;
                (K::Alter, ddl)
            }
            b"RENAME" => (K::Rename, ddl),
            b"TRUNCATE" => (K::Truncate, ddl),
            b"LOAD" => {
                let mut b2 = [0u8; 24];
                if matches!(word_upper(w.peek(), &mut b2), b"DATA" | b"XML") {
                    (K::Load, Flags::LOAD_DATA | write)
                } else {
                    // LOAD INDEX INTO CACHE
                    (K::Other, ddl)
                }
            }
            b"LOCK" => (K::Lock, ddl),
            b"UNLOCK" => (K::Unlock, ddl),
            b"GRANT" | b"REVOKE" => (K::Grant, ddl),
            b"DO" => (K::Do, write),
            b"HANDLER" => (K::Handler, write),
            b"GET" => {
                self.eq_assigns = true;
                (K::Other, Flags::SHOW_WARNINGS | Flags::READ)
            }
            b"HELP" => (K::Other, Flags::READ),
            b"FLUSH" | b"RESET" | b"CHANGE" | b"STOP" | b"INSTALL" | b"UNINSTALL" | b"OPTIMIZE"
            | b"REPAIR" | b"CHECK" | b"CACHE" | b"PURGE" => (K::Other, ddl),
            _ => (K::Other, write),
        };
        self.set(flags);
        kind
    }

    /// `COMMIT/ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE]`: `AND CHAIN` starts a new
    /// transaction.
    fn chain(&mut self, w: &mut Walker<'a>) -> Flags {
        w.eat_word(b"WORK");
        if w.eat_word(b"AND") && !w.eat_word(b"NO") && w.eat_word(b"CHAIN") {
            Flags::BEGIN_TRX
        } else {
            Flags::empty()
        }
    }

    /// `START TRANSACTION [READ ONLY | READ WRITE | WITH CONSISTENT SNAPSHOT], ...`
    fn start_transaction(&mut self, w: &mut Walker<'a>) {
        while let Some(t) = w.next() {
            if t.is_word(b"READ") && w.eat_word(b"ONLY") {
                self.set(Flags::BEGIN_READ_ONLY_TRX);
            }
        }
    }

    /// The statement after `ANALYZE` / `EXPLAIN ANALYZE [FORMAT=x]`: it runs, so only a
    /// `SELECT` is a read.
    fn analyze_target(&mut self, w: &mut Walker<'a>) -> Flags {
        if w.eat_word(b"FORMAT") {
            if w.peek().is_some_and(|t| t.is_symbol(b"=")) {
                w.next();
            }
            w.next();
        }
        let mut b = [0u8; 24];
        match word_upper(w.peek(), &mut b) {
            b"SELECT" | b"WITH" | b"VALUES" | b"TABLE" => Flags::READ,
            _ => Flags::WRITE,
        }
    }

    /// `WITH [RECURSIVE] cte AS (...), ... <SELECT|UPDATE|DELETE|INSERT|REPLACE>`.
    fn with(&mut self, w: &mut Walker<'a>) -> StatementKind {
        use StatementKind as K;
        let mut depth = 0u32;
        let mut buf = [0u8; 24];
        while let Some(t) = self.take(w) {
            if t.is_symbol(b"(") {
                depth += 1;
            } else if t.is_symbol(b")") {
                depth = depth.saturating_sub(1);
            } else if depth == 0 && t.kind == TokenKind::Word {
                let (kind, f) = match upper(t.text, &mut buf) {
                    b"SELECT" => (K::Select, Flags::READ),
                    b"UPDATE" => (K::Update, Flags::WRITE),
                    b"DELETE" => (K::Delete, Flags::WRITE),
                    b"INSERT" => (K::Insert, Flags::WRITE),
                    b"REPLACE" => (K::Replace, Flags::WRITE),
                    _ => continue,
                };
                self.set(f);
                return kind;
            }
        }
        self.set(Flags::WRITE);
        K::Other
    }

    /// `DROP [TEMPORARY] TABLE[S] [IF EXISTS] t, ...`, `DROP PREPARE s`, other `DROP`s.
    fn drop(&mut self, w: &mut Walker<'a>) -> StatementKind {
        if w.eat_word(b"PREPARE") {
            self.set(Flags::SESSION_CMD);
            return StatementKind::Deallocate;
        }
        let temporary = w.eat_word(b"TEMPORARY");
        self.set(Flags::WRITE);
        if !temporary {
            self.set(Flags::IMPLICIT_COMMIT);
        }
        if w.eat_word(b"TABLE") || w.eat_word(b"TABLES") {
            self.set(Flags::DROP_TABLE);
            if w.eat_word(b"IF") {
                w.eat_word(b"EXISTS");
            }
            while let Some(t) = self.table_name(w) {
                self.tables.push(t);
                if !w.peek().is_some_and(|t| t.is_symbol(b",")) {
                    break;
                }
                w.next();
            }
        }
        StatementKind::Drop
    }

    /// `CREATE [OR REPLACE] [TEMPORARY] TABLE [IF NOT EXISTS] t ...` and other `CREATE`s.
    fn create(&mut self, w: &mut Walker<'a>) -> StatementKind {
        self.set(Flags::WRITE);
        self.calls = Calls::UntilSelect;
        if w.eat_word(b"OR") {
            w.eat_word(b"REPLACE");
        }
        if w.eat_word(b"TEMPORARY") {
            if w.eat_word(b"TABLE") {
                self.set(Flags::CREATE_TEMP_TABLE);
                if w.eat_word(b"IF") {
                    w.eat_word(b"NOT");
                    w.eat_word(b"EXISTS");
                }
                if let Some(t) = self.table_name(w) {
                    self.tables.push(t);
                }
            }
            return StatementKind::Create;
        }
        self.set(Flags::IMPLICIT_COMMIT);
        // Stored programs have bodies with `;` inside: do not split them.
        let mut look = w.lex.clone();
        let mut buf = [0u8; 24];
        for _ in 0..16 {
            let Some(t) = look.next() else { break };
            match word_upper(Some(t), &mut buf) {
                b"PROCEDURE" | b"FUNCTION" | b"TRIGGER" | b"EVENT" | b"PACKAGE" => {
                    w.split = false;
                    self.calls = Calls::Off;
                    break;
                }
                b"TABLE" | b"VIEW" | b"INDEX" | b"DATABASE" | b"SCHEMA" | b"USER" | b"ROLE"
                | b"SEQUENCE" | b"SERVER" | b"TABLESPACE" => break,
                _ => {}
            }
        }
        StatementKind::Create
    }

    /// `name` or `schema.name`, quoted or not.
    fn table_name(&mut self, w: &mut Walker<'a>) -> Option<TableName> {
        let first = ident(w.peek()?)?;
        w.next();
        if w.peek().is_some_and(|t| t.is_symbol(b".")) {
            let mut look = w.lex.clone();
            look.next();
            if let Some(second) = look.next().and_then(ident) {
                w.lex = look;
                return Some(TableName {
                    schema: Some(first),
                    name: second,
                });
            }
        }
        Some(TableName {
            schema: None,
            name: first,
        })
    }

    /// `SET ...`: variable assignments, `NAMES`, `TRANSACTION`, `PASSWORD`, `STATEMENT ... FOR`.
    fn set_statement(&mut self, w: &mut Walker<'a>, depth: u32) -> StatementKind {
        use StatementKind as K;
        let mut buf = [0u8; 24];
        match word_upper(w.peek(), &mut buf) {
            b"STATEMENT" => {
                w.next();
                // Skip the variable list up to the top-level FOR, then classify the statement.
                let mut paren = 0u32;
                while let Some(t) = self.take(w) {
                    if t.is_symbol(b"(") {
                        paren += 1;
                    } else if t.is_symbol(b")") {
                        paren = paren.saturating_sub(1);
                    } else if paren == 0 && t.is_word(b"FOR") {
                        if depth >= MAX_NESTING {
                            self.set(Flags::WRITE);
                            return K::Other;
                        }
                        self.prev = None;
                        return match self.take(w) {
                            Some(first) => self.statement(w, first, depth + 1),
                            None => {
                                self.set(Flags::WRITE);
                                K::Other
                            }
                        };
                    }
                }
                self.set(Flags::WRITE);
                return K::Other;
            }
            b"PASSWORD" | b"DEFAULT" => {
                // SET PASSWORD, SET DEFAULT ROLE: change the grant tables.
                self.set(Flags::WRITE | Flags::IMPLICIT_COMMIT);
                return K::Set;
            }
            _ => {}
        }
        self.set(Flags::SESSION_CMD);
        self.assignments(w, None);
        K::Set
    }

    /// Assignments `target [=|:=] expr, ...`, the first target being `first` if given.
    fn assignments(&mut self, w: &mut Walker<'a>, mut first: Option<Token<'a>>) {
        let mut sticky_global = false;
        while let Some(mut t) = first.take().or_else(|| w.next()) {
            let mut b2 = [0u8; 24];
            let scope = word_upper(Some(t), &mut b2);
            if matches!(
                scope,
                b"GLOBAL" | b"SESSION" | b"LOCAL" | b"PERSIST" | b"PERSIST_ONLY"
            ) {
                // A scope keyword holds for the following assignments until the next one.
                sticky_global = scope != b"SESSION" && scope != b"LOCAL";
                match w.next() {
                    Some(n) => t = n,
                    None => break,
                }
            }
            let mut global = sticky_global;
            let mut autocommit = false;
            match t.kind {
                TokenKind::UserVar => self.set(Flags::ASSIGNS_USER_VAR),
                TokenKind::SysVar => {
                    let inner = t.inner();
                    let has = |p: &[u8]| {
                        inner.len() > p.len() && inner[..p.len()].eq_ignore_ascii_case(p)
                    };
                    // An explicit `@@scope.` overrides the keyword; bare `@@x` is the session's.
                    global = has(b"global.") || has(b"persist.") || has(b"persist_only.");
                    autocommit = sysvar_name(inner).eq_ignore_ascii_case(b"autocommit");
                }
                TokenKind::Word => {
                    let mut b3 = [0u8; 24];
                    match upper(t.text, &mut b3) {
                        b"AUTOCOMMIT" => autocommit = true,
                        b"TRANSACTION" => {
                            // SET [GLOBAL|SESSION] TRANSACTION ...: no assignment list.
                            if global {
                                self.set(Flags::GLOBAL_VAR);
                            }
                            break;
                        }
                        _ => {}
                    }
                }
                TokenKind::QuotedIdent => {
                    autocommit = t.inner().eq_ignore_ascii_case(b"autocommit");
                }
                _ => {}
            }
            if global {
                self.set(Flags::GLOBAL_VAR);
            }
            self.prev = Some(t);
            // The value: up to the next top-level comma.
            let mut paren = 0u32;
            let mut values = 0u32;
            let mut value: Option<Token<'a>> = None;
            while let Some(v) = w.peek() {
                if paren == 0 && v.is_symbol(b",") {
                    w.next();
                    break;
                }
                w.next();
                if v.is_symbol(b"(") {
                    paren += 1;
                } else if v.is_symbol(b")") {
                    paren = paren.saturating_sub(1);
                }
                if !(values == 0 && (v.is_symbol(b"=") || v.is_symbol(b":="))) {
                    values += 1;
                    value = Some(v);
                }
                self.scan(v, w);
            }
            if autocommit && !global && values == 1 {
                if let Some(f) = value.and_then(autocommit_value) {
                    self.set(f);
                }
            }
        }
    }
}

/// The AUTOCOMMIT flag for a single-token value, if it is a recognised constant.
fn autocommit_value(v: Token<'_>) -> Option<Flags> {
    let text = match v.kind {
        TokenKind::Number | TokenKind::Word => v.text,
        TokenKind::String => v.inner(),
        _ => return None,
    };
    let mut buf = [0u8; 24];
    match upper(text, &mut buf) {
        b"0" | b"OFF" | b"FALSE" => Some(Flags::AUTOCOMMIT_OFF),
        b"1" | b"ON" | b"TRUE" | b"DEFAULT" => Some(Flags::AUTOCOMMIT_ON),
        _ => None,
    }
}

/// The variable name of a system variable without its scope: `global.x` → `x`.
fn sysvar_name(inner: &[u8]) -> &[u8] {
    let name = match inner.iter().position(|&c| c == b'.') {
        Some(i) => &inner[i + 1..],
        None => inner,
    };
    match name {
        [b'`', rest @ .., b'`'] => rest,
        _ => name,
    }
}

/// An identifier's unquoted name, if the token is an identifier.
fn ident(t: Token<'_>) -> Option<Vec<u8>> {
    match t.kind {
        TokenKind::Word => Some(t.text.to_vec()),
        TokenKind::QuotedIdent => {
            // `...`, or "..." with ANSI_QUOTES: a doubled quote is one.
            let q = t.text[0];
            let inner = t.inner();
            let mut out = Vec::with_capacity(inner.len());
            let mut i = 0;
            while i < inner.len() {
                out.push(inner[i]);
                i += if inner[i] == q && inner.get(i + 1) == Some(&q) {
                    2
                } else {
                    1
                };
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
