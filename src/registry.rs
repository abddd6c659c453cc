//! The modules Switchyard knows, by the name the config uses for them. Adding a router is one
//! line in [`build_router`] and one in [`ROUTERS`].

use std::sync::Arc;

use switchyard_api::{Monitor, Router};
use switchyard_mariadbmon::{MariaDbMon, MariaDbMonConfig, MonitoredServer};
use switchyard_readconnroute::{ReadConnRoute, ReadConnRouteConfig};
use switchyard_readwritesplit::{ReadWriteSplit, ReadWriteSplitConfig};

use crate::config::{Config, ConfigErrors, MonitorConfig, ServiceConfig};

/// Router module names, for messages.
pub const ROUTERS: &[&str] = &["readconnroute", "readwritesplit"];

/// Monitor module names, for messages.
pub const MONITORS: &[&str] = &["mariadbmon"];

/// Checks that the monitor at `monitors[index]` names a known module.
pub fn check_monitor(config: &Config, index: usize) -> Result<(), ConfigErrors> {
    let monitor = &config.monitors[index];
    if MONITORS.contains(&monitor.module.as_str()) {
        return Ok(());
    }
    let msg = format!(
        "unknown monitor module '{}' (known: {})",
        monitor.module,
        MONITORS.join(", ")
    );
    Err(config
        .error_at(&format!("monitors[{index}].module"), msg)
        .into())
}

/// Starts a checked monitor on the current runtime.
pub fn start_monitor(monitor: &MonitorConfig, config: &Config) -> Arc<dyn Monitor> {
    let servers = monitor
        .servers
        .iter()
        .filter_map(|name| config.server(name))
        .map(|s| MonitoredServer::new(&s.name, &s.address))
        .collect();
    let options = MariaDbMonConfig {
        interval: monitor.interval,
        failcount: monitor.failcount,
        connect_timeout: monitor.connect_timeout,
        read_timeout: monitor.read_timeout,
    };
    MariaDbMon::start(
        &monitor.name,
        servers,
        monitor.user.clone(),
        monitor.password.clone(),
        options,
    )
}

/// Builds the router of a service from its `router` name and `options`.
pub fn build_router(service: &ServiceConfig) -> Result<Arc<dyn Router>, ConfigErrors> {
    match service.router.as_str() {
        "readconnroute" => {
            let config: ReadConnRouteConfig = service.options.parse_all()?;
            Ok(Arc::new(ReadConnRoute::new(config)))
        }
        "readwritesplit" => {
            let config: ReadWriteSplitConfig = service.options.parse_all()?;
            Ok(Arc::new(ReadWriteSplit::new(config)))
        }
        other => Err(service
            .error_at(
                "router",
                format!("unknown router '{other}' (known: {})", ROUTERS.join(", ")),
            )
            .into()),
    }
}
