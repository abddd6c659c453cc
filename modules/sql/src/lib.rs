//! SQL statement classification for Switchyard's routers.
//!
//! A router must decide, for every statement on the hot path, whether it reads or writes,
//! whether it changes session or transaction state, and whether it must stay on the backend
//! that ran the previous statement. This crate answers that from the query text alone:
//!
//! - [`lexer`]: an allocation-free lexer over `&[u8]` (statements need not be UTF-8) for the
//!   MySQL/MariaDB dialect: quoted identifiers, strings with backslash escapes and doubled
//!   quotes, hex/bit literals, `@user` and `@@system` variables, all comment styles, and
//!   executable comments (`/*! ... */`, `/*M! ... */`) whose content the server runs;
//! - [`classify()`]: one pass over the tokens giving a [`StatementKind`] and a set of
//!   [`Flags`] (read, write, session command, transaction boundaries, user variables,
//!   temporary tables, lock functions, `LAST_INSERT_ID`, locking reads, multi-statements, ...);
//! - [`builtins`]: MariaDB's built-in function names and keywords, to tell a stored function
//!   call (which may write, [`Flags::STORED_FUNCTION`]) from a built-in one;
//! - [`find_comment`]: the comments of a statement, where routing hints live;
//! - [`mentions_table`]: whether a statement may touch one of the session's temporary tables;
//! - [`thread_ids()`]: whether a statement kills a connection by id or reads connection ids,
//!   which the proxy translates ([`kill`] parses the KILL);
//! - [`prepared`]: names and source text of text-protocol `PREPARE`/`EXECUTE`/`DEALLOCATE`;
//! - [`digest()`]: canonical text with literals as `?`, and a [`fingerprint`] of it, for the
//!   audit feed.
//!
//! Why a hand-written lexer rather than a SQL parser such as `sqlparser`: classification runs
//! once per statement and must cost well under a microsecond, and routing needs only the
//! leading keywords plus a few markers anywhere in the text, not a syntax tree. A general parser
//! also rejects much of what MySQL and MariaDB accept (`SET STATEMENT ... FOR`, `HANDLER`,
//! `BINLOG`, `KILL QUERY`, `SHOW SLAVE STATUS`, executable comments, `RETURNING`, ...), and a
//! statement it cannot parse must still be routed. The classifier never fails: what it does not
//! recognise is a [`Flags::WRITE`], which sends it to the primary.
//!
//! Transaction state is ultimately tracked from the servers' status flags; the flags here tell
//! the router what a statement is about to do, before any server has answered.
//!
//! ```
//! use switchyard_sql::{classify, Flags, StatementKind};
//!
//! let c = classify(b"/* app */ SELECT c FROM t WHERE id = 1 FOR UPDATE");
//! assert_eq!(c.kind, StatementKind::Select);
//! assert!(c.flags.contains(Flags::READ | Flags::FOR_UPDATE));
//!
//! let c = classify(b"SET NAMES utf8mb4, autocommit = 0");
//! assert_eq!(c.flags, Flags::SESSION_CMD | Flags::AUTOCOMMIT_OFF);
//! ```
#![forbid(unsafe_code)]

pub mod builtins;
pub mod classify;
pub mod comments;
pub mod digest;
pub mod kill;
pub mod lexer;
pub mod prepared;
pub mod tables;
pub mod thread_ids;

pub use classify::{classify, classify_with_mode, Classification, Flags, StatementKind, TableName};
pub use comments::{contains_ignore_case, find_comment, may_have_comment};
pub use digest::{digest, digest_into, fingerprint};
pub use lexer::{Lexer, SqlMode, Token, TokenKind};
pub use prepared::{parse_prepare, statement_name, TextPrepare};
pub use tables::mentions_table;
pub use thread_ids::{reads_thread_ids, thread_ids, ThreadIds};
