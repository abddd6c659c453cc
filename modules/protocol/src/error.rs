//! Errors of the protocol layer.

use thiserror::Error;

/// What can go wrong while speaking the protocol. Peer-controlled bytes end up here, never in
/// a panic.
#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("packet out of sequence: expected sequence id {expected}, got {got}")]
    PacketsOutOfSync { expected: u8, got: u8 },
    #[error("packet of {size} bytes exceeds the limit of {limit} bytes")]
    PacketTooLarge { size: usize, limit: usize },
    #[error("connection closed by peer")]
    Closed,
    #[error("server error {code} ({sqlstate}): {message}")]
    Server {
        code: u16,
        sqlstate: String,
        message: String,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl ProtocolError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ProtocolError::Io(_) => "io",
            ProtocolError::Malformed(_) => "malformed",
            ProtocolError::PacketsOutOfSync { .. } => "out_of_sync",
            ProtocolError::PacketTooLarge { .. } => "too_large",
            ProtocolError::Closed => "closed",
            ProtocolError::Server { .. } => "server",
            ProtocolError::Unsupported(_) => "unsupported",
            ProtocolError::Timeout(_) => "timeout",
        }
    }
}

pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
