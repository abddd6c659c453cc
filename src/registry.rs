//! The modules Switchyard knows, by the name the config uses for them. Adding a router is one
//! line in [`build_router`] and one in [`ROUTERS`].

use std::sync::Arc;

use switchyard_api::Router;
use switchyard_readconnroute::{ReadConnRoute, ReadConnRouteConfig};

use crate::config::{ConfigErrors, ServiceConfig};

/// Router module names, for messages.
pub const ROUTERS: &[&str] = &["readconnroute"];

/// Builds the router of a service from its `router` name and `options`.
pub fn build_router(service: &ServiceConfig) -> Result<Arc<dyn Router>, ConfigErrors> {
    match service.router.as_str() {
        "readconnroute" => {
            let config: ReadConnRouteConfig = service.options.parse_all()?;
            Ok(Arc::new(ReadConnRoute::new(config)))
        }
        other => Err(service
            .error_at(
                "router",
                format!("unknown router '{other}' (known: {})", ROUTERS.join(", ")),
            )
            .into()),
    }
}
