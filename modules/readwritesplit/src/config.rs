//! Options of `readwritesplit`.

use std::time::Duration;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize};

/// Router options of a `readwritesplit` service. Every option may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadWriteSplitConfig {
    /// How a read picks its replica: `least_current_operations` (default), `round_robin` or
    /// `adaptive`.
    #[serde(default)]
    pub replica_selection: ReplicaSelection,

    /// The most replication lag a replica may have and still take reads, like `5s`. A replica
    /// whose lag the monitor does not know does not take reads while a limit is set. Default:
    /// no limit.
    #[serde(
        default,
        deserialize_with = "switchyard_api::duration::option::deserialize"
    )]
    pub max_replication_lag: Option<Duration>,

    /// Whether reads go to the primary when no replica qualifies. When false, such a read gets
    /// an error instead. Default: true.
    #[serde(default = "default_primary_accepts_reads")]
    pub primary_accepts_reads: bool,

    /// Read-your-writes after a write of the same session: `none` (default), `local` (a read
    /// on a replica waits until the replica has the session's last write, up to
    /// `causal_reads_timeout`, and runs on the primary after that) or `fast` (reads go only to
    /// replicas that the monitor saw past the session's last write, else to the primary, even
    /// when `primary_accepts_reads` is false).
    #[serde(default)]
    pub causal_reads: CausalReads,

    /// How long a causal read waits for a replica before it runs on the primary. Default: `10s`.
    #[serde(
        default = "default_causal_reads_timeout",
        deserialize_with = "switchyard_api::duration::deserialize"
    )]
    pub causal_reads_timeout: Duration,

    /// What a session does when there is no usable primary: `fail_instantly` (default; the
    /// session is closed at its next command, or as soon as its primary connection is lost),
    /// `fail_on_write` (reads go on on replicas; the first write closes the session) or
    /// `error_on_write` (reads go on; writes get a read-only error and the session goes on).
    #[serde(default)]
    pub primary_failure_mode: PrimaryFailureMode,

    /// The most session commands (`SET`, `USE`, `PREPARE`, ...) kept per session to bring a
    /// backend opened later to the session's state; beyond it, the session opens no new
    /// backends. At least 1. Also accepted as `max_sescmd_history`. Default: 50.
    #[serde(
        default = "default_max_history",
        alias = "max_sescmd_history",
        deserialize_with = "positive"
    )]
    pub max_history: usize,

    /// The most bytes of session commands kept per session, counted as `max_history` is: a
    /// history over either limit opens no new backends. At least 1. Default: 1048576 (1 MiB).
    #[serde(default = "default_max_history_bytes", deserialize_with = "positive")]
    pub max_history_bytes: usize,
}

impl Default for ReadWriteSplitConfig {
    fn default() -> Self {
        ReadWriteSplitConfig {
            replica_selection: ReplicaSelection::default(),
            max_replication_lag: None,
            primary_accepts_reads: default_primary_accepts_reads(),
            causal_reads: CausalReads::default(),
            causal_reads_timeout: default_causal_reads_timeout(),
            primary_failure_mode: PrimaryFailureMode::default(),
            max_history: default_max_history(),
            max_history_bytes: default_max_history_bytes(),
        }
    }
}

/// How a read picks one of the replicas that qualify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaSelection {
    /// The replica with the fewest commands running now (over all sessions); ties go to a
    /// replica this session already has a connection to, then to the fewest connections.
    #[default]
    LeastCurrentOperations,
    /// Each replica in turn, over all sessions of the service.
    RoundRobin,
    /// At random, weighted by 1/response time²: a replica twice as fast gets four times the
    /// reads. A replica with no measurement yet counts as the fastest.
    Adaptive,
}

/// Read-your-writes mode; see [`ReadWriteSplitConfig::causal_reads`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CausalReads {
    /// Reads may see a replica that has not caught up with the session's writes.
    #[default]
    None,
    /// A read on a replica first waits for the session's last write there.
    Local,
    /// Reads go only where the session's last write has already arrived.
    Fast,
}

/// What happens without a primary; see [`ReadWriteSplitConfig::primary_failure_mode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryFailureMode {
    /// The session ends at its next command (or when its primary connection is lost).
    #[default]
    FailInstantly,
    /// Reads go on; the first command that needs the primary ends the session.
    FailOnWrite,
    /// Reads go on; commands that need the primary get a read-only error.
    ErrorOnWrite,
}

fn default_primary_accepts_reads() -> bool {
    true
}

fn default_causal_reads_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_history() -> usize {
    50
}

fn default_max_history_bytes() -> usize {
    1 << 20
}

fn positive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    match usize::deserialize(deserializer)? {
        0 => Err(de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}
