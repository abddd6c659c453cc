//! Ids that cross the contract, as types of their own so that one cannot stand for another.
//! Each serialises as its number.

use std::fmt;

use serde::Serialize;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A client session's id: the connection id its client sees (in the handshake, as
    /// `CONNECTION_ID()` and in the processlist), unique for the proxy's lifetime.
    SessionId
);

id_type!(
    /// A prepared statement's id as the client knows it: the proxy's own numbering, the same
    /// whichever backends the statement was prepared on (each has its own id for it).
    StmtId
);
