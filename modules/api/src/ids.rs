//! Ids that cross the contract, as types of their own so that one cannot stand for another.

use std::fmt;

use serde::Serialize;

/// A client session's id: the connection id its client sees (in the handshake, as
/// `CONNECTION_ID()` and in the processlist), unique for the proxy's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(pub u32);

impl SessionId {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A prepared statement's id as the client knows it: the proxy's own numbering, the same
/// whichever backends the statement was prepared on (each has its own id for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StmtId(pub u32);

impl StmtId {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StmtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
