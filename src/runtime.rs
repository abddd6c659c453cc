//! The running proxy: the configuration in force (a [`Generation`]), the listeners, config
//! reloads, and the drain at shutdown.
//!
//! A reload builds a new generation beside the old one, reusing every monitor, filter and
//! service whose configuration did not change, and swaps it in whole. Sessions keep the
//! service they started with (and through it its router, filters and monitor) until they end;
//! new sessions get the new one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use switchyard_api::{Filter, Monitor, ServerStats};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::{self, Config, ConfigErrors, FilterConfig, ListenerConfig, MonitorConfig};
use crate::error::Error;
use crate::host_blocks::HostBlocks;
use crate::listener;
use crate::service::Service;
use crate::session::registry::SessionRegistry;
use crate::session::ListenerContext;
use crate::workers::Workers;

mod generation;

/// Where the process is in its life. Sessions watch it: while draining they close between
/// transactions; when closing, at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Running,
    Draining,
    Closing,
}

/// A monitor of the configuration in force.
pub struct MonitorEntry {
    pub config: MonitorConfig,
    /// The addresses of its servers, which a reload compares too.
    addresses: Vec<String>,
    pub monitor: Arc<dyn Monitor>,
}

/// A filter of the configuration in force.
pub struct FilterEntry {
    pub config: FilterConfig,
    pub filter: Arc<dyn Filter>,
}

/// A service of the configuration in force.
pub struct ServiceEntry {
    pub config: config::ServiceConfig,
    /// The addresses of its servers, which a reload compares too.
    addresses: Vec<String>,
    pub service: Arc<Service>,
}

/// What one configuration builds; replaced whole by a reload.
pub struct Generation {
    pub config: Config,
    pub services: Vec<ServiceEntry>,
    pub monitors: Vec<Arc<MonitorEntry>>,
    pub filters: Vec<Arc<FilterEntry>>,
    pub loaded_at: SystemTime,
}

impl Generation {
    pub fn service(&self, name: &str) -> Option<&Arc<Service>> {
        self.services
            .iter()
            .find(|s| s.config.name == name)
            .map(|s| &s.service)
    }

    /// The monitor that checks `server`.
    pub fn monitor_of(&self, server: &str) -> Option<&Arc<MonitorEntry>> {
        self.monitors
            .iter()
            .find(|m| m.config.servers.iter().any(|s| s == server))
    }
}

/// A listener and whether it is accepting.
pub struct ListenerSlot {
    pub config: ListenerConfig,
    /// Sessions read the service from here when they start; a reload replaces it.
    ctx: Arc<ArcSwap<ListenerContext>>,
    running: Option<listener::Running>,
}

impl ListenerSlot {
    /// Accepting clients (not stopped through the admin API).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

/// How many reloads succeeded and failed, and the errors of the last failed one.
#[derive(Default)]
pub struct ReloadStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub last_errors: Mutex<Vec<String>>,
}

/// The whole running proxy, shared by the signal handlers and the admin API.
pub struct Runtime {
    generation: ArcSwap<Generation>,
    /// The config file; `None` for the embedded sandbox config.
    config_path: Option<PathBuf>,
    /// Process-wide counters of each server by name, kept across reloads.
    stats: Mutex<HashMap<String, Arc<ServerStats>>>,
    pub sessions: Arc<SessionRegistry>,
    listeners: tokio::sync::Mutex<Vec<ListenerSlot>>,
    lifecycle: watch::Sender<Lifecycle>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Filters a reload replaced: flushed and shut down once no session uses them.
    retired: Mutex<Vec<Arc<FilterEntry>>>,
    pub reloads: ReloadStats,
    pub started_at: SystemTime,
    /// Failed logins by client address, for login throttling; kept across reloads.
    pub host_blocks: Arc<HostBlocks>,
    /// Where sessions run.
    workers: Arc<Workers>,
}

impl Runtime {
    /// Starts the monitors, filters and services of `config` and binds its listeners.
    pub async fn start(
        config: Config,
        config_path: Option<PathBuf>,
    ) -> Result<Arc<Runtime>, Error> {
        let host_blocks =
            HostBlocks::new(config.max_auth_errors_until_block, config.auth_block_time);
        let workers = Workers::start(config.threads).map_err(|source| Error::System {
            what: "cannot start the session workers",
            source,
        })?;
        let runtime = Arc::new(Runtime {
            generation: ArcSwap::from_pointee(Generation {
                config: config.clone(),
                services: Vec::new(),
                monitors: Vec::new(),
                filters: Vec::new(),
                loaded_at: SystemTime::now(),
            }),
            config_path,
            stats: Mutex::default(),
            sessions: Arc::default(),
            listeners: tokio::sync::Mutex::default(),
            lifecycle: watch::Sender::new(Lifecycle::Running),
            reloading: tokio::sync::Mutex::default(),
            retired: Mutex::default(),
            reloads: ReloadStats::default(),
            started_at: SystemTime::now(),
            host_blocks: Arc::new(host_blocks),
            workers: Arc::new(workers),
        });
        let generation = runtime.build(config, None).await?;
        let mut slots = Vec::new();
        for lc in &generation.config.listeners {
            let listener = bind(lc).await?;
            let ctx = Arc::new(ArcSwap::from_pointee(runtime.context(lc, &generation)));
            let running = Some(listener::spawn(
                listener,
                ctx.clone(),
                runtime.workers.clone(),
            ));
            slots.push(ListenerSlot {
                config: lc.clone(),
                ctx,
                running,
            });
        }
        *runtime.listeners.lock().await = slots;
        runtime.generation.store(Arc::new(generation));
        tokio::spawn(reap_retired(Arc::downgrade(&runtime)));
        Ok(runtime)
    }

    /// The client sessions on each session worker.
    pub fn worker_sessions(&self) -> Vec<usize> {
        self.workers.sessions()
    }

    /// The configuration in force.
    pub fn generation(&self) -> Arc<Generation> {
        self.generation.load_full()
    }

    pub fn lifecycle(&self) -> Lifecycle {
        *self.lifecycle.borrow()
    }

    /// The counters of server `name`, created on first use.
    pub fn server_stats(&self, name: &str) -> Arc<ServerStats> {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.entry(name.to_string()).or_default().clone()
    }

    /// Runs `f` over the listeners.
    pub async fn with_listeners<T>(&self, f: impl FnOnce(&[ListenerSlot]) -> T) -> T {
        f(&self.listeners.lock().await)
    }

    /// Stops or starts accepting on listener `name`. Sessions it started go on.
    pub async fn set_listener(&self, name: &str, run: bool) -> Result<bool, Error> {
        let mut slots = self.listeners.lock().await;
        let slot = slots
            .iter_mut()
            .find(|s| s.config.name == name)
            .ok_or_else(|| Error::NotFound {
                what: "listener",
                name: name.to_string(),
            })?;
        if run == slot.running.is_some() {
            return Ok(false);
        }
        if run {
            if self.lifecycle() != Lifecycle::Running {
                return Err(Error::ShuttingDown);
            }
            let listener = bind(&slot.config).await?;
            slot.running = Some(listener::spawn(
                listener,
                slot.ctx.clone(),
                self.workers.clone(),
            ));
            info!(listener = %name, address = %slot.config.address, "listener started through the admin API");
        } else if let Some(running) = slot.running.take() {
            running.stop().await;
            info!(listener = %name, "listener stopped through the admin API");
        }
        Ok(true)
    }

    /// Re-reads the config file and puts it in force for new sessions. A config with errors
    /// changes nothing: its errors are returned, one per line. On success, returns warnings
    /// about settings that need a restart.
    pub async fn reload(&self) -> Result<Vec<String>, Vec<String>> {
        let _one = self.reloading.lock().await;
        notify(&[sd_notify::NotifyState::Reloading, monotonic_now()]);
        let result = self.reload_now().await;
        notify(&[sd_notify::NotifyState::Ready]);
        crate::metrics::config_reloaded(result.is_ok());
        match &result {
            Ok(warnings) => {
                self.reloads.ok.fetch_add(1, Ordering::Relaxed);
                for w in warnings {
                    warn!("config reload: {w}");
                }
                info!(origin = %self.generation().config.origin(), "config reloaded; new sessions use it");
            }
            Err(errors) => {
                self.reloads.failed.fetch_add(1, Ordering::Relaxed);
                for e in errors {
                    error!("config reload: {e}");
                }
                error!(
                    problems = errors.len(),
                    "config reload rejected; the running config stays in force"
                );
                *self
                    .reloads
                    .last_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = errors.clone();
            }
        }
        result
    }

    async fn reload_now(&self) -> Result<Vec<String>, Vec<String>> {
        if self.lifecycle() != Lifecycle::Running {
            return Err(vec![Error::ShuttingDown.to_string()]);
        }
        let lines = |errors: ConfigErrors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        let config = match &self.config_path {
            Some(path) => config::load(path, &crate::validate).map_err(lines)?,
            None => {
                config::parse_checked(config::SANDBOX, config::SANDBOX_ORIGIN, &crate::validate)
                    .map_err(lines)?
            }
        };
        let old = self.generation();
        let mut warnings: Vec<String> = config.warnings().iter().map(|w| w.to_string()).collect();
        // The admin API keeps the address and credentials it started with; a reload that
        // would change them (or drop them) is refused rather than half applied, so that it
        // never looks as if the API had been closed or its password changed.
        if config.admin != old.config.admin {
            return Err(vec![
                "the admin section (address, user, password) changed: it takes effect only at \
                 a restart, so the reload is refused and the running config stays"
                    .to_string(),
            ]);
        }
        if config.threads != old.config.threads {
            warnings.push("a change of threads takes effect at the next restart".into());
        }
        if config.log != old.config.log {
            warnings.push("a change of log takes effect at the next restart".into());
        }
        let generation = self
            .build(config, Some(&old))
            .await
            .map_err(|e| vec![e.to_string()])?;

        // Bind what is new before changing anything, so that a taken port rejects the reload.
        // A listener is the same one when its address is (its name or service may change).
        let mut slots = self.listeners.lock().await;
        let mut bound = HashMap::new();
        for lc in &generation.config.listeners {
            if !slots.iter().any(|s| s.config.address == lc.address) {
                bound.insert(
                    lc.name.clone(),
                    bind(lc).await.map_err(|e| vec![e.to_string()])?,
                );
            }
        }
        let mut kept = Vec::new();
        for mut slot in std::mem::take(&mut *slots) {
            let next = generation
                .config
                .listeners
                .iter()
                .find(|lc| lc.address == slot.config.address);
            match next {
                Some(lc) => {
                    slot.ctx.store(Arc::new(self.context(lc, &generation)));
                    slot.config = lc.clone();
                    kept.push(slot);
                }
                None => {
                    if let Some(running) = slot.running.take() {
                        running.stop().await;
                    }
                    info!(listener = %slot.config.name, address = %slot.config.address, "listener closed by the reload");
                }
            }
        }
        for lc in &generation.config.listeners {
            if let Some(listener) = bound.remove(&lc.name) {
                let ctx = Arc::new(ArcSwap::from_pointee(self.context(lc, &generation)));
                let running = Some(listener::spawn(listener, ctx.clone(), self.workers.clone()));
                info!(listener = %lc.name, address = %lc.address, service = %lc.service, "listening");
                kept.push(ListenerSlot {
                    config: lc.clone(),
                    ctx,
                    running,
                });
            }
        }
        *slots = kept;
        drop(slots);

        let retired: Vec<_> = old
            .filters
            .iter()
            .filter(|f| !generation.filters.iter().any(|n| Arc::ptr_eq(f, n)))
            .cloned()
            .collect();
        self.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(retired);
        let c = &generation.config;
        self.host_blocks
            .configure(c.max_auth_errors_until_block, c.auth_block_time);
        self.generation.store(Arc::new(generation));
        Ok(warnings)
    }

    fn context(&self, lc: &ListenerConfig, generation: &Generation) -> ListenerContext {
        let service = generation
            .service(&lc.service)
            .expect("the config check makes every listener's service exist")
            .clone();
        ListenerContext {
            service,
            listener: Arc::from(lc.name.as_str()),
            registry: self.sessions.clone(),
            lifecycle: self.lifecycle.subscribe(),
            host_blocks: self.host_blocks.clone(),
        }
    }

    /// Stops accepting and lets sessions finish their transactions for up to `timeout`, then
    /// closes those left. Returns how many sessions were left at the timeout.
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.lifecycle.send_replace(Lifecycle::Draining);
        crate::metrics::set_draining(true);
        for slot in self.listeners.lock().await.iter_mut() {
            if let Some(running) = slot.running.take() {
                running.stop().await;
            }
        }
        info!(
            sessions = self.sessions.count(),
            timeout = ?timeout,
            "draining: no new clients; open sessions close when their transactions end"
        );
        let deadline = tokio::time::Instant::now() + timeout;
        while self.sessions.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.sessions.count();
        if left > 0 {
            warn!(
                sessions = left,
                "drain timeout: closing the sessions still open"
            );
            self.lifecycle.send_replace(Lifecycle::Closing);
            // Sessions close at their next command boundary; a long statement is cut off when
            // the process exits.
            let grace = tokio::time::Instant::now() + Duration::from_secs(1);
            while self.sessions.count() > 0 && tokio::time::Instant::now() < grace {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        left
    }

    /// Flushes and stops every filter (the audit feed sends what it holds), for up to
    /// `timeout`. Filters may block, so this runs them off the async runtime.
    pub async fn shut_down_filters(&self, timeout: Duration) {
        let mut all: Vec<Arc<FilterEntry>> = self.generation().filters.clone();
        all.extend(
            self.retired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
        let tasks: Vec<_> = all
            .into_iter()
            .map(|f| tokio::task::spawn_blocking(move || f.filter.shutdown(timeout)))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn bind(lc: &ListenerConfig) -> Result<TcpListener, Error> {
    TcpListener::bind(&lc.address)
        .await
        .map_err(|e| Error::listen(format!("listener '{}'", lc.name), &lc.address, e))
}

/// Shuts down filters a reload retired once no session uses them any more.
async fn reap_retired(runtime: Weak<Runtime>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        let unused: Vec<_> = {
            let mut retired = runtime.retired.lock().unwrap_or_else(|e| e.into_inner());
            let (unused, used) = retired
                .drain(..)
                .partition(|f: &Arc<FilterEntry>| Arc::strong_count(&f.filter) == 1);
            *retired = used;
            unused
        };
        for f in unused {
            info!(filter = %f.config.name, "shutting down a filter the reload replaced");
            let _ = tokio::task::spawn_blocking(move || {
                f.filter.shutdown(crate::FILTER_SHUTDOWN_TIMEOUT)
            })
            .await;
        }
    }
}

/// Tells systemd, when it started the process with `Type=notify`.
pub fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(state) {
        warn!(error = %e, "cannot notify systemd");
    }
}

fn monotonic_now() -> sd_notify::NotifyState<'static> {
    sd_notify::NotifyState::monotonic_usec_now().unwrap_or(sd_notify::NotifyState::MonotonicUsec(0))
}
