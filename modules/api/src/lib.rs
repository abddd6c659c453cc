//! The module contract of Switchyard.
//!
//! The runtime and the modules meet only here: a router sees the servers of its service as a
//! [`ServerSet`] snapshot and answers each command with a [`RoutePlan`]. Module crates depend on
//! this crate (and on `switchyard-protocol`), never on the runtime.
#![forbid(unsafe_code)]

mod router;
mod server;

pub use router::{RoutePlan, RouteReason, RouteTarget, Router, RouterSession, SessionInfo};
pub use server::{Server, ServerName, ServerRole, ServerSet, ServerStats};
