//! The local admin HTTP API (JSON): server states, operator flags, monitors and filters. Served on `admin.address`;
//! `switchyard ctl` is its client.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Serialize;
use switchyard_api::{AdminFlag, Filter, Monitor, ServerRole, ServerStats};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::config::{Config, Role};

/// A monitor as the admin API lists it.
pub struct MonitorEntry {
    pub name: String,
    pub module: String,
    pub servers: Vec<String>,
    pub monitor: Arc<dyn Monitor>,
}

/// A filter as the admin API lists it.
pub struct FilterEntry {
    pub name: String,
    pub module: String,
    pub filter: Arc<dyn Filter>,
}

/// What the admin API reads.
pub struct AdminState {
    servers: Vec<(String, String, Role)>,
    stats: HashMap<String, Arc<ServerStats>>,
    monitors: Vec<MonitorEntry>,
    filters: Vec<FilterEntry>,
}

impl AdminState {
    pub fn new(
        config: &Config,
        stats: HashMap<String, Arc<ServerStats>>,
        monitors: Vec<MonitorEntry>,
        filters: Vec<FilterEntry>,
    ) -> Self {
        let servers = config
            .servers
            .iter()
            .map(|s| (s.name.clone(), s.address.clone(), s.role))
            .collect();
        AdminState {
            servers,
            stats,
            monitors,
            filters,
        }
    }

    fn monitor_of(&self, server: &str) -> Option<&MonitorEntry> {
        self.monitors
            .iter()
            .find(|m| m.servers.iter().any(|s| s == server))
    }

    fn view(&self, name: &str, address: &str, role: Role) -> ServerView {
        let connections = self.stats.get(name).map_or(0, |s| s.connections());
        let statements = self.stats.get(name).map_or(0, |s| s.statements());
        let mut view = ServerView {
            name: name.to_string(),
            address: address.to_string(),
            role: match role {
                Role::Primary => ServerRole::Primary,
                Role::Replica => ServerRole::Replica,
                Role::Running => ServerRole::Running,
            },
            monitor: None,
            reachable: None,
            read_only: None,
            server_id: None,
            lag_seconds: None,
            gtid_behind: None,
            gtid_current_pos: None,
            replication_broken: false,
            maintenance: false,
            drain: false,
            check_time_us: None,
            last_error: None,
            connections,
            statements,
        };
        if let Some(entry) = self.monitor_of(name) {
            view.monitor = Some(entry.name.clone());
            let cluster = entry.monitor.subscribe().borrow().clone();
            if let Some(s) = cluster.get(name) {
                view.role = s.role;
                view.reachable = Some(s.reachable);
                view.read_only = s.read_only;
                view.server_id = s.server_id;
                view.lag_seconds = s.lag_seconds;
                view.gtid_behind = s.gtid_behind;
                view.gtid_current_pos = s.gtid_current_pos.clone();
                view.replication_broken = s.replication_broken;
                view.maintenance = s.maintenance;
                view.drain = s.drain;
                view.check_time_us = s.check_time.map(|d| d.as_micros() as u64);
                view.last_error = s.last_error.clone();
            }
        }
        view
    }
}

/// One server, as `GET /v1/servers` shows it.
#[derive(Debug, Serialize)]
pub struct ServerView {
    pub name: String,
    pub address: String,
    pub role: ServerRole,
    /// The monitor that checks it; without one, the role is the configured one.
    pub monitor: Option<String>,
    pub reachable: Option<bool>,
    pub read_only: Option<bool>,
    pub server_id: Option<u32>,
    pub lag_seconds: Option<u64>,
    pub gtid_behind: Option<u64>,
    pub gtid_current_pos: Option<String>,
    pub replication_broken: bool,
    pub maintenance: bool,
    pub drain: bool,
    pub check_time_us: Option<u64>,
    pub last_error: Option<String>,
    /// Backend connections open to it now.
    pub connections: u64,
    /// Commands routed to it since start.
    pub statements: u64,
}

type Shared = Arc<AdminState>;

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn list_servers(State(state): State<Shared>) -> Json<Vec<ServerView>> {
    Json(
        state
            .servers
            .iter()
            .map(|(n, a, r)| state.view(n, a, *r))
            .collect(),
    )
}

async fn show_server(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    match state.servers.iter().find(|(n, _, _)| *n == name) {
        Some((n, a, r)) => Json(state.view(n, a, *r)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no server named '{name}'")),
    }
}

async fn set_flag(state: Shared, name: String, flag: String, on: bool) -> Response {
    let Some(flag) = AdminFlag::parse(&flag) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown flag '{flag}' (known: maintenance, drain)"),
        );
    };
    if !state.servers.iter().any(|(n, _, _)| *n == name) {
        return error(StatusCode::NOT_FOUND, format!("no server named '{name}'"));
    }
    let Some(entry) = state.monitor_of(&name) else {
        let msg =
            format!("server '{name}' is not checked by any monitor; flags are kept by its monitor");
        return error(StatusCode::CONFLICT, msg);
    };
    match entry.monitor.set_flag(&name, flag, on) {
        Ok(()) => {
            info!(server = %name, ?flag, on, "operator flag changed through the admin API");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

async fn list_monitors(State(state): State<Shared>) -> Json<Vec<serde_json::Value>> {
    Json(
        state
            .monitors
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "module": m.module,
                    "state": *m.monitor.subscribe().borrow().clone(),
                    "diagnostics": m.monitor.diagnostics(),
                })
            })
            .collect(),
    )
}

async fn list_filters(State(state): State<Shared>) -> Json<Vec<serde_json::Value>> {
    Json(
        state
            .filters
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "module": f.module,
                    "diagnostics": f.filter.diagnostics(),
                })
            })
            .collect(),
    )
}

/// Serves the admin API on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: AdminState, mut shutdown: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/v1/servers", get(list_servers))
        .route("/v1/servers/{name}", get(show_server))
        .route(
            "/v1/servers/{name}/{flag}",
            put(
                |State(s): State<Shared>, Path((n, f)): Path<(String, String)>| {
                    set_flag(s, n, f, true)
                },
            )
            .delete(
                |State(s): State<Shared>, Path((n, f)): Path<(String, String)>| {
                    set_flag(s, n, f, false)
                },
            ),
        )
        .route("/v1/monitors", get(list_monitors))
        .route("/v1/filters", get(list_filters))
        .with_state(Arc::new(state));
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "the admin API stopped");
    }
}
