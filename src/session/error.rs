//! How a session ends early, and client-chosen text made safe for logs.

use switchyard_protocol::ProtocolError;
use thiserror::Error;

/// Why a session ended early.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("client closed the connection")]
    ClientGone,
    /// The client was turned away, and told why.
    #[error("client refused: {0}")]
    Refused(Refusal),
    /// A backend failed and the session cannot go on without it.
    #[error("lost a backend connection: {0}")]
    BackendLost(String),
    /// The session was ended for the client, who has been told why.
    #[error("session closed: {0}")]
    Ended(String),
}

/// Why a client was turned away at login: what it was told.
#[derive(Debug)]
pub struct Refusal {
    pub code: u16,
    pub sqlstate: String,
    /// Safe to log (see [`printable`]).
    pub message: String,
    /// The user the client tried to log in as, once known.
    pub user: Option<String>,
    pub db: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl SessionError {
    pub fn refused(code: u16, sqlstate: &str, msg: &str) -> Self {
        SessionError::Refused(Refusal {
            code,
            sqlstate: sqlstate.to_string(),
            message: printable(msg),
            user: None,
            db: None,
        })
    }
}

/// The most bytes of one piece of client-chosen text that a log line holds.
pub const LOG_TEXT_MAX: usize = 256;

/// `s` as a log line may hold it: text that clients choose (user names, database names,
/// server messages quoting them) goes into logs, so control characters are escaped (it must
/// not forge log lines) and it is cut after [`LOG_TEXT_MAX`] bytes with a marker saying how
/// much was left out (a 64 KiB user name must not write megabytes of log per failed login).
pub fn printable(s: &str) -> String {
    let mut cut = s.len().min(LOG_TEXT_MAX);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let (head, rest) = s.split_at(cut);
    let mut out = String::with_capacity(head.len() + 24);
    for c in head.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if !rest.is_empty() {
        out.push_str(&format!("…[{} more bytes]", rest.len()));
    }
    out
}
