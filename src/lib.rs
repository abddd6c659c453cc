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

use switchyard_api::ServerStats;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use config::{Config, ConfigErrors};
use service::Service;
use session::registry::SessionRegistry;
use session::ListenerContext;

/// Checks what the config file alone cannot: that each service's router exists and accepts
/// its options. Returns every problem found.
pub fn validate(config: &Config) -> ConfigErrors {
    let mut errors = ConfigErrors::new();
    for service in &config.services {
        if let Err(e) = registry::build_router(service) {
            errors.extend(e);
        }
    }
    errors
}

/// Runs the proxy until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow_free::Result {
    let mut stats: HashMap<String, Arc<ServerStats>> = HashMap::new();
    for s in &config.servers {
        stats.insert(s.name.clone(), Arc::default());
    }
    let mut services = HashMap::new();
    for sc in &config.services {
        let router = registry::build_router(sc).map_err(|e| e.to_string())?;
        let service = Arc::new(Service::new(sc, &config, router, &|name| {
            stats[name].clone()
        }));
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

    shutdown_signal().await;
    info!(sessions = registry.count(), "shutting down");
    let _ = shutdown_tx.send(true);
    for t in tasks {
        if let Err(e) = t.await {
            error!(error = %e, "a listener task failed");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// A small error type for the top level: a message for the operator.
pub mod anyhow_free {
    pub type Result<T = ()> = std::result::Result<T, String>;
}
