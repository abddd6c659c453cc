//! `mariadbmon`: a monitor of MariaDB primary/replica clusters, modelled on MaxScale's MariaDB
//! Monitor.
//!
//! One task per monitor checks every server of the monitor at each `interval`, all at once,
//! each over its own persistent connection, and publishes the cluster as an immutable
//! [`ClusterState`] snapshot through a `tokio::sync::watch` channel after every round. A server
//! that hangs does not slow the others down: a round waits at most one `interval` for its
//! checks. Every state change is logged once, with its reason; operator flags are kept by the
//! monitor and published at once.
//!
//! - [`config`]: [`MariaDbMonConfig`], the monitor's options;
//! - [`probe`]: one check of one server (`SELECT @@server_id, ...` and
//!   `SHOW ALL SLAVES STATUS`) into a raw [`probe::Probe`];
//! - [`topology`]: pure rules from probes to roles, primary, lag and problems, and the events
//!   to log;
//! - [`gtid`]: GTID positions and the distance between them;
//! - this file: [`MariaDbMon`], the task, and the [`Monitor`] implementation.
#![forbid(unsafe_code)]

pub mod config;
pub mod gtid;
pub mod probe;
pub mod topology;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::SystemTime;

use serde_json::json;
use switchyard_api::{AdminFlag, ClusterState, Monitor, MonitorAccount, MonitorModule};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

pub use config::{MariaDbMonConfig, MonitoredServer};
use probe::{Checked, Prober};
use topology::{Event, Level, Topology};

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

impl MonitorModule for MariaDbMon {
    const NAME: &'static str = "mariadbmon";
    type Config = MariaDbMonConfig;

    fn check(config: &MariaDbMonConfig) -> Result<(), switchyard_api::OptionError> {
        config.check()
    }

    fn start(
        name: &str,
        servers: Vec<MonitoredServer>,
        account: MonitorAccount,
        config: MariaDbMonConfig,
    ) -> Arc<dyn Monitor> {
        MariaDbMon::start(name, servers, account.user, account.password, config)
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

    fn round_deadline(&self) -> std::time::Duration {
        self.shared.config.check_deadline()
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
            "module": <MariaDbMon as MonitorModule>::NAME,
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

/// One server's check, between rounds or under way.
enum Slot {
    Idle(Box<Prober>),
    Busy(Pin<Box<dyn Future<Output = (Box<Prober>, Checked)> + Send>>),
    /// Only while a slot changes state.
    Moving,
}

/// The monitor's task: a round of checks every `interval`, for ever.
///
/// Each round starts a check of every server that has none under way and drives all checks
/// at once, until those it started are done or for at most `interval`; then it publishes. A
/// server that hangs (its check waits out a timeout) never holds up the others: its check goes
/// on across rounds, counts in the round in which it ends, and the next one starts at once.
/// Until then the server keeps its state.
async fn run(shared: Arc<Shared>, servers: Vec<MonitoredServer>, probers: Vec<Prober>) {
    let interval = shared.config.interval;
    let mut slots: Vec<Slot> = probers
        .into_iter()
        .map(|p| Slot::Idle(Box::new(p)))
        .collect();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Per slot: a check was started in this round; the round waits for that check.
        let mut started = vec![false; slots.len()];
        let mut holds = vec![false; slots.len()];
        let mut ended: Vec<(usize, Checked, Option<u32>)> = Vec::new();
        let round_end = tokio::time::sleep(interval);
        tokio::pin!(round_end);
        poll_fn(|cx| {
            for (i, slot) in slots.iter_mut().enumerate() {
                loop {
                    match std::mem::replace(slot, Slot::Moving) {
                        Slot::Idle(prober) if !started[i] => {
                            // A check that ended in this round (it hung for longer than an
                            // interval) is followed at once by the next, which the round does
                            // not wait for: what it has already learnt is published now.
                            holds[i] = !ended.iter().any(|(j, ..)| *j == i);
                            started[i] = true;
                            *slot = Slot::Busy(Box::pin(prober.check_owned()));
                        }
                        Slot::Busy(mut check) => match check.as_mut().poll(cx) {
                            Poll::Ready((prober, checked)) => {
                                ended.push((i, checked, prober.connection_id()));
                                holds[i] = false;
                                *slot = Slot::Idle(prober);
                            }
                            Poll::Pending => {
                                *slot = Slot::Busy(check);
                                break;
                            }
                        },
                        other => {
                            *slot = other;
                            break;
                        }
                    }
                }
            }
            if !holds.contains(&true) || round_end.as_mut().poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;

        let mut results = Vec::with_capacity(ended.len());
        {
            let mut ids = shared
                .connection_ids
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (i, checked, id) in ended {
                if let Some(slot) = ids.get_mut(i) {
                    *slot = id;
                }
                if let (Some(reason), Ok(_), Some(server)) =
                    (&checked.lost, &checked.result, servers.get(i))
                {
                    info!(
                        monitor = %shared.name,
                        server = %server.name,
                        "monitor connection was lost ({reason}); reconnected"
                    );
                }
                results.push((i, checked.result));
            }
        }
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
