//! The runtime's errors: what went wrong in the user's words (`Display`), and what kind of
//! failure it is ([`Error::kind`]) for callers that answer differently by kind, like the
//! admin API's status codes.

use std::io;

use thiserror::Error;

/// An error of the runtime (start, reload, the admin API's actions).
#[derive(Debug, Error)]
pub enum Error {
    /// A name given by a request does not exist.
    #[error("no {what} named '{name}'")]
    NotFound { what: &'static str, name: String },
    /// The proxy is draining or closing and takes no new work.
    #[error("the proxy is shutting down")]
    ShuttingDown,
    /// A socket cannot be bound: `what` is `listener 'app'` or `the admin API`.
    #[error("{what} cannot listen on {address}: {source}")]
    Listen {
        what: String,
        address: String,
        #[source]
        source: io::Error,
    },
    /// A module (router, filter, monitor) cannot start.
    #[error("{0}")]
    Module(String),
    /// The pid file cannot be checked or written.
    #[error("{0}")]
    PidFile(String),
    /// A setting that passed the config's checks cannot be used as it is.
    #[error("{0}")]
    Config(String),
    /// The operating system refused something the proxy needs (a signal handler, a thread).
    #[error("{what}: {source}")]
    System {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    /// Not now: the proxy is shutting down, or the address is taken.
    Unavailable,
    /// A module, setting or file the proxy was given does not work.
    Invalid,
    /// The machine refused.
    System,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::ShuttingDown | Error::Listen { .. } => ErrorKind::Unavailable,
            Error::Module(_) | Error::PidFile(_) | Error::Config(_) => ErrorKind::Invalid,
            Error::System { .. } => ErrorKind::System,
        }
    }

    /// A socket that cannot be bound.
    pub fn listen(what: impl Into<String>, address: &str, source: io::Error) -> Self {
        Error::Listen {
            what: what.into(),
            address: address.to_string(),
            source,
        }
    }
}
