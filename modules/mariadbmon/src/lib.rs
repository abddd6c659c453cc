//! `mariadbmon`: a monitor of MariaDB primary/replica clusters, modelled on MaxScale's MariaDB
//! Monitor.
//!
//! One task per monitor checks every server of the monitor at each `interval`, all at once,
//! each over its own persistent connection, and publishes the cluster as an immutable
//! [`ClusterState`] snapshot through a `tokio::sync::watch` channel. Every state change is
//! logged once, with its reason.
//!
//! - [`config`]: [`MariaDbMonConfig`] and [`MonitoredServer`];
//! - [`probe`]: one check of one server (`SELECT @@server_id, ...` and
//!   `SHOW ALL SLAVES STATUS`) into a raw [`probe::Probe`];
//! - [`topology`]: pure rules from probes to roles, primary, lag and problems, and the events
//!   to log;
//! - [`gtid`]: GTID positions and the distance between them;
//! - this file: [`MariaDbMon`], the task, and the [`Monitor`] implementation.
#![forbid(unsafe_code)]

pub mod config;
mod duration;
pub mod gtid;
pub mod probe;
pub mod topology;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::SystemTime;

use serde_json::json;
use switchyard_api::{AdminFlag, ClusterState, Monitor};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

pub use config::{MariaDbMonConfig, MonitoredServer};
use probe::Prober;
use topology::{Event, Level, Topology};

/// The module name the config uses.
pub const MODULE: &str = "mariadbmon";

/// A running `mariadbmon` monitor. Dropping it stops its task.
pub struct MariaDbMon {
    shared: Arc<Shared>,
    task: AbortHandle,
}

/// What the monitor's task and its handle share.
struct Shared {
    name: String,
    user: String,
    config: MariaDbMonConfig,
    /// Held while a new state is computed and published, so that rounds and operator flags
    /// publish in order and never undo each other.
    topology: Mutex<Topology>,
    /// The server's id of each monitor connection, for diagnostics.
    connection_ids: Mutex<Vec<Option<u32>>>,
    tx: watch::Sender<Arc<ClusterState>>,
}

impl Shared {
    fn topology(&self) -> MutexGuard<'_, Topology> {
        self.topology.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MariaDbMon {
    /// Starts monitoring `servers` with the account `user`/`password`: spawns the monitor's
    /// task on the current tokio runtime. The first snapshot (`ticks` 0) has every server
    /// `Down`; the first round follows at once.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(
        name: &str,
        servers: Vec<MonitoredServer>,
        user: String,
        password: String,
        config: MariaDbMonConfig,
    ) -> Arc<MariaDbMon> {
        let config = config.sanitized();
        let topology = Topology::new(&servers, config.failcount, SystemTime::now());
        let (tx, _) = watch::channel(topology.current().clone());
        let shared = Arc::new(Shared {
            name: name.to_string(),
            user: user.clone(),
            config: config.clone(),
            topology: Mutex::new(topology),
            connection_ids: Mutex::new(vec![None; servers.len()]),
            tx,
        });
        let probers = servers
            .iter()
            .map(|s| {
                Prober::new(
                    s.address.clone(),
                    user.clone(),
                    password.clone(),
                    config.connect_timeout,
                    config.read_timeout,
                )
            })
            .collect();
        let task = tokio::spawn(run(shared.clone(), servers, probers)).abort_handle();
        Arc::new(MariaDbMon { shared, task })
    }

    /// The options in force (zeros raised to the smallest workable value).
    pub fn config(&self) -> &MariaDbMonConfig {
        &self.shared.config
    }

    /// The latest snapshot.
    pub fn state(&self) -> Arc<ClusterState> {
        self.shared.tx.borrow().clone()
    }
}

impl Drop for MariaDbMon {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Monitor for MariaDbMon {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn subscribe(&self) -> watch::Receiver<Arc<ClusterState>> {
        self.shared.tx.subscribe()
    }

    fn set_flag(&self, server: &str, flag: AdminFlag, on: bool) -> Result<(), String> {
        let event = {
            let mut topology = self.shared.topology();
            let (state, event) = topology.set_flag(server, flag, on, SystemTime::now())?;
            if event.is_some() {
                self.shared.tx.send_replace(state);
            }
            event
        };
        if let Some(event) = event {
            log_event(&self.shared.name, &event);
        }
        Ok(())
    }

    fn diagnostics(&self) -> serde_json::Value {
        let state = self.state();
        let c = &self.shared.config;
        let ids = self
            .shared
            .connection_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let servers: Vec<serde_json::Value> = {
            let topology = self.shared.topology();
            topology
                .failures()
                .zip(ids)
                .map(|((name, failures), id)| {
                    json!({ "name": name, "failed_checks": failures, "connection_id": id })
                })
                .collect()
        };
        json!({
            "module": MODULE,
            "name": self.shared.name,
            "user": self.shared.user,
            "config": {
                "interval_ms": c.interval.as_millis() as u64,
                "failcount": c.failcount,
                "connect_timeout_ms": c.connect_timeout.as_millis() as u64,
                "read_timeout_ms": c.read_timeout.as_millis() as u64,
            },
            "ticks": state.ticks,
            "monitor_connections": servers,
            "state": serde_json::to_value(&*state).unwrap_or(serde_json::Value::Null),
        })
    }
}

/// The monitor's task: a round of checks every `interval`, for ever.
async fn run(shared: Arc<Shared>, servers: Vec<MonitoredServer>, mut probers: Vec<Prober>) {
    let mut ticker = tokio::time::interval(shared.config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let checks = join_all(probers.iter_mut().map(|p| p.check())).await;
        let mut results = Vec::with_capacity(checks.len());
        for (server, checked) in servers.iter().zip(checks) {
            if let (Some(reason), Ok(_)) = (&checked.lost, &checked.result) {
                info!(
                    monitor = %shared.name,
                    server = %server.name,
                    "monitor connection was lost ({reason}); reconnected"
                );
            }
            results.push(checked.result);
        }
        *shared
            .connection_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            probers.iter().map(|p| p.connection_id()).collect();
        let events = {
            let mut topology = shared.topology();
            let (state, events) = topology.round(results, SystemTime::now());
            shared.tx.send_replace(state);
            events
        };
        for event in &events {
            log_event(&shared.name, event);
        }
    }
}

fn log_event(monitor: &str, event: &Event) {
    let message = event.message();
    match (event.level(), event.server()) {
        (Level::Debug, Some(s)) => debug!(monitor = %monitor, server = %s, "{message}"),
        (Level::Debug, None) => debug!(monitor = %monitor, "{message}"),
        (Level::Info, Some(s)) => info!(monitor = %monitor, server = %s, "{message}"),
        (Level::Info, None) => info!(monitor = %monitor, "{message}"),
        (Level::Warn, Some(s)) => warn!(monitor = %monitor, server = %s, "{message}"),
        (Level::Warn, None) => warn!(monitor = %monitor, "{message}"),
    }
}

/// Runs futures concurrently on this task and returns their outputs in order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
