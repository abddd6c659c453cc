//! The Switchyard runtime: configuration, listeners, sessions, backend connections, the module
//! registry and account loading. The binary (`main.rs`, with the command line and `ctl`, the
//! admin API's client) calls [`run`].

#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod backend;
pub mod config;
pub mod error;
pub mod host_blocks;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod pidfile;
pub mod registry;
pub mod runtime;
pub mod service;
pub mod session;
pub mod workers;

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info};

use config::{Config, ConfigErrors};
use error::Error;
use runtime::Runtime;

/// How long filters may take to finish at shutdown (the audit feed flushing to Kafka; querylog
/// keeps `linger.ms` well below it).
const FILTER_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks what the config file alone cannot: that each module exists and accepts its
/// options. Returns every problem found.
pub fn validate(config: &Config) -> ConfigErrors {
    let mut errors = ConfigErrors::new();
    for service in &config.services {
        if let Err(e) = registry::check_router(service) {
            errors.extend(e);
        }
    }
    for index in 0..config.filters.len() {
        if let Err(e) = registry::check_filter(config, index) {
            errors.extend(e);
        }
    }
    for index in 0..config.monitors.len() {
        if let Err(e) = registry::check_monitor(config, index) {
            errors.extend(e);
        }
    }
    errors
}

/// How the command line runs the proxy.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// The config file, re-read on reload; `None` for the embedded sandbox config.
    pub config_path: Option<PathBuf>,
    /// Where to write the process id once the listeners are bound.
    pub pid_file: Option<PathBuf>,
}

/// Runs the proxy: reloads on SIGHUP; on SIGTERM or SIGINT drains, flushes the filters and
/// returns; a second SIGTERM or SIGINT exits at once.
pub async fn run(config: Config, options: RunOptions) -> Result<(), Error> {
    let admin = config.admin.clone();
    let drain_timeout = config.drain_timeout;
    let pid_file = options
        .pid_file
        .as_deref()
        .map(pidfile::PidFile::check)
        .transpose()
        .map_err(Error::PidFile)?;
    // Before anything can tell systemd or Pacemaker that the proxy is up: a signal sent
    // right after that must find the handlers in place.
    use tokio::signal::unix::{signal, SignalKind};
    let catch = |kind, what| signal(kind).map_err(|source| Error::System { what, source });
    let mut term = catch(SignalKind::terminate(), "cannot catch SIGTERM")?;
    let mut int = catch(SignalKind::interrupt(), "cannot catch SIGINT")?;
    let mut hup = catch(SignalKind::hangup(), "cannot catch SIGHUP")?;
    let runtime = Runtime::start(config, options.config_path).await?;
    let (stop_admin, admin_stopped) = watch::channel(false);
    let mut admin_task = None;
    if let Some(ac) = &admin {
        let cannot = |e| Error::listen("the admin API", &ac.address, e);
        let listener = TcpListener::bind(&ac.address).await.map_err(cannot)?;
        let bound = listener.local_addr().map_err(cannot)?;
        let guard = admin::Guard::new(ac, bound)?;
        info!(address = %bound, "admin API listening");
        admin_task = Some(tokio::spawn(admin::serve(
            listener,
            runtime.clone(),
            guard,
            admin_stopped,
        )));
    }
    let _pid_file = pid_file
        .map(|p| p.write())
        .transpose()
        .map_err(Error::PidFile)?;
    runtime::notify(&[sd_notify::NotifyState::Ready]);
    info!("ready");

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                info!("SIGHUP: reloading the config");
                let _ = runtime.reload().await;
            }
        }
    }
    runtime::notify(&[sd_notify::NotifyState::Stopping]);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        error!("second signal: exiting at once, without draining or flushing the audit feed");
        std::process::exit(1);
    });
    info!(sessions = runtime.sessions.count(), "shutting down");
    runtime.drain(drain_timeout).await;
    // The audit feed flushes what it can.
    runtime.shut_down_filters(FILTER_SHUTDOWN_TIMEOUT).await;
    let _ = stop_admin.send(true);
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    info!("stopped");
    Ok(())
}
