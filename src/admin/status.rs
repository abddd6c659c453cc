//! The proxy as a whole: the overview, blocked client addresses, reload, `/metrics` and
//! `/health`.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use switchyard_api::ServerRole;
use tracing::info;

use crate::runtime::Lifecycle;

use super::resources::server_view;
use super::{error, Shared};

/// `/v1/blocked-hosts`: the client addresses with recent failed logins, blocked ones first.
pub(super) async fn list_blocked_hosts(State(rt): State<Shared>) -> Response {
    Json(rt.host_blocks.list()).into_response()
}

/// `DELETE /v1/blocked-hosts[/{address}]`: forgets the failures of one address, or of all.
pub(super) async fn unblock(rt: Shared, address: Option<String>) -> Response {
    let ip = match address.as_deref().map(str::parse::<std::net::IpAddr>) {
        None => None,
        Some(Ok(ip)) => Some(ip.to_canonical()),
        Some(Err(_)) => {
            let given = address.unwrap_or_default();
            return error(
                StatusCode::BAD_REQUEST,
                format!("'{given}' is not an IP address"),
            );
        }
    };
    let unblocked = rt.host_blocks.clear(ip);
    info!(address = ?ip, unblocked, "admin API: failed logins forgotten");
    Json(json!({ "unblocked": unblocked })).into_response()
}

pub(super) async fn reload(State(rt): State<Shared>) -> Response {
    info!("config reload asked through the admin API");
    match rt.reload().await {
        Ok(warnings) => Json(json!({ "status": "reloaded", "warnings": warnings })).into_response(),
        Err(errors) => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": format!(
                    "the config has {} problem(s); the running config stays in force",
                    errors.len()
                ),
                "errors": errors,
            })),
        )
            .into_response(),
    }
}

pub(super) async fn overview(State(rt): State<Shared>) -> Json<Value> {
    let generation = rt.generation();
    let since = |t: SystemTime| {
        SystemTime::now()
            .duration_since(t)
            .map_or(0, |d| d.as_secs())
    };
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "config": generation.config.origin(),
        "uptime_seconds": since(rt.started_at),
        "config_age_seconds": since(generation.loaded_at),
        "sessions": rt.sessions.count(),
        "reloads": {
            "ok": rt.reloads.ok.load(Ordering::Relaxed),
            "failed": rt.reloads.failed.load(Ordering::Relaxed),
            "last_errors": rt.reloads.last_errors.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        },
        "state": match rt.lifecycle() {
            Lifecycle::Running => "running",
            Lifecycle::Draining => "draining",
            Lifecycle::Closing => "closing",
        },
    }))
}

/// `/metrics`: Prometheus text; the live state is sampled now.
pub(super) async fn metrics(State(rt): State<Shared>) -> Response {
    use crate::metrics::{ModuleSamples, MonitorSample, Scrape, ServerSample};
    let generation = rt.generation();
    let servers = generation
        .config
        .servers
        .iter()
        .filter_map(|s| server_view(&rt, &generation, &s.name))
        .map(|v| ServerSample {
            role: v.role.as_str().to_string(),
            reachable: v.reachable,
            maintenance: v.maintenance,
            drain: v.drain,
            lag_seconds: v.lag_seconds,
            gtid_behind: v.gtid_behind,
            connections: v.connections,
            name: v.name,
        })
        .collect();
    let monitors = generation
        .monitors
        .iter()
        .map(|m| MonitorSample::from_cluster(&m.config.name, &m.monitor.subscribe().borrow()))
        .collect();
    let modules = generation
        .filters
        .iter()
        .map(|f| ModuleSamples {
            label: "filter",
            instance: f.config.name.clone(),
            samples: f.filter.metrics(),
        })
        .collect();
    let text = crate::metrics::render(&Scrape {
        servers,
        monitors,
        modules,
        blocked_hosts: rt.host_blocks.blocked_count(),
        worker_sessions: rt.worker_sessions(),
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `/health`: 200 `ok` or `degraded` (serving, with problems), 503 `draining` or
/// `unavailable`.
pub(super) async fn health(State(rt): State<Shared>) -> Response {
    if rt.lifecycle() != Lifecycle::Running {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    let generation = rt.generation();
    let mut unavailable = Vec::new();
    let mut degraded = Vec::new();
    rt.with_listeners(|slots| {
        for l in slots.iter().filter(|l| !l.is_running()) {
            degraded.push(format!(
                "listener '{}' was stopped through the admin API",
                l.config.name
            ));
        }
    })
    .await;
    let mut any_primary = false;
    for entry in &generation.services {
        let servers = entry.service.servers.load();
        if servers.primary().is_some() {
            any_primary = true;
        } else if servers.servers.iter().all(|s| s.role == ServerRole::Down) {
            degraded.push(format!("service '{}' has no server up", entry.config.name));
        }
    }
    if !any_primary {
        unavailable.push("no primary server is known".to_string());
    }
    for f in &generation.filters {
        degraded.extend(f.filter.health());
    }
    let (status, body) = if !unavailable.is_empty() {
        unavailable.extend(degraded);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "problems": unavailable }),
        )
    } else if !degraded.is_empty() {
        (
            StatusCode::OK,
            json!({ "status": "degraded", "problems": degraded }),
        )
    } else {
        (StatusCode::OK, json!({ "status": "ok" }))
    };
    (status, Json(body)).into_response()
}
