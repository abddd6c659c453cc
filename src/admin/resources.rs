//! The resources: servers (and their operator flags), services, listeners (stop/start),
//! sessions, monitors and filters, as JSON.

use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use switchyard_api::{AdminFlag, ServerRole, SessionId};
use tracing::info;

use crate::config::Role;
use crate::error::ErrorKind;
use crate::runtime::{FilterEntry, Generation, MonitorEntry, Runtime};

use super::{error, Shared};

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
    /// Backend connections opened since start.
    pub total_connections: u64,
    /// Commands routed to it since start.
    pub statements: u64,
    /// Commands running on it now.
    pub operations: u64,
    /// Average response time of its recent commands.
    pub response_time_us: u64,
    /// The services that route to it.
    pub services: Vec<String>,
}

pub(super) fn server_view(
    runtime: &Runtime,
    generation: &Generation,
    name: &str,
) -> Option<ServerView> {
    let config = generation.config.server(name)?;
    let stats = runtime.server_stats(name);
    let mut view = ServerView {
        name: name.to_string(),
        address: config.address.clone(),
        role: match config.role {
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
        connections: stats.connections(),
        total_connections: stats.total_connections(),
        statements: stats.statements(),
        operations: stats.current_operations(),
        response_time_us: stats.response_time_us(),
        services: generation
            .config
            .services
            .iter()
            .filter(|s| s.servers.iter().any(|n| n == name))
            .map(|s| s.name.clone())
            .collect(),
    };
    if let Some(entry) = generation.monitor_of(name) {
        view.monitor = Some(entry.config.name.clone());
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
    Some(view)
}

pub(super) async fn list_servers(State(rt): State<Shared>) -> Json<Vec<ServerView>> {
    let generation = rt.generation();
    Json(
        generation
            .config
            .servers
            .iter()
            .filter_map(|s| server_view(&rt, &generation, &s.name))
            .collect(),
    )
}

pub(super) async fn show_server(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match server_view(&rt, &rt.generation(), &name) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no server named '{name}'")),
    }
}

pub(super) async fn set_flag(rt: Shared, name: String, flag: String, on: bool) -> Response {
    let Some(flag) = AdminFlag::parse(&flag) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown flag '{flag}' (known: maintenance, drain)"),
        );
    };
    let generation = rt.generation();
    if generation.config.server(&name).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no server named '{name}'"));
    }
    let Some(entry) = generation.monitor_of(&name) else {
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

pub(super) fn service_view(rt: &Runtime, generation: &Generation, name: &str) -> Option<Value> {
    let entry = generation.services.iter().find(|s| s.config.name == name)?;
    let c = &entry.config;
    let listeners: Vec<&str> = generation
        .config
        .listeners
        .iter()
        .filter(|l| l.service == c.name)
        .map(|l| l.name.as_str())
        .collect();
    let sessions = rt
        .sessions
        .list()
        .iter()
        .filter(|(_, s)| &*s.service == name)
        .count();
    Some(json!({
        "name": c.name,
        "router": c.router,
        "servers": c.servers,
        "filters": c.filters,
        "monitor": c.monitor,
        "listeners": listeners,
        "sessions": sessions,
        "max_connections": c.max_connections,
        "max_pending_logins": c.max_pending_logins,
        "max_pending_logins_per_host": c.max_pending_logins_per_host,
        "options": c.options.parse_all::<Value>().unwrap_or(Value::Null),
    }))
}

pub(super) async fn list_services(State(rt): State<Shared>) -> Json<Vec<Value>> {
    let generation = rt.generation();
    Json(
        generation
            .services
            .iter()
            .filter_map(|s| service_view(&rt, &generation, &s.config.name))
            .collect(),
    )
}

pub(super) async fn show_service(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match service_view(&rt, &rt.generation(), &name) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no service named '{name}'")),
    }
}

pub(super) async fn listener_views(rt: &Runtime) -> Vec<Value> {
    let sessions = rt.sessions.list();
    rt.with_listeners(|slots| {
        slots
            .iter()
            .map(|l| {
                let c = &l.config;
                json!({
                    "name": c.name,
                    "service": c.service,
                    "address": c.address,
                    "state": if l.is_running() { "running" } else { "stopped" },
                    "sessions": sessions.iter().filter(|(_, s)| *s.listener == *c.name).count(),
                })
            })
            .collect()
    })
    .await
}

pub(super) async fn list_listeners(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(listener_views(&rt).await)
}

pub(super) async fn show_listener(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match listener_views(&rt)
        .await
        .into_iter()
        .find(|l| l["name"] == name.as_str())
    {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no listener named '{name}'")),
    }
}

pub(super) async fn set_listener(rt: Shared, name: String, action: String) -> Response {
    let run = match action.as_str() {
        "start" => true,
        "stop" => false,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown listener action '{other}' (known: start, stop)"),
            )
        }
    };
    match rt.set_listener(&name, run).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) if e.kind() == ErrorKind::NotFound => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

pub(super) fn session_view(id: SessionId, s: &crate::session::registry::SessionEntry) -> Value {
    let age = SystemTime::now()
        .duration_since(s.started)
        .map_or(0.0, |d| d.as_secs_f64());
    let backends: Vec<Value> = s
        .backends
        .iter()
        .map(|(server, thread)| json!({ "server": server.name.as_str(), "thread_id": thread }))
        .collect();
    json!({
        "id": id,
        "user": s.user,
        "client": s.client.to_string(),
        "db": s.live.db(),
        "service": &*s.service,
        "listener": &*s.listener,
        "backends": backends,
        "in_transaction": s.live.in_transaction(),
        "age_seconds": (age * 10.0).round() / 10.0,
    })
}

pub(super) async fn list_sessions(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(
        rt.sessions
            .list()
            .iter()
            .map(|(id, s)| session_view(*id, s))
            .collect(),
    )
}

pub(super) async fn show_session(State(rt): State<Shared>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u32>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("'{id}' is not a session id (a connection id, like 42)"),
        );
    };
    match rt.sessions.get(SessionId(id)) {
        Some(s) => Json(session_view(SessionId(id), &s)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no session with id {id}")),
    }
}

pub(super) fn monitor_view(m: &MonitorEntry) -> Value {
    json!({
        "name": m.config.name,
        "module": m.config.module,
        "servers": m.config.servers,
        "state": *m.monitor.subscribe().borrow().clone(),
        "diagnostics": m.monitor.diagnostics(),
    })
}

pub(super) async fn list_monitors(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(
        rt.generation()
            .monitors
            .iter()
            .map(|m| monitor_view(m))
            .collect(),
    )
}

pub(super) async fn show_monitor(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match rt
        .generation()
        .monitors
        .iter()
        .find(|m| m.config.name == name)
    {
        Some(m) => Json(monitor_view(m)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no monitor named '{name}'")),
    }
}

pub(super) fn filter_view(f: &FilterEntry) -> Value {
    json!({
        "name": f.config.name,
        "module": f.config.module,
        "health": f.filter.health().unwrap_or_else(|| "ok".to_string()),
        "diagnostics": f.filter.diagnostics(),
    })
}

pub(super) async fn list_filters(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(
        rt.generation()
            .filters
            .iter()
            .map(|f| filter_view(f))
            .collect(),
    )
}

pub(super) async fn show_filter(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match rt
        .generation()
        .filters
        .iter()
        .find(|f| f.config.name == name)
    {
        Some(f) => Json(filter_view(f)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no filter named '{name}'")),
    }
}
