//! What a scrape samples of the live state, and the text of `/metrics`.

use std::collections::HashSet;
use std::sync::PoisonError;

use prometheus::{IntGaugeVec, TextEncoder};
use switchyard_api::ClusterState;

use super::modules::{self, ModuleSamples};
use super::*;

/// What a scrape shows of the live state, filled from the admin API's sources.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Each server once.
    pub servers: Vec<ServerSample>,
    pub monitors: Vec<MonitorSample>,
    /// What the filters report of themselves.
    pub modules: Vec<ModuleSamples>,
    /// Client addresses whose logins are refused now (login throttling).
    pub blocked_hosts: usize,
    /// The sessions on each session worker.
    pub worker_sessions: Vec<usize>,
}

/// One server as the proxy sees it now.
#[derive(Debug, Clone, Default)]
pub struct ServerSample {
    pub name: String,
    /// `primary`, `replica`, `running` or `down`; anything else shows as no state at all.
    pub role: String,
    /// Whether it answered its monitor's last check; `None` without a monitor.
    pub reachable: Option<bool>,
    pub maintenance: bool,
    pub drain: bool,
    pub lag_seconds: Option<u64>,
    pub gtid_behind: Option<u64>,
    /// Backend connections open to it now.
    pub connections: u64,
}

/// One monitor.
#[derive(Debug, Clone, Default)]
pub struct MonitorSample {
    pub name: String,
    /// Rounds completed.
    pub ticks: u64,
    /// The round-trip time of the last check of each server that answered, in µs.
    pub check_us: Vec<(String, u64)>,
}

impl MonitorSample {
    /// The monitor `name` from its latest snapshot (`Monitor::subscribe().borrow()`).
    pub fn from_cluster(name: &str, cluster: &ClusterState) -> Self {
        MonitorSample {
            name: name.to_string(),
            ticks: cluster.ticks,
            check_us: cluster
                .servers
                .iter()
                .filter_map(|s| Some((s.name.to_string(), s.check_time?.as_micros() as u64)))
                .collect(),
        }
    }
}

/// Sets the scrape-time gauges from `scrape` and returns every metric in the Prometheus text
/// format (version 0.0.4; serve it as `text/plain; version=0.0.4; charset=utf-8`).
pub fn render(scrape: &Scrape) -> String {
    let m = &*METRICS;
    let _one_at_a_time = m.scrape.lock().unwrap_or_else(PoisonError::into_inner);
    // Reset and refilled whole, so that servers, monitors and filters no longer configured
    // disappear.
    for g in [
        &m.server_state,
        &m.server_reachable,
        &m.server_maintenance,
        &m.server_drain,
        &m.server_lag,
        &m.server_gtid_behind,
        &m.server_connections,
    ] {
        g.reset();
    }
    m.monitor_ticks.reset();
    m.monitor_check.reset();
    m.blocked_hosts
        .set(i64::try_from(scrape.blocked_hosts).unwrap_or(i64::MAX));
    let set = |g: &IntGaugeVec, labels: &[&str], v: u64| {
        g.with_label_values(labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    };
    for (i, n) in scrape.worker_sessions.iter().enumerate() {
        set(&m.worker_sessions, &[&i.to_string()], *n as u64);
    }
    for s in &scrape.servers {
        let name = s.name.as_str();
        for state in SERVER_STATES {
            let on = s.role.eq_ignore_ascii_case(state);
            set(&m.server_state, &[name, state], u64::from(on));
        }
        if let Some(r) = s.reachable {
            set(&m.server_reachable, &[name], u64::from(r));
        }
        set(&m.server_maintenance, &[name], u64::from(s.maintenance));
        set(&m.server_drain, &[name], u64::from(s.drain));
        if let Some(lag) = s.lag_seconds {
            set(&m.server_lag, &[name], lag);
        }
        if let Some(behind) = s.gtid_behind {
            set(&m.server_gtid_behind, &[name], behind);
        }
        set(&m.server_connections, &[name], s.connections);
    }
    for mon in &scrape.monitors {
        m.monitor_ticks
            .with_label_values(&[&mon.name])
            .inc_by(mon.ticks);
        for (server, us) in &mon.check_us {
            m.monitor_check
                .with_label_values(&[mon.name.as_str(), server.as_str()])
                .set(*us as f64 / 1e6);
        }
    }
    let mut out = String::with_capacity(16 * 1024);
    let mut families = m.registry.gather();
    let taken: HashSet<&str> = families.iter().map(|f| f.name()).collect();
    let from_modules = modules::gather(&scrape.modules, &taken);
    families.extend(from_modules);
    // Encoding only fails on invalid metric families, which the registries do not produce.
    let _ = TextEncoder::new().encode_utf8(&families, &mut out);
    out
}
