//! Who may use the API: basic authentication when credentials are set, and refusal of what a
//! web page could make a browser send (cross-site requests, DNS rebinding).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use tracing::warn;

use crate::config::AdminConfig;
use crate::error::Error;

use super::error;

/// How the admin API admits requests, fixed when it starts.
pub struct Guard {
    /// `user:password` of basic authentication; `None`: none is asked (loopback only).
    credentials: Option<String>,
    /// Held while a failed login waits out its delay: guesses go one at a time.
    failures: tokio::sync::Mutex<()>,
}

/// How long a request with wrong credentials waits for its 401.
pub(super) const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(250);

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
pub(super) async fn authenticate(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
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
pub(super) fn loopback_host(request: &Request) -> bool {
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
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

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
