//! The modules Switchyard knows: one table per kind, each entry made from the module's
//! [`RouterModule`], [`FilterModule`] or [`MonitorModule`] impl. Adding a module is one line
//! in its table; its name, options and checks come from the module itself.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use switchyard_api::{
    Filter, FilterModule, Monitor, MonitorAccount, MonitorModule, MonitoredServer, OptionError,
    Router, RouterModule,
};
use switchyard_hintfilter::HintFilter;
use switchyard_mariadbmon::MariaDbMon;
use switchyard_querylog::QueryLog;
use switchyard_readconnroute::ReadConnRoute;
use switchyard_readwritesplit::ReadWriteSplit;
use switchyard_regexfilter::RegexFilter;

use crate::config::{
    Config, ConfigErrors, FilterConfig, ModuleOptions, MonitorConfig, ServiceConfig,
};
use crate::error::Error;

const ROUTERS: &[RouterEntry] = &[router::<ReadConnRoute>(), router::<ReadWriteSplit>()];

const FILTERS: &[FilterEntry] = &[
    filter::<HintFilter>(),
    filter::<QueryLog>(),
    filter::<RegexFilter>(),
];

const MONITORS: &[MonitorEntry] = &[monitor::<MariaDbMon>()];

/// Checks that a service names a known router that accepts its `options`.
pub fn check_router(service: &ServiceConfig) -> Result<(), ConfigErrors> {
    let entry =
        find(ROUTERS, "router", &service.router).map_err(|msg| service.error_at("router", msg))?;
    (entry.check)(&service.options)
}

/// Builds the router of a checked service.
pub fn build_router(service: &ServiceConfig) -> Result<Arc<dyn Router>, Error> {
    let entry = find(ROUTERS, "router", &service.router)
        .map_err(|e| Error::Module(format!("service '{}': {e}", service.name)))?;
    (entry.start)(&service.options)
        .map_err(|e| Error::Module(format!("service '{}': {e}", service.name)))
}

/// Checks that the filter at `filters[index]` names a known module that accepts its options.
pub fn check_filter(config: &Config, index: usize) -> Result<(), ConfigErrors> {
    let filter = &config.filters[index];
    let entry = find(FILTERS, "filter module", &filter.module)
        .map_err(|msg| config.error_at(&format!("filters[{index}].module"), msg))?;
    (entry.check)(&filter.options)
}

/// Starts a checked filter (a `querylog` starts its producer thread).
pub fn build_filter(filter: &FilterConfig) -> Result<Arc<dyn Filter>, Error> {
    let entry = find(FILTERS, "filter module", &filter.module)
        .map_err(|e| Error::Module(format!("filter '{}': {e}", filter.name)))?;
    (entry.start)(&filter.name, &filter.options)
        .map_err(|e| Error::Module(format!("filter '{}': {e}", filter.name)))
}

/// Checks that the monitor at `monitors[index]` names a known module that accepts its options.
pub fn check_monitor(config: &Config, index: usize) -> Result<(), ConfigErrors> {
    let monitor = &config.monitors[index];
    let entry = find(MONITORS, "monitor module", &monitor.module)
        .map_err(|msg| config.error_at(&format!("monitors[{index}].module"), msg))?;
    (entry.check)(&monitor.options)
}

/// Starts a checked monitor on the current runtime.
pub fn start_monitor(monitor: &MonitorConfig, config: &Config) -> Result<Arc<dyn Monitor>, Error> {
    let entry = find(MONITORS, "monitor module", &monitor.module)
        .map_err(|e| Error::Module(format!("monitor '{}': {e}", monitor.name)))?;
    let servers = monitor
        .servers
        .iter()
        .filter_map(|name| config.server(name))
        .map(|s| MonitoredServer::new(&s.name, &s.address))
        .collect();
    let account = MonitorAccount {
        user: monitor.user.clone(),
        password: monitor.password.clone(),
    };
    (entry.start)(&monitor.name, servers, account, &monitor.options)
        .map_err(|e| Error::Module(format!("monitor '{}': {e}", monitor.name)))
}

/// One module of a kind: its name, the check of its options when the config is loaded, and
/// how an instance starts (parsing the options again).
struct Entry<Start> {
    name: &'static str,
    check: fn(&ModuleOptions) -> Result<(), ConfigErrors>,
    start: Start,
}

fn find<'a, Start>(
    table: &'a [Entry<Start>],
    kind: &str,
    name: &str,
) -> Result<&'a Entry<Start>, String> {
    table.iter().find(|e| e.name == name).ok_or_else(|| {
        let known: Vec<&str> = table.iter().map(|e| e.name).collect();
        format!("unknown {kind} '{name}' (known: {})", known.join(", "))
    })
}

type RouterEntry = Entry<fn(&ModuleOptions) -> Result<Arc<dyn Router>, String>>;

const fn router<M: RouterModule>() -> RouterEntry {
    Entry {
        name: M::NAME,
        check: |options| parse(options, M::check).map(drop),
        start: |options| {
            let config = parse(options, M::check).map_err(|e| e.to_string())?;
            Ok(M::build(config))
        },
    }
}

type FilterEntry = Entry<fn(&str, &ModuleOptions) -> Result<Arc<dyn Filter>, String>>;

const fn filter<M: FilterModule>() -> FilterEntry {
    Entry {
        name: M::NAME,
        check: |options| parse(options, M::check).map(drop),
        start: |name, options| {
            let config = parse(options, M::check).map_err(|e| e.to_string())?;
            M::build(name, config)
        },
    }
}

type MonitorEntry = Entry<
    fn(
        &str,
        Vec<MonitoredServer>,
        MonitorAccount,
        &ModuleOptions,
    ) -> Result<Arc<dyn Monitor>, String>,
>;

const fn monitor<M: MonitorModule>() -> MonitorEntry {
    Entry {
        name: M::NAME,
        check: |options| parse(options, M::check).map(drop),
        start: |name, servers, account, options| {
            let config = parse(options, M::check).map_err(|e| e.to_string())?;
            Ok(M::start(name, servers, account, config))
        },
    }
}

/// A module's options as its own config type, checked; errors located in the config file.
fn parse<T: DeserializeOwned>(
    options: &ModuleOptions,
    check: fn(&T) -> Result<(), OptionError>,
) -> Result<T, ConfigErrors> {
    let config: T = options.parse_all()?;
    check(&config).map_err(|(key, message)| options.error_at(key, message))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_name_is_listed_once() {
        let mut names: Vec<&str> = ROUTERS.iter().map(|e| e.name).collect();
        names.extend(FILTERS.iter().map(|e| e.name));
        names.extend(MONITORS.iter().map(|e| e.name));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
    }
}
