//! The example filter of the README's "Writing a module" section, compiled and exercised here
//! so that the README never shows code that does not build. The README's copy is checked
//! against this file (between the `example` markers) by the last test.

// example: begin
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use switchyard_api::{
    ClientInfo, Filter, FilterModule, FilterSession, OptionError, RouteError, Statement, Verdict,
};

/// `maxlength`: refuses SQL statements longer than `max_bytes`.
pub struct MaxLength {
    max_bytes: usize,
    refused: Arc<AtomicU64>,
}

/// The filter's options: the keys beside its `name` and `module` in the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxLengthConfig {
    pub max_bytes: usize,
}

impl FilterModule for MaxLength {
    const NAME: &'static str = "maxlength";
    type Config = MaxLengthConfig;

    fn check(config: &MaxLengthConfig) -> Result<(), OptionError> {
        if config.max_bytes == 0 {
            return Err(("max_bytes", "must be at least 1".into()));
        }
        Ok(())
    }

    fn build(_name: &str, config: MaxLengthConfig) -> Result<Arc<dyn Filter>, String> {
        Ok(Arc::new(MaxLength {
            max_bytes: config.max_bytes,
            refused: Arc::default(),
        }))
    }
}

impl Filter for MaxLength {
    fn new_session(&self, _client: &ClientInfo) -> Box<dyn FilterSession> {
        Box::new(MaxLengthSession {
            max_bytes: self.max_bytes,
            refused: self.refused.clone(),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        serde_json::json!({ "refused": self.refused.load(Ordering::Relaxed) })
    }
}

/// One client session's half: owned by the session's task, so it needs no lock.
struct MaxLengthSession {
    max_bytes: usize,
    refused: Arc<AtomicU64>,
}

impl FilterSession for MaxLengthSession {
    fn on_command(&mut self, stmt: &mut Statement<'_>) -> Verdict {
        match stmt.sql() {
            Some(sql) if sql.len() > self.max_bytes => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Verdict::Answer(RouteError {
                    code: 1105,
                    sqlstate: "HY000",
                    message: format!("statement longer than {} bytes", self.max_bytes),
                })
            }
            _ => Verdict::Pass,
        }
    }
}
// example: end

use serde_json::json;
use switchyard_api::SessionId;
use switchyard_protocol::Command;

fn client() -> ClientInfo {
    ClientInfo {
        session_id: SessionId(1),
        user: "app".into(),
        client_addr: "127.0.0.1:50000".parse().unwrap(),
        db: None,
        program: None,
        tls: false,
        service: "app".into(),
        listener: "app".into(),
    }
}

#[test]
fn the_example_filter_refuses_long_statements_and_counts_them() {
    let config: MaxLengthConfig = serde_json::from_value(json!({ "max_bytes": 10 })).unwrap();
    assert!(MaxLength::check(&config).is_ok());
    let filter = MaxLength::build("short", config).unwrap();
    let mut session = filter.new_session(&client());
    assert!(matches!(
        session.on_command(&mut Command::Query(b"SELECT 1").into()),
        Verdict::Pass
    ));
    match session.on_command(&mut Command::StmtPrepare(b"SELECT 1 + 1 + 1").into()) {
        Verdict::Answer(e) => assert_eq!(
            (e.code, e.message.as_str()),
            (1105, "statement longer than 10 bytes")
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        session.on_command(&mut Command::Ping.into()),
        Verdict::Pass
    ));
    assert_eq!(filter.diagnostics(), json!({ "refused": 1 }));
}

#[test]
fn the_example_filter_checks_its_options() {
    let zero: MaxLengthConfig = serde_json::from_value(json!({ "max_bytes": 0 })).unwrap();
    assert_eq!(MaxLength::check(&zero).unwrap_err().0, "max_bytes");
    assert!(serde_json::from_value::<MaxLengthConfig>(json!({ "max_byte": 1 })).is_err());
}

#[test]
fn the_readme_shows_this_example() {
    let this = include_str!("example_filter.rs");
    let example = this
        .split("// example: begin\n")
        .nth(1)
        .and_then(|rest| rest.split("// example: end\n").next())
        .unwrap();
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains(&format!("```rust\n{example}```\n")),
        "README.md's \"Writing a module\" example differs from modules/api/tests/example_filter.rs"
    );
}
