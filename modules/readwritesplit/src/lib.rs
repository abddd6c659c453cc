//! `readwritesplit`: sends writes and transactions to the primary and spreads reads over the
//! replicas, keeping each client session consistent as if it talked to one server.
//!
//! - `config`: the options, [`ReadWriteSplitConfig`] (every field documented: the reference);
//! - [`ReadWriteSplit`]: the per-service half, shared by the sessions of a service;
//! - `session`: the per-session half, where each command is classified (by `switchyard-sql`)
//!   and routed, and where replies and lost backends update what the session knows;
//! - `select`: replica selection policies; `hint`: routing hints in comments; `gtid`: GTID
//!   positions for causal reads.
//!
//! The router only decides: the runtime opens backends, replays the session-command history,
//! maps prepared-statement ids, waits for GTIDs and retries reads.

#![forbid(unsafe_code)]

mod config;
mod gtid;
mod hint;
mod select;
mod session;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use switchyard_api::{HistoryLimit, Router, RouterModule, RouterSession, SessionInfo};

pub use config::{CausalReads, PrimaryFailureMode, ReadWriteSplitConfig, ReplicaSelection};

/// The per-service half of `readwritesplit`.
#[derive(Debug, Clone)]
pub struct ReadWriteSplit {
    shared: Arc<Shared>,
}

/// What the sessions of one service share.
#[derive(Debug)]
struct Shared {
    config: ReadWriteSplitConfig,
    /// The next turn of `replica_selection: round_robin`.
    round_robin: AtomicUsize,
    sessions: AtomicU64,
}

impl ReadWriteSplit {
    /// A router for one service with these options.
    pub fn new(config: ReadWriteSplitConfig) -> Self {
        ReadWriteSplit {
            shared: Arc::new(Shared {
                config,
                round_robin: AtomicUsize::new(0),
                sessions: AtomicU64::new(0),
            }),
        }
    }

    /// The options the router runs with.
    pub fn config(&self) -> &ReadWriteSplitConfig {
        &self.shared.config
    }
}

impl RouterModule for ReadWriteSplit {
    const NAME: &'static str = "readwritesplit";
    type Config = ReadWriteSplitConfig;

    fn build(config: ReadWriteSplitConfig) -> Arc<dyn Router> {
        Arc::new(ReadWriteSplit::new(config))
    }
}

impl Router for ReadWriteSplit {
    fn new_session(&self, session: &SessionInfo) -> Box<dyn RouterSession> {
        self.shared.sessions.fetch_add(1, Ordering::Relaxed);
        Box::new(session::RwSplitSession::new(
            self.shared.clone(),
            session.db.clone(),
        ))
    }

    fn diagnostics(&self) -> serde_json::Value {
        let c = &self.shared.config;
        let duration = |d: std::time::Duration| humantime::format_duration(d).to_string();
        serde_json::json!({
            "replica_selection": c.replica_selection,
            "max_replication_lag": c.max_replication_lag.map(duration),
            "primary_accepts_reads": c.primary_accepts_reads,
            "causal_reads": c.causal_reads,
            "causal_reads_timeout": duration(c.causal_reads_timeout),
            "primary_failure_mode": c.primary_failure_mode,
            "max_history": c.max_history,
            "max_history_bytes": c.max_history_bytes,
            "sessions_started": self.shared.sessions.load(Ordering::Relaxed),
        })
    }

    fn history_limit(&self) -> Option<HistoryLimit> {
        let c = &self.shared.config;
        Some(HistoryLimit {
            commands: c.max_history,
            bytes: c.max_history_bytes,
        })
    }

    fn wants_gtid(&self) -> bool {
        self.shared.config.causal_reads != CausalReads::None
    }
}

#[cfg(test)]
mod tests;
