//! The Switchyard runtime: configuration, listeners, sessions, backend connections, the module
//! registry and account loading. `main.rs` parses the command line and calls [`cli::main`].

pub mod accounts;
pub mod admin;
pub mod backend;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod listener;
pub mod logging;
pub mod registry;
pub mod service;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use switchyard_api::{Monitor, ServerStats};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use config::{Config, ConfigErrors};
use service::Service;
use session::registry::SessionRegistry;
use session::ListenerContext;

/// How long filters may take to finish at shutdown (the audit feed flushing to Kafka).
const FILTER_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks what the config file alone cannot: that each module exists and accepts its
/// options. Returns every problem found.
pub fn validate(config: &Config) -> ConfigErrors {
    let mut errors = ConfigErrors::new();
    for service in &config.services {
        if let Err(e) = registry::build_router(service) {
            errors.extend(e);
        }
    }
    for (index, filter) in config.filters.iter().enumerate() {
        if let Err(e) = registry::FilterModule::parse(filter, config, index) {
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

/// Runs the proxy until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), String> {
    let stats: HashMap<String, Arc<ServerStats>> = config
        .servers
        .iter()
        .map(|s| (s.name.clone(), Arc::default()))
        .collect();

    let mut monitors = HashMap::new();
    let mut entries = Vec::new();
    for mc in &config.monitors {
        let monitor = registry::start_monitor(mc, &config);
        info!(monitor = %mc.name, module = %mc.module, servers = ?mc.servers, "monitor started");
        monitors.insert(mc.name.clone(), (mc, monitor.clone()));
        entries.push(admin::MonitorEntry {
            name: mc.name.clone(),
            module: mc.module.clone(),
            servers: mc.servers.clone(),
            monitor,
        });
    }

    let mut filters = HashMap::new();
    let mut filter_entries = Vec::new();
    for (index, fc) in config.filters.iter().enumerate() {
        let module =
            registry::FilterModule::parse(fc, &config, index).map_err(|e| e.to_string())?;
        let filter = module.build(&fc.name)?;
        info!(filter = %fc.name, module = %fc.module, "filter started");
        filters.insert(fc.name.as_str(), filter.clone());
        filter_entries.push(admin::FilterEntry {
            name: fc.name.clone(),
            module: fc.module.clone(),
            filter,
        });
    }

    let mut services = HashMap::new();
    for sc in &config.services {
        let router = registry::build_router(sc).map_err(|e| e.to_string())?;
        let chain = sc
            .filters
            .iter()
            .map(|f| filters[f.as_str()].clone())
            .collect();
        let service = Arc::new(Service::new(sc, &config, router, chain, &|name| {
            stats[name].clone()
        }));
        if let Some(name) = &sc.monitor {
            let (mc, monitor) = &monitors[name];
            follow_monitor(&service, monitor, mc).await;
        }
        if !service.reload_accounts().await {
            warn!(service = %service.name, "the account table could not be loaded yet; clients cannot log in until a server answers");
        }
        services.insert(sc.name.clone(), service);
    }

    let registry = Arc::new(SessionRegistry::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for lc in &config.listeners {
        let listener = TcpListener::bind(&lc.address).await.map_err(|e| {
            format!(
                "listener '{}' cannot listen on {}: {e}",
                lc.name, lc.address
            )
        })?;
        info!(listener = %lc.name, address = %lc.address, service = %lc.service, "listening");
        let ctx = Arc::new(ListenerContext {
            service: services[&lc.service].clone(),
            listener: lc.name.clone(),
            registry: registry.clone(),
        });
        tasks.push(tokio::spawn(listener::run(
            listener,
            ctx,
            shutdown_rx.clone(),
        )));
    }
    if let Some(ac) = &config.admin {
        let listener = TcpListener::bind(&ac.address)
            .await
            .map_err(|e| format!("the admin API cannot listen on {}: {e}", ac.address))?;
        info!(address = %ac.address, "admin API listening");
        let state = admin::AdminState::new(&config, stats.clone(), entries, filter_entries);
        tasks.push(tokio::spawn(admin::serve(
            listener,
            state,
            shutdown_rx.clone(),
        )));
    }

    shutdown_signal().await;
    info!(sessions = registry.count(), "shutting down");
    let _ = shutdown_tx.send(true);
    for t in tasks {
        if let Err(e) = t.await {
            error!(error = %e, "a listener task failed");
        }
    }
    // The audit feed flushes what it can; the filters may block, so off the runtime.
    let shutdowns: Vec<_> = filters
        .into_values()
        .map(|f| tokio::task::spawn_blocking(move || f.shutdown(FILTER_SHUTDOWN_TIMEOUT)))
        .collect();
    for s in shutdowns {
        let _ = s.await;
    }
    Ok(())
}

/// Gives `service` the roles its monitor publishes, from now on. Waits (a bounded time) for
/// the monitor's first round, so that the first clients meet the cluster as it is.
async fn follow_monitor(
    service: &Arc<Service>,
    monitor: &Arc<dyn Monitor>,
    config: &config::MonitorConfig,
) {
    let mut rx = monitor.subscribe();
    let first_round = config.connect_timeout + config.read_timeout + Duration::from_secs(1);
    if tokio::time::timeout(first_round, rx.wait_for(|c| c.ticks > 0))
        .await
        .is_err()
    {
        warn!(
            monitor = monitor.name(),
            "no answer from the monitor's first round yet; servers count as down until it reports"
        );
    }
    let service = service.clone();
    tokio::spawn(async move {
        loop {
            let cluster = rx.borrow_and_update().clone();
            service.apply(&cluster);
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
