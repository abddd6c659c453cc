//! The admin HTTP API (JSON) on `admin.address`: servers, services, listeners, sessions,
//! monitors and filters; operator flags, listener stop/start, blocked client addresses and
//! config reload; `/health`
//! and `/metrics` (Prometheus). `switchyard ctl` is its client.
//!
//! With `admin.user`/`admin.password` set, everything but `/health` takes HTTP basic
//! authentication. The API fails closed: its credentials are those it started with (a reload
//! cannot change them), it listens without them only on a loopback address, and it refuses
//! what a web page could make a browser send.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_service::Service as _;
use tracing::{debug, warn};

use crate::runtime::Runtime;

mod guard;
mod resources;
mod status;

use guard::authenticate;
pub use guard::Guard;
pub use resources::ServerView;
use resources::*;
use status::*;

type Shared = Arc<Runtime>;

/// A JSON error answer: `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
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
