//! The module contract of Switchyard.
//!
//! The runtime and the modules meet only here: a monitor publishes [`ClusterState`] snapshots,
//! a router sees the servers of its service as a [`ServerSet`] snapshot built from them and
//! answers each command, a [`Statement`] parsed once and shared, with a [`RoutePlan`];
//! filters see each statement before the router and a summary of each reply after it. Each
//! module crate names itself and its options by implementing the trait of its kind
//! ([`RouterModule`], [`FilterModule`], [`MonitorModule`]).
//! Module crates depend on this crate (and on `switchyard-protocol` and `switchyard-sql`), never
//! on the runtime.
#![forbid(unsafe_code)]

mod address;
pub mod duration;
mod filter;
mod ids;
mod metric;
mod module;
mod monitor;
mod router;
mod server;
mod statement;

pub use address::AddressPattern;
pub use filter::{
    ClientInfo, Filter, FilterSession, LoginFailure, ReplyInfo, RouteHint, RoutedTo, Verdict,
};
pub use ids::{SessionId, StmtId};
pub use metric::{MetricKind, MetricSample};
pub use module::{
    FilterModule, MonitorAccount, MonitorModule, MonitoredServer, OptionError, RouterModule,
};
pub use monitor::{AdminFlag, ClusterState, Monitor, ReplicationSource, ServerState};
pub use router::{
    GtidWait, HistoryLimit, Reply, RouteError, RoutePlan, RouteReason, RouteTarget, Router,
    RouterSession, SessionInfo,
};
pub use server::{Server, ServerName, ServerRole, ServerSet, ServerStats};
pub use statement::{SqlDialect, Statement};
