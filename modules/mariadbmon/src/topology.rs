//! From checks to a cluster: pure functions of the previous state, this round's probes and the
//! operator flags, giving the next [`ClusterState`] and the changes worth a log line. No I/O,
//! no clock (the caller passes the time), so every rule is tested without sockets.
//!
//! The rules, modelled on MaxScale's MariaDB Monitor:
//! - A server is `Down` after `failcount` failed checks in a row, or before its first
//!   successful check. In between it keeps its last known state (role included), marked
//!   `reachable: false`, so that one lost packet does not move traffic.
//! - The primary is the one writable (`read_only=OFF`) server among those not down. Replicas
//!   are matched to their source by `Master_Host:Master_Port` against the configured addresses,
//!   then by `Master_Server_Id`.
//! - Two or more writable servers: no primary, and every writable one is `Running`. The
//!   previous primary is deliberately not kept: a second writable server means writes may
//!   already land on both (split brain), and the old primary could be exactly the wrong place;
//!   refusing writes with a clear error is safe, and transient blips are already covered by
//!   `failcount`. No writable server: no primary either.
//! - A replica is a server with a healthy replication source (IO and SQL threads running, no
//!   error) pointing at the primary. Without a primary, replicas of the writable servers (or,
//!   when none is writable, of the servers at the top of the replication tree) stay `Replica`,
//!   so reads go on while writes are refused.
//! - A server whose replication towards the primary is stopped or failing is
//!   `replication_broken` and `Running`, not a read target. So is a replica still pointing at a
//!   down server while another server is primary. But while there is no primary at all, a
//!   replica of the lost primary whose SQL thread still runs stays `Replica` with unknown lag
//!   (MaxScale's stale slave): reads go on, with the data it has, while writes are refused. A
//!   replica of a replica (relay) is `Running`.
//! - Operator flags (`maintenance`, `drain`) never change roles: routers read the flags.

use std::sync::Arc;
use std::time::SystemTime;

use switchyard_api::{AdminFlag, ClusterState, ServerName, ServerRole, ServerState};

use crate::config::MonitoredServer;
use crate::gtid;
use crate::probe::{CheckError, Probe, SourceStatus};

/// What the monitor remembers of one server between rounds.
#[derive(Debug, Clone)]
struct Memory {
    name: ServerName,
    address: String,
    /// Failed checks in a row.
    failures: u32,
    /// The last successful check.
    probe: Option<Probe>,
    /// Why the last check failed.
    error: Option<CheckError>,
    maintenance: bool,
    drain: bool,
}

/// The monitor's view of its cluster, updated round by round.
#[derive(Debug, Clone)]
pub struct Topology {
    servers: Vec<Memory>,
    failcount: u32,
    current: Arc<ClusterState>,
}

/// A change worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A check failed; the server keeps its last state until `failcount` failures.
    Unreachable {
        server: ServerName,
        reason: String,
        failcount: u32,
    },
    /// A check succeeded after failed ones, before the server was down.
    Reachable {
        server: ServerName,
    },
    /// `failcount` checks in a row failed.
    Down {
        server: ServerName,
        reason: String,
        failures: u32,
    },
    /// A down (or never seen) server answered.
    Up {
        server: ServerName,
        detail: String,
    },
    /// A reachable server's role changed.
    RoleChanged {
        server: ServerName,
        from: ServerRole,
        to: ServerRole,
        reason: String,
    },
    ReplicationBroken {
        server: ServerName,
        detail: String,
    },
    /// Replication runs again after it was broken.
    ReplicationRestored {
        server: ServerName,
        role: ServerRole,
        lag_seconds: Option<u64>,
    },
    ReadOnlyChanged {
        server: ServerName,
        read_only: bool,
    },
    /// Another primary, or none.
    PrimaryChanged {
        from: Option<ServerName>,
        to: Option<ServerName>,
    },
    /// A cluster problem (see [`ClusterState::problems`]) appeared.
    ProblemAppeared(String),
    /// A cluster problem went away.
    ProblemCleared(String),
    /// An operator set or cleared a flag.
    FlagChanged {
        server: ServerName,
        flag: AdminFlag,
        on: bool,
    },
}

/// How loud an [`Event`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

impl Event {
    /// The server the event is about, if one.
    pub fn server(&self) -> Option<&ServerName> {
        match self {
            Event::Unreachable { server, .. }
            | Event::Reachable { server }
            | Event::Down { server, .. }
            | Event::Up { server, .. }
            | Event::RoleChanged { server, .. }
            | Event::ReplicationBroken { server, .. }
            | Event::ReplicationRestored { server, .. }
            | Event::ReadOnlyChanged { server, .. }
            | Event::FlagChanged { server, .. } => Some(server),
            Event::PrimaryChanged { .. } | Event::ProblemAppeared(_) | Event::ProblemCleared(_) => {
                None
            }
        }
    }

    /// How loud the event is logged.
    pub fn level(&self) -> Level {
        match self {
            Event::Unreachable { .. } | Event::Reachable { .. } => Level::Debug,
            Event::Down { .. } | Event::ReplicationBroken { .. } | Event::ProblemAppeared(_) => {
                Level::Warn
            }
            Event::PrimaryChanged { to: None, .. } => Level::Warn,
            _ => Level::Info,
        }
    }

    /// The log message, without the server name (a separate field).
    pub fn message(&self) -> String {
        match self {
            Event::Unreachable {
                reason, failcount, ..
            } => format!(
                "check failed, keeping the last known state until {failcount} failed checks: {reason}"
            ),
            Event::Reachable { .. } => "check succeeded again".to_string(),
            Event::Down {
                reason, failures, ..
            } => {
                let checks = if *failures == 1 { "check" } else { "checks" };
                format!("server is down: {reason} ({failures} failed {checks})")
            }
            Event::Up { detail, .. } => format!("server is up: {detail}"),
            Event::RoleChanged {
                from, to, reason, ..
            } => format!(
                "role changed from {} to {}: {reason}",
                role_name(*from),
                role_name(*to)
            ),
            Event::ReplicationBroken { detail, .. } => format!("replication broken: {detail}"),
            Event::ReplicationRestored {
                role, lag_seconds, ..
            } => match role {
                ServerRole::Replica => {
                    format!("replica is back: replication running, {}", lag_text(*lag_seconds))
                }
                other => format!("replication running again; role {}", role_name(*other)),
            },
            Event::ReadOnlyChanged { read_only, .. } => {
                format!("read_only is now {}", if *read_only { "ON" } else { "OFF" })
            }
            Event::PrimaryChanged { from, to } => match (from, to) {
                (None, Some(to)) => format!("primary is now {to}"),
                (Some(from), Some(to)) => format!("primary is now {to} (was {from})"),
                (Some(from), None) => {
                    format!("no primary any more (was {from}): writes are refused")
                }
                (None, None) => "no primary".to_string(),
            },
            Event::ProblemAppeared(p) => p.clone(),
            Event::ProblemCleared(p) => format!("resolved: {p}"),
            Event::FlagChanged { flag, on, .. } => {
                let flag = match flag {
                    AdminFlag::Maintenance => "maintenance",
                    AdminFlag::Drain => "drain",
                };
                format!("{flag} {}", if *on { "set" } else { "cleared" })
            }
        }
    }
}

/// A role in words, as the config and the admin API write it.
pub fn role_name(role: ServerRole) -> &'static str {
    match role {
        ServerRole::Primary => "primary",
        ServerRole::Replica => "replica",
        ServerRole::Running => "running",
        ServerRole::Down => "down",
    }
}

fn lag_text(lag: Option<u64>) -> String {
    match lag {
        Some(s) => format!("lag {s}s"),
        None => "lag unknown".to_string(),
    }
}

impl Topology {
    /// A cluster where nothing is known yet: every server `Down`, `ticks` 0.
    pub fn new(servers: &[MonitoredServer], failcount: u32, now: SystemTime) -> Self {
        let memory: Vec<Memory> = servers
            .iter()
            .map(|s| Memory {
                name: s.name.clone(),
                address: s.address.clone(),
                failures: 0,
                probe: None,
                error: None,
                maintenance: false,
                drain: false,
            })
            .collect();
        let current = ClusterState {
            servers: servers
                .iter()
                .map(|s| ServerState::unknown(s.name.clone(), s.address.clone()))
                .collect(),
            primary: None,
            problems: Vec::new(),
            updated: now,
            ticks: 0,
        };
        Topology {
            servers: memory,
            failcount: failcount.max(1),
            current: Arc::new(current),
        }
    }

    /// The latest state.
    pub fn current(&self) -> &Arc<ClusterState> {
        &self.current
    }

    /// Failed checks in a row, per server, in configuration order.
    pub fn failures(&self) -> impl Iterator<Item = (&ServerName, u32)> {
        self.servers.iter().map(|m| (&m.name, m.failures))
    }

    /// Takes the checks that ended in one round, as `(server index in configuration order,
    /// result)` in the order they ended, and returns the new state (also kept as
    /// [`current`](Self::current)) with the changes to log. A server without a result (its
    /// check is still under way) keeps its state.
    pub fn round(
        &mut self,
        results: Vec<(usize, Result<Probe, CheckError>)>,
        now: SystemTime,
    ) -> (Arc<ClusterState>, Vec<Event>) {
        let mut events = Vec::new();
        for (i, result) in results {
            let Some(m) = self.servers.get_mut(i) else {
                continue;
            };
            match result {
                Ok(probe) => {
                    m.failures = 0;
                    m.probe = Some(probe);
                    m.error = None;
                }
                Err(e) => {
                    m.failures = m.failures.saturating_add(1);
                    if m.failures == self.failcount {
                        events.push(Event::Down {
                            server: m.name.clone(),
                            reason: e.to_string(),
                            failures: m.failures,
                        });
                    } else if m.failures == 1 && m.probe.is_some() {
                        events.push(Event::Unreachable {
                            server: m.name.clone(),
                            reason: e.to_string(),
                            failcount: self.failcount,
                        });
                    }
                    m.error = Some(e);
                }
            }
        }
        let next = derive(&self.servers, self.failcount, self.current.ticks + 1, now);
        events.extend(diff(&self.current, &next));
        self.current = Arc::new(next);
        (self.current.clone(), events)
    }

    /// Sets or clears an operator flag. Returns the new state (also kept as
    /// [`current`](Self::current)) and the event when the flag changed; an error for a server
    /// this monitor does not watch.
    pub fn set_flag(
        &mut self,
        server: &str,
        flag: AdminFlag,
        on: bool,
        now: SystemTime,
    ) -> Result<(Arc<ClusterState>, Option<Event>), String> {
        let Some(i) = self.servers.iter().position(|m| m.name.as_str() == server) else {
            let names: Vec<&str> = self.servers.iter().map(|m| m.name.as_str()).collect();
            return Err(format!(
                "unknown server '{server}' (this monitor watches: {})",
                names.join(", ")
            ));
        };
        let m = &mut self.servers[i];
        let slot = match flag {
            AdminFlag::Maintenance => &mut m.maintenance,
            AdminFlag::Drain => &mut m.drain,
        };
        if *slot == on {
            return Ok((self.current.clone(), None));
        }
        *slot = on;
        let mut next = (*self.current).clone();
        if let Some(s) = next.servers.get_mut(i) {
            match flag {
                AdminFlag::Maintenance => s.maintenance = on,
                AdminFlag::Drain => s.drain = on,
            }
        }
        next.updated = now;
        self.current = Arc::new(next);
        let event = Event::FlagChanged {
            server: m.name.clone(),
            flag,
            on,
        };
        Ok((self.current.clone(), Some(event)))
    }
}

/// Splits `host:port` (or `[v6]:port`); `None` without a port.
fn split_address(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

/// Loopback names compare equal: a replica may name its source `localhost` while the config
/// says `127.0.0.1`.
fn same_host(a: &str, b: &str) -> bool {
    let norm = |h: &str| {
        let h = h.trim().to_ascii_lowercase();
        match h.as_str() {
            "localhost" | "127.0.0.1" | "::1" => "loopback".to_string(),
            _ => h,
        }
    };
    norm(a) == norm(b)
}

/// The monitored server a replication source points at: by address, else by server id.
fn find_source(src: &SourceStatus, servers: &[Memory], me: usize) -> Option<usize> {
    let by_address = servers.iter().enumerate().position(|(i, m)| {
        i != me
            && split_address(&m.address).is_some_and(|(host, port)| {
                port == src.source.source_port && same_host(host, &src.source.source_host)
            })
    });
    by_address.or_else(|| {
        let id = src.master_server_id?;
        servers
            .iter()
            .enumerate()
            .position(|(i, m)| i != me && m.probe.as_ref().and_then(|p| p.server_id) == Some(id))
    })
}

/// Without a primary: the replication source of a server that points at a monitored server
/// that is down, with its SQL thread still running (its IO thread is reconnecting).
fn stale_source(
    primary: Option<usize>,
    sources: &[SourceStatus],
    targets: &[Option<usize>],
    data: &[Option<&Probe>],
) -> Option<usize> {
    if primary.is_some() {
        return None;
    }
    sources.iter().enumerate().position(|(k, s)| {
        s.source.sql_running
            && targets
                .get(k)
                .copied()
                .flatten()
                .is_some_and(|t| data[t].is_none())
    })
}

/// Computes the cluster from what the monitor remembers.
fn derive(servers: &[Memory], failcount: u32, ticks: u64, now: SystemTime) -> ClusterState {
    // What each server is judged by: its last successful check, unless it is down.
    let data: Vec<Option<&Probe>> = servers
        .iter()
        .map(|m| m.probe.as_ref().filter(|_| m.failures < failcount))
        .collect();
    // Where each replication source of each server points.
    let targets: Vec<Vec<Option<usize>>> = servers
        .iter()
        .enumerate()
        .map(|(i, _)| match data[i].map(|p| &p.sources) {
            Some(Ok(sources)) => sources.iter().map(|s| find_source(s, servers, i)).collect(),
            _ => Vec::new(),
        })
        .collect();
    let up: Vec<usize> = (0..servers.len()).filter(|&i| data[i].is_some()).collect();
    let writable: Vec<usize> = up
        .iter()
        .copied()
        .filter(|&i| data[i].and_then(|p| p.read_only) == Some(false))
        .collect();

    let mut problems = Vec::new();
    // The primary, and the servers that a replica may replicate from.
    let (primary, sources_ok): (Option<usize>, Vec<usize>) = match writable.len() {
        1 => (Some(writable[0]), writable.clone()),
        0 if up.is_empty() => {
            if !servers.is_empty() {
                problems.push("no writable server: all servers are down".to_string());
            }
            (None, Vec::new())
        }
        0 => {
            problems.push(
                "no writable server: every reachable server is read-only; writes are refused"
                    .to_string(),
            );
            // The top of the replication tree: servers that replicate from no monitored one.
            let tops = up
                .iter()
                .copied()
                .filter(|&i| {
                    matches!(data[i].map(|p| &p.sources), Some(Ok(_)))
                        && targets[i].iter().all(Option::is_none)
                })
                .collect();
            (None, tops)
        }
        n => {
            let names: Vec<&str> = writable.iter().map(|&i| servers[i].name.as_str()).collect();
            problems.push(format!(
                "{n} writable servers ({}): no primary chosen; writes are refused until only one is writable",
                names.join(", ")
            ));
            (None, writable.clone())
        }
    };

    let mut states = Vec::with_capacity(servers.len());
    for (i, m) in servers.iter().enumerate() {
        let mut st = ServerState::unknown(m.name.clone(), m.address.clone());
        st.maintenance = m.maintenance;
        st.drain = m.drain;
        st.reachable = m.failures == 0 && m.probe.is_some();
        if let Some(p) = &m.probe {
            // Last known values, kept while the server is unreachable or down.
            st.read_only = p.read_only;
            st.server_id = p.server_id;
            st.version = p.version.clone();
            st.gtid_current_pos = p.gtid_current_pos.clone();
            st.gtid_binlog_pos = p.gtid_binlog_pos.clone();
            if let Ok(sources) = &p.sources {
                st.replication = sources.iter().map(|s| s.source.clone()).collect();
            }
            if st.reachable {
                st.check_time = Some(p.rtt);
            }
        }
        if !st.reachable {
            st.last_error = Some(match &m.error {
                Some(e) => e.to_string(),
                None => "no check has completed yet".to_string(),
            });
        }
        let Some(p) = data[i] else {
            st.role = ServerRole::Down;
            states.push(st);
            continue;
        };
        if primary == Some(i) {
            st.role = ServerRole::Primary;
            states.push(st);
            continue;
        }
        st.role = ServerRole::Running;
        match &p.sources {
            Err(reason) => {
                st.last_error
                    .get_or_insert_with(|| format!("replication status unknown: {reason}"));
            }
            Ok(sources) => {
                // Sources that point at the primary (or a server that may stand for it).
                let relevant: Vec<(usize, usize)> = targets[i]
                    .iter()
                    .enumerate()
                    .filter_map(|(k, t)| t.filter(|t| sources_ok.contains(t)).map(|t| (k, t)))
                    .collect();
                let behind = |t: usize| {
                    let theirs = data[t]?.gtid_binlog_pos.as_deref()?;
                    gtid::behind(theirs, p.gtid_current_pos.as_deref()?)
                };
                if let Some(&(k, t)) = relevant.iter().find(|(k, _)| sources[*k].is_healthy()) {
                    st.role = ServerRole::Replica;
                    st.lag_seconds = sources[k].source.seconds_behind;
                    st.gtid_behind = behind(t);
                } else if let Some(k) = stale_source(primary, sources, &targets[i], &data) {
                    st.role = ServerRole::Replica;
                    st.last_error = Some(format!(
                        "replicating from a server that is down ({}:{}): reads may be stale",
                        sources[k].source.source_host, sources[k].source.source_port
                    ));
                } else if let Some(&(k, t)) = relevant.first() {
                    st.replication_broken = true;
                    st.gtid_behind = behind(t);
                    st.last_error
                        .get_or_insert_with(|| sources[k].describe_broken());
                } else if let Some(s) = sources
                    .first()
                    .filter(|_| !sources.iter().any(|s| s.is_healthy()))
                {
                    // Replicating from no usable server, and not even that works.
                    st.replication_broken = true;
                    st.last_error.get_or_insert_with(|| s.describe_broken());
                }
            }
        }
        // Without a primary, no writable server may look like a valid target.
        if writable.contains(&i) {
            st.role = ServerRole::Running;
        }
        states.push(st);
    }

    ClusterState {
        servers: states,
        primary: primary.map(|i| servers[i].name.clone()),
        problems,
        updated: now,
        ticks,
    }
}

/// Why a server has its role, in words, for the log.
fn describe(st: &ServerState, cluster: &ClusterState) -> String {
    match st.role {
        ServerRole::Primary => "primary".to_string(),
        ServerRole::Replica => {
            format!("replica, replication running, {}", lag_text(st.lag_seconds))
        }
        ServerRole::Down => "down".to_string(),
        ServerRole::Running => {
            let why = if st.replication_broken {
                format!(
                    "replication broken: {}",
                    st.last_error.as_deref().unwrap_or("unknown reason")
                )
            } else if let Some(e) = &st.last_error {
                e.clone()
            } else if st.read_only == Some(false) && cluster.primary.is_none() {
                "writable, but not the only writable server".to_string()
            } else if st.replication.is_empty() {
                "not replicating".to_string()
            } else {
                "not replicating from the primary".to_string()
            };
            format!("running ({why})")
        }
    }
}

/// The changes between two states worth a log line. Down transitions come from the failure
/// counter (with their reason), not from here.
fn diff(prev: &ClusterState, next: &ClusterState) -> Vec<Event> {
    let mut events = Vec::new();
    for (p, n) in prev.servers.iter().zip(&next.servers) {
        let server = n.name.clone();
        if n.role == ServerRole::Down {
            continue;
        }
        if p.role == ServerRole::Down {
            // A broken replication gets its own warning just after.
            let detail = if n.replication_broken {
                role_name(n.role).to_string()
            } else {
                describe(n, next)
            };
            events.push(Event::Up {
                server: server.clone(),
                detail,
            });
            if n.replication_broken {
                events.push(Event::ReplicationBroken {
                    server,
                    detail: n.last_error.clone().unwrap_or_default(),
                });
            }
            continue;
        }
        if !p.reachable && n.reachable {
            events.push(Event::Reachable {
                server: server.clone(),
            });
        }
        if !p.replication_broken && n.replication_broken {
            events.push(Event::ReplicationBroken {
                server: server.clone(),
                detail: n.last_error.clone().unwrap_or_default(),
            });
        } else if p.replication_broken && !n.replication_broken {
            events.push(Event::ReplicationRestored {
                server: server.clone(),
                role: n.role,
                lag_seconds: n.lag_seconds,
            });
        } else if p.role != n.role {
            events.push(Event::RoleChanged {
                server: server.clone(),
                from: p.role,
                to: n.role,
                reason: describe(n, next),
            });
        }
        if let (Some(a), Some(b)) = (p.read_only, n.read_only) {
            if a != b {
                events.push(Event::ReadOnlyChanged {
                    server,
                    read_only: b,
                });
            }
        }
    }
    if prev.primary != next.primary {
        events.push(Event::PrimaryChanged {
            from: prev.primary.clone(),
            to: next.primary.clone(),
        });
    }
    for p in &next.problems {
        if !prev.problems.contains(p) {
            events.push(Event::ProblemAppeared(p.clone()));
        }
    }
    for p in &prev.problems {
        if !next.problems.contains(p) {
            events.push(Event::ProblemCleared(p.clone()));
        }
    }
    events
}

#[cfg(test)]
mod tests;
