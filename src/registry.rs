//! The modules Switchyard knows, by the name the config uses for them. Adding a router is one
//! line in [`build_router`] and one in [`ROUTERS`]; a filter, one in [`FilterModule::parse`]
//! and one in [`FILTERS`].

use std::sync::Arc;

use switchyard_api::{Filter, Monitor, Router};
use switchyard_hintfilter::{HintFilter, HintFilterConfig};
use switchyard_mariadbmon::{MariaDbMon, MariaDbMonConfig, MonitoredServer};
use switchyard_querylog::{QueryLog, QueryLogConfig};
use switchyard_readconnroute::{ReadConnRoute, ReadConnRouteConfig};
use switchyard_readwritesplit::{ReadWriteSplit, ReadWriteSplitConfig};
use switchyard_regexfilter::{RegexFilter, RegexFilterConfig};

use crate::config::{Config, ConfigErrors, FilterConfig, MonitorConfig, ServiceConfig};

/// Router module names, for messages.
pub const ROUTERS: &[&str] = &["readconnroute", "readwritesplit"];

/// Filter module names, for messages.
pub const FILTERS: &[&str] = &["hintfilter", "querylog", "regexfilter"];

/// A filter's module with its parsed and checked options.
pub enum FilterModule {
    HintFilter(HintFilterConfig),
    QueryLog(Box<QueryLogConfig>),
    RegexFilter(RegexFilterConfig),
}

impl FilterModule {
    /// Parses and checks a filter's options; errors are located in the config file.
    pub fn parse(
        filter: &FilterConfig,
        config: &Config,
        index: usize,
    ) -> Result<Self, ConfigErrors> {
        let located = |(key, message): (&str, String)| -> ConfigErrors {
            filter.options.error_at(key, message).into()
        };
        match filter.module.as_str() {
            "hintfilter" => Ok(FilterModule::HintFilter(filter.options.parse_all()?)),
            "querylog" => {
                let options: QueryLogConfig = filter.options.parse_all()?;
                options.check().map_err(located)?;
                Ok(FilterModule::QueryLog(Box::new(options)))
            }
            "regexfilter" => {
                let options: RegexFilterConfig = filter.options.parse_all()?;
                options.check().map_err(located)?;
                Ok(FilterModule::RegexFilter(options))
            }
            other => {
                let msg = format!(
                    "unknown filter module '{other}' (known: {})",
                    FILTERS.join(", ")
                );
                Err(config
                    .error_at(&format!("filters[{index}].module"), msg)
                    .into())
            }
        }
    }

    /// Starts the filter (a `querylog` starts its producer thread).
    pub fn build(self, name: &str) -> Result<Arc<dyn Filter>, String> {
        match self {
            FilterModule::HintFilter(options) => Ok(Arc::new(HintFilter::new(options))),
            FilterModule::QueryLog(options) => Ok(Arc::new(
                QueryLog::new(name, *options).map_err(|e| format!("filter '{name}': {e}"))?,
            )),
            FilterModule::RegexFilter(options) => Ok(Arc::new(
                RegexFilter::new(options).map_err(|(_, e)| format!("filter '{name}': {e}"))?,
            )),
        }
    }
}

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
