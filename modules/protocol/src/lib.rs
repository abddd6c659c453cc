//! The MySQL/MariaDB client/server protocol, both sides, as Switchyard needs it.
//!
//! Layers, bottom up:
//! - [`wire`]: length-encoded integers and strings over byte slices, no I/O;
//! - [`codec`]: packet framing (3-byte length, sequence id, 16 MiB continuation), no I/O;
//! - [`handshake`], [`auth`], [`packets`]: the login exchange, scrambles, OK/ERR/EOF;
//! - [`command`]: client commands as borrowed, zero-copy views;
//! - [`reply`]: a tracker that follows a server's reply packet by packet and summarises it;
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
pub mod wire;

pub use command::Command;
pub use error::ProtocolError;
