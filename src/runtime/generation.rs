//! Building a generation from a config: monitors, filters and services, reusing those whose
//! config (and servers) did not change, so that a reload restarts only what it changed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use switchyard_api::{Filter, Monitor};
use tracing::{info, warn};

use crate::config::Config;
use crate::error::Error;
use crate::registry;
use crate::service::Service;

use super::*;

impl Runtime {
    /// Builds the monitors, filters and services of `config`, reusing those of `old` whose
    /// configuration is the same.
    pub(super) async fn build(
        &self,
        config: Config,
        old: Option<&Generation>,
    ) -> Result<Generation, Error> {
        let addresses = |servers: &[String]| -> Vec<String> {
            servers
                .iter()
                .map(|n| {
                    config
                        .server(n)
                        .map_or(String::new(), |s| s.address.clone())
                })
                .collect()
        };
        let mut monitors = Vec::new();
        for mc in &config.monitors {
            let addrs = addresses(&mc.servers);
            let same = old.and_then(|g| {
                g.monitors
                    .iter()
                    .find(|m| m.config == *mc && m.addresses == addrs)
            });
            monitors.push(match same {
                Some(m) => m.clone(),
                None => {
                    let monitor = registry::start_monitor(mc, &config)?;
                    info!(monitor = %mc.name, module = %mc.module, servers = ?mc.servers, "monitor started");
                    Arc::new(MonitorEntry {
                        config: mc.clone(),
                        addresses: addrs,
                        monitor,
                    })
                }
            });
        }

        let mut filters = Vec::new();
        for fc in &config.filters {
            let same = old.and_then(|g| g.filters.iter().find(|f| f.config == *fc));
            filters.push(match same {
                Some(f) => f.clone(),
                None => {
                    let filter = registry::build_filter(fc)?;
                    info!(filter = %fc.name, module = %fc.module, "filter started");
                    Arc::new(FilterEntry {
                        config: fc.clone(),
                        filter,
                    })
                }
            });
        }

        let mut services = Vec::new();
        for sc in &config.services {
            let addrs = addresses(&sc.servers);
            let chain: Vec<Arc<dyn Filter>> = sc
                .filters
                .iter()
                .filter_map(|name| filters.iter().find(|f| f.config.name == *name))
                .map(|f| f.filter.clone())
                .collect();
            let monitor = sc
                .monitor
                .as_ref()
                .and_then(|name| monitors.iter().find(|m| m.config.name == *name));
            let same = old.and_then(|g| {
                g.services.iter().find(|s| {
                    s.config == *sc
                        && s.addresses == addrs
                        && s.service.filters.len() == chain.len()
                        && s.service
                            .filters
                            .iter()
                            .zip(&chain)
                            .all(|(a, b)| Arc::ptr_eq(a, b))
                        && match (&s.service.monitor, monitor) {
                            (Some(a), Some(b)) => Arc::ptr_eq(a, &b.monitor),
                            (None, None) => true,
                            _ => false,
                        }
                })
            });
            if let Some(s) = same {
                services.push(ServiceEntry {
                    config: sc.clone(),
                    addresses: addrs,
                    service: s.service.clone(),
                });
                continue;
            }
            let router = registry::build_router(sc)?;
            let service = Arc::new(Service::new(
                sc,
                &config,
                router,
                chain,
                monitor.map(|m| m.monitor.clone()),
                &|name| self.server_stats(name),
            ));
            if let Some(m) = monitor {
                follow_monitor(&service, &m.monitor).await;
            }
            if !service.reload_accounts().await {
                warn!(service = %service.name, "the account table could not be loaded yet; clients cannot log in until a server answers");
            }
            services.push(ServiceEntry {
                config: sc.clone(),
                addresses: addrs,
                service,
            });
        }
        Ok(Generation {
            config,
            services,
            monitors,
            filters,
            loaded_at: SystemTime::now(),
        })
    }
}

/// Gives `service` the roles its monitor publishes, from now on, for as long as the service
/// is in use. Waits (a bounded time) for the monitor's first round, so that the first clients
/// meet the cluster as it is.
async fn follow_monitor(service: &Arc<Service>, monitor: &Arc<dyn Monitor>) {
    let mut rx = monitor.subscribe();
    let first_round = monitor.round_deadline() + Duration::from_secs(1);
    if tokio::time::timeout(first_round, rx.wait_for(|c| c.ticks > 0))
        .await
        .is_err()
    {
        warn!(
            monitor = monitor.name(),
            "no answer from the monitor's first round yet; servers count as down until it reports"
        );
    }
    // Weak: the service holds its monitor, so a strong reference here would keep both alive.
    let service = Arc::downgrade(service);
    tokio::spawn(async move {
        loop {
            let cluster = rx.borrow_and_update().clone();
            match service.upgrade() {
                Some(service) => service.apply(&cluster),
                None => return,
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    });
}
