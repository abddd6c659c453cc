//! The admin HTTP API (JSON) on `admin.address`: servers, services, listeners, sessions,
//! monitors and filters; operator flags, listener stop/start, blocked client addresses and
//! config reload; `/health`
//! and `/metrics` (Prometheus). `switchyard ctl` is its client.
//!
//! With `admin.user`/`admin.password` set, everything but `/health` takes HTTP basic
//! authentication. The API fails closed: its credentials are those it started with (a reload
//! cannot change them), it listens without them only on a loopback address, and it refuses
//! what a web page could make a browser send.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use base64::Engine;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};
use switchyard_api::{AdminFlag, ServerRole};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_service::Service as _;
use tracing::{debug, info, warn};

use crate::config::{AdminConfig, Role};
use crate::error::{Error, ErrorKind};
use crate::runtime::{FilterEntry, Generation, Lifecycle, MonitorEntry, Runtime};

type Shared = Arc<Runtime>;

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

fn server_view(runtime: &Runtime, generation: &Generation, name: &str) -> Option<ServerView> {
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

/// A JSON error answer: `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn list_servers(State(rt): State<Shared>) -> Json<Vec<ServerView>> {
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

async fn show_server(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match server_view(&rt, &rt.generation(), &name) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no server named '{name}'")),
    }
}

async fn set_flag(rt: Shared, name: String, flag: String, on: bool) -> Response {
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

fn service_view(rt: &Runtime, generation: &Generation, name: &str) -> Option<Value> {
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

async fn list_services(State(rt): State<Shared>) -> Json<Vec<Value>> {
    let generation = rt.generation();
    Json(
        generation
            .services
            .iter()
            .filter_map(|s| service_view(&rt, &generation, &s.config.name))
            .collect(),
    )
}

async fn show_service(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match service_view(&rt, &rt.generation(), &name) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no service named '{name}'")),
    }
}

async fn listener_views(rt: &Runtime) -> Vec<Value> {
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

async fn list_listeners(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(listener_views(&rt).await)
}

async fn show_listener(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
    match listener_views(&rt)
        .await
        .into_iter()
        .find(|l| l["name"] == name.as_str())
    {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no listener named '{name}'")),
    }
}

async fn set_listener(rt: Shared, name: String, action: String) -> Response {
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

fn session_view(id: u32, s: &crate::session::registry::SessionEntry) -> Value {
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

async fn list_sessions(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(
        rt.sessions
            .list()
            .iter()
            .map(|(id, s)| session_view(*id, s))
            .collect(),
    )
}

async fn show_session(State(rt): State<Shared>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u32>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("'{id}' is not a session id (a connection id, like 42)"),
        );
    };
    match rt.sessions.get(id) {
        Some(s) => Json(session_view(id, &s)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no session with id {id}")),
    }
}

fn monitor_view(m: &MonitorEntry) -> Value {
    json!({
        "name": m.config.name,
        "module": m.config.module,
        "servers": m.config.servers,
        "state": *m.monitor.subscribe().borrow().clone(),
        "diagnostics": m.monitor.diagnostics(),
    })
}

async fn list_monitors(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(
        rt.generation()
            .monitors
            .iter()
            .map(|m| monitor_view(m))
            .collect(),
    )
}

async fn show_monitor(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
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

fn filter_view(f: &FilterEntry) -> Value {
    json!({
        "name": f.config.name,
        "module": f.config.module,
        "health": f.filter.health().unwrap_or_else(|| "ok".to_string()),
        "diagnostics": f.filter.diagnostics(),
    })
}

async fn list_filters(State(rt): State<Shared>) -> Json<Vec<Value>> {
    Json(
        rt.generation()
            .filters
            .iter()
            .map(|f| filter_view(f))
            .collect(),
    )
}

async fn show_filter(State(rt): State<Shared>, Path(name): Path<String>) -> Response {
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

/// `/v1/blocked-hosts`: the client addresses with recent failed logins, blocked ones first.
async fn list_blocked_hosts(State(rt): State<Shared>) -> Response {
    Json(rt.host_blocks.list()).into_response()
}

/// `DELETE /v1/blocked-hosts[/{address}]`: forgets the failures of one address, or of all.
async fn unblock(rt: Shared, address: Option<String>) -> Response {
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

async fn reload(State(rt): State<Shared>) -> Response {
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

async fn overview(State(rt): State<Shared>) -> Json<Value> {
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
async fn metrics(State(rt): State<Shared>) -> Response {
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
async fn health(State(rt): State<Shared>) -> Response {
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

/// How the admin API admits requests, fixed when it starts.
pub struct Guard {
    /// `user:password` of basic authentication; `None`: none is asked (loopback only).
    credentials: Option<String>,
    /// Held while a failed login waits out its delay: guesses go one at a time.
    failures: tokio::sync::Mutex<()>,
}

/// How long a request with wrong credentials waits for its 401.
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(250);

impl Guard {
    /// The guard for `config`, bound at `bound`: refused when the address is not a loopback
    /// one and no credentials are set (whatever the config's address said).
    pub fn new(config: &AdminConfig, bound: SocketAddr) -> Result<Guard, Error> {
        let credentials = match (&config.user, &config.password) {
            (Some(u), Some(p)) => Some(format!("{u}:{p}")),
            _ => None,
        };
        if credentials.is_none() && !bound.ip().to_canonical().is_loopback() {
            return Err(Error::Config(format!(
                "the admin API would listen on {bound}, beyond this machine, without \
                 credentials: set admin.user and admin.password, or listen on a loopback \
                 address like 127.0.0.1"
            )));
        }
        Ok(Guard {
            credentials,
            failures: tokio::sync::Mutex::new(()),
        })
    }
}

/// What a browser may send on behalf of a web page is refused: state-changing requests that
/// carry an `Origin` (cross-site request forgery), and, on an API without credentials,
/// requests for a host name other than a loopback one (DNS rebinding). Then basic
/// authentication, when credentials are set; `/health` is open to all.
async fn authenticate(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes && request.headers().contains_key(header::ORIGIN) {
        warn!(path = %request.uri().path(), "admin API: refused a request sent by a web page");
        return error(
            StatusCode::FORBIDDEN,
            "requests from web pages are refused (they carry an Origin header)",
        );
    }
    let Some(expected) = guard.credentials.as_deref() else {
        let peer_local = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|c| c.0.ip().to_canonical().is_loopback());
        if !peer_local || !loopback_host(&request) {
            warn!(path = %request.uri().path(), "admin API: refused a request not addressed to this machine");
            return error(
                StatusCode::FORBIDDEN,
                "without admin credentials the API answers only requests from this machine to \
                 127.0.0.1, ::1 or localhost",
            );
        }
        return next.run(request).await;
    };
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        });
    match given {
        Some(given) if same(&given, expected.as_bytes()) => next.run(request).await,
        given => {
            if given.is_some() {
                crate::metrics::admin_login_failed();
                warn!(path = %request.uri().path(), "admin API: wrong user or password");
                let _one_at_a_time = guard.failures.lock().await;
                tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            }
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "this admin API needs a user and password (HTTP basic authentication)",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"switchyard\""),
            );
            response
        }
    }
}

/// The request names a loopback host (`127.0.0.1`, `[::1]`, `localhost`, with any port), or
/// none (HTTP/1.0).
fn loopback_host(request: &Request) -> bool {
    let Some(host) = request.headers().get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Compares credentials in time that depends on their length only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin API's routes.
pub fn router(runtime: Shared, guard: Arc<Guard>) -> Router {
    let flag = |on: bool| {
        move |State(rt): State<Shared>, Path((name, flag)): Path<(String, String)>| {
            set_flag(rt, name, flag, on)
        }
    };
    Router::new()
        .route("/v1", get(overview))
        .route("/v1/servers", get(list_servers))
        .route("/v1/servers/{name}", get(show_server))
        .route(
            "/v1/servers/{name}/{flag}",
            put(flag(true)).delete(flag(false)),
        )
        .route("/v1/services", get(list_services))
        .route("/v1/services/{name}", get(show_service))
        .route("/v1/listeners", get(list_listeners))
        .route("/v1/listeners/{name}", get(show_listener))
        .route(
            "/v1/listeners/{name}/{action}",
            put(
                |State(rt): State<Shared>, Path((name, action)): Path<(String, String)>| {
                    set_listener(rt, name, action)
                },
            ),
        )
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/sessions/{id}", get(show_session))
        .route("/v1/monitors", get(list_monitors))
        .route("/v1/monitors/{name}", get(show_monitor))
        .route("/v1/filters", get(list_filters))
        .route("/v1/filters/{name}", get(show_filter))
        .route(
            "/v1/blocked-hosts",
            get(list_blocked_hosts).delete(|State(rt): State<Shared>| unblock(rt, None)),
        )
        .route(
            "/v1/blocked-hosts/{address}",
            delete(|State(rt): State<Shared>, Path(a): Path<String>| unblock(rt, Some(a))),
        )
        .route("/v1/reload", post(reload))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such resource") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "this resource does not take that method",
            )
        })
        // On every path, so that unauthenticated requests cannot tell which resources exist.
        .layer(middleware::from_fn_with_state(guard, authenticate))
        .with_state(runtime)
}

/// Admin connections open at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 64;
/// Time a connection has to send a request's headers (slow clients cannot hold connections).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time requests in flight have to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the admin API on `listener` until `shutdown` turns true. Its own accept loop, as
/// `axum::serve` sets no header-read timeout and no connection limit.
pub async fn serve(
    listener: TcpListener,
    runtime: Shared,
    guard: Guard,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(runtime, Arc::new(guard));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: wait rather than spin.
                    warn!(error = %e, "admin API: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "admin API: too many connections; closed a new one");
            continue;
        };
        let app = app.clone();
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                async move { app.call(request.map(Body::new)).await }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        debug!(%peer, error = %e, "admin API connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> Request {
        Request::builder()
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn loopback_hosts_only() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8989",
            "localhost:1",
            "LOCALHOST",
            "[::1]:8989",
        ] {
            assert!(loopback_host(&with_host(host)), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8989",
            "10.0.0.1:8989",
            "[::2]:1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!loopback_host(&with_host(host)), "{host}");
        }
    }

    #[test]
    fn no_credentials_beyond_loopback() {
        let open = AdminConfig {
            address: "0.0.0.0:8989".into(),
            user: None,
            password: None,
        };
        assert!(Guard::new(&open, "0.0.0.0:8989".parse().unwrap()).is_err());
        assert!(Guard::new(&open, "127.0.0.1:8989".parse().unwrap()).is_ok());
        let closed = AdminConfig {
            user: Some("ops".into()),
            password: Some("pw".into()),
            ..open
        };
        assert!(Guard::new(&closed, "0.0.0.0:8989".parse().unwrap()).is_ok());
    }
}
