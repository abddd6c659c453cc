//! Talking to the admin API: one HTTP/1.1 request per connection, with a bounded wait.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use super::table::text;
use super::target::Target;
use super::{Failure, PASSWORD_ENV, USER_ENV};

/// An answer of the API: the HTTP status and the JSON body (`Null` when empty, a string when
/// not JSON).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) reason: &'static str,
    pub(super) body: Value,
}

pub(super) struct Client {
    agent: ureq::Agent,
    target: Target,
    /// The `Authorization` header's value.
    authorization: Option<String>,
}

impl Client {
    pub(super) fn new(target: Target) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            // A reload rebuilds what changed (monitors connect to their servers).
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let authorization = target.credentials.as_ref().map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        Client {
            agent,
            target,
            authorization,
        }
    }

    /// Sends a request without a body; any HTTP status is an answer.
    pub(super) fn send(&self, method: &str, path: &str) -> Result<Answer, String> {
        let address = &self.target.address;
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{address}{path}"));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let request = request
            .body(())
            .map_err(|e| format!("bad admin API address '{address}': {e}"))?;
        let mut response = self.agent.run(request).map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("the admin API at {address} sent a broken answer: {e}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or(""),
            body,
        })
    }

    /// `GET path`, its body when the status is 2xx.
    pub(super) fn get(&self, path: &str) -> Result<Value, Failure> {
        self.expect_ok(self.send("GET", path)?)
    }

    /// The body of a 2xx answer; other answers become their error message.
    pub(super) fn expect_ok(&self, answer: Answer) -> Result<Value, Failure> {
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let why = match &answer.body {
            Value::Object(o) if o.contains_key("error") => text(&o["error"]),
            Value::Null => "(no message)".to_string(),
            other => text(other),
        };
        let status = format!("{} {}", answer.status, answer.reason);
        let message = if answer.status == 401 {
            match &self.target.credentials {
                Some((user, _)) => format!(
                    "the admin API refused the credentials of user '{user}': {why} ({status})"
                ),
                None => format!(
                    "the admin API refused the credentials (none were given): {why} ({status}); \
                     give --user and --password, set {USER_ENV} and {PASSWORD_ENV}, or point -c \
                     at the config with admin.user and admin.password"
                ),
            }
        } else {
            format!("{why} ({status})")
        };
        Err(Failure::from(message))
    }

    fn unreachable(&self, e: &ureq::Error) -> String {
        let Target {
            address, source, ..
        } = &self.target;
        let why = match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused — is switchyard running with an admin section?".to_string()
            }
            ureq::Error::Timeout(_) => "no answer in time".to_string(),
            ureq::Error::HostNotFound => "host not found".to_string(),
            other => other.to_string(),
        };
        format!("cannot reach the admin API at {address} ({source}): {why}")
    }
}

/// `name` as one path segment.
pub(super) fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
