//! The MySQL/MariaDB client/server protocol, both sides, as Switchyard needs it.
//!
//! Layers, bottom up:
//! - [`wire`]: length-encoded integers and strings over byte slices, no I/O;
//! - [`codec`]: packet framing (3-byte length, sequence id, 16 MiB continuation), no I/O;
//! - [`handshake`], [`auth`], [`packets`]: the login exchange, scrambles, OK/ERR/EOF;
//! - [`command`]: client commands as borrowed, zero-copy views;
//! - [`stmt`]: prepared statement ids and COM_STMT_EXECUTE parameter types, rewritten in place
//!   or into a new payload, for statements run on several backends;
//! - [`reply`]: a tracker that follows a server's reply packet by packet and summarises it;
//! - [`session_track`]: session state changes in OK packets (tracked variables such as
//!   `last_gtid`), and OK packets rewritten for clients that do not track them;
//! - [`thread_ids`]: connection ids in result sets, rewritten to the ids clients know;
//! - [`conn`]: packet streams over sockets and the client side towards backends.
#![forbid(unsafe_code)]

pub mod auth;
pub mod caps;
pub mod codec;
pub mod command;
pub mod conn;
pub mod error;
pub mod handshake;
pub mod packets;
pub mod reply;
pub mod session_track;
pub mod stmt;
pub mod text_query;
pub mod thread_ids;
pub mod wire;

pub use command::Command;
pub use error::ProtocolError;
